import Foundation
import XCTest

/// Runs the built `vae-dist` binary (VAE_DIST_BINARY, set by launch/test.sh) as a user would.
enum Harness {
  static var binary: String? {
    ProcessInfo.processInfo.environment["VAE_DIST_BINARY"].flatMap {
      FileManager.default.isExecutableFile(atPath: $0) ? $0 : nil
    }
  }

  static func requireBinary() throws -> String {
    guard let binary else {
      throw XCTSkip("VAE_DIST_BINARY is not set to a built vae-dist; run the tests through launch/test.sh")
    }
    return binary
  }

  static let realData = "/usr/share/datasets/fashion-mnist"

  static func requireRealData() throws {
    guard FileManager.default.fileExists(atPath: realData + "/train-images-idx3-ubyte.gz") else {
      throw XCTSkip("Fashion-MNIST is not installed (apt-get install dataset-fashion-mnist)")
    }
  }

  /// The first `train` and `test` images of the real Fashion-MNIST as plain IDX files in a directory
  /// of their own: real data, with epochs short enough for many runs. Made once and kept for later
  /// test runs (a directory renamed into place whole, so a run never sees half of one).
  static func smallRealDataset(train: Int = 3000, test: Int = 500) throws -> String {
    try requireRealData()
    let final = NSTemporaryDirectory() + "vae-dist-small-\(train)-\(test)"
    if FileManager.default.fileExists(atPath: final + "/done") { return final }
    let directory = final + ".building-\(getpid())"
    try? FileManager.default.removeItem(atPath: directory)
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    for (prefix, count) in [("train", train), ("t10k", test)] {
      for (kind, header, itemSize) in [("images-idx3-ubyte", 16, 784), ("labels-idx1-ubyte", 8, 1)] {
        let name = "\(prefix)-\(kind)"
        let unzipped = try run("/bin/zcat", ["\(realData)/\(name).gz"])
        var bytes = [UInt8](unzipped.outputData.prefix(header + count * itemSize))
        bytes.replaceSubrange(4..<8, with: [UInt8(count >> 24 & 0xff), UInt8(count >> 16 & 0xff), UInt8(count >> 8 & 0xff), UInt8(count & 0xff)])
        try Data(bytes).write(to: URL(fileURLWithPath: "\(directory)/\(name)"))
      }
    }
    try Data().write(to: URL(fileURLWithPath: directory + "/done"))
    if rename(directory, final) != 0 {  // another test process made it first (or left an old one)
      try? FileManager.default.removeItem(atPath: FileManager.default.fileExists(atPath: final + "/done") ? directory : final)
      if !FileManager.default.fileExists(atPath: final + "/done") { _ = rename(directory, final) }
    }
    return final
  }

  struct Result {
    var status: Int32
    var output: String
    var error: String
    var seconds: Double
    var outputData = Data()
    var all: String { output + error }
  }

  /// Runs a command to completion (or kills it after `timeout` seconds and fails).
  @discardableResult
  static func run(
    _ executable: String, _ arguments: [String], timeout: Double = 600, environment extra: [String: String] = [:],
    onStart: ((Process) -> Void)? = nil, file: StaticString = #filePath, line: UInt = #line
  ) throws -> Result {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    var environment = ProcessInfo.processInfo.environment
    environment["OMPI_ALLOW_RUN_AS_ROOT"] = "1"
    environment["OMPI_ALLOW_RUN_AS_ROOT_CONFIRM"] = "1"
    environment.merge(extra) { $1 }
    process.environment = environment
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    let outData = DataBox(), errData = DataBox()
    out.fileHandleForReading.readabilityHandler = { outData.append($0.availableData) }
    err.fileHandleForReading.readabilityHandler = { errData.append($0.availableData) }
    let start = Date()
    try process.run()
    onStart?(process)
    let deadline = Date().addingTimeInterval(timeout)
    while process.isRunning && Date() < deadline { usleep(20_000) }
    if process.isRunning {
      process.terminate()
      XCTFail("\(executable) \(arguments.joined(separator: " ")) did not finish in \(timeout) s", file: file, line: line)
      process.waitUntilExit()
    }
    process.waitUntilExit()
    out.fileHandleForReading.readabilityHandler = nil
    err.fileHandleForReading.readabilityHandler = nil
    outData.append(out.fileHandleForReading.readDataToEndOfFile())
    errData.append(err.fileHandleForReading.readDataToEndOfFile())
    return Result(
      status: process.terminationStatus, output: outData.string, error: errData.string,
      seconds: Date().timeIntervalSince(start), outputData: outData.data)
  }

  static func vaeDist(_ arguments: [String], timeout: Double = 600, file: StaticString = #filePath, line: UInt = #line) throws -> Result {
    try run(try requireBinary(), arguments, timeout: timeout, file: file, line: line)
  }

  /// Skips the test unless python3 imports `modules` (launch/setup.sh --test installs them); under
  /// the test command (VAE_DIST_REQUIRE_TORCH=1) a missing module fails it instead.
  static func requirePython(_ modules: String, what: String, file: StaticString = #filePath, line: UInt = #line) throws {
    let probe = try run("/usr/bin/env", ["python3", "-c", "import \(modules)"], timeout: 120)
    guard probe.status != 0 else { return }
    if ProcessInfo.processInfo.environment["VAE_DIST_REQUIRE_TORCH"] == "1" {
      XCTFail("\(what) is not importable, though launch/setup.sh --test installs it: \(probe.error)", file: file, line: line)
    }
    throw XCTSkip("\(what) is not installed (launch/setup.sh --test installs it)")
  }

  static var mpirun: String { "/usr/bin/mpirun" }

  /// The arguments that start `ranks` ranks of vae-dist on this machine (as launch/mpirun-local.sh).
  static func mpirunArguments(ranks: Int, _ arguments: [String]) throws -> [String] {
    ["-n", "\(ranks)", "--oversubscribe", "--bind-to", "none", "-x", "OPENBLAS_NUM_THREADS=1", try requireBinary()] + arguments
  }

  /// Removes `path` and the `path.previous-N` siblings vae-dist moves an earlier run's --out to.
  static func removeDirectory(_ path: String) {
    let url = URL(fileURLWithPath: path)
    let siblings = (try? FileManager.default.contentsOfDirectory(atPath: url.deletingLastPathComponent().path)) ?? []
    for name in siblings where name == url.lastPathComponent || name.hasPrefix(url.lastPathComponent + ".previous-") {
      try? FileManager.default.removeItem(at: url.deletingLastPathComponent().appendingPathComponent(name))
    }
  }

  static func temporaryDirectory() -> String {
    let path = NSTemporaryDirectory() + "vae-dist-e2e-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
  }

  /// The lines of DIR/metrics.jsonl as dictionaries.
  static func metrics(_ directory: String) throws -> [[String: Any]] {
    let text = try String(contentsOfFile: directory + "/metrics.jsonl", encoding: .utf8)
    return try text.split(separator: "\n").map {
      try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any]
    }
  }

  /// A safetensors file parsed independently of vae-dist's reader: header JSON and raw data bytes.
  static func safetensors(_ path: String) throws -> (header: [String: Any], data: Data) {
    let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
    let length = bytes.prefix(8).reversed().reduce(0) { $0 << 8 | Int($1) }
    let header = try JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<(8 + length))) as! [String: Any]
    return (header, bytes.subdata(in: (8 + length)..<bytes.count))
  }
}

final class DataBox: @unchecked Sendable {
  private var bytes = Data()
  private let lock = NSLock()
  func append(_ more: Data) { lock.withLock { bytes.append(more) } }
  var string: String { lock.withLock { String(decoding: bytes, as: UTF8.self) } }
  var data: Data { lock.withLock { bytes } }
}

extension XCTestCase {
  /// A new directory for this test's files (Harness.temporaryDirectory), removed when the test ends
  /// if it passed; a failed test's directory is kept, and its path printed, for a look at what the run
  /// left there.
  func temporaryDirectory() -> String {
    let path = Harness.temporaryDirectory()
    addTeardownBlock { [unowned self] in
      if self.testRun?.totalFailureCount == 0 {
        Harness.removeDirectory(path)
      } else {
        print("\(self.name): kept \(path)")
      }
    }
    return path
  }
}
