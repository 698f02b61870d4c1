import Foundation
import XCTest

/// vae-dist under mpirun on this machine: the same bits for every layout, shards, and failures that
/// end the job instead of hanging it.
final class DistributedRunTests: XCTestCase {
  // On the small real data set (3,000 training images, 24 steps an epoch), 60 steps: two epochs' ends
  // with their evaluations, a --check-sync at 25 and 50, and any layout's bits would part at its
  // first step. (120 steps on all 60,000 images took twice as long: the evaluations of 10,000.)
  let common = ["--max-steps", "60", "--seed", "7", "--progress", "none", "--iw-samples", "0"]

  struct Layout: CustomStringConvertible {
    var ranks: Int?  // nil: started without mpirun
    var threads: Int
    var description: String { ranks.map { "mpirun -n \($0), --threads \(threads)" } ?? "alone, --threads \(threads)" }
  }

  func train(_ layout: Layout, data: String) throws -> (out: String, result: Harness.Result) {
    let out = temporaryDirectory()
    let arguments = common + ["--data", data, "--threads", "\(layout.threads)", "--out", out]
    let result: Harness.Result
    if let ranks = layout.ranks {
      result = try Harness.run(Harness.mpirun, try Harness.mpirunArguments(ranks: ranks, arguments + ["--check-sync", "25"]))
    } else {
      result = try Harness.vaeDist(arguments)
    }
    XCTAssertEqual(result.status, 0, "\(layout): \(result.all)")
    return (out, result)
  }

  func testSameBitsAndMetricsForEveryLayout() throws {
    let data = try Harness.smallRealDataset()
    // One process on one thread is TrainerTests' (in-process ranks and threads, every layout); here
    // the layouts of real processes, 1 to 4 ranks, and a process of 2 threads alone and under mpirun.
    let layouts = [
      Layout(ranks: nil, threads: 2), Layout(ranks: 1, threads: 2), Layout(ranks: 2, threads: 1),
      Layout(ranks: 2, threads: 2), Layout(ranks: 4, threads: 1),
    ]
    var reference: (data: Data, metrics: [[String: Any]])?
    for layout in layouts {
      let (out, result) = try train(layout, data: data)
      let tensors = try Harness.safetensors(out + "/model.safetensors").data
      let metrics = try Harness.metrics(out)
      print("\(layout): \(String(format: "%.1f", result.seconds)) s, model.safetensors tensor data \(tensors.count) bytes, "
        + "test loss \(metrics.map { "\($0["test_loss"]!)" }.joined(separator: ", "))")
      XCTAssertEqual(metrics.map { $0["step"] as? Int }, [24, 48, 60], "\(layout): the epochs' ends and the last step")
      if let reference {
        XCTAssertTrue(tensors == reference.data, "\(layout): parameters differ from \(layouts[0])")
        for (line, (mine, theirs)) in zip(metrics, reference.metrics).enumerated() {
          for key in ["step", "train_loss", "train_recon", "train_kl", "test_loss", "test_recon", "test_kl", "train_images"] {
            XCTAssertEqual("\(mine[key] ?? "none")", "\(theirs[key] ?? "none")", "\(layout): \(key) of metrics line \(line + 1)")
          }
        }
      } else {
        reference = (tensors, metrics)
      }
      if layout.ranks == 2 { XCTAssertTrue(result.output.contains("shards     1,500 · 1,500 images per rank"), result.output) }
      if layout.ranks == 4 {
        XCTAssertTrue(result.output.contains("shards     750 · 750 · 750 · 750 images per rank"), result.output)
        XCTAssertTrue(result.output.contains("MPI (Open MPI), 4 ranks"))
      }
      if layout.ranks == nil { XCTAssertTrue(result.output.contains("single process (no MPI launcher found)")) }
      // Only rank zero prints: one banner, one epoch line.
      XCTAssertEqual(result.output.components(separatedBy: "vae-dist: convolutional VAE").count, 2, result.output)
      XCTAssertEqual(result.output.components(separatedBy: "step 60  train").count, 2, result.output)
    }
  }

  func testUnevenShardsAcrossThreeRanks() throws {
    let data = try Harness.smallRealDataset()
    let out = temporaryDirectory()
    let result = try Harness.run(
      Harness.mpirun,
      try Harness.mpirunArguments(
        ranks: 3, ["--data", data, "--max-steps", "3", "--out", out, "--progress", "none", "--iw-samples", "0"]))
    XCTAssertEqual(result.status, 0, result.all)
    // 8 streams of 375 images dealt 2 · 3 · 3: rank zero, which also evaluates, gets the lighter share.
    XCTAssertTrue(result.output.contains("shards     750 · 1,125 · 1,125 images per rank"), result.output)
  }

  func testTooFewMicroBatchesForTheRanksIsRejectedOnce() throws {
    try Harness.requireRealData()
    let result = try Harness.run(
      Harness.mpirun,
      try Harness.mpirunArguments(ranks: 4, ["--batch-size", "2", "--micro-batch", "1", "--out", temporaryDirectory()]),
      timeout: 60)
    XCTAssertEqual(result.status, 2, "the configuration status")
    XCTAssertEqual(result.error.components(separatedBy: "fewer than the 4 ranks").count, 2, result.error)
  }

  /// Starts a long 2-rank job, waits until it trains, does `act` to one rank, and returns how long
  /// the job took to end after that.
  func disturbOneRank(_ extra: [String], act: @escaping (pid_t) -> Void) throws -> (result: Harness.Result, secondsAfter: Double) {
    try Harness.requireRealData()
    var actedAt = Date()
    let arguments = try Harness.mpirunArguments(
      ranks: 2, ["--epochs", "30", "--out", temporaryDirectory(), "--progress", "lines", "--iw-samples", "0"] + extra)
    let result = try Harness.run(Harness.mpirun, arguments, timeout: 120) { mpirun in
      var ranks: [pid_t] = []
      for _ in 0..<300 where ranks.count < 2 {
        usleep(100_000)
        ranks = childProcesses(of: mpirun.processIdentifier)
      }
      XCTAssertEqual(ranks.count, 2, "the ranks did not start")
      sleep(5)  // loading and a few dozen steps
      actedAt = Date()
      if let victim = ranks.last { act(victim) }
    }
    return (result, Date().timeIntervalSince(actedAt))
  }

  func testKilledRankEndsTheJobQuickly() throws {
    let (result, seconds) = try disturbOneRank([]) { kill($0, SIGKILL) }
    print("killed rank: job ended \(seconds) s after kill -9, status \(result.status)")
    XCTAssertNotEqual(result.status, 0)
    XCTAssertLessThan(seconds, 10)
    XCTAssertTrue(result.all.contains("rank 1"), result.all)
  }

  func testStalledRankEndsTheJobNamingRankAndPhase() throws {
    var stopped: pid_t = 0
    let (result, seconds) = try disturbOneRank(["--stall-timeout", "3"]) { stopped = $0; kill($0, SIGSTOP) }
    kill(stopped, SIGKILL)
    print("stalled rank: job ended \(seconds) s after SIGSTOP, status \(result.status)")
    XCTAssertEqual(result.status, 3, "the peer-lost status, which the supervisor restarts")
    XCTAssertLessThan(seconds, 15)
    XCTAssertTrue(result.error.contains("rank 0"), result.error)
    XCTAssertTrue(result.error.contains("waited 3 s in the gradient allreduce of step"), result.error)
  }
}

/// Direct children of a process (mpirun forks the local ranks itself).
func childProcesses(of parent: pid_t) -> [pid_t] {
  guard let text = try? String(contentsOfFile: "/proc/\(parent)/task/\(parent)/children", encoding: .utf8) else { return [] }
  return text.split(separator: " ").compactMap { pid_t($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
}

extension DistributedRunTests {
  /// Rank zero's long work at the end (pictures, the likelihood estimate) must not leave the other
  /// ranks waiting in a collective long enough for the stall timeout to end the job.
  func testRankZeroFinalWorkOutlastsTheStallTimeout() throws {
    let data = try Harness.smallRealDataset()
    let out = temporaryDirectory()
    let result = try Harness.run(
      Harness.mpirun,
      try Harness.mpirunArguments(
        ranks: 2, ["--data", data, "--max-steps", "3", "--iw-samples", "60", "--stall-timeout", "2", "--out", out,
                   "--progress", "none", "--threads", "1"]))
    XCTAssertEqual(result.status, 0, result.all)
    XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/evaluation.json"), result.all)
    XCTAssertTrue(result.output.contains("peak resident memory per rank"), result.output)
  }
}
