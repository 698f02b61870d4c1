import Foundation
import XCTest

/// Self-healing runs under repeated faults (launch/chaos.sh): kill -9 of a rank and of mpirun, a
/// rank stopped past the stall timeout, SIGTERM to the supervisor and a manual resume — and the
/// result has the bytes of the run that never failed.
final class ChaosRunTests: XCTestCase {
  func testFourFaultsOfEveryKindEndOnTheUninterruptedBits() throws {
    try Harness.requireRealData()
    let binary = try Harness.requireBinary()
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("launch/chaos.sh").path
    let result = try Harness.run(
      // Seed 1's faults land by step 115 (at 23, 57, 91 and 108 when last seen); 150 steps, not the
      // 260 that leave room for any seed's.
      "/usr/bin/env", ["VAE_DIST_BINARY=\(binary)", script, "--faults", "4", "--seed", "1", "--steps", "150", "--work", temporaryDirectory()],
      timeout: 300)
    print(result.output.split(separator: "\n").filter { $0.hasPrefix("chaos:") || $0.contains("supervise:") }.joined(separator: "\n"))
    XCTAssertEqual(result.status, 0, result.all)
    XCTAssertTrue(result.output.contains("chaos: identical"), result.all)
    for kind in ["kill-rank", "kill-mpirun", "stop-rank", "term-supervisor"] {
      XCTAssertTrue(result.output.contains(": \(kind)"), "\(kind) was not injected: \(result.output)")
    }
    XCTAssertTrue(result.output.contains("restarted the job 3 times"), result.output)
  }
}

/// The supervisor's own decisions, on small jobs: no restart for errors a restart cannot fix.
final class SuperviseRunTests: XCTestCase {
  func testErrorsNoRestartFixesEndAtOnce() throws {
    let out = temporaryDirectory()
    let binary = try Harness.requireBinary()
    let result = try Harness.vaeDist(
      ["supervise", "--max-restarts", "3", "--", binary, "train", "--data", "/nonexistent", "--out", out], timeout: 60)
    XCTAssertEqual(result.status, 4, result.all)
    XCTAssertTrue(result.error.contains("a restart would not fix it"), result.error)
    XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/restarts.jsonl"))
  }

  /// A launcher that outlives its ranks (mpirun stuck in its teardown after a host vanished) is
  /// killed after the grace and counted as a lost peer: restarted, then given up on.
  func testLauncherThatHangsAfterItsRanksEndIsKilled() throws {
    let data = try Harness.smallRealDataset()
    let binary = try Harness.requireBinary(), out = temporaryDirectory()
    let start = Date()
    let result = try Harness.run(
      binary,
      ["supervise", "--max-restarts", "1", "--backoff", "0", "--", "/bin/sh", "-c",
       "\(binary) train --data \(data) --max-steps 3 --iw-samples 0 --progress none --tensorboard none \"$@\"; exec sleep 600",
       "sh", "--out", out],
      timeout: 120, environment: ["VAE_DIST_TEST_LAUNCHER_GRACE": "2"])
    let seconds = Date().timeIntervalSince(start)
    print("hung launcher: supervise ended with status \(result.status) after \(seconds) s")
    XCTAssertEqual(result.status, 3, result.all)
    XCTAssertEqual(result.error.components(separatedBy: "still running 2 s after the job's last rank ended").count - 1, 2, result.error)
    XCTAssertTrue(result.error.contains("restart 1/1"), result.error)
    XCTAssertLessThan(seconds, 60)
  }

  /// A stop that comes while the supervisor waits to restart (no job running) ends it there: no
  /// restart follows, and it exits with the failed attempt's status at once, not after the back-off.
  func testStopDuringTheBackOffStartsNoRestart() throws {
    let start = Date()
    let result = try Harness.run(
      try Harness.requireBinary(), ["supervise", "--max-restarts", "3", "--backoff", "30", "--", "/bin/sh", "-c", "echo attempt; exit 3"],
      timeout: 60
    ) { process in
      usleep(1_500_000)  // the attempt has failed: the supervisor waits 30 s before the restart
      kill(process.processIdentifier, SIGTERM)
    }
    let seconds = Date().timeIntervalSince(start)
    print("stop during the back-off: supervise ended with status \(result.status) after \(seconds) s")
    XCTAssertEqual(result.status, 3, result.all)
    XCTAssertTrue(result.error.contains("stopped on request before restart 1; the last attempt ended with status 3"), result.error)
    XCTAssertFalse(result.error.contains("restart 1/3"), result.error)
    XCTAssertTrue(result.error.contains("waiting 30 s (--backoff) before the next attempt"), result.error)  // said before the wait
    XCTAssertEqual(result.output.components(separatedBy: "attempt").count - 1, 1, result.output)
    XCTAssertLessThan(seconds, 10)
  }

  /// An earlier run trained into --out, then `supervise` of a job into it with --overwrite and
  /// `arguments`: `sh -c SCRIPT`, whose script is given the binary and a file that does not exist
  /// until the script makes it (to fail once).
  func supervisedOverAnEarlierRun(_ script: (_ binary: String, _ flag: String) -> String, _ arguments: [String]) throws
    -> (out: String, result: Harness.Result)
  {
    let data = try Harness.smallRealDataset()
    let binary = try Harness.requireBinary(), out = temporaryDirectory(), flag = temporaryDirectory() + "/failed-once"
    let common = ["--data", data, "--out", out, "--iw-samples", "0", "--progress", "none", "--tensorboard", "none"]
    XCTAssertEqual(try Harness.vaeDist(["train", "--max-steps", "2"] + common).status, 0, "the earlier run")
    let result = try Harness.vaeDist(
      ["supervise", "--max-restarts", "2", "--backoff", "0", "--", "/bin/sh", "-c", script(binary, flag), "sh", "--overwrite"]
        + arguments + common, timeout: 120)
    return (out, result)
  }

  /// A job started with --overwrite comes back with --resume alone (the trainer refuses the two
  /// together), and the resume does not move its own run aside again.
  func testARestartResumesWithoutTheOverwriteItStartedWith() throws {
    // The first attempt trains to its end, then fails as a lost peer would.
    let (out, result) = try supervisedOverAnEarlierRun(
      { binary, flag in "\(binary) train \"$@\"; s=$?; [ -e \(flag) ] && exit $s; touch \(flag); exit 3" },
      ["--max-steps", "3", "--checkpoint-every", "1"])
    XCTAssertEqual(result.status, 0, result.all)
    XCTAssertTrue(result.error.contains("restart 1/2: "), result.error)
    XCTAssertTrue(result.error.contains("resuming from \(out)/checkpoints/step-00000003"), result.error)
    XCTAssertTrue(result.output.contains("resumed"), result.output)
    XCTAssertTrue(FileManager.default.fileExists(atPath: out + ".previous-1/model.safetensors"), "the earlier run, moved aside once")
    XCTAssertFalse(FileManager.default.fileExists(atPath: out + ".previous-2"), "the restart moved its own run aside")
  }

  /// A fault before the job's first checkpoint starts it again as it was started: not with --resume,
  /// which has nothing to take, and never from the checkpoints of the earlier run that its
  /// --overwrite was to move aside.
  func testAFaultBeforeTheFirstCheckpointStartsAfreshNotFromAnEarlierRun() throws {
    // The first attempt fails before the trainer starts, as a launcher that lost a host does.
    let (out, result) = try supervisedOverAnEarlierRun(
      { binary, flag in "[ -e \(flag) ] || { touch \(flag); exit 3; }; exec \(binary) train \"$@\"" }, ["--max-steps", "3"])
    XCTAssertEqual(result.status, 0, result.all)
    XCTAssertTrue(result.error.contains("restart 1/2: ") && result.error.contains("starting again"), result.error)
    // The earlier run's progress.json (step 2) is not the job's.
    XCTAssertTrue(result.error.contains("status 3 at step 0; starting again"), result.error)
    XCTAssertFalse(result.output.contains("resumed"), "the restart resumed the earlier run:\n\(result.output)")
    XCTAssertTrue(FileManager.default.fileExists(atPath: out + ".previous-1/model.safetensors"), "the earlier run, moved aside")
    let metrics = try Harness.metrics(out)
    XCTAssertEqual(metrics.last?["step"] as? Int, 3, "\(metrics)")
    // The restart's record is the job's: in its --out, not in the earlier run it moved aside.
    let restarts = try String(contentsOfFile: out + "/restarts.jsonl", encoding: .utf8)
    XCTAssertTrue(restarts.contains("\"restart\":1") && restarts.contains("\"status\":3"), restarts)
    XCTAssertFalse(FileManager.default.fileExists(atPath: out + ".previous-1/restarts.jsonl"), "the record left with the earlier run")
  }

  /// A launcher that ends while what it started still holds its output (an ssh to a lost host) is
  /// not waited for: its leftovers are killed, and one that hid from that (no token in its
  /// environment) holds the supervisor up 5 s at most.
  func testALauncherWhoseLeftoversHoldItsOutputEndsAtOnce() throws {
    let start = Date()
    let result = try Harness.vaeDist(
      ["supervise", "--max-restarts", "0", "--", "/bin/sh", "-c",
       "sleep 40.1 & env -u VAE_DIST_SUPERVISOR_TOKEN sleep 40.2 & echo started; exit 3"], timeout: 60)
    let seconds = Date().timeIntervalSince(start)
    _ = try Harness.run("/usr/bin/pkill", ["-f", "sleep 40.2"], timeout: 10)  // the one that hid
    print("a launcher with leftovers: supervise ended with status \(result.status) after \(seconds) s")
    XCTAssertEqual(result.status, 3, result.all)
    XCTAssertTrue(result.output.contains("started"), result.all)
    XCTAssertLessThan(seconds, 20)
  }

  /// Rank zero of a failed attempt on another machine (where killLeftovers does not reach) holds
  /// --out's lock until its collectives time out: the restart waits for it rather than be refused
  /// (exit 7), which ended the job. A `flock` without the token stands for that rank here.
  func testARestartWaitsForTheLockOfAnAttemptsLeftoverRank() throws {
    let data = try Harness.smallRealDataset()
    let binary = try Harness.requireBinary(), out = temporaryDirectory(), flag = temporaryDirectory() + "/failed-once"
    let holder = "mkdir -p \(out); env -u VAE_DIST_SUPERVISOR_TOKEN flock \(out)/.lock sleep 4 > /dev/null 2>&1 &"
    let script = "[ -e \(flag) ] || { touch \(flag); \(holder) sleep 0.5; exit 3; }; exec \(binary) train \"$@\""
    let start = Date()
    let result = try Harness.vaeDist(
      ["supervise", "--max-restarts", "1", "--backoff", "0", "--", "/bin/sh", "-c", script, "sh",
       "--data", data, "--out", out, "--max-steps", "2", "--iw-samples", "0", "--progress", "none", "--tensorboard", "none"],
      timeout: 120)
    print("a leftover holding the lock: supervise ended with status \(result.status) after \(Date().timeIntervalSince(start)) s")
    XCTAssertEqual(result.status, 0, result.all)
    XCTAssertTrue(result.error.contains("before restart 1, waiting for the lock on \(out)"), result.error)
    XCTAssertFalse(result.output.contains("is in use by a live run"), result.all)
    XCTAssertEqual(try Harness.metrics(out).last?["step"] as? Int, 2)
  }

  /// A stop while the supervisor waits for that lock ends it there, with the failed attempt's status:
  /// no restart starts (it was started, signalled at once, and refused by the lock: status 7).
  func testAStopDuringTheWaitForTheLockStartsNoRestart() throws {
    let out = temporaryDirectory()
    let holder = "mkdir -p \(out); env -u VAE_DIST_SUPERVISOR_TOKEN flock \(out)/.lock sleep 30.3 > /dev/null 2>&1 &"
    let start = Date()
    let result = try Harness.run(
      try Harness.requireBinary(),
      ["supervise", "--max-restarts", "2", "--backoff", "0", "--", "/bin/sh", "-c", "\(holder) sleep 0.5; exit 3", "sh", "--out", out],
      timeout: 60
    ) { process in
      usleep(2_500_000)  // the attempt has failed; the supervisor waits for the lock
      kill(process.processIdentifier, SIGTERM)
    }
    _ = try Harness.run("/usr/bin/pkill", ["-f", "sleep 30.3"], timeout: 10)
    let seconds = Date().timeIntervalSince(start)
    print("a stop during the wait for the lock: supervise ended with status \(result.status) after \(seconds) s")
    XCTAssertEqual(result.status, 3, result.all)
    XCTAssertTrue(result.error.contains("waiting for the lock on \(out)"), result.error)
    XCTAssertTrue(result.error.contains("stopped on request before restart 1; the last attempt ended with status 3"), result.error)
    XCTAssertLessThan(seconds, 15)
  }

  func testALauncherThatCannotRunIsNotRestarted() throws {
    let result = try Harness.vaeDist(["supervise", "--max-restarts", "2", "--backoff", "0", "--", "/nonexistent/launcher"], timeout: 60)
    XCTAssertEqual(result.status, 127, result.all)
    XCTAssertTrue(result.error.contains("could not be run (status 127"), result.error)
    XCTAssertFalse(result.error.contains("restart 1/2"), result.error)
  }

  func testGivesUpAfterMaxRestarts() throws {
    let result = try Harness.vaeDist(["supervise", "--max-restarts", "2", "--backoff", "0", "--", "/bin/sh", "-c", "exit 3"], timeout: 60)
    XCTAssertEqual(result.status, 3, result.all)
    XCTAssertEqual(result.error.components(separatedBy: "restart ").count - 1, 2, result.error)
    XCTAssertTrue(result.error.contains("restarts are used up"), result.error)
  }
}
