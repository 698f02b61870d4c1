import Foundation
import XCTest

/// The saved model in PyTorch: strict load_state_dict into the module its names describe, and the
/// same test loss from PyTorch's own layers as from vae-dist's (on the small real data set's 500
/// test images: PyTorch evaluates in double precision, 11 s for all 10,000).
final class PyTorchCompatibilityTests: XCTestCase {
  func testModelLoadsIntoPyTorchAndComputesTheSameLoss() throws {
    let data = try Harness.smallRealDataset()
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("pytorch/check_model.py").path
    try Harness.requirePython("torch, safetensors", what: "PyTorch")
    let out = temporaryDirectory()
    let train = try Harness.vaeDist(
      ["--data", data, "--max-steps", "60", "--seed", "3", "--out", out, "--progress", "none", "--iw-samples", "0"])
    XCTAssertEqual(train.status, 0, train.all)
    let model = out + "/model.safetensors"

    let torch = try Harness.run("/usr/bin/env", ["python3", script, model, data], timeout: 300)
    XCTAssertEqual(torch.status, 0, torch.all)
    let ours = try Harness.vaeDist(["evaluate", "--checkpoint", model, "--data", data, "--json", "--iw-samples", "0"])
    XCTAssertEqual(ours.status, 0, ours.all)
    let t = try JSONSerialization.jsonObject(with: Data(torch.output.utf8)) as! [String: Any]
    let v = try JSONSerialization.jsonObject(with: Data(ours.output.utf8)) as! [String: Any]
    XCTAssertEqual(t["parameters"] as? Int, 134_165)
    XCTAssertEqual(t["images"] as? Int, 500)
    for key in ["test_loss_mean_z", "test_recon_mean_z", "test_kl_mean_z"] {
      let a = t[key] as! Double, b = v[key] as! Double
      print("PyTorch \(key) \(a), vae-dist \(b), relative difference \(abs(a - b) / abs(a))")
      XCTAssertEqual(a, b, accuracy: 1e-5 * abs(a), key)
    }
    print("dead hidden units: PyTorch \(t["test_dead_hidden_units"] ?? "?"), vae-dist \(v["test_dead_hidden_units"] ?? "?")")
    XCTAssertEqual(t["test_dead_hidden_units"] as? Int, v["test_dead_hidden_units"] as? Int)
    // A checkpoint's model file is a plain state_dict too: the step-60 checkpoint holds the same
    // parameters as the final model.
    let checkpoint = try Harness.run("/usr/bin/env", ["python3", script, out + "/checkpoints/step-00000060/model.safetensors", data], timeout: 300)
    XCTAssertEqual(checkpoint.status, 0, checkpoint.all)
    let c = try JSONSerialization.jsonObject(with: Data(checkpoint.output.utf8)) as! [String: Any]
    XCTAssertEqual(c["test_loss_mean_z"] as? Double, t["test_loss_mean_z"] as? Double)
  }
}
