import Foundation
import XCTest

/// What a trained VAE gives its user, from the built binary on a 3,000-image subset of the real data.
final class PicturesRunTests: XCTestCase {
  /// Width and height from a PNG's IHDR, after checking the signature.
  func pngSize(_ path: String) throws -> (Int, Int) {
    let data = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
    XCTAssertEqual(Array(data.prefix(8)), [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A], path)
    XCTAssertEqual(String(decoding: data[12..<16], as: UTF8.self), "IHDR", path)
    func word(_ at: Int) -> Int { data[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
    return (word(16), word(20))
  }

  func testTrainingEndsWithPicturesAndTheLikelihoodEstimate() throws {
    let data = try Harness.smallRealDataset()
    let out = temporaryDirectory()
    let result = try Harness.vaeDist(
      ["--data", data, "--epochs", "2", "--seed", "5", "--out", out, "--progress", "none", "--iw-samples", "8", "--plot-every", "1"])
    XCTAssertEqual(result.status, 0, result.all)
    XCTAssertTrue(result.output.contains("importance-weighted log-likelihood: k = 8 samples for each of"), result.output)
    for name in ["reconstructions", "samples", "manifold", "latent-scatter", "interpolation", "loss-curves"] {
      let (width, height) = try pngSize("\(out)/images/\(name).png")
      XCTAssertGreaterThan(width * height, 100 * 100, name)
    }
    XCTAssertEqual(try pngSize(out + "/images/manifold.png").0, max(20 * 28 + 21 * 0, 8 * 70), "20 images of 28 px per row, or the title")
    let evaluation = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/evaluation.json"))) as! [String: Any]
    let elbo = evaluation["test_elbo"] as! Double, iw = evaluation["test_log_likelihood_iw"] as! Double
    print("after 2 epochs on 3,000 images: test ELBO \(elbo), IW log-likelihood (k = 8) \(iw)")
    XCTAssertGreaterThan(iw, elbo)
    XCTAssertTrue(result.output.contains("importance-weighted log-likelihood (k = 8)"), result.output)
    let metrics = try Harness.metrics(out)
    XCTAssertNotNil(metrics.last?["test_loss_mean_z"] as? Double)
    // z = μ removes the sampling noise from the reconstruction: its loss is lower.
    XCTAssertLessThan(metrics.last!["test_recon_mean_z"] as! Double, metrics.last!["test_recon"] as! Double)

    // The picture commands on the saved model.
    let model = out + "/model.safetensors"
    let commands: [[String]] = [
      ["sample", "--grid", "6"], ["reconstruct"], ["interpolate", "--from", "3", "--to", "7"], ["latent-scatter"],
      ["manifold", "--grid", "10"],
    ]
    for command in commands {
      let picture = temporaryDirectory() + "/\(command[0]).png"
      // sample and manifold decode points of the latent space: they read no test image, and take no --data.
      let readsTestImages = !["sample", "manifold"].contains(command[0])
      let run = try Harness.vaeDist(command + ["--checkpoint", model, "--output", picture] + (readsTestImages ? ["--data", data] : []))
      XCTAssertEqual(run.status, 0, "\(command): \(run.all)")
      XCTAssertGreaterThan(try pngSize(picture).0, 0)
    }
    // Without --seed, from the run's folder: the run's own seed (the file records it), so the run's
    // picture comes out again, bit for bit.
    let again = temporaryDirectory() + "/reconstructions.png"
    let redrawn = try Harness.vaeDist(["reconstruct", "--checkpoint", out, "--data", data, "--output", again])
    XCTAssertEqual(redrawn.status, 0, redrawn.all)
    XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: again)), try Data(contentsOf: URL(fileURLWithPath: out + "/images/reconstructions.png")))
    let curves = temporaryDirectory() + "/curves.png"
    XCTAssertEqual(try Harness.vaeDist(["plot-metrics", "--metrics", out + "/metrics.jsonl", "--output", curves]).status, 0)
    // Bad requests name what is wrong.
    var bad = try Harness.vaeDist(["manifold", "--checkpoint", model, "--output", curves, "--dims", "0,5"])
    XCTAssertNotEqual(bad.status, 0)
    XCTAssertTrue(bad.error.contains("--dims"), bad.error)
    bad = try Harness.vaeDist(["manifold", "--checkpoint", model, "--output", curves, "--dims", "0,x,1"])
    XCTAssertTrue(bad.status != 0 && bad.error.contains("--dims"), "0,x,1 was read as 0,1: \(bad.all)")
    bad = try Harness.vaeDist(["interpolate", "--checkpoint", model, "--data", data, "--output", curves, "--to", "123456"])
    XCTAssertTrue(bad.status != 0 && bad.error.contains("--to 123456: the test set holds"), bad.all)
    bad = try Harness.vaeDist(["sample", "--checkpoint", out + "/nope.safetensors", "--output", curves])
    XCTAssertEqual(bad.status, 4)
    XCTAssertTrue(bad.error.contains("nope.safetensors"), bad.error)

    // evaluate: ELBO and the IW estimate for a checkpoint, with the run's seed unless told another
    // (it used 0 whatever the run's was).
    let evaluated = try Harness.vaeDist(["evaluate", "--checkpoint", model, "--data", data, "--iw-samples", "8", "--json"])
    XCTAssertEqual(evaluated.status, 0, evaluated.all)
    XCTAssertTrue(evaluated.error.contains("  estimate 25%: 128/500 test images"), evaluated.error)
    let json = try JSONSerialization.jsonObject(with: Data(evaluated.output.utf8)) as! [String: Any]
    XCTAssertEqual(json["test_elbo"] as! Double, elbo, accuracy: 1e-9 * abs(elbo))
    XCTAssertEqual(json["test_log_likelihood_iw"] as! Double, iw, accuracy: 1e-9 * abs(iw))
    // The last checkpoint's folder: its model file records the seed too, and holds the same parameters.
    let newest = try FileManager.default.contentsOfDirectory(atPath: out + "/checkpoints").filter { $0.hasPrefix("step-") }.sorted().last!
    let fromFolder = try Harness.vaeDist(["evaluate", "--checkpoint", out + "/checkpoints/" + newest, "--data", data, "--iw-samples", "8", "--json"])
    XCTAssertEqual(fromFolder.status, 0, fromFolder.all)
    let folderJSON = try JSONSerialization.jsonObject(with: Data(fromFolder.output.utf8)) as! [String: Any]
    XCTAssertEqual(folderJSON["test_elbo"] as! Double, elbo, accuracy: 1e-9 * abs(elbo))
  }

  /// A model with one latent dimension: the picture commands' default --dims 0,1 stands for 0,0, as
  /// in training's own pictures (it was refused, with a message asking for two different dimensions).
  func testPicturesOfAOneDimensionalModel() throws {
    let data = try Harness.smallRealDataset()
    let out = temporaryDirectory()
    let trained = try Harness.vaeDist(
      ["--data", data, "--latent-dim", "1", "--max-steps", "3", "--out", out, "--progress", "none", "--iw-samples", "0"])
    XCTAssertEqual(trained.status, 0, trained.all)
    for command in [["manifold", "--grid", "4"], ["latent-scatter", "--data", data]] {
      let picture = temporaryDirectory() + "/\(command[0]).png"
      let run = try Harness.vaeDist(command + ["--checkpoint", out + "/model.safetensors", "--output", picture])
      XCTAssertEqual(run.status, 0, "\(command): \(run.all)")
      XCTAssertGreaterThan(try pngSize(picture).0, 0)
    }
  }

  /// With a learning rate high enough to make the validation loss stall and rise, early stopping
  /// ends the run, and the checkpoint it keeps is the best epoch: the last that improved on the
  /// best before it by more than --min-delta. (With 10 nats the run ends after 5 epochs, its best
  /// the third; with 3 it took 11.)
  func testEarlyStoppingStopsAndKeepsTheBest() throws {
    let data = try Harness.smallRealDataset()
    let out = temporaryDirectory()
    let result = try Harness.vaeDist(
      ["--data", data, "--epochs", "40", "--lr", "0.01", "--batch-size", "64", "--micro-batch", "8", "--val-size", "1000",
       "--early-stopping", "2", "--min-delta", "10", "--keep", "10", "--out", out, "--progress", "none", "--iw-samples", "0"])
    XCTAssertEqual(result.status, 0, result.all)
    XCTAssertTrue(result.output.contains("early stopping after epoch"), result.output)
    let metrics = try Harness.metrics(out)
    XCTAssertLessThan(metrics.count, 40)
    let losses = metrics.map { $0["val_loss"] as! Double }
    let best = losses.enumerated().min { $0.element < $1.element }!
    let flagged = metrics.enumerated().filter { $0.element["best"] as? Bool == true }.map(\.offset)
    print("validation loss per epoch: \(losses.map { (($0 * 100).rounded() / 100) }); best epochs \(flagged.map { $0 + 1 })")
    // The last two epochs did not improve on the best by more than min-delta; the best is kept.
    XCTAssertEqual(flagged.last, metrics.count - 3)
    for loss in losses.suffix(2) { XCTAssertGreaterThanOrEqual(loss, losses[flagged.last!] - 10) }
    let bestStep = metrics[flagged.last!]["step"] as! Int
    let kept = try Harness.safetensors(out + "/checkpoints/best/model.safetensors").data
    let atBest = try Harness.safetensors(out + "/checkpoints/" + String(format: "step-%08d", bestStep) + "/model.safetensors")
    XCTAssertTrue(kept == atBest.data, "checkpoints/best holds the parameters of the best epoch")
    XCTAssertLessThanOrEqual(losses[flagged.last!], best.element + 10)
    XCTAssertTrue(result.output.contains("kept in \(out)/checkpoints/best"), result.output)
  }
}
