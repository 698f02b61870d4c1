import Foundation
import VAECore
import VAEData
import VAEDistributed
import VAETraining
import XCTest

/// What names a run's data: the CRC-32 of each IDX file as it reads uncompressed, so a gzip copy and
/// a plain one are the same data to the ranks' comparison and to --resume, while one changed label
/// is not; and runs recorded in the earlier form (the CRC-32 of the file as stored) still resume.
final class DataIdentityTests: XCTestCase {
  var root = ""
  override func setUp() {
    root = NSTemporaryDirectory() + "vae-dist-data-identity-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
  }
  override func tearDown() { try? FileManager.default.removeItem(atPath: root) }

  /// Big-endian IDX bytes: 64 training and 16 test images whose pixels depend on the index (XOR
  /// `flip`), and their labels (shifted by `labelOffset`).
  static func idx(_ split: String, images: Bool, labelOffset: Int = 0, flip: UInt8 = 0) -> [UInt8] {
    let count = split == "train" ? 64 : 16
    func word(_ v: Int) -> [UInt8] { [UInt8(v >> 24 & 255), UInt8(v >> 16 & 255), UInt8(v >> 8 & 255), UInt8(v & 255)] }
    if !images {
      let labels: [UInt8] = (0..<count).map { UInt8(($0 + labelOffset) % 10) }
      return [0, 0, 8, 1] + word(count) + labels
    }
    let pixels: [UInt8] = (0..<count * 784).map { (i: Int) -> UInt8 in
      let value: Int = (i * 7 + (i / 784) * 13) % 251
      return UInt8(value) ^ flip
    }
    let header: [UInt8] = [0, 0, 8, 3] + word(count) + word(28) + word(28)
    return header + pixels
  }

  /// A data directory: plain files, or gzip-compressed ones.
  func dataset(_ name: String, gzip: Bool, labelOffset: Int = 0, flip: UInt8 = 0) throws -> String {
    let directory = root + "/" + name
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    for split in ["train", "t10k"] {
      for images in [true, false] {
        let path = "\(directory)/\(split)-\(images ? "images-idx3" : "labels-idx1")-ubyte"
        try Data(Self.idx(split, images: images, labelOffset: labelOffset, flip: flip)).write(to: URL(fileURLWithPath: path))
        if gzip { try compress(path) }
      }
    }
    return directory
  }

  /// Replaces `path` by `path.gz`, compressed by /bin/gzip (not by the code under test).
  func compress(_ path: String) throws {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/bin/gzip")
    process.arguments = ["-n", path]
    try process.run()
    process.waitUntilExit()
    XCTAssertEqual(process.terminationStatus, 0, path)
  }

  /// CRC-32 (zlib's), a bit at a time: written here independently of the code under test.
  static func crc32(_ bytes: [UInt8]) -> UInt32 {
    var crc: UInt32 = 0xffff_ffff
    for byte in bytes {
      crc ^= UInt32(byte)
      for _ in 0..<8 { crc = crc & 1 == 1 ? crc >> 1 ^ 0xedb8_8320 : crc >> 1 }
    }
    return ~crc
  }

  func configuration(data: String, out: String) -> TrainingConfiguration {
    var c = Fixtures.smallRun()
    c.syntheticData = false
    c.dataDirectory = data
    c.epochs = 10
    c.maxSteps = 2
    c.outputDirectory = out
    c.progress = .none
    c.checkpointEvery = 2
    c.iwSamples = 0
    return c
  }

  /// Trains `c` on as many ranks as there are data directories, rank r reading `data[r]`.
  func train(_ c: TrainingConfiguration, data: [String], start: RunStart = .fresh) -> [RunFailure?] {
    InProcessGroup(size: data.count).run { communicator -> RunFailure? in
      var c = c
      c.dataDirectory = data[communicator.rank]
      do {
        _ = try Trainer(configuration: c, communicator: communicator, start: start).run()
        return nil
      } catch {
        return (error as? RunFailure) ?? RunFailure(error, rank: communicator.rank)
      }
    }
  }

  func testGzipAndPlainFilesHaveTheCRCOfTheirContents() throws {
    let plain = try dataset("plain", gzip: false), packed = try dataset("gzip", gzip: true)
    for (file, rank, bytes) in [("train-images-idx3-ubyte", 3, Self.idx("train", images: true)),
                                ("t10k-labels-idx1-ubyte", 1, Self.idx("t10k", images: false))] {
      let expected = Self.crc32(bytes)
      XCTAssertEqual(try IDXFile.contentCRC32(path: "\(plain)/\(file)", rank: rank), expected, file)
      XCTAssertEqual(try IDXFile.contentCRC32(path: "\(packed)/\(file).gz", rank: rank), expected, file)
    }
    // Two gzip members: the trailer covers only the second, so the file is read through.
    let path = packed + "/train-images-idx3-ubyte.gz", bytes = Self.idx("train", images: true)
    let whole = try Data(contentsOf: URL(fileURLWithPath: path))
    try Data(bytes.prefix(1000)).write(to: URL(fileURLWithPath: root + "/head"))
    try Data(bytes.dropFirst(1000)).write(to: URL(fileURLWithPath: root + "/tail"))
    for part in ["head", "tail"] { try compress(root + "/" + part) }
    let members = try Data(contentsOf: URL(fileURLWithPath: root + "/head.gz")) + Data(contentsOf: URL(fileURLWithPath: root + "/tail.gz"))
    XCTAssertNotEqual(members, whole)
    try members.write(to: URL(fileURLWithPath: path))
    XCTAssertEqual(try IDXFile.contentCRC32(path: path, rank: 3), Self.crc32(bytes))
  }

  /// Ranks reading a gzip copy and a plain copy train together; a rank whose labels differ in one
  /// place makes every rank refuse, naming the labels.
  func testRanksCompareContentsNotStorage() throws {
    let plain = try dataset("plain", gzip: false), packed = try dataset("gzip", gzip: true)
    let relabelled = try dataset("relabelled", gzip: true, labelOffset: 1)
    let c = configuration(data: plain, out: root + "/run")
    XCTAssertEqual(train(c, data: [plain, packed]).map { $0?.message }, [nil, nil])
    let c2 = configuration(data: plain, out: root + "/run2")
    for (rank, failure) in train(c2, data: [packed, relabelled]).enumerated() {
      XCTAssertEqual(failure?.kind, .data, "rank \(rank)")
      XCTAssertTrue(failure?.message.contains("has labels' CRC-32") ?? false, failure?.message ?? "rank \(rank) trained")
    }
  }

  /// --resume accepts the same data stored the other way, and a run whose record holds the earlier
  /// form of the fingerprint (the CRC-32 of the gzip file itself); it refuses other data.
  func testResumeAcceptsTheSameDataStoredAnotherWayAndTheEarlierFingerprint() throws {
    let plain = try dataset("plain", gzip: false), packed = try dataset("gzip", gzip: true)
    let other = try dataset("other", gzip: false, flip: 1)
    let out = root + "/run"
    var c = configuration(data: packed, out: out)
    XCTAssertNil(train(c, data: [packed])[0])
    c.maxSteps = 4
    XCTAssertNil(train(c, data: [plain], start: .resume)[0], "a plain copy of the same data resumes")
    c.maxSteps = 6
    let refused = train(c, data: [other], start: .resume)[0]
    XCTAssertTrue(refused?.message.contains("different data") ?? false, refused?.message ?? "resumed on other images")

    // The run's record and its newest checkpoint in the earlier form: the CRC-32 of the gzip file.
    let stored = Self.crc32(Array(try Data(contentsOf: URL(fileURLWithPath: packed + "/train-images-idx3-ubyte.gz"))))
    XCTAssertNotEqual(stored, Self.crc32(Self.idx("train", images: true)))
    let earlier = DataFingerprint(trainImages: 64, trainFileCRC32: stored)
    let record = out + "/run.json"
    var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: record))) as! [String: Any]
    var data = json["data"] as! [String: Any]
    data["trainFileCRC32"] = stored
    json["data"] = data
    try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: record))
    let store = CheckpointStore(outputDirectory: out, keep: 10)
    let newest = try XCTUnwrap(try store.newestComplete(warn: { XCTFail($0) }))
    try FileManager.default.removeItem(atPath: newest.path)
    try store.write(
      parameters: newest.parameters, firstMoment: newest.firstMoment, secondMoment: newest.secondMoment,
      layout: newest.layout, state: newest.state, configuration: newest.configuration, data: earlier)
    XCTAssertNil(train(c, data: [packed], start: .resume)[0], "the earlier fingerprint of the same gzip file resumes")
    let resumed = try XCTUnwrap(try store.newestComplete(warn: { XCTFail($0) }))
    XCTAssertEqual(resumed.state.step, 6)
    XCTAssertEqual(resumed.data, DataFingerprint(trainImages: 64, trainFileCRC32: Self.crc32(Self.idx("train", images: true))))
  }
}
