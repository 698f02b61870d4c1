import Dispatch
import VAECore
import VAEDistributed
import _CPeak

// The host's peaks, which the step's rate is given as a fraction of: the FMA loop of _CPeak (the
// floating-point peak), a large sgemm (what the BLAS reaches) and, for bf16, the VDPBF16PS loop.

/// The host's peaks as the maximum of several samples spread over a benchmark: a shared host's
/// neighbours only ever slow a sample down, so one sample at the start can read half the peak.
/// Every rank takes each sample at the same point (their sum over ranks is one allreduce).
struct PeakSamples {
  private(set) var fma: Double?
  private(set) var gemm: Double?
  /// The VDPBF16PS loop's, when asked for and every rank's CPU has AVX512_BF16 (else nil).
  private(set) var bf16: Double?
  /// This rank's threads that take the samples, and every rank's summed.
  let threads: Int
  let threadsInAll: Int

  /// The job's worker threads take the samples, but no rank more than the CPUs it may run on, and
  /// on each host at most as many as it has CPUs online, in rank order. More threads than cores,
  /// each timing the best of five windows of a time-sliced core, summed to more than the cores can
  /// do: 4 ranks × 1 thread on a 2-core Zen 2 read 241–280 GFLOP/s against the two cores' 215.
  /// Ranks are grouped by host name (the namespace hosts of launch/netns-hosts.sh have names of
  /// their own, so on their one machine each counts its cores again); ranks may have different
  /// numbers of workers (a rank has no more than its streams).
  init(workerThreads: Int, communicator: Communicator) throws {
    let hosts = try communicator.gather(communicator.hostName, phase: "the peak samples' hosts")
    let own = min(workerThreads, allowedCPUCount() ?? workerThreads)
    let owns = try communicator.gather(own, phase: "the peak samples' threads")
    let rank = communicator.rank
    let before = (0..<rank).filter { hosts[$0] == hosts[rank] }.reduce(0) { $0 + owns[$1] }
    threads = max(0, min(own, onlineCPUCount() - before))
    threadsInAll = try communicator.gather(threads, phase: "the peak samples' threads").reduce(0, +)
  }

  mutating func sample(bf16 includeBF16: Bool, communicator: Communicator) throws {
    var rates = [
      fmaGigaflopsPerSecond(threads: threads, seconds: 0.15), gemmGigaflopsPerSecond(threads: threads, seconds: 0.2),
      includeBF16 ? bf16GigaflopsPerSecond(threads: threads, seconds: 0.15) ?? -.infinity : -.infinity,
    ]
    try rates.withUnsafeMutableBufferPointer { try communicator.allreduce($0, .sum, phase: "the peak samples") }
    fma = max(fma ?? 0, rates[0])
    gemm = max(gemm ?? 0, rates[1])
    if rates[2].isFinite { bf16 = max(bf16 ?? 0, rates[2]) }
  }
}

/// GFLOP/s of single-threaded 1024×1024×1024 sgemms running at once on `threads` threads for about
/// `seconds`, summed: the matrix-product rate the step's BLAS calls could reach at best.
func gemmGigaflopsPerSecond(threads: Int, seconds: Double = 0.5) -> Double {
  let side = 1024
  var rates = [Double](repeating: 0, count: threads)
  rates.withUnsafeMutableBufferPointer { rates in
    concurrentForEach(threads) { thread in
      let a = ScalarBuffer<Float>(count: side * side), b = ScalarBuffer<Float>(count: side * side)
      let c = ScalarBuffer<Float>(count: side * side)
      for i in 0..<(side * side) {
        a.pointer[i] = Float(i % 7) * 0.01
        b.pointer[i] = Float(i % 5) * 0.01
      }
      func multiply() {
        Float.gemm(
          transposeA: false, transposeB: false, m: side, n: side, k: side, alpha: 1, a: a.pointer, lda: side,
          b: b.pointer, ldb: side, beta: 0, c: c.pointer, ldc: side)
      }
      multiply()  // warm-up: page faults, packing buffers
      var count = 0
      let start = monotonicSeconds()
      while monotonicSeconds() - start < seconds {
        multiply()
        count += 1
      }
      rates[thread] = 2 * Double(side * side * side) * Double(count) / (monotonicSeconds() - start) / 1e9
      withExtendedLifetime((a, b, c)) {}
    }
  }
  return rates.reduce(0, +)
}

/// GFLOP/s of the calibrated FMA loop (fma_peak.c) on `threads` threads at once for about `seconds`,
/// summed: the host's floating-point peak in the widest vector instruction set it has.
public func fmaGigaflopsPerSecond(threads: Int, seconds: Double = 0.5) -> Double {
  loopGigaflopsPerSecond(threads: threads, seconds: seconds) { vdk_fma_flops($0) }
}

/// GFLOP/s of `loop(iterations)` (which returns the FLOPs it did) on `threads` threads at once for
/// about `seconds`, summed: each thread's best of five windows.
private func loopGigaflopsPerSecond(threads: Int, seconds: Double, _ loop: (Int) -> Double) -> Double {
  var rates = [Double](repeating: 0, count: threads)
  rates.withUnsafeMutableBufferPointer { rates in
    concurrentForEach(threads) { thread in
      _ = loop(100_000)  // warm-up: the clock ramps up
      rates[thread] = bestOfFiveWindows(seconds: seconds) { loop(200_000) } / 1e9
    }
  }
  return rates.reduce(0, +)
}

/// The best rate of `work` (each call returns the amount it did) over five windows of `seconds / 5`,
/// with at least two calls in each: the amount per second. A virtual machine's core is sometimes
/// taken away for a moment, which only ever slows a window down. The one timing loop of the peaks
/// and of `bench --layers`.
func bestOfFiveWindows(seconds: Double, _ work: () -> Double) -> Double {
  var best = 0.0
  for _ in 0..<5 {
    var amount = 0.0, calls = 0
    let start = monotonicSeconds()
    repeat {
      amount += work()
      calls += 1
    } while monotonicSeconds() - start < seconds / 5 || calls < 2
    best = max(best, amount / (monotonicSeconds() - start))
  }
  return best
}

/// GFLOP/s of the VDPBF16PS loop (fma_peak.c) on `threads` threads at once, summed, as the FMA peak
/// is taken: the most a bf16 kernel can do here. Nil where the CPU lacks AVX512_BF16.
public func bf16GigaflopsPerSecond(threads: Int, seconds: Double = 0.5) -> Double? {
  guard vdk_bf16_available() != 0 else { return nil }
  return loopGigaflopsPerSecond(threads: threads, seconds: seconds) { vdk_bf16_flops($0) }
}

/// GB/s (read and written counted apart) of plain vector copies between two buffers of `bytes / 2`
/// each, on `threads` threads at once (each its own buffers) for about `seconds`, summed: the
/// bandwidth a pass whose operands take `bytes` per thread can draw from where they live (L1, L2,
/// L3 or memory, as the size falls). The best of five windows, as the FMA peak.
func copyGigabytesPerSecond(threads: Int, bytes: Int, seconds: Double = 0.1) -> Double {
  let floats = max(64, bytes / 8)
  var rates = [Double](repeating: 0, count: threads)
  rates.withUnsafeMutableBufferPointer { rates in
    concurrentForEach(threads) { thread in
      let source = ScalarBuffer<Float>(count: floats), target = ScalarBuffer<Float>(count: floats)
      for i in 0..<floats { source.pointer[i] = Float(i % 13) }
      let rounds = max(1, (1 << 22) / floats)  // about 16 MiB a call
      _ = vdk_copy_bytes(target.pointer, source.pointer, floats, rounds)  // warm-up: page faults, caches
      rates[thread] = bestOfFiveWindows(seconds: seconds) { vdk_copy_bytes(target.pointer, source.pointer, floats, rounds) } / 1e9
      withExtendedLifetime((source, target)) {}
    }
  }
  return rates.reduce(0, +)
}

/// The vector instruction set of the FMA peak loop here: "AVX-512 FMA", "AVX2 FMA" or "SSE mul+add".
public func fmaInstructionSet() -> String { String(cString: vdk_fma_isa()) }
