import Foundation
import VAECore
import VAEData
import VAEDistributed

/// Everything that defines a training run, and the one home of its defaults (the command line's
/// options start from `TrainingConfiguration()`) and of its checks (`problems`, `validate`). The
/// batch size is the global batch over all ranks.
public struct TrainingConfiguration: Codable, Sendable, Equatable {
  public var dataDirectory = FashionMNIST.defaultDirectory
  public var outputDirectory = "vae-dist-run"
  public var epochs = 30
  public var batchSize = 128
  /// Images per micro-batch: the unit of work of one thread, and the unit the deterministic sum is
  /// over. Part of the result's definition: changing it changes the bits (not the mathematics).
  public var microBatchSize = 16
  public var latentDim = 2
  public var beta = 1.0
  /// The arithmetic of the convolutions and dense products; nil: fp32, as every run before bf16
  /// existed (their run.json has no such key).
  public var precision: Precision? = nil
  public var adam = AdamConfiguration()
  /// How the rate changes with the step (warm-up, decay, scaling with the batch); nil: constant
  /// `adam.learningRate`, as every run before schedules existed (their run.json has no such key).
  public var learningRateSchedule: LearningRateSchedule? = nil
  public var seed: UInt64 = 0
  public var maxSteps: Int? = nil
  /// Worker threads per rank.
  public var threads = 1
  public var reduction = ReductionMode.deterministic
  /// Every this many steps, check that all ranks hold identical parameters (0: never).
  public var syncCheckEvery = 0
  public var progress = ProgressStyle.auto
  /// Write a checkpoint every this many steps (0: only at epoch ends and on a stop).
  public var checkpointEvery = 100
  /// Checkpoints kept (the newest).
  public var keepCheckpoints = 3
  /// Skip (and count) steps whose gradient is not finite, instead of stopping.
  public var skipNonFinite = false
  /// Training images held out (chosen by the seed) to decide early stopping; 0: none.
  public var validationSize = 0
  /// Stop when the validation loss has not improved by more than `earlyStoppingMinDelta` for this
  /// many epochs (nil: never).
  public var earlyStoppingPatience: Int? = nil
  public var earlyStoppingMinDelta = 0.0
  /// Write the pictures every this many epochs (0: only at the end).
  public var plotEvery = 0
  /// Samples per image of the importance-weighted log-likelihood estimate at the end (0: skip it).
  public var iwSamples = 100
  /// Where rank zero writes TensorBoard event files (nil: it does not; the command line's default
  /// is DIR/tensorboard).
  public var tensorboardDirectory: String? = nil
  /// Training scalars go to TensorBoard every this many steps.
  public var logEvery = 10
  /// Train on generated images instead of the data files (for benchmarks without the dataset).
  public var syntheticData = false
  /// Images in the synthetic training "file" (the synthetic test set holds a sixth as many).
  public var syntheticTrainImages = 60_000

  /// The settings a resumed run must share with the checkpoint it resumes: any difference would
  /// make it a different run. The rest (epochs, ranks, threads, output, checkpointing) may change.
  public func resumeConflicts(with other: TrainingConfiguration) -> [String] {
    var conflicts: [String] = []
    func check<T: Equatable>(_ flag: String, _ a: T, _ b: T) {
      if a != b { conflicts.append("\(flag) \(b) (the checkpoint has \(a))") }
    }
    check("--latent-dim", other.latentDim, latentDim)
    check("--batch-size", other.batchSize, batchSize)
    check("--micro-batch", other.microBatchSize, microBatchSize)
    check("--seed", other.seed, seed)
    check("--beta", other.beta, beta)
    check("--precision", (other.precision ?? .fp32).rawValue, (precision ?? .fp32).rawValue)
    // `fast` sums in an order that depends on the rank count: a run that changes it is another run.
    check("--reduction", other.reduction.rawValue, reduction.rawValue)
    check("--lr", other.adam.learningRate, adam.learningRate)
    let (mine, theirs) = ((learningRateSchedule ?? .init()).canonical, (other.learningRateSchedule ?? .init()).canonical)
    if mine != theirs { conflicts.append("the learning-rate schedule \(mine.exactDescription) (the checkpoint has \(theirs.exactDescription))") }
    // A cosine decay over "the rest of the run" depends on the run's length.
    if mine.shape == .cosine && mine.decaySteps == 0 { check("--epochs", other.epochs, epochs) }
    check("--val-size", other.validationSize, validationSize)
    return conflicts
  }

  public init() {}

  /// The learning rate of update `t` (1: the first), for a run of `stepsPerEpoch` steps an epoch.
  public func learningRate(step t: Int, stepsPerEpoch: Int) -> Double {
    guard let schedule = learningRateSchedule else { return adam.learningRate }
    return schedule.rate(step: t, base: adam.learningRate, batchSize: batchSize, runSteps: epochs * stepsPerEpoch)
  }

  /// Where the images come from.
  public var dataSource: TrainingData.Source {
    syntheticData ? .synthetic(train: syntheticTrainImages) : .files(directory: dataDirectory)
  }

  /// What is wrong with these settings on their own, whatever the rank count: one message per
  /// problem, naming the flag. The command line refuses them before anything starts (the same
  /// checks, so its messages and the library's agree); `validate(ranks:)` checks them again.
  public func problems() -> [String] {
    var found: [String] = []
    func require(_ condition: Bool, _ message: @autoclosure () -> String) { if !condition { found.append(message()) } }
    require((1...1024).contains(latentDim), "--latent-dim must be between 1 and 1024 (got \(latentDim)).")
    // The step computes in Float: a value past its range would be infinite there.
    require(beta >= 0 && Float(beta).isFinite, "--beta must be a non-negative number within Float's range (got \(beta)).")
    require((1...1_000_000).contains(epochs), "--epochs must be between 1 and 1000000 (got \(epochs)).")
    require((1...65536).contains(batchSize), "--batch-size must be between 1 and 65536 (got \(batchSize)).")
    require(
      (1...max(1, batchSize)).contains(microBatchSize),
      "--micro-batch must be between 1 and the batch size \(batchSize) (got \(microBatchSize)).")
    require(
      microBatchSize < 1 || batchSize % microBatchSize == 0,
      "--micro-batch \(microBatchSize) must divide --batch-size \(batchSize).")
    require(adam.learningRate > 0 && adam.learningRate.isFinite, "--lr must be a positive number (got \(adam.learningRate)).")
    if adam.learningRate > 0 && adam.learningRate.isFinite {
      require(Float(adam.learningRate).isFinite, "--lr must be within Float's range (got \(adam.learningRate)).")
      if Float(adam.learningRate).isFinite, batchSize >= 1, let s = learningRateSchedule {
        let peak = s.peak(base: adam.learningRate, batchSize: batchSize)
        require(Float(peak).isFinite, "--lr \(adam.learningRate) scaled with the batch (\(s.scaling.rawValue)) is \(peak), past Float's range: give a smaller --lr.")
      }
    }
    if let maxSteps { require(maxSteps >= 1, "--max-steps must be at least 1 (got \(maxSteps)).") }
    if let patience = earlyStoppingPatience {
      require(patience >= 1, "--early-stopping must be at least 1 epoch (got \(patience)).")
      require(validationSize > 0, "--early-stopping needs validation images: --val-size must be above 0.")
    }
    require(earlyStoppingMinDelta >= 0 && earlyStoppingMinDelta.isFinite, "--min-delta must be 0 or more (got \(earlyStoppingMinDelta)).")
    // A setting that silently does nothing is a mistake, as for the schedule's flags below.
    require(
      earlyStoppingPatience != nil || earlyStoppingMinDelta == Self().earlyStoppingMinDelta,
      "--min-delta is read by --early-stopping only: drop it, or pass --early-stopping N.")
    require(validationSize >= 0, "--val-size must be 0 or more (got \(validationSize)).")
    require((1...Self.maximumThreads).contains(threads), "--threads must be between 1 and \(Self.maximumThreads) (got \(threads)).")
    require(syncCheckEvery >= 0, "--check-sync must be 0 or more (got \(syncCheckEvery)).")
    require(checkpointEvery >= 0, "--checkpoint-every must be 0 or more (got \(checkpointEvery)).")
    require(keepCheckpoints >= 1, "--keep must be at least 1 (got \(keepCheckpoints)).")
    require(logEvery >= 1, "--log-every must be at least 1 (got \(logEvery)).")
    require(plotEvery >= 0, "--plot-every must be 0 or more (got \(plotEvery)).")
    require((0...100_000).contains(iwSamples), "--iw-samples must be between 0 and 100000 (got \(iwSamples)).")
    if let s = learningRateSchedule {
      for (flag, shape) in s.unreadFlags {
        found.append("\(flag) is read by --lr-schedule \(shape.rawValue) only, and this run's is \(s.shape.rawValue): drop it, or pass --lr-schedule \(shape.rawValue).")
      }
      require(s.warmupSteps >= 0, "--warmup-steps must be 0 or more (got \(s.warmupSteps)).")
      require(s.decaySteps >= 0, "--lr-decay-steps must be 0 or more (got \(s.decaySteps)).")
      require((0...1).contains(s.finalFraction), "--lr-final must be between 0 and 1, a fraction of the peak rate (got \(s.finalFraction)).")
      require(s.shape != .step || s.stepEvery >= 1, "--lr-schedule step needs --lr-step-every K with K ≥ 1 (got \(s.stepEvery)).")
      require(s.gamma > 0 && s.gamma <= 1, "--lr-gamma must be above 0 and at most 1 (got \(s.gamma)).")
    }
    return found
  }

  /// Throws when these settings cannot work on `ranks` ranks: every rank finds the same, but for the
  /// memory, which is each host's (a batch whose per-micro-batch gradient buffers on `ranksOnHost`
  /// ranks would not fit in half of `physicalMemory` bytes, this host's or its cgroup's limit).
  public func validate(ranks: Int, physicalMemory: Double = hostMemoryBytes(), ranksOnHost: Int = ranksOnThisHost()) throws {
    if let problem = problems().first { throw TrainingError.configuration(problem) }
    let microBatches = batchSize / microBatchSize
    guard microBatches >= ranks else {
      throw TrainingError.configuration(
        "--batch-size \(batchSize) makes \(microBatches) micro-batches of \(microBatchSize), fewer than the "
          + "\(ranks) ranks: every rank needs at least one. Use a larger --batch-size, a smaller "
          + "--micro-batch, or fewer ranks.")
    }
    // Each rank keeps one gradient buffer per micro-batch it computes (the fixed-order reduction
    // needs them all at once) and one workspace of a micro-batch's activations per worker thread:
    // refused here, not by the out-of-memory killer half-way through start-up.
    let perRank = (microBatches + ranks - 1) / ranks, here = max(1, min(ranksOnHost, ranks))
    let gradients = Double(perRank) * Double(ParameterLayout(latentDim: latentDim).totalCount) * 4
    let workspaces = Double(min(threads, perRank)) * Double(VAEWorkspace<Float>.bytes(capacity: microBatchSize, latentDim: latentDim))
    let bytes = Double(here) * (gradients + workspaces)
    if bytes > physicalMemory / 2 {
      throw TrainingError.configuration(
        "--batch-size \(batchSize) with --micro-batch \(microBatchSize) puts \(perRank) micro-batch\(perRank == 1 ? "" : "es") on each of "
          + "\(ranks) rank\(ranks == 1 ? "" : "s"), whose gradient buffers (\(gibibytes(gradients)) GiB a rank) and "
          + "\(min(threads, perRank)) worker thread\(min(threads, perRank) == 1 ? "'s" : "s'") activations (\(gibibytes(workspaces)) GiB a rank) "
          + "take \(gibibytes(bytes)) GiB on this host (\(here) rank\(here == 1 ? "" : "s")): more than half its memory "
          + "(\(gibibytes(physicalMemory)) GiB). "
          + (gradients > workspaces
            ? "Use a larger --micro-batch or a smaller --batch-size, or spread the ranks over more hosts."
            : "Use a smaller --micro-batch or fewer --threads, or spread the ranks over more hosts."))
    }
  }

  private func gibibytes(_ bytes: Double) -> String { String(format: "%.1f", bytes / 1_073_741_824) }

  /// The most worker threads a rank runs (the default on a larger host).
  public static let maximumThreads = 256

  /// The largest divisor of `batchSize` not above 16: the default micro-batch.
  public static func defaultMicroBatch(forBatch batchSize: Int) -> Int {
    (1...min(16, max(1, batchSize))).last { batchSize % $0 == 0 } ?? 1
  }
}
