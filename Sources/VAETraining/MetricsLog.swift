import Foundation
import VAECore
import VAEFiles

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
  /// The encoder's hidden units that were zero for every test image (SetEvaluation).
  public var deadHiddenUnits: Int? = nil
  /// Early stopping's verdict: this epoch has the best validation loss so far.
  public var isBest: Bool? = nil
  /// The learning rate of the epoch's last step.
  public var learningRate: Double? = nil

  public init(
    epoch: Int, step: Int, train: LossSums, test: LossSums?, imagesPerSecond: Double, seconds: Double, beta: Double,
    skippedSteps: Int = 0
  ) {
    self.epoch = epoch
    self.step = step
    self.train = train
    self.test = test
    self.imagesPerSecond = imagesPerSecond
    self.seconds = seconds
    self.beta = beta
    self.skippedSteps = skippedSteps
  }

  /// The JSON line, with NaN and infinities (a diverged run) as null.
  public var json: String { JSONLine.encode(Record(self)) }

  struct Record: Encodable {
    var epoch, step: Int
    var train_loss, train_recon, train_kl: Number
    var train_images: Int
    var test_loss, test_recon, test_kl, test_loss_mean_z, test_recon_mean_z, test_kl_mean_z: Number
    var images_per_sec, seconds: Number
    var skipped_steps: Int
    var test_dead_hidden_units: Int?
    var val_loss, val_recon, val_kl: Number?
    var best: Bool?
    var lr: Number?

    init(_ m: EpochMetrics) {
      let b = m.beta
      epoch = m.epoch
      step = m.step
      (train_loss, train_recon, train_kl) = (Number(m.train.meanLoss(beta: b)), Number(m.train.meanReconstruction), Number(m.train.meanKL))
      train_images = m.train.count
      (test_loss, test_recon, test_kl) = (Number(m.test?.meanLoss(beta: b)), Number(m.test?.meanReconstruction), Number(m.test?.meanKL))
      (test_loss_mean_z, test_recon_mean_z, test_kl_mean_z) =
        (Number(m.testMeanZ?.meanLoss(beta: b)), Number(m.testMeanZ?.meanReconstruction), Number(m.testMeanZ?.meanKL))
      images_per_sec = Number(m.imagesPerSecond)
      seconds = Number(m.seconds)
      skipped_steps = m.skippedSteps
      test_dead_hidden_units = m.deadHiddenUnits
      if let v = m.validation {
        (val_loss, val_recon, val_kl) = (Number(v.meanLoss(beta: b)), Number(v.meanReconstruction), Number(v.meanKL))
      }
      best = m.isBest
      lr = m.learningRate.map { Number($0) }
    }
  }
}
