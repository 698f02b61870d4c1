import ArgumentParser
import VAECore
import VAEDistributed
import VAETraining

struct Train: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Train the VAE (the default command).",
    discussion: """
      Writes DIR/metrics.jsonl (one JSON object per epoch), DIR/images/ (reconstructions, samples, \
      manifold, latent scatter, interpolation, loss curves), DIR/evaluation.json (ELBO and \
      importance-weighted log-likelihood of the test set), DIR/checkpoints/step-N/ (every \
      --checkpoint-every steps, each epoch end, and on SIGINT/SIGTERM) and DIR/model.safetensors \
      (PyTorch state_dict names and layouts) into the --out directory. SIGINT or SIGTERM finishes the \
      step in progress, writes a checkpoint and exits 0; --resume continues from it.
      """)

  @OptionGroup(title: "Data") var data: DataOptions
  @OptionGroup(title: "Model") var model: ModelOptions
  @OptionGroup(title: "Optimization") var optimization: OptimizationOptions
  @OptionGroup(title: "Parallelism") var parallel: ParallelOptions
  @OptionGroup(title: "Output") var output: OutputOptions

  func makeConfiguration() -> TrainingConfiguration {
    var c = TrainingConfiguration()
    c.dataDirectory = data.directory
    c.outputDirectory = output.directory
    c.epochs = optimization.epochs
    c.batchSize = optimization.batchSize
    c.microBatchSize = optimization.microBatch ?? TrainingConfiguration.defaultMicroBatch(forBatch: optimization.batchSize)
    c.adam.learningRate = optimization.learningRate
    c.seed = optimization.seed
    c.maxSteps = optimization.maxSteps
    c.latentDim = model.latentDim
    c.beta = model.beta
    c.threads = parallel.threads.resolved
    c.reduction = parallel.reduction
    c.syncCheckEvery = parallel.checkSync
    c.progress = output.resolvedProgress
    c.checkpointEvery = output.checkpointEvery
    c.keepCheckpoints = output.keep
    c.skipNonFinite = parallel.skipNonfinite
    c.validationSize = optimization.resolvedValidationSize
    c.earlyStoppingPatience = optimization.earlyStopping
    c.earlyStoppingMinDelta = optimization.minDelta
    c.plotEvery = output.plotEvery
    c.iwSamples = output.iwSamples
    return c
  }

  func run() throws {
    let configuration = makeConfiguration()
    try withCommunicator(stallTimeout: parallel.stallTimeout) { communicator in
      StopSignal.install()
      let trainer = try Trainer(configuration: configuration, communicator: communicator)
      trainer.printBanner()
      _ = try trainer.run(resume: output.resume)
    }
  }
}
