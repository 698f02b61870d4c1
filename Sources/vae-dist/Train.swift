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
      --checkpoint-every steps, each epoch end, and on a stop) and DIR/model.safetensors \
      (PyTorch state_dict names and layouts) into the --out directory. SIGINT, SIGTERM or SIGUSR1 (the \
      one mpirun passes on) finishes the step in progress, writes a checkpoint and exits 0; --resume \
      continues from it.
      """)

  @OptionGroup(title: "Data") var data: DataOptions
  @OptionGroup(title: "Model") var model: ModelOptions
  @OptionGroup(title: "Optimization") var optimization: OptimizationOptions
  @OptionGroup(title: "Run length") var length: RunLengthOptions
  @OptionGroup(title: "Parallelism") var parallel: ParallelOptions
  @OptionGroup(title: "Output") var output: OutputOptions

  func makeConfiguration() -> TrainingConfiguration {
    var c = TrainingConfiguration(data: data, model: model, optimization: optimization, length: length, parallel: parallel)
    c.outputDirectory = output.outputDirectory
    c.progress = output.resolvedProgress
    c.checkpointEvery = output.checkpointEvery
    c.keepCheckpoints = output.keep
    c.plotEvery = output.plotEvery
    c.iwSamples = output.iwSamples
    c.tensorboardDirectory = output.tensorboardDirectory
    c.logEvery = output.logEvery
    return c
  }

  func validate() throws { try makeConfiguration().refuseProblems() }

  func run() throws {
    let configuration = makeConfiguration()
    try withCommunicator(parallel) { communicator in
      StopSignal.install()
      let trainer = try Trainer(configuration: configuration, communicator: communicator, start: output.start, hooks: Hooks.trainer)
      trainer.printBanner()
      _ = try trainer.run()
    }
  }
}
