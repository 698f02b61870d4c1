import ArgumentParser
import VAEData
import VAEDistributed
import VAETraining

#if canImport(Glibc)
  import Glibc
#endif

struct DataOptions: ParsableArguments {
  @Option(name: .customLong("data"), help: ArgumentHelp("Directory of the Fashion-MNIST IDX files (gzip or plain).", valueName: "dir"))
  var directory = FashionMNIST.defaultDirectory
}

struct ModelOptions: ParsableArguments {
  @Option(help: "Size of the latent space.")
  var latentDim = 2

  @Option(help: "Weight of the KL term in the loss (β-VAE; 1 is the plain VAE).")
  var beta = 1.0

  func validate() throws {
    guard latentDim >= 1 && latentDim <= 1024 else { throw ValidationError("--latent-dim must be between 1 and 1024 (got \(latentDim)).") }
    guard beta >= 0 && beta.isFinite else { throw ValidationError("--beta must be a non-negative number (got \(beta)).") }
  }
}

struct OptimizationOptions: ParsableArguments {
  @Option(help: "Passes over the training set.")
  var epochs = 30

  @Option(help: "Global batch size: images per optimizer step over all ranks.")
  var batchSize = 128

  @Option(help: ArgumentHelp(
    "Images per micro-batch, the unit of work of a thread (default: the largest divisor of the batch size up to 16). Changing it changes results in the last bits.",
    valueName: "n"))
  var microBatch: Int?

  @Option(name: .customLong("lr"), help: "Adam learning rate.")
  var learningRate = 1e-3

  @Option(help: "Seed of the initialization, the data order and the noise.")
  var seed: UInt64 = 0

  @Option(help: ArgumentHelp("Stop after this many optimizer steps.", valueName: "k"))
  var maxSteps: Int?

  @Option(help: ArgumentHelp(
    "Stop when the validation loss has not improved for this many epochs (holds out --val-size training images).",
    valueName: "patience"))
  var earlyStopping: Int?

  @Option(help: ArgumentHelp("Smallest decrease of the validation loss that counts as an improvement.", valueName: "delta"))
  var minDelta = 0.0

  @Option(help: ArgumentHelp(
    "Training images held out for validation, chosen by the seed (default: 5000 with --early-stopping, else 0).",
    valueName: "n"))
  var valSize: Int?

  var resolvedValidationSize: Int { valSize ?? (earlyStopping == nil ? 0 : 5000) }

  func validate() throws {
    guard epochs >= 1 else { throw ValidationError("--epochs must be at least 1 (got \(epochs)).") }
    guard batchSize >= 1 && batchSize <= 65536 else { throw ValidationError("--batch-size must be between 1 and 65536 (got \(batchSize)).") }
    if let microBatch {
      guard microBatch >= 1 && microBatch <= batchSize else {
        throw ValidationError("--micro-batch must be between 1 and the batch size \(batchSize) (got \(microBatch)).")
      }
      guard batchSize % microBatch == 0 else {
        throw ValidationError("--micro-batch \(microBatch) must divide --batch-size \(batchSize).")
      }
    }
    guard learningRate > 0 && learningRate.isFinite else { throw ValidationError("--lr must be a positive number (got \(learningRate)).") }
    if let maxSteps, maxSteps < 1 { throw ValidationError("--max-steps must be at least 1 (got \(maxSteps)).") }
    if let earlyStopping, earlyStopping < 1 { throw ValidationError("--early-stopping must be at least 1 epoch (got \(earlyStopping)).") }
    guard minDelta >= 0 && minDelta.isFinite else { throw ValidationError("--min-delta must be 0 or more (got \(minDelta)).") }
    if let valSize, valSize < 0 { throw ValidationError("--val-size must be 0 or more (got \(valSize)).") }
    if earlyStopping != nil && valSize == 0 { throw ValidationError("--early-stopping needs validation images: --val-size must be above 0.") }
  }
}

/// --threads, for training (per rank) and for the single-process commands.
struct ThreadOptions: ParsableArguments {
  @Option(help: ArgumentHelp(
    "Worker threads per process (default: the cores this process may use, shared with the other ranks on its node).",
    valueName: "t"))
  var threads: Int?

  func validate() throws {
    if let threads, threads < 1 || threads > 256 { throw ValidationError("--threads must be between 1 and 256 (got \(threads)).") }
  }

  /// The cores this process may run on, shared out among the ranks of this node when they are not
  /// bound to cores of their own.
  var resolved: Int {
    if let threads { return threads }
    let online = Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))
    let allowed = allowedCPUCount() ?? online
    let localRanks = getenv("OMPI_COMM_WORLD_LOCAL_SIZE").flatMap { Int(String(cString: $0)) } ?? 1
    return allowed < online ? max(1, allowed) : max(1, allowed / max(1, localRanks))
  }
}

struct ParallelOptions: ParsableArguments {
  @OptionGroup var threads: ThreadOptions

  @Option(help: ArgumentHelp(
    "How gradients are summed: 'deterministic' (bit-identical for any ranks and threads) or 'fast' (plain float MPI_Allreduce).",
    valueName: "mode"))
  var reduction = ReductionMode.deterministic

  @Option(help: ArgumentHelp("Seconds a rank waits for the others in a collective before ending the job.", valueName: "seconds"))
  var stallTimeout = 60.0

  @Option(help: ArgumentHelp("Every k steps, verify that all ranks hold identical parameters (0: never).", valueName: "k"))
  var checkSync = 0

  @Flag(help: "Skip (and count) a step whose loss or gradient is NaN or infinite, instead of stopping.")
  var skipNonfinite = false

  func validate() throws {
    guard stallTimeout > 0 else { throw ValidationError("--stall-timeout must be positive (got \(stallTimeout)).") }
    guard checkSync >= 0 else { throw ValidationError("--check-sync must be 0 or more (got \(checkSync)).") }
  }
}

struct OutputOptions: ParsableArguments {
  @Option(name: .customLong("out"), help: ArgumentHelp("Directory for metrics, checkpoints and images (rank zero writes it).", valueName: "dir"))
  var directory = "vae-dist-run"

  @Option(help: ArgumentHelp(
    "Progress within an epoch: 'bar' (rewritten line), 'lines', 'none', or 'auto' (a bar on a terminal; lines under an MPI launcher, whose output is never the user's terminal).",
    valueName: "style"))
  var progress = ProgressStyle.auto

  @Option(help: ArgumentHelp("Write a checkpoint every k steps, besides each epoch end and a stop (0: only those).", valueName: "k"))
  var checkpointEvery = 100

  @Option(help: ArgumentHelp("How many of the newest checkpoints to keep.", valueName: "n"))
  var keep = 3

  @Flag(help: "Continue from the newest complete checkpoint in --out (same settings; the rank count may differ).")
  var resume = false

  @Flag(help: "Start a new run even if --out holds an earlier run's model or checkpoints: that run is moved aside to DIR.previous-N first (nothing is deleted).")
  var overwrite = false

  @Option(help: ArgumentHelp("Also write the pictures into DIR/images every this many epochs (0: only at the end).", valueName: "n"))
  var plotEvery = 0

  @Option(help: ArgumentHelp(
    "Where to write TensorBoard event files (default: DIR/tensorboard; 'none': nowhere). View with: tensorboard --logdir DIR/tensorboard",
    valueName: "dir"))
  var tensorboard: String?

  @Option(help: ArgumentHelp("Write the training scalars to TensorBoard every k steps.", valueName: "k"))
  var logEvery = 10

  @Option(help: ArgumentHelp(
    "Samples per test image of the importance-weighted log-likelihood estimate at the end (0: skip it).", valueName: "k"))
  var iwSamples = 100

  func validate() throws {
    guard checkpointEvery >= 0 else { throw ValidationError("--checkpoint-every must be 0 or more (got \(checkpointEvery)).") }
    guard keep >= 1 else { throw ValidationError("--keep must be at least 1 (got \(keep)).") }
    guard logEvery >= 1 else { throw ValidationError("--log-every must be at least 1 (got \(logEvery)).") }
    if tensorboard == "" { throw ValidationError("--tensorboard needs a directory, or 'none'.") }
    guard plotEvery >= 0 else { throw ValidationError("--plot-every must be 0 or more (got \(plotEvery)).") }
    guard iwSamples >= 0 && iwSamples <= 100_000 else { throw ValidationError("--iw-samples must be between 0 and 100000 (got \(iwSamples)).") }
    guard !(resume && overwrite) else { throw ValidationError("--resume continues the run in --out and --overwrite moves it aside: pass one of them.") }
  }

  /// --tensorboard resolved: nil for 'none'.
  var tensorboardDirectory: String? {
    tensorboard == "none" ? nil : tensorboard ?? directory + "/tensorboard"
  }

  var start: RunStart { resume ? .resume : overwrite ? .overwrite : .fresh }

  var resolvedProgress: ProgressStyle {
    progress == .auto && MPICommunicator.launchedByMPI ? .lines : progress
  }
}

extension ReductionMode: ExpressibleByArgument {}
extension ProgressStyle: ExpressibleByArgument {}

/// The number of CPUs this process may run on (the `Cpus_allowed` mask in /proc/self/status), which
/// is what an MPI launcher's core binding changes.
func allowedCPUCount() -> Int? {
  guard let file = fopen("/proc/self/status", "r") else { return nil }
  defer { fclose(file) }
  var line = [CChar](repeating: 0, count: 4096)
  while fgets(&line, Int32(line.count), file) != nil {
    let text = line.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    guard text.hasPrefix("Cpus_allowed:") else { continue }
    let mask = text.dropFirst("Cpus_allowed:".count)
    return mask.reduce(0) { count, character in count + (character.hexDigitValue?.nonzeroBitCount ?? 0) }
  }
  return nil
}

extension TrainingConfiguration {
  /// The settings the option groups shared by `train` and `bench` describe.
  init(data: DataOptions, model: ModelOptions, optimization: OptimizationOptions, parallel: ParallelOptions) {
    self.init()
    dataDirectory = data.directory
    epochs = optimization.epochs
    batchSize = optimization.batchSize
    microBatchSize = optimization.microBatch ?? Self.defaultMicroBatch(forBatch: optimization.batchSize)
    adam.learningRate = optimization.learningRate
    seed = optimization.seed
    maxSteps = optimization.maxSteps
    validationSize = optimization.resolvedValidationSize
    earlyStoppingPatience = optimization.earlyStopping
    earlyStoppingMinDelta = optimization.minDelta
    latentDim = model.latentDim
    beta = model.beta
    threads = parallel.threads.resolved
    reduction = parallel.reduction
    syncCheckEvery = parallel.checkSync
    skipNonFinite = parallel.skipNonfinite
  }
}
