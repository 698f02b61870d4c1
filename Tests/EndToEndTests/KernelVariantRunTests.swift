import Foundation
import XCTest

/// The convolution kernels' variants (VAE_DIST_KERNELS) train to the same bits: each variant this CPU
/// has, alone, the portable one with glibc's libm on its non-FMA paths (a CPU without FMA), and a
/// 2-rank job whose rank 1 is forced to the portable kernels, as a cluster of mixed CPU generations
/// would run. On the small real data set with 100 test images: the portable kernels are slow, and
/// the evaluation of 500 took most of their time.
final class KernelVariantRunTests: XCTestCase {
  func arguments(_ out: String, data: String) -> [String] {
    [
      "--data", data, "--max-steps", "6", "--batch-size", "32", "--seed", "4", "--progress", "none",
      "--iw-samples", "0", "--plot-every", "0", "--threads", "1", "--out", out,
    ]
  }

  func testEveryVariantAndAMixedJobGiveTheSameBits() throws {
    let data = try Harness.smallRealDataset(test: 100)
    let binary = try Harness.requireBinary()
    var reference: (name: String, data: Data)?
    func check(_ name: String, _ out: String, _ result: Harness.Result) throws {
      XCTAssertEqual(result.status, 0, "\(name): \(result.all)")
      let tensors = try Harness.safetensors(out + "/model.safetensors").data
      print("\(name): \(String(format: "%.1f", result.seconds)) s, test loss \(try Harness.metrics(out)[0]["test_loss"]!)")
      if let reference {
        XCTAssertTrue(tensors == reference.data, "\(name): parameters differ from \(reference.name)")
      } else {
        reference = (name, tensors)
      }
    }
    for variant in ["avx512", "avx2", "avx512_on_avx2", "portable"] {
      let out = temporaryDirectory()
      let result = try Harness.run(binary, arguments(out, data: data), environment: ["VAE_DIST_KERNELS": variant])
      if result.status != 0 && result.error.contains("this CPU lacks the instructions of the \(variant) kernels") {
        XCTAssertEqual(result.status, 2)
        print("\(variant): refused on this CPU, as it must be")
        continue
      }
      XCTAssertTrue(result.output.contains("kernels \(variant)"), result.output)
      try check("alone, VAE_DIST_KERNELS=\(variant)", out, result)
    }
    // A CPU without FMA also takes glibc's non-FMA paths of expf, log, cos and sin (the loss, the
    // reparameterization, the noise), which round differently on a few inputs: expf(32.564632) is
    // 0x56fc9f1c with FMA and 0x56fc9f1b without. The same tunable turns those paths on here; the
    // probe shows that it did, so this case cannot pass by accident.
    let noFMA = ["GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX2,-FMA"]
    let probe = ["python3", "-c", "import ctypes; m = ctypes.CDLL('libm.so.6'); m.expf.restype = ctypes.c_float; "
      + "m.expf.argtypes = [ctypes.c_float]; print(m.expf(32.564632415771484).hex())"]
    let withFMA = try Harness.run("/usr/bin/env", probe), withoutFMA = try Harness.run("/usr/bin/env", probe, environment: noFMA)
    for result in [withFMA, withoutFMA] {
      XCTAssertEqual(result.status, 0, "the libm probe needs python3 (launch/setup.sh installs it): \(result.all)")
    }
    XCTAssertNotEqual(
      withFMA.output, withoutFMA.output,
      "GLIBC_TUNABLES=\(noFMA.values.first!) no longer changes glibc's expf (\(withFMA.all)): find this glibc's way to turn off its FMA paths")
    let noFMAOut = temporaryDirectory()
    let noFMARun = try Harness.run(
      binary, arguments(noFMAOut, data: data), environment: noFMA.merging(["VAE_DIST_KERNELS": "portable"]) { $1 })
    try check("alone, portable kernels, glibc without FMA", noFMAOut, noFMARun)
    // MPMD: rank 0 with the default kernels, rank 1 with the portable ones.
    let out = temporaryDirectory()
    let common = ["--oversubscribe", "--bind-to", "none"]
    let mixed = try Harness.run(
      Harness.mpirun,
      common + ["-n", "1", binary] + arguments(out, data: data) + [":"] + ["-n", "1", "-x", "VAE_DIST_KERNELS=portable", binary]
        + arguments(out, data: data))
    try check("mpirun -n 2, rank 1 portable", out, mixed)

    let refused = try Harness.run(binary, ["bench"], environment: ["VAE_DIST_KERNELS": "sse9"])
    XCTAssertEqual(refused.status, 2)
    XCTAssertTrue(refused.error.contains("VAE_DIST_KERNELS=sse9 is not a kernel variant"), refused.error)
  }
}
