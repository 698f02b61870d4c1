import ArgumentParser
import Foundation
import VAECore
import VAEDistributed
import VAETraining
import VAEBenchmarks

struct Bench: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Measure training throughput: warm-up steps, then timed steps, with where the time goes.",
    discussion: """
      Runs the training step exactly as `train` does (same data path, threads, reduction), without \
      evaluation or checkpoints, alone or under mpirun. Prints images/s with its 95% interval, the \
      rate in GFLOP/s, the time per step in each phase (data, forward, backward, reduction, waiting \
      in MPI, optimizer), how long each worker thread sat idle waiting for the step's last \
      micro-batch, peak memory per rank and the time from start-up to the first step; --json \
      prints the same as one JSON object.
      """)

  @OptionGroup(title: "Data") var data: DataOptions
  @OptionGroup(title: "Model") var model: ModelOptions
  @OptionGroup(title: "Optimization") var optimization: OptimizationOptions
  @OptionGroup(title: "Parallelism") var parallel: ParallelOptions

  @Option(help: "Untimed steps first (caches, page faults, thread start-up).") var warmup = 10
  @Option(help: "Timed steps.") var steps = 50
  @Flag(help: "Generated images instead of the data files.") var synthetic = false
  @Flag(help: "Also measure the host's peaks on every worker thread of every rank at once (at most one per core of each host): a calibrated loop of vector FMAs in the widest instruction set the CPU has, a 1024³ sgemm and, with --precision bf16 on a CPU with AVX512_BF16, a loop of VDPBF16PS; and the step's GFLOP/s as a fraction of each.")
  var gemmPeak = false
  @Flag(help: "Also time each layer's forward, backward-weights and backward-data pass alone (on every thread at once): milliseconds per step, GFLOP/s and, with --gemm-peak, the fraction of the FMA peak.")
  var layers = false
  @Option(help: "With --layers, the seconds each pass is timed for: the best of 5 windows of repeated runs. Shorter is quicker and noisier.")
  var layerSeconds = Self.defaultLayerSeconds
  static let defaultLayerSeconds = 0.5
  @Flag(help: "Print one JSON object instead of text.") var json = false
  @Flag(help: "Time MPI allreduces of 1 KiB to 4 MiB (int64, as the deterministic reduction sends, and float) instead of training steps; fits latency + bandwidth.")
  var allreduce = false

  func validate() throws {
    guard (0...1_000_000).contains(warmup) else { throw ValidationError("--warmup must be between 0 and 1000000 (got \(warmup)).") }
    guard (2...1_000_000).contains(steps) else { throw ValidationError("--steps must be between 2 and 1000000 (got \(steps)).") }
    guard layerSeconds > 0 && layerSeconds <= 60 else {
      throw ValidationError("--layer-seconds must be above 0 and at most 60 (got \(layerSeconds)).")
    }
    // Settings that would do nothing, refused as train refuses them.
    if !layers && layerSeconds != Self.defaultLayerSeconds {
      throw ValidationError("--layer-seconds times the passes of --layers: add --layers, or drop it.")
    }
    // A learning-rate ramp, easily taken for the untimed steps (bench shares train's optimization
    // options; the run-length ones are train's alone).
    if optimization.warmupSteps != scheduleDefaults.warmupSteps {
      throw ValidationError("--warmup-steps is a learning-rate ramp, which bench's timing does not read: the untimed steps are --warmup.")
    }
    if allreduce && (layers || gemmPeak || synthetic) {
      throw ValidationError("--allreduce times allreduces instead of training steps, which --layers, --gemm-peak and --synthetic are about: drop them or --allreduce.")
    }
    try TrainingConfiguration(data: data, model: model, optimization: optimization, parallel: parallel).refuseProblems()
  }

  func run() throws {
    let processStart = monotonicSeconds() - (secondsSinceProcessStart() ?? 0)
    var c = TrainingConfiguration(data: data, model: model, optimization: optimization, parallel: parallel)
    c.syntheticData = synthetic
    c.progress = .none
    try withCommunicator(parallel) { communicator in
      if allreduce {
        try benchmarkAllreduce(communicator)
        return
      }
      let engine = try StepEngine(configuration: c, communicator: communicator, evaluationSets: false)
      let result = try engine.benchmark(
        warmup: warmup, steps: steps, measureGemmPeak: gemmPeak, profileLayers: layers, layerSeconds: layerSeconds,
        startedAt: processStart)
      guard communicator.rank == 0 else { return }
      if json {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        print(String(decoding: try encoder.encode(result), as: UTF8.self))
        return
      }
      let perStep = ["data", "forward", "backward", "reduction", "waiting", "optimizer"].map {
        "\($0) \(fixed((result.secondsPerStep[$0] ?? 0) * 1000, 1)) ms"
      }
      let total = result.secondsPerStep.values.reduce(0, +) * 1000
      print(
        "vae-dist bench: \(result.ranks) rank\(result.ranks == 1 ? "" : "s") × \(result.threadsPerRank) thread\(result.threadsPerRank == 1 ? "" : "s"), "
          + "batch \(result.batchSize) (micro-batches of \(result.microBatchSize)), \(result.reduction) reduction, "
          + "kernels \(result.kernelInstructionSet), \(Precision(rawValue: result.precision)?.banner ?? result.precision), \(result.synthetic ? "synthetic" : "real") data")
      print("  CPU         \(result.cpu), widest FMA: \(result.fmaInstructionSet)")
      print(
        "  throughput  \(grouped(Int(result.imagesPerSecond))) ± \(grouped(Int(result.imagesPerSecondInterval95.rounded()))) images/s "
          + "(95% interval over \(result.timedSteps) steps after \(result.warmupSteps) warm-up), "
          + "\(fixed(result.gigaflopsPerSecond, 1)) GFLOP/s at \(fixed(result.flopsPerImage / 1e6, 1)) MFLOP per image")
      let workers = result.ranks * result.threadsPerRank, threads = result.peakThreads ?? workers
      let sampled = threads == workers ? "on all \(threads) threads at once" : "on \(threads) threads at once, one per core: \(workers) workers share the cores"
      if let peak = result.gemmPeakGigaflopsPerSecond, let fraction = result.fractionOfGemmPeak {
        print("  GEMM peak   \(fixed(peak, 1)) GFLOP/s (1024³ sgemm \(sampled), best of 5 samples); the step runs at \(fixed(100 * fraction, 0))% of it")
      }
      if let peak = result.fmaPeakGigaflopsPerSecond, let fraction = result.fractionOfFmaPeak {
        print("  FMA peak    \(fixed(peak, 1)) GFLOP/s (\(result.fmaInstructionSet) loop \(sampled), best of 5 samples); the step runs at \(fixed(100 * fraction, 0))% of it")
      }
      if let peak = result.bf16PeakGigaflopsPerSecond, let fraction = result.fractionOfBf16Peak {
        let times = result.fmaPeakGigaflopsPerSecond.map { "; \(fixed(peak / $0, 2))× the FMA peak" } ?? ""
        print("  bf16 peak   \(fixed(peak, 1)) GFLOP/s (VDPBF16PS loop \(sampled), best of 5 samples\(times)); the step runs at \(fixed(100 * fraction, 0))% of it")
      } else if result.precision == Precision.bf16.rawValue, result.fmaPeakGigaflopsPerSecond != nil {
        print("  bf16 peak   none: a CPU here lacks AVX512_BF16, so bf16 runs on the FMA units and the FMA peak bounds it")
      }
      print("  per step    " + perStep.joined(separator: " · ") + " (total \(fixed(total, 1)) ms)")
      if result.threadsPerRank > 1 {
        let idle = result.threadsIdleSecondsPerStep * 1000
        print(
          "  threads     idle \(fixed(idle, 2)) ms a step on average (\(fixed(100 * idle / max(total, 1e-9), 1))%) inside the compute phases: "
            + "waiting for the step's last micro-batch")
      }
      if let layers = result.layers {
        print("  layers      rank zero's passes, each alone on its \(result.threadsPerRank) thread\(result.threadsPerRank == 1 ? "" : "s") at once;")
        print("              B/FLOP: the bytes a pass must read and write per FLOP; need: the GB/s that takes at the FMA peak;")
        print("              copy: the GB/s plain vector copies reach with the pass's working set per thread (in brackets)")
        let total = layers.last!.millisecondsPerStep
        for t in layers {
          let name = (t.layer + "  " + t.pass).padding(toLength: 44, withPad: " ", startingAt: 0)
          let rate = t.gigaflopsPerSecond > 0 ? "\(fixed(t.gigaflopsPerSecond, 1)) GFLOP/s" : ""
          let peak = t.fractionOfFmaPeak.map { "  \(fixed(100 * $0, 0))% of FMA peak" } ?? ""
          var traffic = ""
          if let perFlop = t.bytesPerFlop, let copy = t.copyGigabytesPerSecond, let set = t.workingSetBytes {
            let need = result.fmaPeakGigaflopsPerSecond.map { "  need \(fixed(perFlop * $0 / Double(result.ranks), 1))" } ?? ""
            traffic = "  \(fixed(perFlop, 3)) B/FLOP\(need)  copy \(fixed(copy, 0)) GB/s (\(fixed(Double(set) / 1_048_576, 2)) MiB)"
          }
          print("    \(name) \(fixed(t.millisecondsPerStep, 2)) ms  \(fixed(100 * t.millisecondsPerStep / total, 1))%  \(rate)\(peak)\(traffic)")
        }
      }
      print("  memory      peak resident per rank: " + result.peakResidentMiBPerRank.map { "\(fixed($0, 1)) MiB" }.joined(separator: " · "))
      print("  start-up    \(fixed(result.secondsToFirstStep, 2)) s from process start to the end of the first step")
    }
  }

  func benchmarkAllreduce(_ communicator: Communicator) throws {
    // One rank has no one to reduce with: it timed copies and fitted "bandwidth inf GB/s".
    guard communicator.size > 1 else {
      throw ValidationError("--allreduce times allreduces between ranks, and this is one process: start it under MPI, e.g. launch/mpirun-local.sh -n 2 bench --allreduce")
    }
    let timings = try AllreduceBenchmark.measure(
      communicator: communicator, sizes: [1 << 10, 1 << 12, 1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22], repetitions: steps)
    guard communicator.rank == 0 else { return }
    let fits = ["int64", "float"].map { element in (element, AllreduceBenchmark.fit(timings.filter { $0.element == element })) }
    if json {
      let rows = timings.map { "{\"bytes\":\($0.bytes),\"element\":\"\($0.element)\",\"seconds\":\($0.seconds)}" }
      // A fit of flat, noisy timings can come out infinite, which JSON cannot say: null.
      func number(_ x: Double) -> String { x.isFinite ? "\(x)" : "null" }
      let fitted = fits.map { "\"\($0.0)\":{\"latency_seconds\":\(number($0.1.latency)),\"bytes_per_second\":\(number($0.1.bytesPerSecond))}" }
      print("{\"ranks\":\(communicator.size),\"timings\":[\(rows.joined(separator: ","))],\"fit\":{\(fitted.joined(separator: ","))}}")
      return
    }
    print("vae-dist bench --allreduce: \(communicator.size) ranks, \(steps) repetitions per size")
    for t in timings where t.element == "int64" {
      let float = timings.first { $0.bytes == t.bytes && $0.element == "float" }!
      print("  \(String(repeating: " ", count: max(0, 9 - grouped(t.bytes).count)))\(grouped(t.bytes)) bytes  int64 \(fixed(t.seconds * 1e6, 1)) µs  float \(fixed(float.seconds * 1e6, 1)) µs")
    }
    for (element, fit) in fits {
      print("  \(element): latency \(fixed(fit.latency * 1e6, 1)) µs, bandwidth \(fixed(fit.bytesPerSecond / 1e9, 2)) GB/s (least squares)")
    }
  }
}
