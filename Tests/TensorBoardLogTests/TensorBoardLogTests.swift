import Foundation
import XCTest

import TensorBoardLog

/// Bit-at-a-time CRC-32C, written independently of the library's table-driven one.
private func referenceCRC32C(_ bytes: [UInt8]) -> UInt32 {
  var c: UInt32 = 0xFFFF_FFFF
  for b in bytes {
    c ^= UInt32(b)
    for _ in 0..<8 { c = (c >> 1) ^ (0x82F6_3B78 & (0 &- (c & 1))) }
  }
  return ~c
}

private func referenceMask(_ c: UInt32) -> UInt32 { ((c >> 15) | (c << 17)) &+ 0xA282_EAD8 }

/// A protocol-buffer message decoded by a reader of the tests' own: every field by number, in order.
/// Wire types: 0 varint (`number`), 1 and 5 fixed 64/32-bit (`number`, the bits), 2 length-delimited
/// (`bytes`).
struct Fields {
  var entries: [(field: Int, wire: Int, number: UInt64, bytes: [UInt8])] = []

  init(_ data: [UInt8]) {
    var i = 0
    func varint() -> UInt64 {
      var value: UInt64 = 0, shift: UInt64 = 0
      while true {
        let b = data[i]
        i += 1
        value |= UInt64(b & 0x7F) << shift
        if b < 0x80 { return value }
        shift += 7
      }
    }
    while i < data.count {
      let key = varint()
      let field = Int(key >> 3), wire = Int(key & 7)
      switch wire {
      case 0: entries.append((field, wire, varint(), []))
      case 1:
        entries.append((field, wire, (0..<8).reduce(UInt64(0)) { $0 | UInt64(data[i + $1]) << (8 * UInt64($1)) }, []))
        i += 8
      case 5:
        entries.append((field, wire, (0..<4).reduce(UInt64(0)) { $0 | UInt64(data[i + $1]) << (8 * UInt64($1)) }, []))
        i += 4
      case 2:
        let n = Int(varint())
        entries.append((field, wire, 0, Array(data[i..<(i + n)])))
        i += n
      default: fatalError("unexpected wire type \(wire)")
      }
    }
  }

  func has(_ field: Int) -> Bool { entries.contains { $0.field == field } }
  func number(_ field: Int) -> UInt64 { entries.last { $0.field == field }?.number ?? 0 }
  func double(_ field: Int) -> Double { Double(bitPattern: number(field)) }
  func float(_ field: Int) -> Float { Float(bitPattern: UInt32(number(field))) }
  func bytes(_ field: Int) -> [UInt8] { entries.last { $0.field == field }?.bytes ?? [] }
  func string(_ field: Int) -> String { String(decoding: bytes(field), as: UTF8.self) }
  func message(_ field: Int) -> Fields { Fields(bytes(field)) }
  func all(_ field: Int) -> [[UInt8]] { entries.filter { $0.field == field }.map(\.bytes) }
}

/// Event fields: wall_time 1, step 2, file_version 3, summary 5 (Summary: repeated Value 1),
/// session_log 7. Value: tag 1, simple_value 2, image 4, tensor 8, metadata 9.
struct DecodedEvent {
  let fields: Fields
  init(_ bytes: [UInt8]) { fields = Fields(bytes) }
  var wallTime: Double { fields.double(1) }
  var step: Int { Int(fields.number(2)) }
  var fileVersion: String { fields.string(3) }
  var values: [Fields] { fields.message(5).all(1).map(Fields.init) }
}

private func le64(_ b: [UInt8], _ at: Int) -> UInt64 {
  (0..<8).reduce(UInt64(0)) { $0 | UInt64(b[at + $1]) << (8 * UInt64($1)) }
}

private func le32(_ b: [UInt8], _ at: Int) -> UInt32 {
  (0..<4).reduce(UInt32(0)) { $0 | UInt32(b[at + $1]) << (8 * UInt32($1)) }
}

/// Splits a TFRecord file into its records, checking the length and both masked CRCs.
private func readRecords(_ bytes: [UInt8], file: StaticString = #filePath, line: UInt = #line) -> [[UInt8]] {
  var records = [[UInt8]]()
  var at = 0
  while at < bytes.count {
    guard bytes.count - at >= 12 else {
      XCTFail("truncated header at \(at)", file: file, line: line)
      return records
    }
    let length = Int(le64(bytes, at))
    XCTAssertEqual(le32(bytes, at + 8), referenceMask(referenceCRC32C(Array(bytes[at..<at + 8]))),
                   "length CRC at \(at)", file: file, line: line)
    guard bytes.count - at - 12 >= length + 4 else {
      XCTFail("truncated record at \(at)", file: file, line: line)
      return records
    }
    let data = Array(bytes[at + 12..<at + 12 + length])
    XCTAssertEqual(le32(bytes, at + 12 + length), referenceMask(referenceCRC32C(data)),
                   "data CRC at \(at)", file: file, line: line)
    records.append(data)
    at += 12 + length + 4
  }
  return records
}

final class TensorBoardLogTests: XCTestCase {
  private var tempDir = ""

  override func setUpWithError() throws {
    tempDir = NSTemporaryDirectory() + "TensorBoardLogTests-\(getpid())-\(UUID().uuidString)"
  }

  override func tearDownWithError() throws {
    try? FileManager.default.removeItem(atPath: tempDir)
  }

  // RFC 3720 appendix B.4, and the usual check value of "123456789".
  func testCRC32CPublishedVectors() {
    XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
    XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
    XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8($0) }), 0x46DD_794E)
    XCTAssertEqual(CRC32C.checksum((0..<32).reversed().map { UInt8($0) }), 0x113F_DB5C)
    XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
    XCTAssertEqual(CRC32C.checksum([]), 0)
  }

  // Slice-by-8 against the bitwise reference for every length 0..<80 at every alignment 0..<8,
  // and incremental updates against one-shot.
  func testCRC32CMatchesReferenceAtAllLengthsAndOffsets() {
    var state: UInt64 = 0x9E37_79B9_7F4A_7C15
    let buffer: [UInt8] = (0..<96).map { _ in
      state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
      return UInt8(truncatingIfNeeded: state >> 56)
    }
    for offset in 0..<8 {
      for length in 0..<80 {
        let slice = Array(buffer[offset..<offset + length])
        let got = buffer.withUnsafeBytes {
          CRC32C.checksum(UnsafeRawBufferPointer(rebasing: $0[offset..<offset + length]))
        }
        XCTAssertEqual(got, referenceCRC32C(slice), "offset \(offset) length \(length)")
        let split = length / 3
        let incremental = slice.withUnsafeBytes {
          CRC32C.update(CRC32C.update(0, UnsafeRawBufferPointer(rebasing: $0[0..<split])),
                        UnsafeRawBufferPointer(rebasing: $0[split...]))
        }
        XCTAssertEqual(incremental, got, "incremental, offset \(offset) length \(length)")
      }
    }
  }

  func testMaskedCRC() {
    XCTAssertEqual(CRC32C.mask(0), 0xA282_EAD8)
    // Same value as TensorBoard's own masked_crc32c(b"123456789").
    XCTAssertEqual(CRC32C.mask(0xE306_9283), 0xC78A_B0E5)
    for c: UInt32 in [0, 1, 0x8000_0000, 0xFFFF_FFFF, 0xE306_9283, 0x1234_5678] {
      XCTAssertEqual(CRC32C.mask(c), referenceMask(c))
      XCTAssertEqual(CRC32C.unmask(CRC32C.mask(c)), c)
    }
  }

  func testFrameOfEmptyAndShortRecords() {
    let empty = TFRecord.frame([])
    XCTAssertEqual(empty.count, 16)
    XCTAssertEqual(readRecords(empty), [[]])
    let abc = TFRecord.frame(Array("abc".utf8))
    XCTAssertEqual(Array(abc[0..<8]), [3, 0, 0, 0, 0, 0, 0, 0])
    XCTAssertEqual(readRecords(abc), [Array("abc".utf8)])
  }

  func testRoundTrip() throws {
    let png: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52,
                        0, 0, 0, 3, 0, 0, 0, 2, 8, 2, 0, 0, 0]  // an IHDR start: 3x2 RGB
    let logdir = tempDir + "/run/a"
    let writer = try EventWriter(directory: logdir, fileSuffix: "rank0")
    try writer.scalar("loss/train", 0.25, step: 0, wallTime: 1_700_000_000.5)
    try writer.scalar("loss/train", 0.125, step: 10)
    try writer.scalar("weird", .nan, step: 11)
    try writer.scalar("weird", -.infinity, step: 12)
    try writer.image("samples", png: png, width: 3, height: 2, step: 10)
    try writer.text("config", "**lr** = 1e-3 — ü", step: 0)
    try writer.flush()
    writer.close()
    writer.close()
    XCTAssertThrowsError(try writer.scalar("late", 1, step: 99)) { error in
      XCTAssertTrue("\(error)".contains(writer.path), "\(error)")
      XCTAssertTrue("\(error)".contains("closed"), "\(error)")
    }

    let name = (writer.path as NSString).lastPathComponent
    XCTAssertTrue(name.hasPrefix("events.out.tfevents."), name)
    var host = [CChar](repeating: 0, count: 256)
    XCTAssertEqual(gethostname(&host, 255), 0)
    // events.out.tfevents.<unix seconds>.<hostname>.<pid>.<writer count>.<suffix>
    let rest = name.dropFirst("events.out.tfevents.".count).split(separator: ".", maxSplits: 1)
    XCTAssertEqual(rest.count, 2, name)
    let seconds = Int(rest[0]) ?? 0
    XCTAssertLessThan(abs(seconds - Int(time(nil))), 600, name)
    let tail = String(rest[1])
    XCTAssertTrue(tail.hasPrefix("\(host.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }).\(getpid())."), name)
    XCTAssertTrue(tail.hasSuffix(".rank0"), name)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: logdir), [name])

    let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: writer.path)))
    let records = readRecords(bytes)
    XCTAssertEqual(records.count, 7)
    let events = records.map(DecodedEvent.init)

    XCTAssertEqual(events[0].fileVersion, "brain.Event:2")
    XCTAssertGreaterThan(events[0].wallTime, 1_600_000_000)

    func value(_ i: Int) -> Fields {
      XCTAssertEqual(events[i].values.count, 1)
      return events[i].values[0]
    }
    XCTAssertEqual(events[1].step, 0)
    XCTAssertEqual(events[1].wallTime, 1_700_000_000.5)
    XCTAssertEqual(value(1).string(1), "loss/train")
    XCTAssertEqual(value(1).float(2), 0.25)
    XCTAssertEqual(events[2].step, 10)
    XCTAssertEqual(value(2).float(2), 0.125)
    XCTAssertGreaterThan(events[2].wallTime, 1_600_000_000)
    XCTAssertTrue(value(3).float(2).isNaN)
    XCTAssertEqual(value(4).float(2), -.infinity)
    XCTAssertEqual(events[4].step, 12)

    XCTAssertEqual(events[5].step, 10)
    XCTAssertEqual(value(5).string(1), "samples")
    XCTAssertTrue(value(5).has(4), "an image")
    let img = value(5).message(4)
    XCTAssertEqual(img.number(2), 3, "width")
    XCTAssertEqual(img.number(1), 2, "height")
    XCTAssertEqual(img.number(3), 3, "colorspace RGB")
    XCTAssertEqual(img.bytes(4), png)

    XCTAssertEqual(value(6).string(1), "config")
    XCTAssertEqual(value(6).message(9).message(1).string(1), "text")
    XCTAssertTrue(value(6).has(8), "a tensor")
    let t = value(6).message(8)
    XCTAssertEqual(t.number(1), 7, "DT_STRING")
    XCTAssertTrue(t.has(2), "a tensor shape")
    XCTAssertTrue(t.message(2).entries.isEmpty, "with no dimensions: a scalar")
    XCTAssertEqual(t.all(8).map { String(decoding: $0, as: UTF8.self) }, ["**lr** = 1e-3 — ü"])
  }

  // A scalar 0 at step 0 must still carry its value field (proto3 would drop a plain 0 field;
  // the oneof keeps it), or TensorBoard would not see a scalar at all.
  func testZeroScalarIsStillEncoded() throws {
    let writer = try EventWriter(directory: tempDir)
    try writer.scalar("z", 0, step: 0, wallTime: 0)
    writer.close()
    let records = readRecords([UInt8](try Data(contentsOf: URL(fileURLWithPath: writer.path))))
    XCTAssertEqual(records.count, 2)
    let event = DecodedEvent(records[1])
    XCTAssertTrue(event.values.first?.has(2) ?? false, "no simple_value")
    XCTAssertEqual(event.values.first?.float(2), 0)
  }

  func testTwoWritersInOneDirectoryGetDistinctFiles() throws {
    let a = try EventWriter(directory: tempDir)
    let b = try EventWriter(directory: tempDir)
    XCTAssertNotEqual(a.path, b.path)
    a.close()
    b.close()
  }

  func testErrorsNameTheFile() throws {
    try FileManager.default.createDirectory(atPath: tempDir, withIntermediateDirectories: true)
    let blocker = tempDir + "/not-a-dir"
    XCTAssertTrue(FileManager.default.createFile(atPath: blocker, contents: Data()))
    XCTAssertThrowsError(try EventWriter(directory: blocker + "/logs")) { error in
      let text = "\(error)"
      XCTAssertTrue(error is EventWriterError)
      XCTAssertTrue(text.contains(blocker), text)
      XCTAssertTrue(text.contains("create directory"), text)
    }
    XCTAssertThrowsError(try EventWriter(directory: blocker)) { error in
      XCTAssertTrue("\(error)".contains("not a directory"), "\(error)")
    }
    let writer = try EventWriter(directory: tempDir)
    XCTAssertThrowsError(try writer.image("x", png: [], width: 0, height: 1, step: 0)) { error in
      XCTAssertTrue("\(error)".contains(writer.path), "\(error)")
    }
  }
}

extension TensorBoardLogTests {
  /// A SessionLog START (event field 7, status 1) at the step given.
  func testSessionStart() throws {
    let writer = try EventWriter(directory: tempDir)
    try writer.sessionStart(step: 17)
    writer.close()
    let records = readRecords([UInt8](try Data(contentsOf: URL(fileURLWithPath: writer.path))))
    let event = DecodedEvent(records[1])
    XCTAssertEqual(event.step, 17)
    XCTAssertEqual(event.fields.message(7).number(1), 1)
  }

  /// One scalar event, byte for byte as the protobuf encoding rules give it (worked by hand).
  func testScalarEventBytes() throws {
    let writer = try EventWriter(directory: tempDir)
    try writer.scalar("a", 1, step: 150, wallTime: 0.5)
    writer.close()
    let records = readRecords([UInt8](try Data(contentsOf: URL(fileURLWithPath: writer.path))))
    let value: [UInt8] = [0x0A, 0x01, 0x61, 0x15, 0x00, 0x00, 0x80, 0x3F]  // tag "a", simple_value 1.0f
    let summary: [UInt8] = [0x0A, UInt8(value.count)] + value  // repeated Value value = 1
    let expected: [UInt8] =
      [0x09, 0, 0, 0, 0, 0, 0, 0xE0, 0x3F]  // wall_time 0.5 (double, field 1)
      + [0x10, 0x96, 0x01]  // step 150 (varint, field 2)
      + [0x2A, UInt8(summary.count)] + summary  // summary (field 5)
    XCTAssertEqual(records[1], expected)
  }
}
