import VAECore

/// Everything besides parameters and Adam moments that a run needs to continue exactly where it was.
/// The data order and every random draw are functions of (seed, epoch, step), so the step alone
/// locates the run in its data order and its generators; there is no generator state to save.
public struct TrainingState: Codable, Sendable, Equatable {
  /// Optimizer steps taken so far.
  public var step = 0
  /// Loss sums of the epoch in progress (so its reported figures come out the same after a resume),
  /// kept as three plain fields so the checkpoint's JSON names them; read and written as
  /// `epochLosses`.
  private var epochReconstruction = 0.0
  private var epochKL = 0.0
  private var epochImages = 0
  public var epochSeconds = 0.0
  /// Steps whose gradient was not finite and that --skip-nonfinite skipped.
  public var skippedSteps = 0
  /// Early stopping: the best validation loss so far, the step it was reached at, and the epochs
  /// since without an improvement.
  public var bestValidationLoss: Double? = nil
  public var bestStep: Int? = nil
  public var epochsWithoutImprovement = 0

  public init() {}

  public var epochLosses: LossSums {
    get { LossSums(reconstruction: epochReconstruction, kl: epochKL, count: epochImages) }
    set { (epochReconstruction, epochKL, epochImages) = (newValue.reconstruction, newValue.kl, newValue.count) }
  }

  /// A new epoch starts with nothing summed and no time spent.
  public mutating func startEpoch() {
    epochLosses = LossSums()
    epochSeconds = 0
  }

  /// Early stopping's bookkeeping for one epoch's validation loss at `step`: true when it improves on
  /// the best so far by more than `minDelta` (the first always does). NaN never improves.
  public mutating func recordValidation(_ loss: Double, step: Int, minDelta: Double) -> Bool {
    if let best = bestValidationLoss, !(loss < best - minDelta) {
      epochsWithoutImprovement += 1
      return false
    }
    guard loss.isFinite else {  // NaN, or an infinite loss (a checkpoint's JSON cannot hold it)
      epochsWithoutImprovement += 1
      return false
    }
    bestValidationLoss = loss
    bestStep = step
    epochsWithoutImprovement = 0
    return true
  }

  /// What is impossible in this state (a damaged or hand-edited checkpoint), or nil.
  public var problem: String? {
    if step < 0 { return "step \(step) is negative" }
    if epochImages < 0 || skippedSteps < 0 || epochsWithoutImprovement < 0 { return "a count is negative" }
    // No run comes near 2^40 steps or images (a million epochs of Fashion-MNIST is 2^35 images):
    // a larger count is damage, and would overflow the sums it enters.
    let limit = 1 << 40
    if [step, epochImages, skippedSteps, epochsWithoutImprovement].contains(where: { $0 >= limit }) {
      return "a count is beyond any run (2^40 or more)"
    }
    if !(epochReconstruction.isFinite && epochKL.isFinite) { return "the epoch's loss sums are not finite" }
    if !(epochSeconds >= 0 && epochSeconds.isFinite) { return "the epoch's time \(epochSeconds) is not a duration" }
    if let bestValidationLoss, !bestValidationLoss.isFinite { return "the best validation loss is not finite" }
    if let bestStep, !(0...step).contains(bestStep) { return "the best step \(bestStep) is not in 0…\(step)" }
    return nil
  }

  public func shouldStopEarly(patience: Int?) -> Bool {
    patience.map { epochsWithoutImprovement >= $0 } ?? false
  }
}
