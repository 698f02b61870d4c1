import CounterRNG
import VAEDistributed
import Foundation
import VAECore
import VAEData
import VAETraining

/// Throughput of the training step as it runs in training, without evaluation or checkpoints.
public struct BenchmarkResult: Codable, Sendable {
  public var ranks: Int
  public var threadsPerRank: Int
  public var batchSize: Int
  public var microBatchSize: Int
  public var reduction: String
  public var blasKernel: String
  /// The convolution kernels' variant (avx512, avx2, avx512_on_avx2 or portable; the elementwise
  /// kernels run the build that goes with it). The name is older than the variants.
  public var kernelInstructionSet: String
  /// The arithmetic of the convolutions and dense products ("fp32", "bf16").
  public var precision: String
  /// How bf16 runs here ("native: VDPBF16PS", "emulated: this CPU lacks AVX512_BF16", …); nil under fp32.
  public var bf16Mode: String?
  public var synthetic: Bool
  public var warmupSteps: Int
  public var timedSteps: Int
  /// Mean over the timed steps of images/s, and the half-width of its 95% interval.
  public var imagesPerSecond: Double
  public var imagesPerSecondInterval95: Double
  /// Wall-clock seconds per step in each phase, averaged over the timed steps (rank zero's view).
  public var secondsPerStep: [String: Double]
  /// Of those, the seconds per step a worker thread waited in the micro-batches' parallel region
  /// (`PhaseTimes.threadsIdle`, rank zero's).
  public var threadsIdleSecondsPerStep: Double
  /// Work per image (forward ≈ 6.66 M multiply-adds, backward ≈ twice that) and the rate it implies.
  public var flopsPerImage: Double
  public var gigaflopsPerSecond: Double
  /// With `--gemm-peak`: how many threads took the peak samples, every rank's summed: every worker
  /// thread, up to as many on each host as it has cores (more would share cores and sum to more
  /// than they can do).
  public var peakThreads: Int?
  /// With `--gemm-peak`: a large sgemm running at once on every worker thread of every rank, summed —
  /// what this machine's BLAS can do at best — and the step's rate as a fraction of it. Each peak is
  /// the maximum of 5 samples spread over the timed steps (`PeakSamples`).
  public var gemmPeakGigaflopsPerSecond: Double?
  public var fractionOfGemmPeak: Double?
  /// With `--gemm-peak`: the calibrated FMA loop on every worker thread of every rank at once, summed
  /// (the host's floating-point peak), its instruction set, and the step's rate as a fraction of it.
  public var fmaPeakGigaflopsPerSecond: Double?
  public var fmaInstructionSet: String
  public var fractionOfFmaPeak: Double?
  /// With `--gemm-peak --precision bf16` on a CPU with AVX512_BF16: the VDPBF16PS loop on every worker
  /// thread of every rank at once, summed (what a bf16 kernel can do at best here: twice the FMA peak
  /// where the instruction issues as fast as an FMA), and the step's rate as a fraction of it.
  public var bf16PeakGigaflopsPerSecond: Double?
  public var fractionOfBf16Peak: Double?
  /// /proc/cpuinfo's model name, family and model of rank zero's host.
  public var cpu: String
  /// With `--layers`: rank zero's time per layer pass.
  public var layers: [LayerTiming]?
  public var peakResidentMiBPerRank: [Double]
  /// From the process's start to the end of the first step.
  public var secondsToFirstStep: Double
}

extension StepEngine {
  /// Runs `warmup` steps, then `steps` timed ones, from the start of the data order; with
  /// `profileLayers`, then times each pass for about `layerSeconds`.
  public func benchmark(
    warmup: Int, steps: Int, measureGemmPeak: Bool = false, profileLayers: Bool = false, layerSeconds: Double = 0.5,
    startedAt processStart: Double
  ) throws -> BenchmarkResult {
    var orders: [[Int]] = []
    var epochOfOrders = -1
    var rates: [Double] = []
    var firstStepEnd = 0.0
    // With --gemm-peak: 5 samples of the peaks, between timed steps (outside their timing) from the
    // first to the last, and their maximum reported.
    var peaks = measureGemmPeak ? try PeakSamples(workerThreads: workerThreads, communicator: communicator) : nil
    var stepMemory: Int?
    let sampleBefore = measureGemmPeak ? Set((0..<5).map { warmup + $0 * steps / 5 }) : []
    for i in 0..<(warmup + steps) {
      if sampleBefore.contains(i) {
        // The step's memory is all there after the warm-up; the peaks' matrices are not part of it.
        stepMemory = stepMemory ?? peakResidentKilobytes()
        try peaks?.sample(bf16: Precision.active == .bf16, communicator: communicator)
      }
      let epoch = i / schedule.stepsPerEpoch
      if epoch != epochOfOrders {
        orders = self.orders(epoch: epoch)
        epochOfOrders = epoch
      }
      if i == warmup { phases = PhaseTimes() }
      let start = monotonicSeconds()
      let result = try step(globalStep: i, stepInEpoch: i % schedule.stepsPerEpoch, orders: orders, stopFlag: false)
      let end = monotonicSeconds()
      if i == 0 { firstStepEnd = end }
      if i >= warmup { rates.append(Double(result.losses.count) / (end - start)) }
    }
    let mean = rates.reduce(0, +) / Double(rates.count)
    let variance = rates.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(max(1, rates.count - 1))
    let memory = try communicator.gather(stepMemory ?? peakResidentKilobytes(), phase: "the memory report")
    let peak = peaks?.gemm, fmaPeak = peaks?.fma, bf16Peak = peaks?.bf16
    // Every rank profiles its own threads at once (as in training); rank zero's figures are reported.
    let layers = profileLayers ? self.profileLayers(seconds: layerSeconds, fmaPeak: fmaPeak.map { $0 / Double(communicator.size) }) : nil
    let perStep = Dictionary(uniqueKeysWithValues: phases.named.map { ($0.0, $0.1 / Double(max(1, phases.steps))) })
    let flops = VAEModel<Float>.nominalFlopsPerImage(latentDim: configuration.latentDim)
    return BenchmarkResult(
      ranks: communicator.size, threadsPerRank: workerThreads, batchSize: configuration.batchSize,
      microBatchSize: configuration.microBatchSize, reduction: configuration.reduction.rawValue,
      blasKernel: blasCoreName(), kernelInstructionSet: KernelVariant.active.rawValue,
      precision: Precision.active.rawValue, bf16Mode: Precision.active == .bf16 ? BF16Mode.active.description : nil,
      synthetic: configuration.syntheticData, warmupSteps: warmup, timedSteps: steps,
      imagesPerSecond: mean, imagesPerSecondInterval95: 1.96 * (variance / Double(rates.count)).squareRoot(),
      secondsPerStep: perStep, threadsIdleSecondsPerStep: phases.threadsIdle / Double(max(1, phases.steps)),
      flopsPerImage: flops, gigaflopsPerSecond: mean * flops / 1e9,
      peakThreads: peaks?.threadsInAll, gemmPeakGigaflopsPerSecond: peak, fractionOfGemmPeak: peak.map { mean * flops / 1e9 / $0 },
      fmaPeakGigaflopsPerSecond: fmaPeak, fmaInstructionSet: fmaInstructionSet(),
      fractionOfFmaPeak: fmaPeak.map { mean * flops / 1e9 / $0 }, bf16PeakGigaflopsPerSecond: bf16Peak,
      fractionOfBf16Peak: bf16Peak.map { mean * flops / 1e9 / $0 }, cpu: cpuDescription(), layers: layers,
      peakResidentMiBPerRank: memory.map { Double($0) / 1024 }, secondsToFirstStep: firstStepEnd - processStart)
  }
}
