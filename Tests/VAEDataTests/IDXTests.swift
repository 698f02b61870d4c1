import Foundation
import VAEData
import XCTest
import _CZlib

/// Writes IDX files by hand (header bytes written out here, not by the code under test).
enum IDXWriter {
  static func header(rank: UInt8, dimensions: [Int], type: UInt8 = 0x08) -> [UInt8] {
    var bytes: [UInt8] = [0, 0, type, rank]
    for d in dimensions { bytes += [UInt8(d >> 24 & 0xff), UInt8(d >> 16 & 0xff), UInt8(d >> 8 & 0xff), UInt8(d & 0xff)] }
    return bytes
  }

  static func write(_ bytes: [UInt8], to path: String, gzip: Bool) {
    if gzip {
      let file = gzopen(path, "wb")!
      _ = bytes.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
      gzclose(file)
    } else {
      _ = FileManager.default.createFile(atPath: path, contents: Data(bytes))
    }
  }

  /// A Fashion-MNIST-shaped directory with `count` images whose pixels encode their index.
  static func dataset(in directory: String, train: Int, test: Int, gzip: Bool = true) {
    for (prefix, count) in [("train", train), ("t10k", test)] {
      let suffix = gzip ? ".gz" : ""
      var images = header(rank: 3, dimensions: [count, 28, 28])
      for i in 0..<count { images += (0..<784).map { UInt8(($0 + i) % 256) } }
      write(images, to: "\(directory)/\(prefix)-images-idx3-ubyte\(suffix)", gzip: gzip)
      write(header(rank: 1, dimensions: [count]) + (0..<count).map { UInt8($0 % 10) },
            to: "\(directory)/\(prefix)-labels-idx1-ubyte\(suffix)", gzip: gzip)
    }
  }
}

func temporaryDirectory() -> String {
  let path = NSTemporaryDirectory() + "vae-dist-tests-" + UUID().uuidString
  try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
  return path
}

final class IDXTests: XCTestCase {
  var directory = ""
  override func setUp() { directory = temporaryDirectory() }
  override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

  func testRoundTripPlainAndGzip() throws {
    for gzip in [false, true] {
      let sub = directory + "/\(gzip)"
      try FileManager.default.createDirectory(atPath: sub, withIntermediateDirectories: true)
      IDXWriter.dataset(in: sub, train: 12, test: 5, gzip: gzip)
      let train = try FashionMNIST.load(directory: sub, split: .train)
      XCTAssertEqual(train.count, 12)
      XCTAssertEqual(train.fileCount, 12)
      XCTAssertEqual(train.labels, (0..<12).map { UInt8($0 % 10) })
      XCTAssertEqual(train.pixels[7 * 784 + 3], UInt8(10))
      let test = try FashionMNIST.load(directory: sub, split: .test)
      XCTAssertEqual(test.count, 5)
    }
  }

  func testKeepsOnlyTheShard() throws {
    IDXWriter.dataset(in: directory, train: 20, test: 2)
    let shard = try FashionMNIST.load(directory: directory, split: .train, keep: { $0 % 3 == 1 })
    XCTAssertEqual(shard.fileIndices, [1, 4, 7, 10, 13, 16, 19])
    XCTAssertEqual(shard.pixels.count, 7 * 784)
    XCTAssertEqual(shard.labels, [1, 4, 7, 0, 3, 6, 9])
    let store = ImageStore(shard)
    var row = [Float](repeating: 0, count: 784)
    store.fill(&row, fileIndices: [13])
    XCTAssertEqual(row[0], 13 / 255)
    XCTAssertEqual(row[5], 18 / 255)
    XCTAssertFalse(store.contains(fileIndex: 2))
  }

  func expectError(_ bytes: [UInt8], gzip: Bool = false, rank: Int = 3, contains text: String,
                   file: StaticString = #filePath, line: UInt = #line) {
    let path = directory + "/bad-\(UUID().uuidString)"
    IDXWriter.write(bytes, to: path, gzip: gzip)
    XCTAssertThrowsError(try IDXFile.read(path: path, rank: rank), file: file, line: line) { error in
      let message = "\(error)"
      XCTAssertTrue(message.contains(path), "error names the file: \(message)", file: file, line: line)
      XCTAssertTrue(message.contains(text), "expected '\(text)' in: \(message)", file: file, line: line)
    }
  }

  func testCorruptFilesAreRejectedWithTheReason() throws {
    let good = IDXWriter.header(rank: 3, dimensions: [2, 28, 28]) + [UInt8](repeating: 7, count: 2 * 784)
    expectError([0, 0, 8], contains: "too short")
    expectError([1, 2, 8, 3] + good.dropFirst(4), contains: "not an IDX file")
    expectError(IDXWriter.header(rank: 3, dimensions: [2, 28, 28], type: 0x0D) + good.dropFirst(16), contains: "type 0xd")
    expectError(good, rank: 1, contains: "has 3 dimensions")
    expectError(Array(good.prefix(10)), contains: "ends inside its IDX header")
    expectError(Array(good.dropLast(5)), contains: "truncated")
    expectError(Array(good.dropLast(5)), gzip: true, contains: "truncated")
    expectError(good + [1, 2, 3], contains: "data after")
    expectError(IDXWriter.header(rank: 3, dimensions: [2, 0, 28]) + good.dropFirst(16), contains: "empty dimension")
    expectError(IDXWriter.header(rank: 3, dimensions: [0x7fff_ffff, 28, 28]), contains: "implausible size")
    expectError(IDXWriter.header(rank: 3, dimensions: [10, 4096, 4096]), contains: "implausible size")
    expectError(IDXWriter.header(rank: 3, dimensions: [IDXFile.maximumItems + 1, 28, 28]), contains: "implausible size")
  }

  func testCorruptGzipIsRejected() throws {
    let good = IDXWriter.header(rank: 3, dimensions: [4, 28, 28]) + (0..<(4 * 784)).map { UInt8($0 % 251) }
    let path = directory + "/good.gz"
    IDXWriter.write(good, to: path, gzip: true)
    var compressed = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    // A cut inside the deflate stream.
    let cutPath = directory + "/cut.gz"
    _ = FileManager.default.createFile(atPath: cutPath, contents: Data(compressed.prefix(compressed.count / 2)))
    XCTAssertThrowsError(try IDXFile.read(path: cutPath, rank: 3)) { XCTAssertTrue("\($0)".contains(cutPath)) }
    // A damaged CRC in the trailer.
    compressed[compressed.count - 6] ^= 0xff
    let crcPath = directory + "/crc.gz"
    _ = FileManager.default.createFile(atPath: crcPath, contents: Data(compressed))
    XCTAssertThrowsError(try IDXFile.read(path: crcPath, rank: 3)) { error in
      XCTAssertTrue("\(error)".contains("corrupt"), "\(error)")
    }
  }

  func testDatasetLevelChecks() throws {
    // Missing directory and missing files name what to do.
    XCTAssertThrowsError(try FashionMNIST.load(directory: directory + "/nope", split: .train)) { error in
      XCTAssertTrue("\(error)".contains("--data"), "\(error)")
    }
    XCTAssertThrowsError(try FashionMNIST.load(directory: directory, split: .train)) { error in
      XCTAssertTrue("\(error)".contains("train-images-idx3-ubyte"), "\(error)")
    }
    // Image and label counts disagree.
    IDXWriter.dataset(in: directory, train: 6, test: 2, gzip: false)
    IDXWriter.write(IDXWriter.header(rank: 1, dimensions: [5]) + [0, 1, 2, 3, 4],
                    to: directory + "/train-labels-idx1-ubyte", gzip: false)
    XCTAssertThrowsError(try FashionMNIST.load(directory: directory, split: .train)) { error in
      XCTAssertTrue("\(error)".contains("holds 6 images but"), "\(error)")
    }
    // Labels outside 0…9.
    IDXWriter.write(IDXWriter.header(rank: 1, dimensions: [6]) + [0, 1, 2, 12, 4, 5],
                    to: directory + "/train-labels-idx1-ubyte", gzip: false)
    XCTAssertThrowsError(try FashionMNIST.load(directory: directory, split: .train)) { error in
      XCTAssertTrue("\(error)".contains("label 12 of item 3"), "\(error)")
    }
    // Images of the wrong size.
    IDXWriter.write(IDXWriter.header(rank: 3, dimensions: [1, 32, 32]) + [UInt8](repeating: 0, count: 1024),
                    to: directory + "/t10k-images-idx3-ubyte", gzip: false)
    XCTAssertThrowsError(try FashionMNIST.load(directory: directory, split: .test)) { error in
      XCTAssertTrue("\(error)".contains("32×32"), "\(error)")
    }
    // Millions of items of another shape, and no data: refused for the shape, before any data is read
    // (gzip can stand for gigabytes in megabytes; a later check found it only after reading them all).
    IDXWriter.write(IDXWriter.header(rank: 3, dimensions: [4_000_000, 28, 27]), to: directory + "/t10k-images-idx3-ubyte", gzip: true)
    XCTAssertThrowsError(try FashionMNIST.load(directory: directory, split: .test)) { error in
      XCTAssertTrue("\(error)".contains("holds items of shape 28×27; expected 28×28"), "\(error)")
    }
  }
}

final class BatchScheduleTests: XCTestCase {
  func testEveryImageOnceAnEpochAndTheLastStepIsPartial() {
    let schedule = BatchSchedule(examples: Array(0..<60_000), batchSize: 128, microBatchSize: 16, seed: 3)
    XCTAssertEqual(schedule.streamCount, 8)
    XCTAssertEqual(schedule.stepsPerEpoch, 469)
    XCTAssertEqual(schedule.imagesInStep(0), 128)
    XCTAssertEqual(schedule.imagesInStep(468), 96)
    for epoch in 0..<2 {
      var seen = [Int](repeating: 0, count: 60_000)
      for stream in 0..<8 {
        let order = schedule.order(stream: stream, epoch: epoch)
        for step in 0..<schedule.stepsPerEpoch {
          for i in schedule.microBatch(order: order, step: step) { seen[i] += 1 }
        }
      }
      XCTAssertTrue(seen.allSatisfy { $0 == 1 })
    }
    XCTAssertNotEqual(schedule.order(stream: 0, epoch: 0), schedule.order(stream: 0, epoch: 1))
  }

  func testShardsPartitionTheStreams() {
    let schedule = BatchSchedule(examples: Array(0..<1001), batchSize: 24, microBatchSize: 4, seed: 9)
    for ranks in 1...6 {
      let ranges = (0..<ranks).map { schedule.streamRange(rank: $0, of: ranks) }
      XCTAssertEqual(ranges.map(\.count).reduce(0, +), 6)
      XCTAssertEqual(ranges.first?.lowerBound, 0)
      for (a, b) in zip(ranges, ranges.dropFirst()) { XCTAssertEqual(a.upperBound, b.lowerBound) }
      let shards = ranges.map { schedule.examples(inStreams: $0) }
      XCTAssertEqual(shards.map(\.count).reduce(0, +), 1001)
      XCTAssertEqual(shards.reduce(Set<Int>()) { $0.union($1) }.count, 1001)
    }
    // Stream sizes differ by at most one; the uneven last step still covers everything.
    XCTAssertLessThanOrEqual(schedule.streams.map(\.count).max()! - schedule.streams.map(\.count).min()!, 1)
    XCTAssertEqual((0..<schedule.stepsPerEpoch).map(schedule.imagesInStep).reduce(0, +), 1001)
  }

  func testSameSeedSameOrder() {
    let a = BatchSchedule(examples: Array(0..<500), batchSize: 20, microBatchSize: 5, seed: 1)
    let b = BatchSchedule(examples: Array(0..<500), batchSize: 20, microBatchSize: 5, seed: 1)
    let c = BatchSchedule(examples: Array(0..<500), batchSize: 20, microBatchSize: 5, seed: 2)
    XCTAssertEqual(a.streams, b.streams)
    XCTAssertEqual(a.order(stream: 2, epoch: 4), b.order(stream: 2, epoch: 4))
    XCTAssertNotEqual(a.streams, c.streams)
  }
}
