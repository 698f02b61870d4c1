// CRC-32C (Castagnoli), the checksum of TFRecord framing.
//
// Reflected polynomial 0x82F63B78, initial value and final xor 0xFFFFFFFF (so "123456789" gives
// 0xE3069283). Slice-by-8: eight 256-entry tables, eight input bytes per step.

public enum CRC32C {
  /// Eight tables of 256 entries, back to back: `tables[k * 256 + b]` is the CRC contribution of
  /// byte `b` followed by `k` zero bytes.
  static let tables: [UInt32] = {
    var t = [UInt32](repeating: 0, count: 8 * 256)
    for i in 0..<256 {
      var c = UInt32(i)
      for _ in 0..<8 { c = (c & 1) != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
      t[i] = c
    }
    for k in 1..<8 {
      for i in 0..<256 {
        let prev = t[(k - 1) * 256 + i]
        t[k * 256 + i] = (prev >> 8) ^ t[Int(prev & 0xFF)]
      }
    }
    return t
  }()

  /// Continues a CRC-32C over `bytes`. Start with `crc = 0`; the pre- and post-inversion are done
  /// here, so `update(update(0, a), b) == checksum(a + b)`.
  public static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer) -> UInt32 {
    var c = ~crc
    guard var p = bytes.baseAddress else { return crc }
    var n = bytes.count
    tables.withUnsafeBufferPointer { t in
      while n >= 8 {
        let lo = UInt32(littleEndian: p.loadUnaligned(as: UInt32.self)) ^ c
        let hi = UInt32(littleEndian: p.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
        c = t[7 * 256 + Int(lo & 0xFF)] ^ t[6 * 256 + Int((lo >> 8) & 0xFF)]
          ^ t[5 * 256 + Int((lo >> 16) & 0xFF)] ^ t[4 * 256 + Int(lo >> 24)]
          ^ t[3 * 256 + Int(hi & 0xFF)] ^ t[2 * 256 + Int((hi >> 8) & 0xFF)]
          ^ t[1 * 256 + Int((hi >> 16) & 0xFF)] ^ t[Int(hi >> 24)]
        p += 8
        n -= 8
      }
      while n > 0 {
        c = t[Int((c ^ UInt32(p.load(as: UInt8.self))) & 0xFF)] ^ (c >> 8)
        p += 1
        n -= 1
      }
    }
    return ~c
  }

  /// CRC-32C of `bytes`.
  public static func checksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 { update(0, bytes) }

  /// CRC-32C of `bytes`.
  public static func checksum(_ bytes: [UInt8]) -> UInt32 {
    bytes.withUnsafeBytes { update(0, $0) }
  }

  /// The masked form stored in TFRecord files: rotate right by 15 bits, add 0xa282ead8.
  public static func mask(_ crc: UInt32) -> UInt32 {
    ((crc >> 15) | (crc << 17)) &+ 0xA282_EAD8
  }

  /// Inverse of `mask`.
  public static func unmask(_ masked: UInt32) -> UInt32 {
    let rot = masked &- 0xA282_EAD8
    return (rot >> 17) | (rot << 15)
  }

  /// Masked CRC-32C of `bytes`, as TFRecord framing stores it.
  public static func maskedChecksum(_ bytes: UnsafeRawBufferPointer) -> UInt32 {
    mask(checksum(bytes))
  }
}
