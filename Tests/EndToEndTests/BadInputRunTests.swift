import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// Inputs a review found mishandled (2026-12-03), each now a clear error or a right result: outputs
/// that are not files or are the command's own input, a fifo among the data, plot inputs with
/// nothing drawable, CRLF lines or long names, an update that overflows, and a hold-out that leaves
/// nothing to train on given with --overwrite.
final class BadInputRunTests: XCTestCase {
  /// A model of 2 steps on the small real set, trained once for the tests that need one.
  static let trained: (data: String, model: String)? = {
    guard let data = try? Harness.smallRealDataset() else { return nil }
    let out = Harness.temporaryDirectory()
    let run = try? Harness.vaeDist(["--data", data, "--max-steps", "2", "--out", out, "--progress", "none", "--iw-samples", "0"])
    return run?.status == 0 ? (data, out + "/model.safetensors") : nil
  }()

  func model() throws -> (data: String, model: String) {
    try Harness.requireRealData()
    return try XCTUnwrap(Self.trained, "training the model for these tests failed")
  }

  func isFifo(_ path: String) -> Bool {
    var info = stat()
    return stat(path, &info) == 0 && info.st_mode & S_IFMT == S_IFIFO
  }

  func testOutputsThatAreNotFilesOrAreTheInputAreRefused() throws {
    let (_, model) = try model()
    let directory = temporaryDirectory(), fifo = directory + "/fifo"
    XCTAssertEqual(mkfifo(fifo, 0o600), 0)
    var result = try Harness.vaeDist(["sample", "--checkpoint", model, "--output", fifo], timeout: 30)
    XCTAssertNotEqual(result.status, 0, result.all)
    XCTAssertTrue(result.error.contains("\(fifo): exists and is not a regular file"), result.error)
    XCTAssertTrue(isFifo(fifo), "the fifo was replaced")

    let copy = directory + "/model.safetensors"
    try FileManager.default.copyItem(atPath: model, toPath: copy)
    let before = try Data(contentsOf: URL(fileURLWithPath: copy))
    result = try Harness.vaeDist(["sample", "--checkpoint", copy, "--output", directory + "/./model.safetensors"])
    XCTAssertEqual(result.status, 2, result.all)
    XCTAssertTrue(result.error.contains("is the --checkpoint file; the picture would replace it"), result.error)
    XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: copy)), before)

    let csv = directory + "/t.csv"
    try "a,b\n1,2\n2,3\n".write(toFile: csv, atomically: true, encoding: .utf8)
    result = try Harness.vaeDist(["plot-csv", "--csv", csv, "--x", "a", "--y", "b", "--output", csv])
    XCTAssertEqual(result.status, 2, result.all)
    XCTAssertTrue(result.error.contains("is the --csv file"), result.error)
  }

  func testPlotsOfCRLFFilesLongNamesAndNothingDrawable() throws {
    let directory = temporaryDirectory(), csv = directory + "/t.csv", png = directory + "/t.png"
    let long = String(repeating: "throughput_", count: 20)
    try "a,b,\(long)\r\n1,2,5\r\n2,3,6\r\n".write(toFile: csv, atomically: true, encoding: .utf8)
    var result = try Harness.vaeDist(["plot-csv", "--csv", csv, "--x", "a", "--y", "b,\(long)", "--output", png])
    XCTAssertEqual(result.status, 0, result.all)
    XCTAssertTrue(result.output.contains("(960×680)"), result.output)
    try "a,b\n1,nan\n2,inf\n".write(toFile: csv, atomically: true, encoding: .utf8)
    result = try Harness.vaeDist(["plot-csv", "--csv", csv, "--x", "a", "--y", "b", "--output", png])
    XCTAssertEqual(result.status, 2, result.all)
    XCTAssertTrue(result.error.contains("nothing to plot"), result.error)
    // A record cut short is named by its line (CRLF lines count as lines).
    let metrics = directory + "/metrics.jsonl"
    try "{\"epoch\":1,\"train_loss\":300.5}\r\n{\"epoch\": 2, \"train_lo".write(toFile: metrics, atomically: true, encoding: .utf8)
    result = try Harness.vaeDist(["plot-metrics", "--metrics", metrics, "--output", png])
    XCTAssertEqual(result.status, 4, result.all)
    XCTAssertTrue(result.error.contains("metrics.jsonl: line 2 is not an epoch's record"), result.error)
  }

  /// A test set without `--pairs` images of every class: the picture has one pair of rows of what
  /// there is, and the command says so (it drew fewer rows without a word). A metrics line with
  /// `true` for a loss is not a record (it was drawn as the loss 1).
  func testFewerRowsThanAskedAndABooleanLossAreSaid() throws {
    let (_, model) = try model()
    let small = try Harness.smallRealDataset(train: 100, test: 12)
    let png = temporaryDirectory() + "/r.png"
    var result = try Harness.vaeDist(["reconstruct", "--checkpoint", model, "--data", small, "--output", png])
    XCTAssertEqual(result.status, 0, result.all)
    XCTAssertTrue(result.error.contains("the test set (12 images) does not hold 3 of each of the 10 classes; drawing one pair of rows of"), result.error)
    let metrics = temporaryDirectory() + "/metrics.jsonl"
    try "{\"epoch\":1,\"step\":24,\"train_loss\":300.5}\n{\"epoch\":2,\"step\":48,\"train_loss\":true}\n".write(toFile: metrics, atomically: true, encoding: .utf8)
    result = try Harness.vaeDist(["plot-metrics", "--metrics", metrics, "--output", png])
    XCTAssertEqual(result.status, 4, result.all)
    XCTAssertTrue(result.error.contains("metrics.jsonl: line 2 is not an epoch's record"), result.error)
  }

  func testAFifoAmongTheDataIsRefusedNotWaitedOn() throws {
    let (data, model) = try model()
    let directory = temporaryDirectory()
    for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-labels-idx1-ubyte"] {
      try FileManager.default.copyItem(atPath: data + "/" + name, toPath: directory + "/" + name)
    }
    XCTAssertEqual(mkfifo(directory + "/t10k-images-idx3-ubyte", 0o600), 0)
    let result = try Harness.vaeDist(["evaluate", "--checkpoint", model, "--data", directory, "--iw-samples", "0"], timeout: 30)
    XCTAssertEqual(result.status, 4, result.all)
    XCTAssertTrue(result.error.contains("t10k-images-idx3-ubyte: cannot be read: not a regular file"), result.error)
    XCTAssertLessThan(result.seconds, 10)
  }

  /// A rate Float can hold (an --lr past its range is refused up front) that throws the parameters
  /// to the edge of it: the next step's gradient is not finite, and the run stops there (status 6),
  /// the step not applied.
  func testAnUpdateThatOverflowsIsANonFiniteFailure() throws {
    let (data, _) = try model()
    let out = temporaryDirectory()
    let result = try Harness.vaeDist(["--data", data, "--lr", "3e38", "--max-steps", "3", "--out", out, "--progress", "none", "--iw-samples", "0"])
    XCTAssertEqual(result.status, 6, result.all)
    XCTAssertTrue(result.error.contains("became NaN or infinite at step 2; the step was not applied"), result.error)
  }

  /// A file where the run writes a folder is refused before any step (the run trained to its end and
  /// then failed writing the pictures), and a resume says when it leaves lines of metrics.jsonl out.
  func testAFileInPlaceOfAFolderAndAnUnreadableMetricsLineAreSaidAtTheStart() throws {
    let (data, _) = try model()
    let out = temporaryDirectory()
    let common = ["--data", data, "--out", out, "--progress", "none", "--iw-samples", "0", "--tensorboard", "none"]
    XCTAssertEqual(try Harness.vaeDist(common + ["--max-steps", "2"]).status, 0)
    try FileManager.default.removeItem(atPath: out + "/images")
    _ = FileManager.default.createFile(atPath: out + "/images", contents: Data("not a folder".utf8))
    let refused = try Harness.vaeDist(common + ["--max-steps", "4", "--resume"])
    XCTAssertEqual(refused.status, 5, refused.all)
    XCTAssertTrue(refused.error.contains("\(out)/images is not a folder, and the run writes one there"), refused.error)
    XCTAssertFalse(refused.output.contains("resumed"), "it started before refusing: \(refused.output)")
    try FileManager.default.removeItem(atPath: out + "/images")
    let metrics = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8)
    try ("{\"torn\": \n" + metrics).write(toFile: out + "/metrics.jsonl", atomically: true, encoding: .utf8)
    let resumed = try Harness.vaeDist(common + ["--max-steps", "4", "--resume"])
    XCTAssertEqual(resumed.status, 0, resumed.all)
    XCTAssertTrue(resumed.output.contains("left out 1 line that is not an epoch's record"), resumed.output)
    // --overwrite moves such a file aside with the earlier run, and is not refused for it.
    try FileManager.default.moveItem(atPath: out + "/images", toPath: out + "/images-kept")
    _ = FileManager.default.createFile(atPath: out + "/images", contents: Data("not a folder".utf8))
    let overwritten = try Harness.vaeDist(common + ["--max-steps", "1", "--overwrite"])
    XCTAssertEqual(overwritten.status, 0, overwritten.all)
    XCTAssertEqual(try String(contentsOfFile: out + ".previous-1/images", encoding: .utf8), "not a folder")
  }

  /// A model whose test loss overflows (finite weights, each × 1e18) is a failure after its figures,
  /// status 6: it printed "loss -nan" with status 0.
  func testEvaluatingADivergedModelFails() throws {
    let (data, model) = try model()
    let scaled = temporaryDirectory() + "/model.safetensors"
    let script = """
      import array, json, struct, sys
      b = open(sys.argv[1], 'rb').read(); n = struct.unpack('<Q', b[:8])[0]
      header = json.loads(b[8:8 + n]); data = bytearray(b[8 + n:])
      for name, t in header.items():
          if name == '__metadata__': continue
          lo, hi = t['data_offsets']; a = array.array('f'); a.frombytes(bytes(data[lo:hi]))
          data[lo:hi] = array.array('f', [x * 1e18 for x in a]).tobytes()
      open(sys.argv[2], 'wb').write(b[:8 + n] + bytes(data))
      """
    XCTAssertEqual(try Harness.run("/usr/bin/env", ["python3", "-c", script, model, scaled], timeout: 60).status, 0)
    let result = try Harness.vaeDist(["evaluate", "--checkpoint", scaled, "--data", data, "--iw-samples", "0"], timeout: 60)
    XCTAssertEqual(result.status, 6, result.all)
    XCTAssertTrue(result.output.contains("z sampled  loss"), result.output)
    XCTAssertTrue(result.error.contains("its test loss is not finite (NaN or infinite): a diverged model"), result.error)
  }

  func testOverwriteWithAHoldOutOfEverythingMovesNothing() throws {
    let (data, _) = try model()
    let out = temporaryDirectory()
    let common = ["--data", data, "--max-steps", "2", "--out", out, "--progress", "none", "--iw-samples", "0"]
    XCTAssertEqual(try Harness.vaeDist(common).status, 0)
    let result = try Harness.vaeDist(common + ["--overwrite", "--val-size", "3000"])
    XCTAssertEqual(result.status, 2, result.all)
    XCTAssertTrue(result.error.contains("--val-size 3000 leaves no training images"), result.error)
    XCTAssertFalse(FileManager.default.fileExists(atPath: out + ".previous-1"), "the earlier run was moved aside")
    XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
  }

  /// --out DIR/ and --out DIR/. name DIR itself: --overwrite moves it aside beside itself, to
  /// DIR.previous-N, not into itself (which rename refuses).
  func testOverwriteOfAnOutWrittenWithATrailingSlashOrADot() throws {
    let (data, _) = try model()
    let out = temporaryDirectory()
    let common = ["--data", data, "--max-steps", "2", "--progress", "none", "--iw-samples", "0", "--tensorboard", "none"]
    XCTAssertEqual(try Harness.vaeDist(common + ["--out", out + "/"]).status, 0)
    let refused = try Harness.vaeDist(common + ["--out", out + "/"])
    XCTAssertTrue(refused.error.contains("--out \(out) already holds") && refused.error.contains("(to \(out).previous-1)"), refused.error)
    for (n, spelling) in [(1, out + "//"), (2, out + "/.")] {
      let result = try Harness.vaeDist(common + ["--out", spelling, "--overwrite"])
      XCTAssertEqual(result.status, 0, "--out \(spelling): \(result.all)")
      XCTAssertTrue(FileManager.default.fileExists(atPath: out + ".previous-\(n)/model.safetensors"), "--out \(spelling)")
      XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/model.safetensors"), "--out \(spelling)")
    }
  }

  /// A batch whose per-micro-batch gradient buffers cannot fit (65,536 of 0.5 MB: 33 GiB on the two
  /// ranks of this host) is refused at once with the flags to change, not killed by the kernel after minutes of
  /// allocating; under mpirun every rank ends with it. The library's check at a given memory size is
  /// the bound, either side of it.
  func testABatchWhoseGradientsCannotFitIsRefused() throws {
    let memory = Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
    guard memory < 4 * 32768 * 134_165 * 4 else { throw XCTSkip("this host's memory would hold the buffers") }
    let out = temporaryDirectory()
    let started = Date()
    let result = try Harness.run(
      Harness.mpirun,
      try Harness.mpirunArguments(ranks: 2, ["--batch-size", "65536", "--micro-batch", "1", "--out", out, "--max-steps", "1"]),
      timeout: 60)
    XCTAssertEqual(result.status, 2, result.all)
    XCTAssertTrue(result.error.contains("puts 32768 micro-batches on each of 2 ranks"), result.error)
    XCTAssertTrue(result.error.contains("on this host (2 ranks)"), result.error)
    XCTAssertTrue(result.error.contains("Use a larger --micro-batch"), result.error)
    XCTAssertLessThan(Date().timeIntervalSince(started), 20)
  }
}
