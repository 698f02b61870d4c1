import Foundation

/// The safetensors format (github.com/huggingface/safetensors): an unsigned 64-bit little-endian
/// header length N, N bytes of JSON — {"name": {"dtype", "shape", "data_offsets": [begin, end]}, …,
/// "__metadata__": {string: string}} — then the raw little-endian tensor data, offsets relative to
/// the end of the header. vae-dist writes F32 only; the header is padded with spaces to a multiple of
/// 8 bytes so the data is aligned, as the reference implementation does.
public enum SafeTensors {
  public struct Tensor: Equatable {
    public let name: String
    public let shape: [Int]
    public let values: [Float]

    public init(name: String, shape: [Int], values: [Float]) {
      precondition(SafeTensors.elementCount(shape) == values.count, "\(name): shape \(shape) does not match \(values.count) values")
      self.name = name
      self.shape = shape
      self.values = values
    }
  }

  public struct File: Equatable {
    public var metadata: [String: String]
    public var tensors: [Tensor]

    public init(metadata: [String: String] = [:], tensors: [Tensor]) {
      self.metadata = metadata
      self.tensors = tensors
    }

    public func tensor(named name: String) -> Tensor? { tensors.first { $0.name == name } }
  }

  /// The elements of a tensor of `shape`: the product of its dimensions, 0 if any is 0, nil past
  /// Int's range (a header's dimensions may each be 2³¹; eight of them are not a size).
  public static func elementCount(_ shape: [Int]) -> Int? {
    if shape.contains(0) { return 0 }
    return shape.reduce(Int?.some(1)) { product, size in
      product.flatMap { let (value, overflow) = $0.multipliedReportingOverflow(by: size); return overflow ? nil : value }
    }
  }

  /// Largest header this reader accepts (the reference implementation's limit is 100 MB).
  public static let maximumHeaderBytes = 100_000_000

  public static func encode(_ file: File) -> [UInt8] {
    var entries: [String] = []
    if !file.metadata.isEmpty {
      let pairs = file.metadata.keys.sorted().map { "\(jsonString($0)):\(jsonString(file.metadata[$0]!))" }
      entries.append("\"__metadata__\":{\(pairs.joined(separator: ","))}")
    }
    var offset = 0
    for tensor in file.tensors {
      let bytes = tensor.values.count * 4
      entries.append(
        "\(jsonString(tensor.name)):{\"dtype\":\"F32\",\"shape\":[\(tensor.shape.map(String.init).joined(separator: ","))],"
          + "\"data_offsets\":[\(offset),\(offset + bytes)]}")
      offset += bytes
    }
    var header = Array("{\(entries.joined(separator: ","))}".utf8)
    while header.count % 8 != 0 { header.append(0x20) }
    var output: [UInt8] = []
    output.reserveCapacity(8 + header.count + offset)
    withUnsafeBytes(of: UInt64(header.count).littleEndian) { output.append(contentsOf: $0) }
    output.append(contentsOf: header)
    for tensor in file.tensors {
      for value in tensor.values { withUnsafeBytes(of: value.bitPattern.littleEndian) { output.append(contentsOf: $0) } }
    }
    return output
  }

  /// Parses and validates a safetensors file: the header length against the file size, the JSON,
  /// every tensor's dtype, shape and offsets (inside the data, sized as the shape says, neither
  /// overlapping nor leaving gaps).
  public static func decode(_ bytes: [UInt8], path: String) throws -> File {
    func fail(_ reason: String) -> FileError { .notSafeTensors(path: path, reason: reason) }
    guard bytes.count >= 8 else { throw fail("is too short to be a safetensors file (\(bytes.count) bytes)") }
    let headerLength = bytes[0..<8].reversed().reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
    guard headerLength <= UInt64(min(maximumHeaderBytes, bytes.count - 8)) else {
      throw fail("declares a \(headerLength)-byte header but the file holds \(bytes.count) bytes")
    }
    let dataStart = 8 + Int(headerLength)
    let json: Any
    do {
      json = try JSONSerialization.jsonObject(with: Data(bytes[8..<dataStart]))
    } catch {
      throw fail("has a header that is not valid JSON")
    }
    guard let object = json as? [String: Any] else { throw fail("has a header that is not a JSON object") }
    var metadata: [String: String] = [:]
    if let raw = object["__metadata__"] {
      guard let dictionary = raw as? [String: Any] else { throw fail("has __metadata__ that is not an object") }
      for (key, value) in dictionary {
        guard let string = value as? String else { throw fail("has a non-string __metadata__ value for \(key)") }
        metadata[key] = string
      }
    }
    var entries: [(name: String, shape: [Int], begin: Int, end: Int)] = []
    for (name, raw) in object where name != "__metadata__" {
      guard let entry = raw as? [String: Any] else { throw fail("tensor \(name): entry is not an object") }
      guard let dtype = entry["dtype"] as? String, dtype == "F32" else {
        throw fail("tensor \(name): dtype \(entry["dtype"] ?? "missing") is not F32")
      }
      guard let shapeValues = entry["shape"] as? [Any], shapeValues.count <= 8,
        let shape = integers(shapeValues), shape.allSatisfy({ $0 >= 0 && $0 <= 1 << 31 })
      else { throw fail("tensor \(name): shape is not a list of up to 8 non-negative integers") }
      guard let offsetValues = entry["data_offsets"] as? [Any], let offsets = integers(offsetValues), offsets.count == 2,
        offsets[0] >= 0, offsets[0] <= offsets[1], offsets[1] <= bytes.count - dataStart
      else { throw fail("tensor \(name): data_offsets are missing or outside the file's data") }
      guard let elements = elementCount(shape), elements <= Int.max / 4 else {
        throw fail("tensor \(name): shape \(shape) needs more data than the file holds")
      }
      guard elements <= (bytes.count - dataStart) / 4, offsets[1] - offsets[0] == elements * 4 else {
        throw fail("tensor \(name): data_offsets span \(offsets[1] - offsets[0]) bytes but shape \(shape) needs \(elements * 4)")
      }
      entries.append((name, shape, offsets[0], offsets[1]))
    }
    entries.sort { $0.begin < $1.begin || ($0.begin == $1.begin && $0.end < $1.end) }
    var expected = 0
    for entry in entries {
      guard entry.begin == expected else {
        throw fail("tensor \(entry.name): data \(entry.begin < expected ? "overlaps the previous tensor" : "leaves a gap")")
      }
      expected = entry.end
    }
    guard expected == bytes.count - dataStart else {
      throw fail("has \(bytes.count - dataStart - expected) bytes after the last tensor")
    }
    let tensors = entries.map { entry -> Tensor in
      var values = [Float](repeating: 0, count: (entry.end - entry.begin) / 4)
      for i in 0..<values.count {
        let at = dataStart + entry.begin + 4 * i
        let bits = UInt32(bytes[at]) | UInt32(bytes[at + 1]) << 8 | UInt32(bytes[at + 2]) << 16 | UInt32(bytes[at + 3]) << 24
        values[i] = Float(bitPattern: bits)
      }
      return Tensor(name: entry.name, shape: entry.shape, values: values)
    }
    return File(metadata: metadata, tensors: tensors)
  }

  /// Largest file this reader loads (the model at the largest latent size is about 13 MB).
  public static let maximumFileBytes = 1 << 30

  public static func read(path: String) throws -> File {
    try decode(readBytes(path: path), path: path)
  }

  /// The bytes of a file this reader would load: a regular file (behind any links; a fifo would
  /// block the open, a device stream forever) of at most `maximumFileBytes`, checked before it is
  /// read into memory.
  public static func readBytes(path: String) throws -> [UInt8] {
    try RegularFile.bytes(path, kind: "a .safetensors file", limit: maximumFileBytes)
  }

  /// Writes atomically: a temporary file in the same directory, flushed to disk, then renamed over
  /// `path`. A crash or a full disk leaves any previous file at `path` as it was.
  public static func write(_ file: File, to path: String) throws {
    try AtomicFile.write(encode(file), to: path)
  }

  private static func integers(_ values: [Any]) -> [Int]? {
    var result: [Int] = []
    for value in values {
      guard let number = value as? Int else { return nil }
      result.append(number)
    }
    return result
  }

  private static func jsonString(_ text: String) -> String {
    var escaped = "\""
    for scalar in text.unicodeScalars {
      switch scalar {
      case "\"": escaped += "\\\""
      case "\\": escaped += "\\\\"
      case _ where scalar.value < 0x20: escaped += String(format: "\\u%04x", scalar.value)
      default: escaped.unicodeScalars.append(scalar)
      }
    }
    return escaped + "\""
  }
}
