import VAEPictures
import VAEFiles
import Foundation
import VAECore
import VAEData
import VAEDistributed
import VAEImages

/// Everything rank zero writes into --out, and only rank zero: metrics.jsonl, checkpoints, pictures,
/// the model file and evaluation.json. Every failure here is a FileError naming the file.
final class RunOutput {
  let configuration: TrainingConfiguration
  let console: Console
  let checkpoints: CheckpointStore
  let data: DataFingerprint
  var tensorBoard: TensorBoardOutput?
  /// A failure of a write made between steps (TensorBoard's step scalars), kept for the next
  /// exchange rank zero leads, so every rank learns of it in the protocol. It also asks the run to
  /// stop, as a signal does: the next step's reduction carries the stop, rank zero writes a
  /// checkpoint, and then every rank ends with this error (Trainer.stopOnSignal, endEpoch).
  var deferredError: Error?
  /// The TensorBoard log until one of its writes failed; the files in --out are still written after.
  var liveTensorBoard: TensorBoardOutput? { deferredError == nil ? tensorBoard : nil }
  var directory: String { configuration.outputDirectory }
  var metricsPath: String { directory + "/metrics.jsonl" }

  init(configuration: TrainingConfiguration, console: Console, data: DataFingerprint) {
    self.configuration = configuration
    self.console = console
    self.data = data
    checkpoints = CheckpointStore(
      outputDirectory: configuration.outputDirectory, keep: configuration.keepCheckpoints,
      owner: RunDirectory.Record(configuration: configuration, data: data))
  }

  // MARK: - metrics.jsonl

  /// Starts metrics.jsonl afresh (a new run) and opens the TensorBoard log (a resumed run continues
  /// both).
  func openLogs(resumedAt step: Int?) throws {
    if step == nil { try? FileManager.default.removeItem(atPath: metricsPath) }
    if let folder = configuration.tensorboardDirectory {
      tensorBoard = try TensorBoardOutput(directory: folder, configuration: configuration, resumedAt: step)
    }
  }

  /// DIR/progress.json: the last step done, rewritten after every step (a rename, no fsync: tens of
  /// microseconds against a step's tens of milliseconds), so that a supervisor can say how many
  /// steps a fault cost. The copy being written is named for this process, as AtomicFile's are, so
  /// the next run's claim of DIR removes one a crash left (AtomicFile.removeLeftovers).
  func noteProgress(_ step: Int) {
    let record = Array("{\"step\":\(step)}\n".utf8)
    let path = directory + "/progress.json", temporary = path + ".tmp-\(getpid())"
    guard let file = fopen(temporary, "w") else { return }
    let written = fwrite(record, 1, record.count, file)
    // Only a whole record replaces the last one (a full disk must not leave an empty progress.json).
    guard fclose(file) == 0, written == record.count else {
      unlink(temporary)
      return
    }
    rename(temporary, path)
  }

  /// Called by rank zero's loop after each step: never throws (see deferredError).
  func logStep(_ step: Int, losses: LossSums, seconds: Double, learningRate: Double) {
    noteProgress(step)
    guard let tensorBoard = liveTensorBoard else { return }
    do {
      try tensorBoard.step(
        step, losses: losses, seconds: seconds, learningRate: learningRate, every: configuration.logEvery, configuration: configuration)
    } catch {
      deferLogFailure(error, at: step, then: "stopping after the next step with a checkpoint")
    }
  }

  /// A TensorBoard write failed: the error is kept (thrown after the next checkpoint) and the run
  /// asked to stop; the log is written no more.
  private func deferLogFailure(_ error: Error, at step: Int, then: String) {
    deferredError = error
    console.line("step \(step): \(error); \(then)")
    StopSignal.request()
  }

  func throwDeferredError() throws {
    if let error = deferredError { throw error }
  }

  func append(_ metrics: EpochMetrics) throws {
    try AtomicFile.appendLine(metrics.json, to: metricsPath)
    try liveTensorBoard?.epoch(metrics)
  }

  /// Keeps the lines of metrics.jsonl for the epochs the checkpoint completed: the resumed run logs
  /// the epoch in progress (and any logged after the checkpoint, before a crash) again. When the run
  /// ends at the checkpoint (`runEndsThere`: --max-steps inside an epoch, killed in its final work),
  /// no epoch follows to log it again: the partial epoch's line at that very step stays.
  func trimMetrics(afterStep step: Int, stepsPerEpoch: Int, runEndsThere: Bool = false) throws {
    guard FileManager.default.fileExists(atPath: metricsPath) else { return }
    // Unreadable, it would be appended to untrimmed, and epochs logged twice.
    guard let text = try? String(contentsOfFile: metricsPath, encoding: .utf8) else {
      throw FileError.invalid(path: metricsPath, reason: "cannot be read as text to trim it to the checkpoint's epochs; move it aside to resume")
    }
    let completedEpochs = step / stepsPerEpoch
    var unreadable = 0
    let kept = MetricsRecord.lines(of: text).map(\.text).filter { line in
      guard let record = MetricsRecord.parse(line), let lineStep = record.step else {
        unreadable += 1
        return false
      }
      return lineStep <= step && (record.epoch <= completedEpochs || (runEndsThere && lineStep == step))
    }
    if unreadable > 0 {
      console.line("warning: \(metricsPath): left out \(unreadable) line\(unreadable == 1 ? "" : "s") that \(unreadable == 1 ? "is" : "are") not an epoch's record (a write cut short by a crash, or an edit)")
    }
    try AtomicFile.write(Array(kept.map { $0 + "\n" }.joined().utf8), to: metricsPath)
  }

  // MARK: - Checkpoints and the model

  /// Writes a checkpoint of `engine`'s buffers and `state`; returns its directory.
  @discardableResult
  func writeCheckpoint(_ engine: StepEngine, state: TrainingState, name: String? = nil) throws -> String {
    // The log first: a failure there stops the run as any log failure does (after this checkpoint).
    do { try liveTensorBoard?.sync() } catch { deferLogFailure(error, at: state.step, then: "stopping after this checkpoint") }
    return try checkpoints.write(
      parameters: engine.parameters.pointer, firstMoment: engine.firstMoment.pointer,
      secondMoment: engine.secondMoment.pointer, layout: engine.layout, state: state, configuration: configuration,
      data: data, name: name)
  }

  /// The newest checkpoint of this run, or a refusal that says why there is none.
  func resumableCheckpoint() throws -> Checkpoint {
    let (own, foreign) = try checkpoints.newestOwn(warn: { self.console.line("warning: \($0)") })
    if let own { return own }
    if let foreign, let refusal = RunDirectory.Record(configuration: foreign.configuration, data: foreign.data)
      .refusal(of: configuration, data: data, holder: foreign.path)
    {
      throw refusal
    }
    throw TrainingError.refused(
      "--resume: no complete checkpoint in \(checkpoints.directory); run without --resume to start afresh")
  }

  func writeModel(_ engine: StepEngine, step: Int) throws -> String {
    let path = directory + "/model.safetensors"
    try SafeTensors.write(modelFile(engine, step: step), to: path)
    return path
  }

  func modelFile(_ engine: StepEngine, step: Int) -> SafeTensors.File {
    SafeTensors.File(
      metadata: [
        "format": "pt", "producer": "vae-dist", "latent_dim": "\(engine.layout.latentDim)", "step": "\(step)",
        "seed": "\(configuration.seed)",
      ], tensors: ModelFile.tensors(engine.parameters.pointer, layout: engine.layout))
  }

  // MARK: - Pictures and the estimate

  /// Writes the pictures into DIR/images; a stop signal skips the rest (said on the console).
  func writePictures(parameters: ScalarBuffer<Float>, test: ImageStore, step: Int) throws {
    let pictures = Pictures(parameters: parameters, latentDim: configuration.latentDim, seed: configuration.seed, threads: configuration.threads)
    let folder = directory + "/images"
    let result = try pictures.writeAll(into: folder, test: test, metricsPath: metricsPath) { StopSignal.requested }
    console.line("wrote \(result.written.count) pictures into \(folder)/ at step \(step)")
    try liveTensorBoard?.pictures(result.written, step: step)
    if !result.skipped.isEmpty {
      console.line(
        "stopped by a signal: skipped \(result.skipped.joined(separator: ", ")); the same command with --resume draws them")
    }
  }

  /// The importance-weighted test log-likelihood beside the ELBO (every rank computed its share),
  /// printed and kept in DIR/evaluation.json; nil when a stop signal ended it.
  func record(_ estimate: LikelihoodEstimate?, seconds: Double, step: Int) throws {
    let k = configuration.iwSamples
    guard let estimate else {
      console.line(
        "stopped by a signal: skipped the importance-weighted log-likelihood estimate (model.safetensors is written); "
          + "the same command with --resume finishes it")
      return
    }
    console.line(
      "test set: ELBO \(fixed(estimate.elbo, 3)), importance-weighted log-likelihood (k = \(k)) "
        + "\(fixed(estimate.logLikelihood, 3)) nats per image (\(fixed(seconds, 1)) s)")
    let record = EvaluationRecord(
      step: step, images: estimate.images, iw_samples: k, test_elbo: Number(estimate.elbo),
      test_log_likelihood_iw: Number(estimate.logLikelihood))
    try AtomicFile.write(Array((JSONLine.encode(record) + "\n").utf8), to: directory + "/evaluation.json")
    try liveTensorBoard?.final(elbo: estimate.elbo, logLikelihood: estimate.logLikelihood, step: step)
  }
}

/// DIR/evaluation.json.
struct EvaluationRecord: Codable {
  var step, images, iw_samples: Int
  var test_elbo, test_log_likelihood_iw: Number
}

/// `evaluate --json`: NaN and infinities (a diverged model) as null.
public struct EvaluationReport: Encodable {
  var images: Int
  var test_loss, test_recon, test_kl, test_loss_mean_z, test_recon_mean_z, test_kl_mean_z: Number
  var test_dead_hidden_units: Int?
  var iw_samples: Int?
  var test_elbo, test_log_likelihood_iw: Number?

  public init(sampled: LossSums, mean: LossSums, estimate: LikelihoodEstimate?, deadHiddenUnits: Int? = nil) {
    test_dead_hidden_units = deadHiddenUnits
    images = sampled.count
    (test_loss, test_recon, test_kl) = (Number(sampled.meanLoss(beta: 1)), Number(sampled.meanReconstruction), Number(sampled.meanKL))
    (test_loss_mean_z, test_recon_mean_z, test_kl_mean_z) = (Number(mean.meanLoss(beta: 1)), Number(mean.meanReconstruction), Number(mean.meanKL))
    iw_samples = estimate?.samples
    test_elbo = estimate.map { Number($0.elbo) }
    test_log_likelihood_iw = estimate.map { Number($0.logLikelihood) }
  }
}
