import Foundation
import XCTest

/// The protocol between ranks under mpirun, as a user meets it: an error one rank finds ends every
/// rank at once; rank zero's long work never counts as a stall; a signal ends rank zero's final work.
final class ProtocolRunTests: XCTestCase {
  var data = ""

  override func setUpWithError() throws {
    data = try Harness.smallRealDataset()
  }

  func mpi(_ ranks: Int, _ arguments: [String], environment: [String] = [], timeout: Double = 120) throws -> Harness.Result {
    let exported = environment.flatMap { ["-x", String($0.prefix { $0 != "=" })] }
    let mpirun = try Harness.mpirunArguments(ranks: ranks, arguments)
    return try Harness.run("/usr/bin/env", environment + [Harness.mpirun] + exported + mpirun, timeout: timeout)
  }

  /// `--out FILE/x`: rank zero alone can see it; every rank of four exits with the output status,
  /// one message, within seconds (it took the 60 s stall timeout before).
  func testRankZeroOnlyErrorEndsAllRanksAtOnce() throws {
    let file = temporaryDirectory() + "/a-file"
    XCTAssertTrue(FileManager.default.createFile(atPath: file, contents: Data("x".utf8)))
    let result = try mpi(4, ["--data", data, "--out", file + "/x", "--iw-samples", "0"], timeout: 60)
    print("--out FILE/x under mpirun -n 4: status \(result.status) after \(result.seconds) s")
    XCTAssertEqual(result.status, 5, result.all)
    XCTAssertLessThan(result.seconds, 10, "the job must not wait for the stall timeout")
    XCTAssertEqual(result.error.components(separatedBy: "vae-dist: error:").count - 1, 1, result.error)
    XCTAssertTrue(result.error.contains("\(file) is a file, not a directory"), result.error)
    XCTAssertFalse(result.all.contains("MPI_ABORT"), result.all)
  }

  /// Rank zero's epoch-end work made longer than the stall timeout (a test hook sleeps in it) does
  /// not end a healthy job: rank zero's heartbeat keeps the others waiting.
  func testRankZeroWorkLongerThanTheStallTimeoutIsNotAStall() throws {
    let out = temporaryDirectory()
    let result = try mpi(
      2, ["--data", data, "--out", out, "--max-steps", "3", "--stall-timeout", "2", "--plot-every", "1", "--iw-samples", "0"],
      environment: ["VAE_DIST_TEST_ROOT_DELAY=5"])
    XCTAssertEqual(result.status, 0, result.all)
    XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
  }

  /// Rank zero's work that never ends (the test hook sleeps 60 s in the epoch's end, as a write to a
  /// hung file system would block) ends the job once --write-timeout has passed, with the stall's
  /// status (3: the supervisor restarts it), one message naming the phase, on every rank: the
  /// heartbeat that keeps the others waiting through long work does not keep them waiting for ever.
  func testRankZeroWorkThatNeverEndsEndsTheJobAfterTheWriteTimeout() throws {
    let out = temporaryDirectory()
    let result = try mpi(
      2, ["--data", data, "--out", out, "--max-steps", "3", "--stall-timeout", "2", "--write-timeout", "3", "--iw-samples", "0"],
      environment: ["VAE_DIST_TEST_ROOT_DELAY=60"], timeout: 60)
    print("rank zero stuck in its epoch end, --write-timeout 3: status \(result.status) after \(result.seconds) s")
    XCTAssertEqual(result.status, 3, result.all)
    XCTAssertLessThan(result.seconds, 30)
    XCTAssertEqual(result.error.components(separatedBy: "vae-dist: error:").count - 1, 1, result.error)
    XCTAssertTrue(result.error.contains("rank 0 spent more than 3 s in the end of epoch 1 without finishing"), result.error)
    XCTAssertFalse(result.all.contains("MPI_ABORT"), result.all)
  }

  /// A rank whose data load takes longer than the stall timeout (a slow file system: the test hook
  /// sleeps 6 s in the last rank's load) keeps the others waiting through it with a heartbeat, and
  /// the run goes on: they used to give up after --stall-timeout (2 s here), status 3. A load that
  /// never ends still ends the job after --write-timeout, naming the rank and the phase.
  func testASlowDataLoadOnOneRankIsNotAStall() throws {
    let common = ["--data", data, "--max-steps", "3", "--stall-timeout", "2", "--iw-samples", "0", "--tensorboard", "none"]
    let slow = try mpi(2, common + ["--out", temporaryDirectory()], environment: ["VAE_DIST_TEST_LOAD_DELAY=6"], timeout: 120)
    print("the last rank's load 6 s longer, --stall-timeout 2: status \(slow.status) after \(slow.seconds) s")
    XCTAssertEqual(slow.status, 0, slow.all)
    XCTAssertGreaterThan(slow.seconds, 6)
    let stuck = try mpi(
      2, common + ["--out", temporaryDirectory(), "--write-timeout", "3"], environment: ["VAE_DIST_TEST_LOAD_DELAY=60"], timeout: 60)
    print("the last rank's load stuck, --write-timeout 3: status \(stuck.status) after \(stuck.seconds) s")
    XCTAssertEqual(stuck.status, 3, stuck.all)
    XCTAssertLessThan(stuck.seconds, 30)
    XCTAssertTrue(stuck.error.contains("rank 1 spent more than 3 s in loading the data without finishing"), stuck.error)
    XCTAssertFalse(stuck.all.contains("MPI_ABORT"), stuck.all)
  }

  /// The first SIGINT during the final estimate ends it promptly, saying what was skipped; the
  /// model is already written.
  func testSignalDuringFinalWorkSkipsTheRest() throws {
    let out = temporaryDirectory()
    let (result, signalled) = try signalDuringTheEstimate(out) { kill($0, SIGINT) }
    print("SIGINT after \(signalled) s; exit after \(result.seconds) s")
    XCTAssertEqual(result.status, 0, result.all)
    XCTAssertTrue(result.output.contains("stopped by a signal: skipped the importance-weighted log-likelihood estimate"), result.output)
    XCTAssertLessThan(result.seconds - signalled, 10, "the first signal must end the final work")
    XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/model.safetensors"))
    // The message says how to finish; --resume (at the run's last step) does, without training.
    XCTAssertTrue(result.output.contains("the same command with --resume finishes it"), result.output)
    XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/evaluation.json"))
    let finished = try Harness.vaeDist(["--data", data, "--out", out, "--max-steps", "2", "--iw-samples", "20", "--progress", "none", "--resume"])
    XCTAssertEqual(finished.status, 0, finished.all)
    XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/evaluation.json"), finished.all)
  }

  /// A second signal ends the process at once with status 130 (docs/checkpoints.md), whatever the
  /// run is doing (here: the long final estimate, which the first would end within 64 samples). Two
  /// different signals, so the kernel cannot merge them into one pending signal.
  func testASecondSignalExitsAtOnceWith130() throws {
    let (result, signalled) = try signalDuringTheEstimate(temporaryDirectory()) {
      kill($0, SIGINT)
      kill($0, SIGTERM)
    }
    XCTAssertEqual(result.status, 130, result.all)
    XCTAssertTrue(result.error.contains("second signal, exiting at once"), result.error)
    XCTAssertFalse(result.output.contains("skipped the importance-weighted"), "the first signal's orderly end ran: \(result.output)")
    XCTAssertLessThan(result.seconds - signalled, 5)
  }

  /// Trains 2 steps into `out`, then, 0.3 s into the long final estimate (k = 20,000), does `signal`
  /// to the process; returns how it ended and when the signal went, in seconds from the start.
  func signalDuringTheEstimate(_ out: String, signal: @escaping (pid_t) -> Void) throws -> (Harness.Result, Double) {
    let binary = try Harness.requireBinary()
    let arguments = ["--data", data, "--out", out, "--max-steps", "2", "--iw-samples", "20000", "--progress", "none"]
    var signalled = 0.0
    let result = try Harness.run(binary, arguments, timeout: 120) { process in
      let started = Date()
      while !FileManager.default.fileExists(atPath: out + "/images/interpolation.png") && Date().timeIntervalSince(started) < 60 {
        usleep(20_000)
      }
      usleep(300_000)
      signalled = Date().timeIntervalSince(started)
      signal(process.processIdentifier)
    }
    return (result, signalled)
  }
}
