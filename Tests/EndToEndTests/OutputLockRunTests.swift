import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// One live run per --out (RunLock.swift): a second run into a live run's --out is refused at once
/// and changes nothing; a run killed with -9 leaves nothing that blocks --resume.
final class OutputLockRunTests: XCTestCase {
  var data = ""

  override func setUpWithError() throws {
    data = try Harness.smallRealDataset()
  }

  func arguments(_ out: String, seed: Int) -> [String] {
    ["--data", data, "--seed", "\(seed)", "--out", out, "--progress", "none", "--checkpoint-every", "10",
     "--iw-samples", "0", "--max-steps", "60", "--tensorboard", "none"]
  }

  /// The first run's model when it runs alone.
  func alone(seed: Int) throws -> Data {
    let out = temporaryDirectory()
    let result = try Harness.vaeDist(arguments(out, seed: seed))
    XCTAssertEqual(result.status, 0, result.all)
    return try Harness.safetensors(out + "/model.safetensors").data
  }

  /// Waits (up to 60 s) until `condition` holds; false if it never did.
  func wait(_ condition: () -> Bool) -> Bool {
    for _ in 0..<3000 {
      if condition() { return true }
      usleep(20_000)
    }
    return false
  }

  func testASecondRunIntoALiveRunsOutIsRefusedAndChangesNothing() throws {
    let expected = try alone(seed: 1)
    let out = temporaryDirectory()
    var second: Harness.Result?
    var firstPID: Int32 = 0
    let first = try Harness.run(try Harness.requireBinary(), arguments(out, seed: 1)) { process in
      firstPID = process.processIdentifier
      let locked = self.wait { ((try? String(contentsOfFile: out + "/.lock", encoding: .utf8)) ?? "").contains("pid") }
      XCTAssertTrue(locked, "the first run never took the lock")
      second = try? Harness.vaeDist(self.arguments(out, seed: 2))
    }
    XCTAssertEqual(first.status, 0, first.all)
    let refused = try XCTUnwrap(second)
    print("OutputLockRunTests: the second run was refused with status \(refused.status) in \(String(format: "%.2f", refused.seconds)) s: \(refused.error)")
    XCTAssertEqual(refused.status, 7, refused.all)
    XCTAssertTrue(refused.error.contains("is in use by a live run"), refused.error)
    XCTAssertTrue(refused.error.contains("pid \(firstPID)"), "the holder is named: \(refused.error)")
    XCTAssertLessThan(refused.seconds, 10, "refused promptly (the issue's bound is 2 s; printed above)")
    XCTAssertTrue(try Harness.safetensors(out + "/model.safetensors").data == expected, "the first run was disturbed")
    let record = try String(contentsOfFile: out + "/run.json", encoding: .utf8)
    XCTAssertTrue(record.contains("\"seed\" : 1"), record)
    XCTAssertEqual(try Harness.metrics(out).count, 3, "one line per epoch of the first run only")
  }

  func testARunKilledWithSignal9ResumesWithoutCleanUp() throws {
    let expected = try alone(seed: 3)
    let out = temporaryDirectory()
    let killed = try Harness.run(try Harness.requireBinary(), arguments(out, seed: 3)) { process in
      let reached = self.wait { FileManager.default.fileExists(atPath: out + "/checkpoints/step-00000020/optimizer.safetensors") }
      XCTAssertTrue(reached, "no checkpoint at step 20")
      kill(process.processIdentifier, SIGKILL)
    }
    XCTAssertEqual(killed.status, SIGKILL, "killed by signal 9: \(killed.all)")
    // What a process that died inside a checkpoint write leaves: a temporary directory; inside the
    // write of the model, a picture, progress.json or hosts.active (a supervisor's): NAME.tmp-PID.
    let leftover = out + "/checkpoints/.tmp-step-00000030-999999"
    try FileManager.default.createDirectory(atPath: leftover, withIntermediateDirectories: true)
    let partialWrites = [
      out + "/model.safetensors.tmp-999999", out + "/hosts.active.tmp-999998", out + "/images/samples.png.tmp-999999",
      out + "/progress.json.tmp-999997",
    ]
    try FileManager.default.createDirectory(atPath: out + "/images", withIntermediateDirectories: true)
    for path in partialWrites { try Data("x".utf8).write(to: URL(fileURLWithPath: path)) }
    let kept = [out + "/notes.txt", out + "/notes.tmp-draft", out + "/.tmp-7", out + "/images/live.png.tmp-\(getpid())"]
    for path in kept { try Data("x".utf8).write(to: URL(fileURLWithPath: path)) }
    let resumed = try Harness.vaeDist(arguments(out, seed: 3) + ["--resume"])
    XCTAssertEqual(resumed.status, 0, resumed.all)
    XCTAssertTrue(try Harness.safetensors(out + "/model.safetensors").data == expected, "the resumed run ends on other bits")
    XCTAssertFalse(FileManager.default.fileExists(atPath: leftover), "the leftover temporary checkpoint stays")
    for path in partialWrites { XCTAssertFalse(FileManager.default.fileExists(atPath: path), "the leftover \(path) stays") }
    for path in kept { XCTAssertTrue(FileManager.default.fileExists(atPath: path), "\(path), not a leftover, was removed") }
  }

  /// A .lock that is a symbolic link (an --out copied with `cp -rs`) is refused, naming it, and the
  /// file it points to is left as it was: the lock used to be taken, and written, through the link.
  func testALockThatIsASymbolicLinkIsRefused() throws {
    let out = temporaryDirectory(), elsewhere = temporaryDirectory() + "/.lock"
    try Data("host other, pid 1\n".utf8).write(to: URL(fileURLWithPath: elsewhere))
    try FileManager.default.createSymbolicLink(atPath: out + "/.lock", withDestinationPath: elsewhere)
    let result = try Harness.vaeDist(arguments(out, seed: 1), timeout: 60)
    XCTAssertNotEqual(result.status, 0, result.all)
    XCTAssertTrue(result.error.contains("/.lock: it is a symbolic link; remove it"), result.error)
    XCTAssertEqual(try String(contentsOfFile: elsewhere, encoding: .utf8), "host other, pid 1\n")
    XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
  }

  /// An --out whose checkpoints and model are gone but whose metrics.jsonl is another run's (no
  /// run.json here) is refused like one with a model: a new run used to delete those metrics.
  func testAnEarlierRunsMetricsAreNotDeletedByANewRun() throws {
    let out = temporaryDirectory()
    let line = "{\"epoch\":1,\"test_loss\":300}\n"
    try Data(line.utf8).write(to: URL(fileURLWithPath: out + "/metrics.jsonl"))
    let result = try Harness.vaeDist(arguments(out, seed: 1), timeout: 60)
    XCTAssertEqual(result.status, 7, result.all)
    XCTAssertTrue(result.error.contains("already holds the metrics.jsonl of an earlier run"), result.error)
    XCTAssertEqual(try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8), line)
  }

  /// The README's main command run again, with no --out, --resume or --overwrite: an unfinished run
  /// in the default --out (a checkpoint, no model) is continued, a finished one moved aside and a
  /// new one started (before, the second run was refused, exit 7); told --out, it adds nothing.
  func testTheMainCommandRunAgainContinuesOrReplacesTheLastRun() throws {
    let folder = temporaryDirectory()
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("launch/train.sh").path
    func dryRun(_ extra: String = "") throws -> Harness.Result {
      let result = try Harness.run("/bin/sh", ["-c", "cd '\(folder)' && exec '\(script)' --dry-run --epochs 5 \(extra)"], timeout: 60)
      XCTAssertEqual(result.status, 0, result.all)
      return result
    }
    let fm = FileManager.default
    let first = try dryRun().all
    XCTAssertFalse(first.contains("--resume") || first.contains("--overwrite"), "a first run is a plain one")
    try fm.createDirectory(atPath: folder + "/vae-dist-run/checkpoints/step-00000010", withIntermediateDirectories: true)
    XCTAssertTrue(fm.createFile(atPath: folder + "/vae-dist-run/run.json", contents: Data("{}".utf8)))
    let unfinished = try dryRun()
    XCTAssertTrue(unfinished.output.contains("train --epochs 5 --resume"), unfinished.all)
    XCTAssertTrue(fm.createFile(atPath: folder + "/vae-dist-run/model.safetensors", contents: Data()))
    // A model without the estimate it was to end with (stopped in its final work): still unfinished.
    let unestimated = try dryRun()
    XCTAssertTrue(unestimated.output.contains("train --epochs 5 --resume"), unestimated.all)
    XCTAssertTrue(fm.createFile(atPath: folder + "/vae-dist-run/evaluation.json", contents: Data("{}".utf8)))
    let finished = try dryRun()
    XCTAssertTrue(finished.output.contains("train --epochs 5 --overwrite"), finished.all)
    // A run told --iw-samples 0 has no estimate to wait for.
    try fm.removeItem(atPath: folder + "/vae-dist-run/evaluation.json")
    XCTAssertTrue(fm.createFile(atPath: folder + "/vae-dist-run/run.json", contents: Data("{\n    \"iwSamples\" : 0,\n}".utf8)))
    XCTAssertTrue(try dryRun().output.contains("train --epochs 5 --overwrite"))
    for told in ["--out elsewhere", "--out=elsewhere", "--resume", "--overwrite"] {
      let result = try dryRun(told)
      XCTAssertTrue(result.output.contains("train --epochs 5 \(told)\n"), "\(told): \(result.all)")
    }
  }
}
