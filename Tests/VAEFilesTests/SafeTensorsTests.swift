import Foundation
import VAECore
import VAEFiles
import XCTest

final class SafeTensorsTests: XCTestCase {
  let sample = SafeTensors.File(
    metadata: ["format": "pt", "note": "quote \" and \\ backslash"],
    tensors: [
      SafeTensors.Tensor(name: "a.weight", shape: [2, 3], values: [1, -2, 3.5, .pi, 0, -0]),
      SafeTensors.Tensor(name: "a.bias", shape: [2], values: [1e-30, 6e20]),
    ])

  func testRoundTripAndLayout() throws {
    let bytes = SafeTensors.encode(sample)
    let headerLength = Int(bytes[0]) | Int(bytes[1]) << 8 | Int(bytes[2]) << 16
    XCTAssertEqual(headerLength % 8, 0, "data must start 8-byte aligned")
    XCTAssertEqual(bytes.count, 8 + headerLength + 4 * 8)
    // The header is plain JSON with the reference implementation's keys.
    let header = try JSONSerialization.jsonObject(with: Data(bytes[8..<(8 + headerLength)])) as! [String: Any]
    let weight = header["a.weight"] as! [String: Any]
    XCTAssertEqual(weight["dtype"] as? String, "F32")
    XCTAssertEqual(weight["shape"] as? [Int], [2, 3])
    XCTAssertEqual(weight["data_offsets"] as? [Int], [0, 24])
    XCTAssertEqual((header["a.bias"] as! [String: Any])["data_offsets"] as? [Int], [24, 32])
    // Little-endian IEEE floats: 1.0 is 00 00 80 3f.
    XCTAssertEqual(Array(bytes[(8 + headerLength)..<(8 + headerLength + 4)]), [0, 0, 0x80, 0x3f])
    let decoded = try SafeTensors.decode(bytes, path: "memory")
    XCTAssertEqual(decoded.metadata, sample.metadata)
    XCTAssertEqual(decoded.tensor(named: "a.weight"), sample.tensors[0])
    XCTAssertEqual(decoded.tensor(named: "a.bias")?.values.map(\.bitPattern), sample.tensors[1].values.map(\.bitPattern))
  }

  func testAtomicWriteLeavesNoTemporaryFile() throws {
    let directory = NSTemporaryDirectory() + "st-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let path = directory + "/model.safetensors"
    try SafeTensors.write(sample, to: path)
    try SafeTensors.write(sample, to: path)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory), ["model.safetensors"])
    XCTAssertEqual(try SafeTensors.read(path: path), try SafeTensors.decode(SafeTensors.encode(sample), path: path))
    XCTAssertThrowsError(try SafeTensors.write(sample, to: directory + "/missing/dir/model.safetensors")) { error in
      XCTAssertTrue("\(error)".contains("could not be written") && "\(error)".contains("Check that its directory exists"), "\(error)")
    }
  }

  /// A header made by hand, with data of `dataBytes` bytes.
  func file(header: String, dataBytes: Int) -> [UInt8] {
    var bytes: [UInt8] = []
    withUnsafeBytes(of: UInt64(header.utf8.count).littleEndian) { bytes += $0 }
    return bytes + Array(header.utf8) + [UInt8](repeating: 0, count: dataBytes)
  }

  /// A tensor with a zero dimension holds nothing, however large the others (their product alone overflows).
  func testEmptyTensorWithHugeDimensionsLoads() throws {
    let decoded = try SafeTensors.decode(
      file(header: #"{"e":{"dtype":"F32","shape":[2147483648,2147483648,4,0],"data_offsets":[0,0]}}"#, dataBytes: 0), path: "e.safetensors")
    XCTAssertEqual(decoded.tensors.first?.values.count, 0)
  }

  func testCorruptFilesAreRejected() {
    let cases: [([UInt8], String)] = [
      ([1, 2, 3], "too short"),
      (file(header: "{}", dataBytes: 0).enumerated().map { $0.offset == 7 ? 0x7f : $0.element }, "declares"),
      (file(header: "{not json", dataBytes: 0), "not valid JSON"),
      (file(header: "[1,2]", dataBytes: 0), "not a JSON object"),
      (file(header: #"{"t":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}"#, dataBytes: 2), "not F32"),
      (file(header: #"{"t":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}"#, dataBytes: 4), "shape"),
      (file(header: #"{"t":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}"#, dataBytes: 4), "outside"),
      (file(header: #"{"t":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}"#, dataBytes: 8), "needs 12"),
      (file(header: #"{"t":{"dtype":"F32","shape":[1000000,1000000],"data_offsets":[0,8]}}"#, dataBytes: 8), "needs"),
      // Products past Int's range: wrapped, the first is 0 (and matched an empty span), the second 2⁶³.
      (file(header: #"{"t":{"dtype":"F32","shape":[2147483648,2147483648,4],"data_offsets":[0,0]}}"#, dataBytes: 0), "needs more data"),
      (file(header: #"{"t":{"dtype":"F32","shape":[3,2147483648,2147483648],"data_offsets":[0,0]}}"#, dataBytes: 0), "needs more data"),
      (file(header: #"{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataBytes: 8), "overlaps"),
      (file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}"#, dataBytes: 8), "gap"),
      (file(header: #"{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}"#, dataBytes: 8), "after the last tensor"),
      (file(header: #"{"__metadata__":{"k":1}}"#, dataBytes: 0), "non-string"),
    ]
    for (bytes, reason) in cases {
      XCTAssertThrowsError(try SafeTensors.decode(bytes, path: "bad.safetensors"), reason) { error in
        XCTAssertTrue("\(error)".contains("bad.safetensors"), "\(error)")
        XCTAssertTrue("\(error)".contains(reason), "expected '\(reason)' in \(error)")
      }
    }
  }

  /// A fifo (whose open would block until a writer came) and a directory are refused by name,
  /// not read.
  func testOnlyRegularFilesAreRead() throws {
    let directory = NSTemporaryDirectory() + "vae-dist-st-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let fifo = directory + "/model.safetensors"
    XCTAssertEqual(mkfifo(fifo, 0o600), 0)
    for path in [fifo, directory] {
      XCTAssertThrowsError(try SafeTensors.read(path: path)) { error in
        XCTAssertTrue("\(error)".contains("\(path): is not a regular file"), "\(error)")
      }
    }
  }
}
