import Foundation
import XCTest

/// Short runs on the real Fashion-MNIST with the built binary.
final class TrainingRunTests: XCTestCase {
  /// 100 steps from a random start: the loss must fall far below where it starts. At initialization
  /// the decoder outputs ≈ σ(0) for every pixel, so the summed BCE is ≈ 784·ln 2 ≈ 543 per image.
  func testShortRunLossDropsAndTheModelIsWritten() throws {
    try Harness.requireRealData()
    let out = temporaryDirectory()
    let result = try Harness.vaeDist(["--max-steps", "100", "--out", out, "--progress", "none", "--iw-samples", "0"])
    XCTAssertEqual(result.status, 0, result.all)
    let metrics = try Harness.metrics(out)
    XCTAssertEqual(metrics.count, 1)
    let line = metrics[0]
    let train = line["train_loss"] as! Double, test = line["test_loss"] as! Double
    print("after 100 steps: train loss \(train), test loss \(test) (start ≈ 543)")
    XCTAssertEqual(line["step"] as? Int, 100)
    XCTAssertLessThan(test, 420)
    XCTAssertLessThan(train, 480)
    for key in ["epoch", "train_recon", "train_kl", "test_recon", "test_kl", "images_per_sec", "seconds"] {
      XCTAssertNotNil(line[key] as? NSNumber, "metrics.jsonl lacks \(key)")
    }
    let recon = line["test_recon"] as! Double, kl = line["test_kl"] as! Double
    XCTAssertEqual(recon + kl, test, accuracy: 1e-6 * test)

    // The model file: PyTorch's names and shapes, F32, offsets tiling the data.
    let (header, data) = try Harness.safetensors(out + "/model.safetensors")
    let expected: [String: [Int]] = [
      "encoder.conv1.weight": [32, 1, 3, 3], "encoder.conv1.bias": [32],
      "encoder.conv2.weight": [64, 32, 3, 3], "encoder.conv2.bias": [64],
      "encoder.fc.weight": [16, 3136], "encoder.fc.bias": [16],
      "encoder.z_mean.weight": [2, 16], "encoder.z_mean.bias": [2],
      "encoder.z_log_var.weight": [2, 16], "encoder.z_log_var.bias": [2],
      "decoder.fc.weight": [3136, 2], "decoder.fc.bias": [3136],
      "decoder.deconv1.weight": [64, 64, 3, 3], "decoder.deconv1.bias": [64],
      "decoder.deconv2.weight": [64, 32, 3, 3], "decoder.deconv2.bias": [32],
      "decoder.deconv3.weight": [32, 1, 3, 3], "decoder.deconv3.bias": [1],
    ]
    var total = 0
    for (name, shape) in expected {
      let entry = try XCTUnwrap(header[name] as? [String: Any], name)
      XCTAssertEqual(entry["dtype"] as? String, "F32")
      XCTAssertEqual(entry["shape"] as? [Int], shape, name)
      let offsets = entry["data_offsets"] as! [Int]
      XCTAssertEqual(offsets[1] - offsets[0], 4 * shape.reduce(1, *), name)
      total += shape.reduce(1, *)
    }
    XCTAssertEqual(total, 134_165)
    XCTAssertEqual(data.count, 4 * total)
    XCTAssertEqual(Set(header.keys).subtracting(["__metadata__"]), Set(expected.keys))
  }
}
