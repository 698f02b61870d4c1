// TFRecord framing, the container of TensorBoard event files. Each record is
//
//   uint64 length            (little-endian)
//   uint32 masked_crc32c(length bytes)
//   byte   data[length]
//   uint32 masked_crc32c(data)
//
// with CRC-32C masked as in `CRC32C.mask`.

public enum TFRecord {
  /// Bytes of framing around each record: 8 (length) + 4 (length CRC) + 4 (data CRC).
  public static let overhead = 16

  /// `data` framed as one TFRecord.
  public static func frame(_ data: [UInt8]) -> [UInt8] {
    var out = [UInt8]()
    out.reserveCapacity(data.count + overhead)
    let length = UInt64(data.count)
    for i in 0..<8 { out.append(UInt8(truncatingIfNeeded: length >> (8 * UInt64(i)))) }
    let lengthCRC = out.withUnsafeBytes { CRC32C.maskedChecksum($0) }
    appendLE32(lengthCRC, to: &out)
    out.append(contentsOf: data)
    appendLE32(data.withUnsafeBytes { CRC32C.maskedChecksum($0) }, to: &out)
    return out
  }

  private static func appendLE32(_ v: UInt32, to out: inout [UInt8]) {
    for i in 0..<4 { out.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) }
  }
}
