import Foundation
import XCTest

/// `vae-dist bench`: its report must be self-consistent (phases add up to the step, the rate follows
/// from the step time, the GEMM-peak fraction from the two rates), alone and under mpirun. The
/// figures themselves are the benchmark's business, not the tests'.
final class BenchmarkRunTests: XCTestCase {
  func bench(ranks: Int, _ arguments: [String]) throws -> [String: Any] {
    let all = ["bench", "--json", "--steps", "4", "--warmup", "1"] + arguments
    let result =
      ranks == 1
      ? try Harness.vaeDist(all)
      : try Harness.run(Harness.mpirun, try Harness.mpirunArguments(ranks: ranks, all))
    XCTAssertEqual(result.status, 0, result.all)
    return try JSONSerialization.jsonObject(with: Data(result.output.utf8)) as! [String: Any]
  }

  func testReportIsConsistentAloneWithTheGemmPeak() throws {
    try Harness.requireRealData()
    let r = try bench(ranks: 1, ["--threads", "2", "--gemm-peak"])
    let rate = r["imagesPerSecond"] as! Double, gflops = r["gigaflopsPerSecond"] as! Double
    let peak = r["gemmPeakGigaflopsPerSecond"] as! Double, fraction = r["fractionOfGemmPeak"] as! Double
    let phases = r["secondsPerStep"] as! [String: Double]
    let step = phases.values.reduce(0, +)
    print("bench alone: \(rate) images/s, \(gflops) GFLOP/s, GEMM peak \(peak), fraction \(fraction), step \(step) s, kernels \(r["kernelInstructionSet"]!)")
    XCTAssertEqual(Set(phases.keys), ["data", "forward", "backward", "reduction", "waiting", "optimizer"])
    XCTAssertGreaterThan(rate, 0)
    // The mean of per-step rates is at least the rate of the mean step (Jensen), and not far above.
    XCTAssertGreaterThanOrEqual(rate * 1.001, 128 / step)
    XCTAssertLessThan(rate, 1.5 * 128 / step)
    XCTAssertEqual(gflops, rate * (r["flopsPerImage"] as! Double) / 1e9, accuracy: 1e-6 * gflops)
    XCTAssertGreaterThan(peak, 0)
    XCTAssertEqual(fraction, gflops / peak, accuracy: 1e-9)
    XCTAssertTrue(["x86-64-v4", "x86-64-v3", "baseline"].contains(r["kernelInstructionSet"] as! String))
    XCTAssertEqual(r["threadsPerRank"] as? Int, 2)
    XCTAssertEqual((r["peakResidentMiBPerRank"] as! [Double]).count, 1)
  }

  func testRanksReportMemoryEachAndNoPeakUnlessAsked() throws {
    let r = try bench(ranks: 2, ["--threads", "1", "--synthetic"])
    XCTAssertEqual(r["ranks"] as? Int, 2)
    XCTAssertEqual(r["synthetic"] as? Bool, true)
    let memory = r["peakResidentMiBPerRank"] as! [Double]
    print("bench, 2 ranks: \(r["imagesPerSecond"]!) images/s, memory \(memory) MiB")
    XCTAssertEqual(memory.count, 2)
    XCTAssertTrue(memory.allSatisfy { $0 > 5 && $0 < 1000 })
    XCTAssertNil(r["gemmPeakGigaflopsPerSecond"])
  }
}
