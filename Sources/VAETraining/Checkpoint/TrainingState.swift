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
    guard !loss.isNaN else {
      epochsWithoutImprovement += 1
      return false
    }
    bestValidationLoss = loss
    bestStep = step
    epochsWithoutImprovement = 0
    return true
  }

  public func shouldStopEarly(patience: Int?) -> Bool {
    patience.map { epochsWithoutImprovement >= $0 } ?? false
  }
}
