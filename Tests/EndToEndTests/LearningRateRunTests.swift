import Foundation
import XCTest

/// Learning-rate schedules (warm-up, cosine, scaling with the batch) are a function of the step:
/// a run stopped in the middle of its warm-up and resumed, with another rank count, ends on the bits
/// of the run that never stopped; metrics.jsonl gives each epoch's last rate.
final class LearningRateRunTests: XCTestCase {
  var data = ""

  override func setUpWithError() throws {
    data = try Harness.smallRealDataset()
  }

  /// Batch 256 on 3,000 images: 12 steps an epoch; a 20-step warm-up, then cosine over 5 epochs.
  func common(_ out: String) -> [String] {
    ["--data", data, "--seed", "9", "--out", out, "--progress", "none", "--iw-samples", "0", "--checkpoint-every", "7",
     "--batch-size", "256", "--epochs", "5", "--lr-schedule", "cosine", "--warmup-steps", "20", "--scale-lr", "linear",
     "--tensorboard", "none"]
  }

  func mpi(_ ranks: Int, _ arguments: [String]) throws -> Harness.Result {
    try Harness.run(Harness.mpirun, try Harness.mpirunArguments(ranks: ranks, arguments), timeout: 300)
  }

  func testAStopMidWarmUpResumesToTheSameBitsAtOneAndTwoRanks() throws {
    let alone = temporaryDirectory()
    let reference = try Harness.vaeDist(common(alone) + ["--max-steps", "30"])
    XCTAssertEqual(reference.status, 0, reference.all)
    XCTAssertTrue(reference.output.contains("warm-up 20 steps, linear scaling with the batch; peak 0.002"), reference.output)
    let expected = try Harness.safetensors(alone + "/model.safetensors").data
    let rates = try Harness.metrics(alone).map { ($0["step"] as! Int, $0["lr"] as! Double) }
    XCTAssertEqual(rates.first?.0, 12)
    XCTAssertEqual(rates.first?.1 ?? 0, 0.002 * 12 / 20, accuracy: 1e-12, "epoch 1 ends in the warm-up")

    // Stopped at step 7 (mid-warm-up) by one process, finished by 2 ranks; and the other way round.
    for (first, second) in [(1, 2), (2, 1)] {
      let out = temporaryDirectory()
      let part = first == 1 ? try Harness.vaeDist(common(out) + ["--max-steps", "7"]) : try mpi(2, common(out) + ["--max-steps", "7"])
      XCTAssertEqual(part.status, 0, part.all)
      let rest = second == 1
        ? try Harness.vaeDist(common(out) + ["--max-steps", "30", "--resume"]) : try mpi(2, common(out) + ["--max-steps", "30", "--resume"])
      XCTAssertEqual(rest.status, 0, rest.all)
      XCTAssertTrue(rest.output.contains("at step 7"), rest.output)
      XCTAssertTrue(
        try Harness.safetensors(out + "/model.safetensors").data == expected,
        "stopped at step 7 with \(first) rank(s), resumed with \(second): other bits than the run that never stopped")
    }

    // The schedule is part of the run's identity: resuming with another warm-up is refused.
    let refused = try Harness.vaeDist(common(alone).map { $0 == "20" ? "10" : $0 } + ["--max-steps", "40", "--resume"])
    XCTAssertEqual(refused.status, 7, refused.all)
    XCTAssertTrue(refused.error.contains("learning-rate schedule"), refused.error)
  }
}
