import Foundation
import XCTest

/// Checkpoints, resume and faults on a 3,000-image subset of the real data (an epoch is 24 steps:
/// 23 of 128 images and a last one of 56).
final class CheckpointRunTests: XCTestCase {
  static let steps = 60  // two and a half epochs
  var steps: Int { Self.steps }
  var data = ""

  override func setUpWithError() throws {
    data = try Harness.smallRealDataset()
  }

  static func common(_ out: String, data: String) -> [String] {
    ["--data", data, "--seed", "5", "--out", out, "--progress", "none", "--checkpoint-every", "10", "--iw-samples", "0"]
  }

  func common(_ out: String) -> [String] { Self.common(out, data: data) }

  /// The uninterrupted run, alone, to `steps`, which four tests' interrupted runs must end on: run once
  /// for the class (10 s each time on a Zen 1), into a directory removed when the class's tests end.
  static let uninterrupted: (out: String, failure: String?) = {
    let out = referenceDirectory
    do {
      let result = try Harness.vaeDist(common(out, data: try Harness.smallRealDataset()) + ["--max-steps", "\(steps)"])
      return (out, result.status == 0 ? nil : "the uninterrupted run failed: \(result.all)")
    } catch {
      return (out, "the uninterrupted run could not start: \(error)")
    }
  }()

  static let referenceDirectory = NSTemporaryDirectory() + "vae-dist-checkpoint-reference-\(getpid())"

  override class func tearDown() { Harness.removeDirectory(referenceDirectory) }

  struct UninterruptedRunFailed: Error, CustomStringConvertible { let description: String }

  /// The uninterrupted run's parameters and metrics (an error, so a failure, in every test that
  /// compares with it if it failed).
  func reference() throws -> (tensors: Data, metrics: [[String: Any]]) {
    let (out, failure) = Self.uninterrupted
    if let failure { throw UninterruptedRunFailed(description: failure) }
    return (try Harness.safetensors(out + "/model.safetensors").data, try Harness.metrics(out))
  }

  func mpi(_ ranks: Int, _ arguments: [String], timeout: Double = 300) throws -> Harness.Result {
    try Harness.run(Harness.mpirun, try Harness.mpirunArguments(ranks: ranks, arguments), timeout: timeout)
  }

  func assertSameRun(_ out: String, as reference: (tensors: Data, metrics: [[String: Any]]), _ what: String) throws {
    let tensors = try Harness.safetensors(out + "/model.safetensors").data
    XCTAssertTrue(tensors == reference.tensors, "\(what): parameters differ from the uninterrupted run")
    let metrics = try Harness.metrics(out)
    XCTAssertEqual(metrics.count, reference.metrics.count, "\(what): metrics.jsonl lines")
    for (a, b) in zip(metrics, reference.metrics) {
      for key in ["epoch", "step", "train_loss", "train_kl", "test_loss", "train_images"] {
        XCTAssertEqual("\(a[key]!)", "\(b[key]!)", "\(what): \(key) of epoch \(b["epoch"]!)")
      }
    }
  }

  /// Stops mid-epoch (step 13, with 2 ranks), at an epoch boundary (step 24, with 4 ranks), then
  /// finishes alone: the same bits and the same metrics as the run that never stopped.
  func testResumeAtSeveralPointsWithOtherRankCounts() throws {
    let expected = try reference()
    let out = temporaryDirectory()
    var result = try mpi(2, common(out) + ["--max-steps", "13"])
    XCTAssertEqual(result.status, 0, result.all)
    result = try mpi(4, common(out) + ["--max-steps", "24", "--resume"])
    XCTAssertEqual(result.status, 0, result.all)
    XCTAssertTrue(result.output.contains("resumed    \(out)/checkpoints/step-00000013 at step 13"), result.output)
    result = try Harness.vaeDist(common(out) + ["--max-steps", "\(steps)", "--resume"])
    XCTAssertEqual(result.status, 0, result.all)
    XCTAssertTrue(result.output.contains("at step 24 (epoch 2)"), result.output)
    try assertSameRun(out, as: expected, "stopped at 13 (n=2) and 24 (n=4), finished alone")
  }

  /// SIGTERM to the launch script: the step finishes, a checkpoint is written, exit 0, and a resume
  /// ends where the uninterrupted run does.
  func testSignalToTheLauncherStopsCleanly() throws {
    let expected = try reference()
    let out = temporaryDirectory()
    let launcher = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("launch/mpirun-local.sh").path
    let slow = common(out) + ["--max-steps", "\(steps)", "--threads", "1"]
    let result = try Harness.run(launcher, ["-n", "2"] + slow, timeout: 120) { process in
      // Wait until the first checkpoint shows training is under way, then ask for a stop.
      for _ in 0..<600 where !FileManager.default.fileExists(atPath: out + "/checkpoints") { usleep(20_000) }
      kill(process.processIdentifier, SIGTERM)
    }
    XCTAssertEqual(result.status, 0, result.all)
    XCTAssertTrue(result.output.contains("stopped by a signal after step"), result.all)
    XCTAssertTrue(result.output.contains("--resume"), result.all)
    XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
    let resumed = try mpi(2, common(out) + ["--max-steps", "\(steps)", "--resume"])
    XCTAssertEqual(resumed.status, 0, resumed.all)
    try assertSameRun(out, as: expected, "stopped by SIGTERM, resumed with 2 ranks")
  }

  /// SIGUSR1 (Slurm's warning before a time limit) to a job under `supervise`: passed on as a clean
  /// stop, like SIGTERM; the supervisor used to die of it, and the job with it, without a checkpoint.
  func testSlurmsWarningToASupervisedJobStopsCleanly() throws {
    let out = temporaryDirectory()
    let launcher = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("launch/mpirun-local.sh").path
    let slow = common(out) + ["--max-steps", "\(steps)", "--threads", "1"]
    let result = try Harness.run(launcher, ["--max-restarts", "1", "-n", "2"] + slow, timeout: 120) { process in
      for _ in 0..<600 where !FileManager.default.fileExists(atPath: out + "/checkpoints") { usleep(20_000) }
      kill(process.processIdentifier, SIGUSR1)  // the launcher has become `vae-dist supervise` (exec)
    }
    XCTAssertEqual(result.status, 0, result.all)
    XCTAssertTrue(result.output.contains("stopped by a signal after step"), result.all)
    XCTAssertTrue(result.all.contains("stopped on request"), result.all)
    XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
  }

  /// Ctrl-C at a terminal signals the supervisor's whole process group. The job runs in a group of
  /// its own, so it hears of the stop once, from the supervisor, and stops cleanly; in the
  /// supervisor's group it got the terminal's SIGINT and the supervisor's SIGTERM, a second stop,
  /// which aborts it without a checkpoint.
  func testCtrlCToASupervisorsProcessGroupStopsTheJobOnce() throws {
    let out = temporaryDirectory()
    let launcher = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("launch/mpirun-local.sh").path
    let slow = common(out) + ["--max-steps", "\(steps)", "--threads", "1"]
    var leader = false
    let result = try Harness.run(launcher, ["--max-restarts", "1", "-n", "2"] + slow, timeout: 120) { process in
      for _ in 0..<600 where !FileManager.default.fileExists(atPath: out + "/checkpoints") { usleep(20_000) }
      let pid = process.processIdentifier  // the launcher has become `vae-dist supervise` (exec)
      leader = getpgid(pid) == pid
      kill(leader ? -pid : pid, SIGINT)
    }
    guard leader else { throw XCTSkip("the harness did not start the supervisor in a process group of its own") }
    XCTAssertEqual(result.status, 0, result.all)
    XCTAssertTrue(result.output.contains("stopped by a signal after step"), result.all)
    XCTAssertEqual(result.all.components(separatedBy: "stopping after the current step").count - 1, 1, result.all)
    XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
  }

  /// `supervise -- mpirun …` (plain mpirun as the launcher) stopped with SIGTERM: the supervisor
  /// passes SIGUSR1 to mpirun, which forwards it and lets the job end normally, so the ranks
  /// checkpoint and everything exits 0. (SIGTERM to mpirun made it report the job as aborted, and
  /// kill the ranks a second later, checkpoint or not.)
  func testStopToASupervisedPlainMpirunStopsCleanly() throws {
    let out = temporaryDirectory()
    let launch = [Harness.mpirun] + (try Harness.mpirunArguments(ranks: 2, common(out) + ["--max-steps", "\(steps)", "--threads", "1"]))
    let result = try Harness.run(try Harness.requireBinary(), ["supervise", "--max-restarts", "1", "--"] + launch, timeout: 120) { process in
      for _ in 0..<600 where !FileManager.default.fileExists(atPath: out + "/checkpoints") { usleep(20_000) }
      kill(process.processIdentifier, SIGTERM)
    }
    XCTAssertEqual(result.status, 0, result.all)
    XCTAssertTrue(result.output.contains("stopped by a signal after step"), result.all)
    XCTAssertTrue(result.all.contains("stopped on request"), result.all)
    XCTAssertFalse(result.all.contains("restart 1/1"), result.all)
  }

  /// kill -9 of a rank: the job ends with an error; --resume from the last complete checkpoint (with
  /// another rank count) finishes the same as the uninterrupted run.
  func testKilledRankThenResumeLosesNothing() throws {
    let expected = try reference()
    let out = temporaryDirectory()
    var killedAt = Date()
    let arguments = try Harness.mpirunArguments(ranks: 2, common(out) + ["--max-steps", "100000", "--epochs", "1000", "--threads", "1"])
    let result = try Harness.run(Harness.mpirun, arguments, timeout: 120) { mpirun in
      for _ in 0..<1000 where (try? FileManager.default.contentsOfDirectory(atPath: out + "/checkpoints"))?.count ?? 0 < 2 {
        usleep(20_000)
      }
      killedAt = Date()
      if let victim = childProcesses(of: mpirun.processIdentifier).last { kill(victim, SIGKILL) }
    }
    let seconds = Date().timeIntervalSince(killedAt)
    print("killed rank during checkpointed training: job ended \(seconds) s later, status \(result.status)")
    XCTAssertNotEqual(result.status, 0)
    XCTAssertLessThan(seconds, 10)
    let resumed = try mpi(4, common(out) + ["--max-steps", "\(steps)", "--resume"])
    XCTAssertEqual(resumed.status, 0, resumed.all)
    XCTAssertTrue(resumed.output.contains("resumed"), resumed.output)
    try assertSameRun(out, as: expected, "rank killed, resumed with 4 ranks")
  }

  /// A run that ends inside an epoch (--max-steps 30 of 24-step epochs) and dies in its final work
  /// resumes straight to the final files, and the partial epoch's line stays in metrics.jsonl: the
  /// trim to the checkpoint dropped it, and no epoch followed to log it again.
  func testAResumeAtTheLastStepKeepsThePartialEpochsLine() throws {
    let out = temporaryDirectory()
    var result = try Harness.vaeDist(common(out) + ["--max-steps", "30"])
    XCTAssertEqual(result.status, 0, result.all)
    XCTAssertEqual(try Harness.metrics(out).map { $0["step"] as? Int }, [24, 30])
    try FileManager.default.removeItem(atPath: out + "/model.safetensors")  // as if killed writing the final files
    result = try Harness.vaeDist(common(out) + ["--max-steps", "30", "--resume"])
    XCTAssertEqual(result.status, 0, result.all)
    XCTAssertEqual(try Harness.metrics(out).map { $0["step"] as? Int }, [24, 30])
    XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
  }

  /// Standard output closed under the run (`train | head -c 1`): SIGPIPE asks for a clean stop, the
  /// step's checkpoint is written and the run exits 0, where it used to die of the signal (141) with
  /// nothing saved since the last checkpoint.
  func testAClosedStandardOutputStopsTheRunCleanly() throws {
    let out = temporaryDirectory()
    let binary = try Harness.requireBinary()
    let arguments = ["--data", data, "--seed", "5", "--out", out, "--progress", "lines", "--checkpoint-every", "0",
                     "--iw-samples", "0", "--tensorboard", "none", "--max-steps", "100000", "--epochs", "1000", "--threads", "1"]
    let result = try Harness.run(
      "/bin/bash", ["-c", "\(binary) \(arguments.joined(separator: " ")) | head -c 1 >/dev/null; echo \"vae-dist status ${PIPESTATUS[0]}\" >&2"],
      timeout: 120)
    XCTAssertTrue(result.error.contains("vae-dist status 0"), result.error)
    XCTAssertTrue(result.error.contains("an output pipe was closed; stopping after this step"), result.error)
    let checkpoints = try FileManager.default.contentsOfDirectory(atPath: out + "/checkpoints")
    // The stop's checkpoint (and the epoch end's, should head be slow to exit on a busy machine).
    XCTAssertGreaterThanOrEqual(checkpoints.filter { $0.hasPrefix("step-") }.count, 1, "\(checkpoints)")
  }

  /// A write that fails (here: a file-size limit, as a full disk would) is a clear error, and the
  /// checkpoint before it still resumes.
  func testFailedCheckpointWriteKeepsTheLastGoodOne() throws {
    let out = temporaryDirectory()
    var result = try Harness.vaeDist(common(out) + ["--max-steps", "20"])
    XCTAssertEqual(result.status, 0, result.all)
    let binary = try Harness.requireBinary()
    let quoted = (common(out) + ["--max-steps", "40", "--resume"]).joined(separator: " ")
    // 800 KiB: room for metrics and the 0.5 MB model file, none for the 1 MB optimizer file.
    result = try Harness.run("/bin/bash", ["-c", "ulimit -f 800; exec \(binary) \(quoted)"])
    XCTAssertNotEqual(result.status, 0)
    XCTAssertTrue(result.error.contains("could not be written"), result.error)
    XCTAssertTrue(result.error.contains("File too large"), result.error)
    XCTAssertTrue(result.error.contains("optimizer.safetensors"), result.error)
    result = try Harness.vaeDist(common(out) + ["--max-steps", "40", "--resume"])
    XCTAssertEqual(result.status, 0, result.all)
    XCTAssertTrue(result.output.contains("checkpoints/step-00000020 at step 20"), result.output)
  }

  /// A TensorBoard log on a full file system (a real one: an 8 KiB tmpfs in a private mount
  /// namespace) stops a 2-rank run within a step of the failed write, as a signal would: rank zero
  /// writes the checkpoint of the step the stop came with, every rank exits with the output status
  /// (5) naming the event file, and --resume without the log reaches the uninterrupted run's bits.
  func testAFullTensorBoardDiskStopsTheRunWithACheckpoint() throws {
    let expected = try reference()
    let out = temporaryDirectory(), logs = out + "-tensorboard"
    try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: logs) }
    let probe = try Harness.run("/usr/bin/unshare", ["--mount", "sh", "-c", "mount -t tmpfs -o size=8k none \(logs)"], timeout: 30)
    guard probe.status == 0 else { throw XCTSkip("cannot mount a tmpfs in a mount namespace here: \(probe.error)") }
    let launch = try Harness.mpirunArguments(
      ranks: 2, common(out) + ["--max-steps", "\(steps)", "--tensorboard", logs, "--log-every", "1", "--plot-every", "0"])
    let command = "mount -t tmpfs -o size=8k none \(logs) && exec \(([Harness.mpirun] + launch).joined(separator: " "))"
    let result = try Harness.run("/usr/bin/unshare", ["--mount", "sh", "-c", command], timeout: 300)
    XCTAssertEqual(result.status, 5, result.all)
    XCTAssertTrue(result.error.contains("events.out.tfevents"), result.error)
    XCTAssertTrue(result.all.contains("No space left on device"), result.all)
    // The failed write is at step k; the stop rides on step k + 1's reduction, whose checkpoint is kept.
    guard let failedAt = result.output.firstMatch(of: /step (\d+): .*stopping after the next step/).flatMap({ Int($0.1) }) else {
      return XCTFail("no line names the failed step: \(result.output)")
    }
    XCTAssertTrue(
      FileManager.default.fileExists(atPath: out + String(format: "/checkpoints/step-%08d", failedAt + 1)), "no checkpoint at step \(failedAt + 1)")
    let resumed = try Harness.vaeDist(common(out) + ["--max-steps", "\(steps)", "--resume", "--tensorboard", "none"])
    XCTAssertEqual(resumed.status, 0, resumed.all)
    XCTAssertTrue(resumed.output.contains("at step \(failedAt + 1)"), resumed.output)
    try assertSameRun(out, as: expected, "stopped by a full TensorBoard disk, resumed")
  }

  func testResumeRefusesAnotherRun() throws {
    let out = temporaryDirectory()
    var result = try Harness.vaeDist(common(out) + ["--resume", "--max-steps", "5"])
    XCTAssertEqual(result.status, 7)
    XCTAssertTrue(result.error.contains("no complete checkpoint"), result.error)
    // A misspelled --out is refused as such, and not made.
    result = try Harness.vaeDist(common(out + "/missing") + ["--resume", "--max-steps", "5"])
    XCTAssertEqual(result.status, 7)
    XCTAssertTrue(result.error.contains("--out \(out)/missing does not exist"), result.error)
    XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/missing"))
    result = try Harness.vaeDist(common(out) + ["--max-steps", "5"])
    XCTAssertEqual(result.status, 0, result.all)
    result = try Harness.vaeDist(common(out) + ["--resume", "--max-steps", "10", "--latent-dim", "3"])
    XCTAssertEqual(result.status, 7)
    XCTAssertTrue(result.error.contains("--latent-dim 3 (the checkpoint has 2)"), result.error)
    let other = try Harness.smallRealDataset(train: 2000, test: 500)
    result = try Harness.vaeDist(common(out).map { $0 == data ? other : $0 } + ["--resume", "--max-steps", "10"])
    XCTAssertEqual(result.status, 7)
    XCTAssertTrue(result.error.contains("different data"), result.error)
  }

  func testNonFiniteLossStopsOrIsSkipped() throws {
    var out = temporaryDirectory()
    var result = try Harness.vaeDist(common(out) + ["--max-steps", "6", "--lr", "1e6"])
    XCTAssertEqual(result.status, 6)
    XCTAssertTrue(result.error.contains("NaN or infinite at step"), result.error)
    out = temporaryDirectory()
    result = try Harness.vaeDist(common(out) + ["--max-steps", "6", "--lr", "1e6", "--skip-nonfinite"])
    XCTAssertEqual(result.status, 0, result.all)
    let skipped = try Harness.metrics(out).last?["skipped_steps"] as? Int
    XCTAssertGreaterThan(skipped ?? 0, 0)
  }
}
