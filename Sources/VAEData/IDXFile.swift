import _CZlib

#if canImport(Glibc)
  import Glibc
#endif

/// The IDX format of MNIST-style data sets: a big-endian header — two zero bytes, a type code
/// (0x08 = unsigned byte), the number of dimensions — then one big-endian UInt32 per dimension, then
/// the data, row-major. The first dimension counts items (images or labels).
public struct IDXContents: Sendable {
  /// The dimensions from the header; `dimensions[0]` is the number of items in the whole file.
  public let dimensions: [Int]
  /// The kept items' bytes, concatenated.
  public let data: [UInt8]
  /// For each kept item, its index in the file, ascending.
  public let itemIndices: [Int]

  public var itemSize: Int { dimensions.dropFirst().reduce(1, *) }
}

public enum IDXFile {
  /// Largest values a header may claim before anything is allocated: far beyond any MNIST-like set
  /// (Fashion-MNIST has 60,000 items, EMNIST 814,255), far below what would exhaust memory (4 Mi
  /// images of 28 × 28: 3.3 GB).
  public static let maximumItems = 1 << 22
  public static let maximumItemSize = 1 << 20

  /// The dimensions in the header of the IDX file at `path`, validated, without reading the data.
  public static func dimensions(path: String, rank: Int) throws -> [Int] {
    try readHeader(GzipReader(path: path), rank: rank)
  }

  /// Reads the unsigned-byte IDX file at `path` with `rank` dimensions, keeping only the items whose
  /// index satisfies `keep` (all when nil). Sizes are validated before anything is allocated, and
  /// with `itemShape` (e.g. [28, 28]) an item of another shape is refused before any data is read (a
  /// gzip file can stand for far more data than it takes on disk); the data must end exactly where
  /// the header says.
  public static func read(path: String, rank: Int, itemShape: [Int]? = nil, keep: ((Int) -> Bool)? = nil) throws -> IDXContents {
    let reader = try GzipReader(path: path)
    let dimensions = try readHeader(reader, rank: rank)
    if let itemShape, Array(dimensions.dropFirst()) != itemShape {
      throw DataError.corrupt(
        path: path,
        reason: "holds items of shape \(dimensions.dropFirst().map(String.init).joined(separator: "×")); expected \(itemShape.map(String.init).joined(separator: "×"))")
    }
    let itemSize = dimensions.dropFirst().reduce(1, *)
    let count = dimensions[0]
    var data: [UInt8] = []
    var indices: [Int] = []
    if keep == nil {
      // A header's claim is not trusted with memory: the data must really be there to grow into it.
      data.reserveCapacity(min(count * itemSize, 1 << 20))
      indices.reserveCapacity(min(count, 1 << 20))
    }
    var item = [UInt8](repeating: 0, count: itemSize)
    for index in 0..<count {
      let got = try reader.read(into: &item, count: itemSize)
      guard got == itemSize else {
        throw DataError.corrupt(
          path: path,
          reason: "is truncated: the header announces \(count) items of \(itemSize) bytes, the data ends in item \(index)")
      }
      if keep?(index) ?? true {
        data.append(contentsOf: item)
        indices.append(index)
      }
    }
    try reader.expectEnd(describing: "\(count) items")
    return IDXContents(dimensions: dimensions, data: data, itemIndices: indices)
  }

  /// The CRC-32 of the IDX bytes (header and data) of the file at `path` as they read uncompressed,
  /// so a gzip and a plain copy of the same data give the same number. A gzip file whose trailer
  /// records exactly the length its header implies (one member, nothing after it: the files Debian
  /// and Zalando ship) gives its trailer's CRC without inflating anything; a reader that loads the
  /// file reads it to the end, where zlib checks that CRC against the data. (Bytes after the member,
  /// which zlib passes over, could fake such a trailer: then that file and a plain copy differ, a
  /// refusal rather than a silent mix.) Any other file is read through and its bytes summed.
  public static func contentCRC32(path: String, rank: Int) throws -> UInt32 {
    let dimensions = try self.dimensions(path: path, rank: rank)
    let length = 4 + 4 * rank + dimensions.reduce(1, *)  // below 2^43: the header's bounds are checked
    if let trailer = gzipTrailer(path: path), trailer.length == UInt32(truncatingIfNeeded: length) { return trailer.crc }
    let reader = try GzipReader(path: path)
    return try crc32 { try reader.read(into: $0, count: $1) }
  }

  /// The CRC-32 of the file's bytes as stored (a gzip file's compressed bytes): how runs recorded
  /// their data before 2026-12-03.
  public static func storedCRC32(path: String) throws -> UInt32 {
    guard let file = fopen(path, "rb") else { throw DataError.unreadable(path: path, reason: String(cString: strerror(errno))) }
    defer { fclose(file) }
    return crc32 { fread($0, 1, $1, file) }
  }

  /// The CRC-32 of what `read(buffer, capacity)` gives, 1 MiB at a time, until it gives nothing.
  private static func crc32(reading read: (UnsafeMutableRawPointer, Int) throws -> Int) rethrows -> UInt32 {
    var buffer = [UInt8](repeating: 0, count: 1 << 20)
    var crc: UInt = 0
    while true {
      let got = try buffer.withUnsafeMutableBytes { try read($0.baseAddress!, $0.count) }
      if got == 0 { return UInt32(crc) }
      crc = buffer.withUnsafeBufferPointer { _CZlib.crc32(crc, $0.baseAddress, UInt32(got)) }
    }
  }

  /// A gzip file's trailer: the CRC-32 and the length (mod 2^32) of its last member's data; nil for a
  /// file that does not start as gzip, or cannot be read.
  private static func gzipTrailer(path: String) -> (crc: UInt32, length: UInt32)? {
    guard let file = fopen(path, "rb") else { return nil }
    defer { fclose(file) }
    var magic: [UInt8] = [0, 0], trailer = [UInt8](repeating: 0, count: 8)
    guard fread(&magic, 1, 2, file) == 2, magic == [0x1f, 0x8b], fseek(file, -8, SEEK_END) == 0,
      fread(&trailer, 1, 8, file) == 8
    else { return nil }
    let word = { (at: Int) in (0..<4).reduce(UInt32(0)) { $0 | UInt32(trailer[at + $1]) << (8 * $1) } }
    return (word(0), word(4))
  }

  private static func readHeader(_ reader: GzipReader, rank: Int) throws -> [Int] {
    let path = reader.path
    var magic = [UInt8](repeating: 0, count: 4)
    guard try reader.read(into: &magic, count: 4) == 4 else {
      throw DataError.corrupt(path: path, reason: "is too short to hold an IDX header (\(reader.bytesRead) bytes)")
    }
    guard magic[0] == 0, magic[1] == 0 else {
      throw DataError.corrupt(
        path: path, reason: "is not an IDX file (magic number 0x\(hex(magic)), expected 0x0000080\(rank))")
    }
    guard magic[2] == 0x08 else {
      throw DataError.corrupt(
        path: path, reason: "holds IDX type 0x\(String(magic[2], radix: 16)), expected 0x08 (unsigned bytes)")
    }
    guard Int(magic[3]) == rank else {
      throw DataError.corrupt(
        path: path, reason: "has \(magic[3]) dimensions (magic 0x\(hex(magic))), expected \(rank)")
    }
    var header = [UInt8](repeating: 0, count: 4 * rank)
    guard try reader.read(into: &header, count: header.count) == header.count else {
      throw DataError.corrupt(path: path, reason: "ends inside its IDX header")
    }
    let dimensions = (0..<rank).map { d in
      header[(4 * d)..<(4 * d + 4)].reduce(0) { $0 << 8 | Int($1) }
    }
    guard dimensions.allSatisfy({ $0 >= 1 }) else {
      throw DataError.corrupt(path: path, reason: "has an empty dimension in its header: \(dimensions)")
    }
    // Each factor is bounded before any product is formed, so nothing below can overflow.
    let itemSize = dimensions.dropFirst().reduce(1) { size, d in
      let (product, overflow) = size.multipliedReportingOverflow(by: min(d, maximumItemSize + 1))
      return overflow ? Int.max : min(product, maximumItemSize + 1)
    }
    guard dimensions[0] <= maximumItems, itemSize <= maximumItemSize else {
      throw DataError.corrupt(path: path, reason: "claims an implausible size \(dimensions) in its header")
    }

    return dimensions
  }

  private static func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String(format2: $0) }.joined()
  }
}

extension String {
  fileprivate init(format2 byte: UInt8) {
    let digits = String(byte, radix: 16)
    self = digits.count == 1 ? "0" + digits : digits
  }
}
