import VAECore
import VAEData
import VAEDistributed

/// Everything that defines a training run. The batch size is the global batch over all ranks.
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
  public var adam = AdamConfiguration()
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
    check("--lr", other.adam.learningRate, adam.learningRate)
    check("--val-size", other.validationSize, validationSize)
    return conflicts
  }

  public init() {}

  /// Where the images come from.
  public var dataSource: TrainingData.Source {
    syntheticData ? .synthetic(train: syntheticTrainImages) : .files(directory: dataDirectory)
  }

  /// Throws when these settings cannot work on `ranks` ranks (every rank finds the same).
  public func validate(ranks: Int) throws {
    guard batchSize % microBatchSize == 0 else {
      throw TrainingError.configuration("--batch-size \(batchSize) is not a multiple of --micro-batch \(microBatchSize)")
    }
    let microBatches = batchSize / microBatchSize
    guard microBatches >= ranks else {
      throw TrainingError.configuration(
        "--batch-size \(batchSize) makes \(microBatches) micro-batches of \(microBatchSize), fewer than the "
          + "\(ranks) ranks: every rank needs at least one. Use a larger --batch-size, a smaller "
          + "--micro-batch, or fewer ranks.")
    }
  }

  /// The largest divisor of `batchSize` not above 16: the default micro-batch.
  public static func defaultMicroBatch(forBatch batchSize: Int) -> Int {
    (1...min(16, max(1, batchSize))).last { batchSize % $0 == 0 } ?? 1
  }
}
