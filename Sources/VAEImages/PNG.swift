import _CZlib

/// PNG encoding (8-bit grayscale or RGB, no interlace) with zlib for the compressed data and the CRCs.
public enum PNG {
  public enum ColorType: UInt8 {
    case gray = 0
    case rgb = 2

    var channels: Int { self == .gray ? 1 : 3 }
  }

  /// The PNG file for `pixels`: rows top to bottom, `width × channels` bytes each.
  public static func encode(width: Int, height: Int, color: ColorType, pixels: [UInt8]) -> [UInt8] {
    precondition(width > 0 && height > 0 && pixels.count == width * height * color.channels)
    let rowBytes = width * color.channels
    // Each scanline starts with its filter type; 0 (none) is always valid.
    var raw = [UInt8]()
    raw.reserveCapacity((rowBytes + 1) * height)
    for y in 0..<height {
      raw.append(0)
      raw.append(contentsOf: pixels[(y * rowBytes)..<((y + 1) * rowBytes)])
    }
    var compressedLength = compressBound(UInt(raw.count))
    var compressed = [UInt8](repeating: 0, count: Int(compressedLength))
    let status = compress2(&compressed, &compressedLength, raw, UInt(raw.count), 9)
    precondition(status == Z_OK, "zlib compress2 failed: \(status)")
    compressed.removeSubrange(Int(compressedLength)...)

    var file: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    var header = bigEndian(UInt32(width)) + bigEndian(UInt32(height))
    header += [8, color.rawValue, 0, 0, 0]  // bit depth, colour type, compression, filter, interlace
    appendChunk("IHDR", header, to: &file)
    appendChunk("IDAT", compressed, to: &file)
    appendChunk("IEND", [], to: &file)
    return file
  }

  static func appendChunk(_ type: String, _ data: [UInt8], to file: inout [UInt8]) {
    let typeBytes = Array(type.utf8)
    file += bigEndian(UInt32(data.count))
    file += typeBytes
    file += data
    let body = typeBytes + data
    let crc = body.withUnsafeBufferPointer { UInt32(crc32(0, $0.baseAddress, UInt32($0.count))) }
    file += bigEndian(crc)
  }

  static func bigEndian(_ value: UInt32) -> [UInt8] {
    [UInt8(value >> 24), UInt8(value >> 16 & 0xff), UInt8(value >> 8 & 0xff), UInt8(value & 0xff)]
  }
}
