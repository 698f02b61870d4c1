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
      ("images_per_sec", number(imagesPerSecond)), ("seconds", number(seconds)),
      ("skipped_steps", "\(skippedSteps)"),
    ]
    return "{" + fields.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}"
  }
}
