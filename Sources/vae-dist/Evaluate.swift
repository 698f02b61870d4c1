import VAEFiles
import ArgumentParser
import VAECore
import VAEData
import VAETraining

struct Evaluate: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Evaluate a saved model on the 10,000 test images.",
    discussion: """
      Prints the mean test loss with its reconstruction and KL parts, with z sampled as in training \
      and with z = z_mean, and the importance-weighted estimate of the test log-likelihood (k samples \
      per image) beside the ELBO. Runs as one process.
      """)

  @Option(help: ArgumentHelp("A model.safetensors or checkpoint written by vae-dist.", valueName: "file"))
  var checkpoint: String

  @OptionGroup(title: "Data") var data: DataOptions

  @Option(help: "Seed of the sampling noise.")
  var seed: UInt64 = 0

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
      let file = try SafeTensors.read(path: checkpoint)
      let (layout, parameters) = try ModelFile.parameters(from: file, path: checkpoint)
      let test = ImageStore(try FashionMNIST.load(directory: data.directory, split: .test))
      let evaluator = Evaluator(latentDim: layout.latentDim, seed: seed, threads: threads.resolved)
      let evaluation = evaluator.evaluate(parameters: parameters, images: test)
      let sampled = evaluation.loss
      let mean = evaluator.evaluate(parameters: parameters, images: test, useMean: true).loss
      let estimate = iwSamples > 0 ? evaluator.importanceWeighted(parameters: parameters, images: test, samples: iwSamples) : nil
      if json {
        print(JSONLine.encode(EvaluationReport(sampled: sampled, mean: mean, estimate: estimate, deadHiddenUnits: evaluation.deadHiddenUnits)))
        return
      }
      print("\(checkpoint): latent size \(layout.latentDim), \(grouped(layout.totalCount)) parameters")
      print("test set, \(grouped(sampled.count)) images (loss per image = reconstruction + KL):")
      print("  z sampled  loss \(fixed(sampled.meanLoss(beta: 1), 3))  (recon \(fixed(sampled.meanReconstruction, 3)), kl \(fixed(sampled.meanKL, 3)))")
      print("  z = z_mean loss \(fixed(mean.meanLoss(beta: 1), 3))  (recon \(fixed(mean.meanReconstruction, 3)), kl \(fixed(mean.meanKL, 3)))")
      print("  encoder: \(evaluation.deadHiddenUnits) of its \(Architecture.hiddenUnits) hidden units dead (zero for every test image)")
      if let estimate {
        print("  ELBO \(fixed(estimate.elbo, 3)) nats; importance-weighted log-likelihood (k = \(estimate.samples)) \(fixed(estimate.logLikelihood, 3)) nats")
      }
    }
  }
}
