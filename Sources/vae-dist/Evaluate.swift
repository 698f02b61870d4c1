import VAEFiles
import ArgumentParser
import VAECore
import VAEData
import VAEDistributed
import VAETraining

struct Evaluate: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Evaluate a saved model on the 10,000 test images.",
    discussion: """
      Prints the mean test loss with its reconstruction and KL parts, with z sampled as in training \
      and with z = z_mean, and the importance-weighted estimate of the test log-likelihood (k samples \
      per image) beside the ELBO. Runs as one process.
      """)

  @Option(help: ArgumentHelp(
    "A model.safetensors written by vae-dist, or a folder holding one: a run's --out, or a checkpoint (DIR/checkpoints/step-N, DIR/checkpoints/best).",
    valueName: "path"))
  var checkpoint: String

  @OptionGroup(title: "Data") var data: DataOptions

  @Option(help: "Seed of the sampling noise (default: the run's, which the model file records, so the run's figures come out again; 0 if it records none).")
  var seed: UInt64?

  @OptionGroup var threads: ThreadOptions

  @Option(help: ArgumentHelp("Samples per image of the importance-weighted log-likelihood estimate (0: skip it).", valueName: "k"))
  var iwSamples = 100

  @Flag(help: "Print one JSON object instead of text.")
  var json = false

  func validate() throws {
    guard iwSamples >= 0 && iwSamples <= 100_000 else { throw ValidationError("--iw-samples must be between 0 and 100000 (got \(iwSamples)).") }
  }

  func run() throws {
    configureBLASForWorkerThreads()
    try reportingFailures {
      let path = modelFilePath(checkpoint)
      let file = try SafeTensors.read(path: path)
      let (layout, parameters) = try ModelFile.parameters(from: file, path: path)
      let test = ImageStore(try FashionMNIST.load(directory: data.directory, split: .test))
      let recorded = recordedSeed(file), seed = self.seed ?? recorded ?? 0
      let evaluator = Evaluator(latentDim: layout.latentDim, seed: seed, threads: threads.resolved)
      let evaluation = evaluator.evaluate(parameters: parameters, images: test)
      let sampled = evaluation.loss
      let mean = evaluator.evaluate(parameters: parameters, images: test, useMean: true).loss
      var estimate: LikelihoodEstimate?
      if iwSamples > 0 {
        // On stderr (stdout may be --json): the estimate takes about a minute a hundred samples on two cores.
        let started = monotonicSeconds()
        var quarters = QuarterMarks()
        printError("evaluate: importance-weighted log-likelihood, k = \(iwSamples) samples for each of \(grouped(test.count)) test images (--iw-samples 0 skips it)")
        estimate = evaluator.importanceWeighted(
          parameters: parameters, images: test, samples: iwSamples,
          progress: { done, total in
            if let percent = quarters.crossed(done, of: total) {
              printError("  estimate \(percent)%: \(done)/\(total) test images, \(fixed(monotonicSeconds() - started, 0)) s")
            }
          })
      }
      // A model whose losses are not finite (weights so large the logits overflow) is reported, then
      // is a failure: the figures were printed as nan with status 0.
      let finite = [sampled.meanLoss(beta: 1), mean.meanLoss(beta: 1), estimate?.elbo ?? 0, estimate?.logLikelihood ?? 0].allSatisfy(\.isFinite)
      func failIfNotFinite() throws {
        guard !finite else { return }
        printError("vae-dist: error: \(path): its test loss is not finite (NaN or infinite): a diverged model; evaluate an earlier checkpoint")
        throw ExitCode(FailureKind.nonFinite.exitStatus)
      }
      if json {
        print(JSONLine.encode(EvaluationReport(sampled: sampled, mean: mean, estimate: estimate, deadHiddenUnits: evaluation.deadHiddenUnits)))
        return try failIfNotFinite()
      }
      let step = file.metadata["step"].map { ", step \($0)" } ?? ""
      let whose = self.seed != nil ? "" : recorded != nil ? " (the run's)" : " (the file records none)"
      print("\(path): latent size \(layout.latentDim), \(grouped(layout.totalCount)) parameters\(step); noise seed \(seed)\(whose)")
      print("test set, \(grouped(sampled.count)) images (loss per image = reconstruction + KL, at β = 1):")
      print("  z sampled  loss \(fixed(sampled.meanLoss(beta: 1), 3))  (recon \(fixed(sampled.meanReconstruction, 3)), kl \(fixed(sampled.meanKL, 3)))")
      print("  z = z_mean loss \(fixed(mean.meanLoss(beta: 1), 3))  (recon \(fixed(mean.meanReconstruction, 3)), kl \(fixed(mean.meanKL, 3)))")
      print("  encoder: \(evaluation.deadHiddenUnits) of its \(Architecture.hiddenUnits) hidden units dead (zero for every test image)")
      if let estimate {
        print("  ELBO \(fixed(estimate.elbo, 3)) nats; importance-weighted log-likelihood (k = \(estimate.samples)) \(fixed(estimate.logLikelihood, 3)) nats")
      }
      try failIfNotFinite()
    }
  }
}
