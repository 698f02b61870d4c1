import VAECore

/// One line of DIR/metrics.jsonl: the figures of one epoch (or of the last, partial one).
public struct EpochMetrics: Sendable {
  public var epoch: Int
  public var step: Int
  public var train: LossSums
  public var test: LossSums?
  public var imagesPerSecond: Double
  public var seconds: Double
  public var beta: Double
  public var skippedSteps = 0
  /// The test loss with z = z_mean instead of a sample.
  public var testMeanZ: LossSums? = nil
  public var validation: LossSums? = nil
  /// Early stopping's verdict: this epoch has the best validation loss so far.
  public var isBest: Bool? = nil

  public var json: String {
    func number(_ value: Double?) -> String {
      guard let value, value.isFinite else { return "null" }
      return "\(value)"
    }
    let fields: [(String, String)] = [
      ("epoch", "\(epoch)"), ("step", "\(step)"),
      ("train_loss", number(train.meanLoss(beta: beta))), ("train_recon", number(train.meanReconstruction)),
      ("train_kl", number(train.meanKL)), ("train_images", "\(train.count)"),
      ("test_loss", number(test?.meanLoss(beta: beta))), ("test_recon", number(test?.meanReconstruction)),
      ("test_kl", number(test?.meanKL)),
      ("test_loss_mean_z", number(testMeanZ?.meanLoss(beta: beta))),
      ("test_recon_mean_z", number(testMeanZ?.meanReconstruction)), ("test_kl_mean_z", number(testMeanZ?.meanKL)),
      ("images_per_sec", number(imagesPerSecond)), ("seconds", number(seconds)),
      ("skipped_steps", "\(skippedSteps)"),
    ] + (validation.map { v in
      [("val_loss", number(v.meanLoss(beta: beta))), ("val_recon", number(v.meanReconstruction)), ("val_kl", number(v.meanKL))]
    } ?? []) + (isBest.map { [("best", $0 ? "true" : "false")] } ?? [])
    return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
  }
}
