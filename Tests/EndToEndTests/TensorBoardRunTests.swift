import Foundation
import XCTest

/// TensorBoard's own reader (EventAccumulator, through Tests/tensorboard/read_events.py) on what a
/// run wrote into DIR/tensorboard: the same numbers as metrics.jsonl, the same PNGs as images/, one
/// value per step after a stop and a resume.
final class TensorBoardRunTests: XCTestCase {
  var data = ""

  override func setUpWithError() throws {
    data = try Harness.smallRealDataset()
    try Harness.requirePython("tensorboard", what: "TensorBoard")
  }

  struct Events {
    var scalars: [String: [(step: Int, value: Double)]]
    var images: [String: [(step: Int, png: Data)]]
    var texts: [String: [(step: Int, text: String)]]
  }

  func read(_ logdir: String) throws -> Events {
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("tensorboard/read_events.py").path
    let result = try Harness.run("/usr/bin/env", ["python3", script, logdir], timeout: 120)
    XCTAssertEqual(result.status, 0, result.error)
    let json = try JSONSerialization.jsonObject(with: result.outputData) as! [String: [String: [[Any]]]]
    return Events(
      scalars: json["scalars"]!.mapValues { $0.map { ($0[0] as! Int, ($0[1] as? Double) ?? .nan) } },
      images: json["images"]!.mapValues { $0.map { ($0[0] as! Int, Data(base64Encoded: $0[3] as! String)!) } },
      texts: json["texts"]!.mapValues { $0.map { ($0[0] as! Int, "\($0[1])") } })
  }

  /// The epoch scalars equal metrics.jsonl's figures at the same steps (to float precision).
  func assertEpochScalarsMatchMetrics(_ out: String, _ events: Events, file: StaticString = #filePath, line: UInt = #line) throws {
    let metrics = try Harness.metrics(out)
    for key in ["train_loss", "train_recon", "train_kl", "test_loss", "test_recon", "test_kl", "test_loss_mean_z"] {
      let series = events.scalars["epoch/\(key)"] ?? []
      XCTAssertEqual(series.map(\.step), metrics.map { $0["step"] as! Int }, key, file: file, line: line)
      for (point, record) in zip(series, metrics) {
        let expected = record[key] as! Double
        XCTAssertEqual(point.value, expected, accuracy: 1e-6 * abs(expected), key, file: file, line: line)
      }
    }
    let dead = events.scalars["epoch/test_dead_hidden_units"] ?? []
    XCTAssertEqual(dead.map(\.value), metrics.map { ($0["test_dead_hidden_units"] as? NSNumber)?.doubleValue ?? -1 }, file: file, line: line)
  }

  func testTwoRanksTwoEpochsReadBackByTensorBoard() throws {
    let out = temporaryDirectory()
    let arguments = try Harness.mpirunArguments(
      ranks: 2, ["--data", data, "--out", out, "--epochs", "2", "--plot-every", "1", "--log-every", "4", "--iw-samples", "4", "--progress", "none"])
    let run = try Harness.run(Harness.mpirun, arguments)
    XCTAssertEqual(run.status, 0, run.all)
    let events = try read(out + "/tensorboard")
    try assertEpochScalarsMatchMetrics(out, events)
    // Training scalars every 4 steps: 24 steps an epoch.
    XCTAssertEqual(events.scalars["train/loss"]?.map(\.step), Array(stride(from: 4, through: 48, by: 4)))
    XCTAssertEqual(events.scalars["train/lr"]?.first?.value ?? 0, 1e-3, accuracy: 1e-9)
    let evaluation = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/evaluation.json"))) as! [String: Any]
    XCTAssertEqual(events.scalars["final/test_log_likelihood_iw"]?.first?.value ?? 0, evaluation["test_log_likelihood_iw"] as! Double, accuracy: 1e-3)
    // The pictures: once per epoch (--plot-every 1; the last epoch's are the final ones), the same bytes as images/.
    for name in ["reconstructions", "samples", "manifold", "latent-scatter", "interpolation", "loss-curves"] {
      let series = events.images["images/" + name] ?? []
      XCTAssertEqual(series.map(\.step), [24, 48], name)
      XCTAssertEqual(series.last?.png, try Data(contentsOf: URL(fileURLWithPath: "\(out)/images/\(name).png")), name)
    }
    XCTAssertTrue(events.texts["settings"]?.first?.text.contains("| seed | 0 |") ?? false, "\(events.texts)")
  }

  /// A run that logged past its last checkpoint before it ended, resumed: TensorBoard sees one value
  /// per step (the resumed file's SessionLog START supersedes the old file's later events).
  /// A new run into a folder whose earlier run left its TensorBoard file but no checkpoint (killed in
  /// its first steps, or restarted from scratch by a supervisor) has one value per step, its own.
  func testANewRunOverAnEarlierRunsLogHasOneValuePerStep() throws {
    let out = temporaryDirectory()
    let common = ["--data", data, "--out", out, "--log-every", "4", "--iw-samples", "0", "--progress", "none"]
    XCTAssertEqual(try Harness.vaeDist(common + ["--max-steps", "12", "--seed", "5"]).status, 0)
    // As if it had died before its first checkpoint: its log stays, nothing else of it.
    for name in try FileManager.default.contentsOfDirectory(atPath: out) where name != "tensorboard" {
      try FileManager.default.removeItem(atPath: out + "/" + name)
    }
    let again = try Harness.vaeDist(common + ["--max-steps", "8"])
    XCTAssertEqual(again.status, 0, again.all)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out + "/tensorboard").count, 2)
    let events = try read(out + "/tensorboard")
    for (tag, series) in events.scalars {
      XCTAssertEqual(series.map(\.step), Array(Set(series.map(\.step))).sorted(), "\(tag): one value per step")
    }
    XCTAssertEqual(events.scalars["train/loss"]?.map(\.step), [4, 8])
    // (The earlier run's settings text stays in this reader: its legacy EventAccumulator purges
    // scalars, images and histograms at a SessionLog START, not tensors; TensorBoard's server
    // purges those too.)
    try assertEpochScalarsMatchMetrics(out, events)
  }

  func testResumedRunHasOneValuePerStep() throws {
    let out = temporaryDirectory()
    let common = ["--data", data, "--out", out, "--log-every", "4", "--iw-samples", "0", "--progress", "none", "--checkpoint-every", "16", "--keep", "10"]
    XCTAssertEqual(try Harness.vaeDist(common + ["--max-steps", "34"]).status, 0)
    // As if the run had died after step 34 with its newest checkpoints lost: it resumes from 16.
    for name in ["step-00000024", "step-00000032", "step-00000034"] {
      try? FileManager.default.removeItem(atPath: "\(out)/checkpoints/\(name)")
    }
    let resumed = try Harness.vaeDist(common + ["--max-steps", "48", "--resume"])
    XCTAssertEqual(resumed.status, 0, resumed.all)
    XCTAssertTrue(resumed.output.contains("at step 16"), resumed.output)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out + "/tensorboard").count, 2, "a new file on resume")
    let events = try read(out + "/tensorboard")
    for (tag, series) in events.scalars {
      XCTAssertEqual(series.map(\.step), Array(Set(series.map(\.step))).sorted(), "\(tag): one value per step")
    }
    XCTAssertEqual(events.scalars["train/loss"]?.map(\.step), Array(stride(from: 4, through: 48, by: 4)))
    try assertEpochScalarsMatchMetrics(out, events)
    XCTAssertEqual(events.scalars["epoch/test_loss"]?.map(\.step), [24, 48])
  }
}
