import VAEPictures
import TensorBoardLog
import VAECore
import VAEDistributed

/// Rank zero's TensorBoard log (DIR/tensorboard by default): what metrics.jsonl and images/ hold,
/// as event files TensorBoard reads live. Tags:
/// - `train/loss`, `train/recon`, `train/kl`, `train/images_per_sec`, `train/lr`: every
///   --log-every steps, the means over the steps since the last;
/// - `epoch/train_loss`, `epoch/test_loss`, `epoch/test_loss_mean_z`, `epoch/val_loss` (with their
///   `_recon` and `_kl` parts) and `epoch/test_dead_hidden_units`: per epoch, the numbers of
///   metrics.jsonl at the same step;
/// - `final/test_elbo`, `final/test_log_likelihood_iw`: at the end;
/// - `images/<picture>`: the PNGs of images/ whenever they are written;
/// - `settings`: the run's configuration as text.
/// A resumed run opens a new file that starts with a SessionLog START at the first step it redoes,
/// so TensorBoard drops what the stopped run logged after its checkpoint: one value per step. A new
/// run's starts with one at step 0: the log of an earlier run that left no checkpoint in the folder
/// (killed in its first steps; a supervisor's restart from scratch) is dropped whole.
final class TensorBoardOutput {
  let writer: EventWriter
  private var pending = (losses: LossSums(), images: 0, seconds: 0.0)

  init(directory: String, configuration c: TrainingConfiguration, resumedAt step: Int?) throws {
    writer = try EventWriter(directory: directory)
    if let step {
      try writer.sessionStart(step: step + 1)
    } else {
      try writer.sessionStart(step: 0)
      try writer.text("settings", settingsTable(c), step: 0)
    }
  }

  /// The events so far made durable (before each checkpoint).
  func sync() throws { try writer.sync() }

  /// Adds one step; writes the means every `every` steps.
  func step(
    _ step: Int, losses: LossSums, seconds: Double, learningRate: Double, every: Int, configuration c: TrainingConfiguration
  ) throws {
    pending.losses = pending.losses + losses
    pending.images += losses.count
    pending.seconds += seconds
    guard step % every == 0, pending.losses.count > 0 else { return }
    let l = pending.losses
    try writer.scalar("train/loss", l.meanLoss(beta: c.beta), step: step)
    try writer.scalar("train/recon", l.meanReconstruction, step: step)
    try writer.scalar("train/kl", l.meanKL, step: step)
    try writer.scalar("train/images_per_sec", Double(pending.images) / max(pending.seconds, 1e-9), step: step)
    try writer.scalar("train/lr", learningRate, step: step)
    pending = (LossSums(), 0, 0)
  }

  func epoch(_ m: EpochMetrics) throws {
    var sets: [(String, LossSums)] = [("train", m.train)]
    if let test = m.test { sets.append(("test", test)) }
    if let meanZ = m.testMeanZ { sets.append(("test_mean_z", meanZ)) }
    if let validation = m.validation { sets.append(("val", validation)) }
    for (name, sums) in sets {
      let prefix = name == "test_mean_z" ? "epoch/test" : "epoch/\(name)"
      let suffix = name == "test_mean_z" ? "_mean_z" : ""
      try writer.scalar("\(prefix)_loss\(suffix)", sums.meanLoss(beta: m.beta), step: m.step)
      try writer.scalar("\(prefix)_recon\(suffix)", sums.meanReconstruction, step: m.step)
      try writer.scalar("\(prefix)_kl\(suffix)", sums.meanKL, step: m.step)
    }
    if let dead = m.deadHiddenUnits { try writer.scalar("epoch/test_dead_hidden_units", Double(dead), step: m.step) }
  }

  func pictures(_ written: [WrittenPicture], step: Int) throws {
    for picture in written {
      let tag = "images/" + picture.name.replacingOccurrences(of: ".png", with: "")
      try writer.image(tag, png: picture.png, width: picture.width, height: picture.height, step: step)
    }
  }

  func final(elbo: Double, logLikelihood: Double, step: Int) throws {
    try writer.scalar("final/test_elbo", elbo, step: step)
    try writer.scalar("final/test_log_likelihood_iw", logLikelihood, step: step)
  }
}

/// The settings as a Markdown table (TensorBoard's text plugin renders it).
func settingsTable(_ c: TrainingConfiguration) -> String {
  let rows: [(String, String)] = [
    ("data", c.syntheticData ? "synthetic" : c.dataDirectory), ("epochs", "\(c.epochs)"), ("batch size", "\(c.batchSize)"),
    ("micro-batch", "\(c.microBatchSize)"), ("learning rate", "\(c.adam.learningRate)"), ("schedule", c.learningRateSchedule?.description ?? "constant"), ("latent size", "\(c.latentDim)"),
    ("β", "\(c.beta)"), ("seed", "\(c.seed)"), ("max steps", c.maxSteps.map { "\($0)" } ?? "none"),
    ("threads per rank", "\(c.threads)"), ("reduction", c.reduction.rawValue), ("validation images", "\(c.validationSize)"),
    ("early stopping", c.earlyStoppingPatience.map { "patience \($0), min delta \(c.earlyStoppingMinDelta)" } ?? "off"),
    ("output", c.outputDirectory),
  ]
  return "| setting | value |\n| --- | --- |\n" + rows.map { "| \($0.0) | \($0.1) |" }.joined(separator: "\n")
}

extension EventWriterError: ClassifiedError {
  public var failureKind: FailureKind { .output }
}
