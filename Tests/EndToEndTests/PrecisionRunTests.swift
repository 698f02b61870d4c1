import Foundation
import XCTest

/// `--precision bf16` (issue 22): the issue's run, `train --precision bf16 --max-steps 60 --seed 4`
/// (on the small real data set), gives one `model.safetensors` alone with 2 threads (natively with
/// VDPBF16PS on a CPU with AVX512_BF16), under mpirun -n 2, with the portable kernels and with the
/// avx512 pair kernels built for AVX2 (VDPBF16PS modelled by FMAs); it is not fp32's model; the checkpoint records the precision, a
/// resume in the other precision is refused, and the model file stays float32 for PyTorch.
final class PrecisionRunTests: XCTestCase {
  func arguments(_ out: String, data: String, threads: Int, precision: String = "bf16") -> [String] {
    [
      "--data", data, "--precision", precision, "--max-steps", "60", "--seed", "4", "--progress", "none",
      "--iw-samples", "0", "--plot-every", "0", "--tensorboard", "none", "--threads", "\(threads)", "--out", out,
    ]
  }

  func testBF16GivesTheSameBitsForEveryLayoutAndVariant() throws {
    let data = try Harness.smallRealDataset()
    let binary = try Harness.requireBinary()
    var reference: (name: String, data: Data)?
    func check(_ name: String, _ out: String, _ result: Harness.Result) throws -> Data {
      XCTAssertEqual(result.status, 0, "\(name): \(result.all)")
      let (header, tensors) = try Harness.safetensors(out + "/model.safetensors")
      print("\(name): \(String(format: "%.1f", result.seconds)) s, test loss \(try Harness.metrics(out).last!["test_loss"]!)")
      for (name, entry) in header where name != "__metadata__" {
        XCTAssertEqual((entry as? [String: Any])?["dtype"] as? String, "F32", "\(name) is stored as float32")
      }
      if let reference {
        XCTAssertTrue(tensors == reference.data, "\(name): parameters differ from \(reference.name)")
      } else {
        reference = (name, tensors)
      }
      return tensors
    }
    let alone = temporaryDirectory()
    let result = try Harness.run(binary, arguments(alone, data: data, threads: 2))
    // The banner says how: natively where the CPU has AVX512_BF16 (a fallback to the emulation there
    // means its instruction did not give the model's bits: a failure here), else emulated.
    let flags = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8))?
      .split(separator: "\n").first { $0.hasPrefix("flags") }?.split(separator: " ").map(String.init) ?? []
    if flags.contains("avx512f") && flags.contains("avx512_bf16") {
      XCTAssertTrue(result.output.contains("bf16 (native: VDPBF16PS)"), result.output)
    } else {
      XCTAssertTrue(result.output.contains("bf16 (emulated: this CPU lacks AVX512_BF16)"), result.output)
    }
    print(result.output.split(separator: "\n").first { $0.contains("mode") } ?? "")
    _ = try check("alone, 2 threads", alone, result)
    let distributed = temporaryDirectory()
    _ = try check(
      "mpirun -n 2", distributed,
      try Harness.run(Harness.mpirun, try Harness.mpirunArguments(ranks: 2, arguments(distributed, data: data, threads: 1))))
    let portable = temporaryDirectory()
    _ = try check(
      "VAE_DIST_KERNELS=portable", portable,
      try Harness.run(binary, arguments(portable, data: data, threads: 2), environment: ["VAE_DIST_KERNELS": "portable"]))
    let modelled = temporaryDirectory()
    let pairs = try Harness.run(
      binary, arguments(modelled, data: data, threads: 2), environment: ["VAE_DIST_KERNELS": "avx512_on_avx2"])
    XCTAssertTrue(pairs.output.contains("bf16 (VDPBF16PS modelled by FMAs"), pairs.output)
    _ = try check("VAE_DIST_KERNELS=avx512_on_avx2 (the pair kernels, VDPBF16PS modelled)", modelled, pairs)

    // fp32 is another model, and a resume across precisions is refused naming both.
    let fp32 = temporaryDirectory()
    let plain = try Harness.run(binary, arguments(fp32, data: data, threads: 2, precision: "fp32"))
    XCTAssertEqual(plain.status, 0, plain.all)
    XCTAssertFalse(try Harness.safetensors(fp32 + "/model.safetensors").data == reference!.data, "bf16 trained fp32's model")
    let run = try String(contentsOfFile: alone + "/run.json", encoding: .utf8)
    XCTAssertTrue(run.contains("\"precision\" : \"bf16\""), run)
    var resume = arguments(alone, data: data, threads: 2, precision: "fp32") + ["--resume"]
    resume[resume.firstIndex(of: "60")!] = "70"
    let refused = try Harness.run(binary, resume)
    XCTAssertEqual(refused.status, 7, "the refused status")
    XCTAssertTrue(refused.error.contains("--precision fp32 (the checkpoint has bf16)"), refused.error)

    // PyTorch loads the bf16 run's model as float32 and computes what `vae-dist evaluate` (fp32) does.
    try Harness.requirePython("torch, safetensors", what: "PyTorch")
    let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("pytorch/check_model.py").path
    let torch = try Harness.run("/usr/bin/env", ["python3", script, alone + "/model.safetensors", data], timeout: 300)
    XCTAssertEqual(torch.status, 0, torch.all)
    let ours = try Harness.run(
      binary, ["evaluate", "--checkpoint", alone + "/model.safetensors", "--data", data, "--json", "--iw-samples", "0"])
    XCTAssertEqual(ours.status, 0, ours.all)
    let t = try JSONSerialization.jsonObject(with: Data(torch.output.utf8)) as! [String: Any]
    let v = try JSONSerialization.jsonObject(with: Data(ours.output.utf8)) as! [String: Any]
    let a = t["test_loss_mean_z"] as! Double, b = v["test_loss_mean_z"] as! Double
    print("bf16-trained model: PyTorch test loss (z = μ) \(a), vae-dist evaluate \(b)")
    XCTAssertEqual(a, b, accuracy: 1e-5 * abs(a))

    // launch/precision-benchmark.sh (the issue's speed measurement) runs and reports the CPU, how
    // bf16 runs on it and the pairs' ratio; bench's JSON says how bf16 ran.
    let benchmark = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .deletingLastPathComponent().appendingPathComponent("launch/precision-benchmark.sh").path
    let work = temporaryDirectory()
    let speed = try Harness.run(
      "/usr/bin/env", ["VAE_DIST_BINARY=\(binary)", benchmark, "--pairs", "1", "--steps", "3", "--layer-seconds", "0.05", "--out", work], timeout: 300)
    XCTAssertEqual(speed.status, 0, speed.all)
    XCTAssertTrue(speed.output.contains("bf16 / fp32 median"), speed.output)
    XCTAssertTrue(speed.output.contains("convT2 64→32 s2 backward-weights"), speed.output)
    print(speed.output.split(separator: "\n").first { $0.hasPrefix("CPU") } ?? "")
    let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: work + "/bench-bf16-1.json"))) as! [String: Any]
    XCTAssertEqual(json["precision"] as? String, "bf16")
    let mode = json["bf16Mode"] as? String ?? ""
    XCTAssertTrue(mode.hasPrefix("native") || mode.hasPrefix("emulated"), mode)
    // The instructions' peaks: the FMA loop's always; VDPBF16PS's exactly where the CPU has it (native
    // kernels need it; "lacks AVX512_BF16" means it is not there), and never more than twice the FMA
    // loop's multiply-adds with room for a noisy host.
    let fma = json["fmaPeakGigaflopsPerSecond"] as! Double, dp = json["bf16PeakGigaflopsPerSecond"] as? Double
    print(speed.output.split(separator: "\n").filter { $0.contains(" peak") }.joined(separator: "\n"))
    XCTAssertGreaterThan(fma, 1)
    if mode.hasPrefix("native") { XCTAssertGreaterThan(dp ?? 0, 1, "native bf16 without a VDPBF16PS peak") }
    if mode.contains("lacks AVX512_BF16") { XCTAssertNil(dp, "a VDPBF16PS peak on a CPU that lacks it") }
    if let dp {
      XCTAssertLessThan(dp, 4 * fma)
      XCTAssertEqual(json["fractionOfBf16Peak"] as! Double, (json["gigaflopsPerSecond"] as! Double) / dp, accuracy: 1e-9)
      XCTAssertTrue(speed.output.contains("× the FMA peak (the most bf16 can gain here)"), speed.output)
    } else {
      XCTAssertTrue(speed.output.contains("VDPBF16PS peak: none, this CPU lacks AVX512_BF16"), speed.output)
    }

    let unknown = try Harness.run(binary, ["train", "--precision", "fp16"])
    XCTAssertEqual(unknown.status, 2)
    XCTAssertTrue(unknown.error.contains("'--precision"), unknown.error)
  }
}
