import ArgumentParser
import Foundation
import VAEFiles
import VAECore
import VAEData
import VAEDistributed
import VAETraining

#if canImport(Glibc)
  import Glibc
#endif

/// Every option of a run starts from the library's default: TrainingConfiguration is their one home,
/// and its `problems()` holds every check (the commands' `validate()` call it).
let defaults = TrainingConfiguration()  // the option groups' defaults (and what bench checks against)
let scheduleDefaults = LearningRateSchedule()

struct DataOptions: ParsableArguments {
  @Option(name: .customLong("data"), help: ArgumentHelp("Directory of the Fashion-MNIST IDX files (gzip or plain).", valueName: "dir"))
  var directory = defaults.dataDirectory

  func validate() throws {
    guard !directory.isEmpty else { throw ValidationError("--data needs a directory (default: \(defaults.dataDirectory))") }
  }
}

struct ModelOptions: ParsableArguments {
  @Option(help: "Size of the latent space.")
  var latentDim = defaults.latentDim

  @Option(help: "Weight of the KL term in the loss (β-VAE; 1 is the plain VAE).")
  var beta = defaults.beta

  @Option(help: ArgumentHelp(
    "Arithmetic of the convolutions and dense products: 'fp32', or 'bf16' (operands rounded to bfloat16, float sums; parameters, loss, reduction, Adam and checkpoints stay float). Both give the same bits on every CPU.",
    valueName: "p"))
  var precision = Precision.fp32

}

struct OptimizationOptions: ParsableArguments {
  @Option(help: "Global batch size: images per optimizer step over all ranks.")
  var batchSize = defaults.batchSize

  @Option(help: ArgumentHelp(
    "Images per micro-batch, the unit of work of a thread (default: the largest divisor of the batch size up to 16). Changing it changes results in the last bits.",
    valueName: "n"))
  var microBatch: Int?

  @Option(name: .customLong("lr"), help: "Adam learning rate.")
  var learningRate = defaults.adam.learningRate

  @Option(help: ArgumentHelp(
    "How the learning rate changes with the step: 'constant', 'cosine' (from the peak down to --lr-final of it over --lr-decay-steps) or 'step' (× --lr-gamma every --lr-step-every steps). Any of them after --warmup-steps.",
    valueName: "shape"))
  var lrSchedule = scheduleDefaults.shape

  @Option(help: ArgumentHelp("Steps over which the rate ramps linearly from 0 to its peak (0: no warm-up).", valueName: "k"))
  var warmupSteps = scheduleDefaults.warmupSteps

  @Option(help: ArgumentHelp(
    "Scale the peak rate with the global batch: 'linear' (× batch/128), 'sqrt' (× √(batch/128)) or 'none' (--lr as it is).",
    valueName: "rule"))
  var scaleLr = scheduleDefaults.scaling

  @Option(help: ArgumentHelp("cosine: where the decay ends, as a fraction of the peak rate.", valueName: "f"))
  var lrFinal = scheduleDefaults.finalFraction

  @Option(help: ArgumentHelp("cosine: steps after the warm-up over which the rate decays (0: the rest of the run's epochs).", valueName: "k"))
  var lrDecaySteps = scheduleDefaults.decaySteps

  @Option(help: ArgumentHelp("step: multiply the rate by --lr-gamma every k steps after the warm-up.", valueName: "k"))
  var lrStepEvery = scheduleDefaults.stepEvery

  @Option(help: ArgumentHelp("step: the factor the rate is multiplied by.", valueName: "g"))
  var lrGamma = scheduleDefaults.gamma

  /// The schedule these options describe; nil when they describe the plain constant rate.
  var schedule: LearningRateSchedule? {
    var s = LearningRateSchedule()
    (s.shape, s.warmupSteps, s.scaling, s.finalFraction) = (lrSchedule, warmupSteps, scaleLr, lrFinal)
    (s.decaySteps, s.stepEvery, s.gamma) = (lrDecaySteps, lrStepEvery, lrGamma)
    return s.isConstant ? nil : s
  }

  @Option(help: "Seed of the initialization, the data order and the noise.")
  var seed = defaults.seed
}

/// How long a training run lasts and what it holds out to decide it (train only: bench times
/// --steps steps and reads none of these).
struct RunLengthOptions: ParsableArguments {
  @Option(help: "Passes over the training set (1 to 1,000,000).")
  var epochs = defaults.epochs

  @Option(help: ArgumentHelp("Stop after this many optimizer steps.", valueName: "k"))
  var maxSteps: Int?

  @Option(help: ArgumentHelp(
    "Stop when the validation loss has not improved for this many epochs (holds out --val-size training images).",
    valueName: "patience"))
  var earlyStopping: Int?

  @Option(help: ArgumentHelp("Smallest decrease of the validation loss that counts as an improvement.", valueName: "delta"))
  var minDelta = defaults.earlyStoppingMinDelta

  @Option(help: ArgumentHelp(
    "Training images held out for validation, chosen by the seed (default: 5000 with --early-stopping, else 0).",
    valueName: "n"))
  var valSize: Int?

  var resolvedValidationSize: Int { valSize ?? (earlyStopping == nil ? 0 : 5000) }
}

/// --threads, for training (per rank) and for the single-process commands.
struct ThreadOptions: ParsableArguments {
  @Option(help: ArgumentHelp(
    "Worker threads per process, 1 to 256 (default: the cores this process may use, shared with the other ranks on its node, at most 256).",
    valueName: "t"))
  var threads: Int?

  func validate() throws {
    guard let threads else { return }
    var c = defaults
    c.threads = threads
    if let problem = c.problems().first { throw ValidationError(problem) }
  }

  /// The cores this process may run on, shared out among the ranks of this node when they are not
  /// bound to cores of their own.
  var resolved: Int {
    if let threads { return threads }
    let online = onlineCPUCount()
    let allowed = allowedCPUCount() ?? online
    let localRanks = getenv("OMPI_COMM_WORLD_LOCAL_SIZE").flatMap { Int(String(cString: $0)) } ?? 1
    let share = allowed < online ? allowed : allowed / max(1, localRanks)
    return min(max(1, share), TrainingConfiguration.maximumThreads)
  }
}

struct ParallelOptions: ParsableArguments {
  @OptionGroup var threads: ThreadOptions

  @Option(help: ArgumentHelp(
    "How gradients are summed: 'deterministic' (bit-identical for any ranks and threads) or 'fast' (plain float MPI_Allreduce).",
    valueName: "mode"))
  var reduction = defaults.reduction

  @Option(help: ArgumentHelp("Seconds a rank waits for the others in a collective before ending the job (at least 2).", valueName: "seconds"))
  var stallTimeout = 60.0

  @Option(help: ArgumentHelp(
    "With 2 or more ranks: seconds a rank's file work may take while the others wait for it (rank zero's checkpoint, epoch end and final files; a rank's data load once another rank has loaded its own) before it ends the job as a stall (exit 3): a hung file system must not hang every rank.",
    valueName: "seconds"))
  var writeTimeout = 600.0

  @Option(help: ArgumentHelp("Every k steps, verify that all ranks hold identical parameters (0: never).", valueName: "k"))
  var checkSync = defaults.syncCheckEvery

  @Flag(help: "Skip (and count) a step whose loss or gradient is NaN or infinite, instead of stopping.")
  var skipNonfinite = false

  func validate() throws {
    // Rank zero tells the others it is alive every second while it writes or decides alone.
    guard stallTimeout >= 2, stallTimeout.isFinite else {
      throw ValidationError(
        "--stall-timeout must be at least 2 seconds: while rank zero writes checkpoints the others hear from it only once a second (got \(stallTimeout)).")
    }
    guard writeTimeout >= 1 else {  // NaN too
      throw ValidationError("--write-timeout must be at least 1 second (got \(writeTimeout)).")
    }
  }
}

struct OutputOptions: ParsableArguments {
  @Option(name: .customLong("out"), help: ArgumentHelp("Directory for metrics, checkpoints and images (rank zero writes it).", valueName: "dir"))
  var directory = defaults.outputDirectory

  @Option(help: ArgumentHelp(
    "Progress within an epoch: 'bar' (rewritten line), 'lines', 'none', or 'auto' (a bar on a terminal; lines under an MPI launcher, whose output is never the user's terminal).",
    valueName: "style"))
  var progress = defaults.progress

  @Option(help: ArgumentHelp("Write a checkpoint every k steps, besides each epoch end and a stop (0: only those).", valueName: "k"))
  var checkpointEvery = defaults.checkpointEvery

  @Option(help: ArgumentHelp("How many of the newest checkpoints to keep.", valueName: "n"))
  var keep = defaults.keepCheckpoints

  @Flag(help: "Continue from the newest complete checkpoint in --out (same settings; the rank count may differ).")
  var resume = false

  @Flag(help: "Start a new run even if --out holds an earlier run's model or checkpoints: that run is moved aside to DIR.previous-N first (nothing is deleted).")
  var overwrite = false

  @Option(help: ArgumentHelp("Also write the pictures into DIR/images every this many epochs (0: only at the end).", valueName: "n"))
  var plotEvery = defaults.plotEvery

  @Option(help: ArgumentHelp(
    "Where to write TensorBoard event files (default: DIR/tensorboard; 'none': nowhere). View with: tensorboard --logdir DIR/tensorboard",
    valueName: "dir"))
  var tensorboard: String?

  @Option(help: ArgumentHelp("Write the training scalars to TensorBoard every k steps.", valueName: "k"))
  var logEvery = defaults.logEvery

  @Option(help: ArgumentHelp(
    "Samples per test image of the importance-weighted log-likelihood estimate at the end (0: skip it).", valueName: "k"))
  var iwSamples = defaults.iwSamples

  func validate() throws {
    if directory.isEmpty { throw ValidationError("--out needs a directory (the default is '\(defaults.outputDirectory)').") }
    if tensorboard == "" { throw ValidationError("--tensorboard needs a directory, or 'none'.") }
    if tensorboard == "none" && logEvery != defaults.logEvery {
      throw ValidationError("--log-every sets how often TensorBoard gets the scalars, and --tensorboard is none: drop one of them.")
    }
    guard !(resume && overwrite) else { throw ValidationError("--resume continues the run in --out and --overwrite moves it aside: pass one of them.") }
  }

  /// --out as the run's folder (`RunDirectory.folder`).
  var outputDirectory: String { RunDirectory.folder(directory) }

  /// --tensorboard resolved: nil for 'none'.
  var tensorboardDirectory: String? {
    tensorboard == "none" ? nil : tensorboard ?? outputDirectory + "/tensorboard"
  }

  var start: RunStart { resume ? .resume : overwrite ? .overwrite : .fresh }

  var resolvedProgress: ProgressStyle {
    progress == .auto && MPICommunicator.launchedByMPI ? .lines : progress
  }
}

extension ReductionMode: ExpressibleByArgument {}
extension Precision: ExpressibleByArgument {}
extension LearningRateSchedule.Shape: ExpressibleByArgument {}
extension LearningRateSchedule.Scaling: ExpressibleByArgument {}
extension ProgressStyle: ExpressibleByArgument {}

extension TrainingConfiguration {
  /// The settings the option groups shared by `train` and `bench` describe.
  init(data: DataOptions, model: ModelOptions, optimization: OptimizationOptions, length: RunLengthOptions? = nil, parallel: ParallelOptions) {
    self.init()
    dataDirectory = data.directory
    batchSize = optimization.batchSize
    microBatchSize = optimization.microBatch ?? Self.defaultMicroBatch(forBatch: optimization.batchSize)
    adam.learningRate = optimization.learningRate
    learningRateSchedule = optimization.schedule
    seed = optimization.seed
    if let length {
      epochs = length.epochs
      validationSize = length.resolvedValidationSize
      maxSteps = length.maxSteps
      earlyStoppingPatience = length.earlyStopping
      earlyStoppingMinDelta = length.minDelta
    }
    latentDim = model.latentDim
    beta = model.beta
    precision = model.precision == .fp32 ? nil : model.precision
    threads = parallel.threads.resolved
    reduction = parallel.reduction
    syncCheckEvery = parallel.checkSync
    skipNonFinite = parallel.skipNonfinite
  }
}

extension TrainingConfiguration {
  /// The library's checks as the command line's refusal (before any rank starts).
  func refuseProblems() throws {
    if let problem = problems().first { throw ValidationError(problem) }
  }
}

/// What --checkpoint names, as the model file to read: a run's folder or a checkpoint folder
/// (DIR, DIR/checkpoints/step-N, DIR/checkpoints/best) means the model.safetensors inside it (and
/// a folder without one, an error naming that file).
func modelFilePath(_ given: String) -> String {
  var isDirectory: ObjCBool = false
  guard FileManager.default.fileExists(atPath: given, isDirectory: &isDirectory), isDirectory.boolValue else { return given }
  return RunDirectory.folder(given) + "/model.safetensors"
}

/// The seed a model file records (every model.safetensors vae-dist writes does), nil if none.
func recordedSeed(_ file: SafeTensors.File) -> UInt64? { file.metadata["seed"].flatMap { UInt64($0) } }
