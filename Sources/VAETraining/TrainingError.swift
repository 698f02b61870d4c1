import VAEFiles
import VAEData
import VAEDistributed

public enum TrainingError: Error, CustomStringConvertible, ClassifiedError {
  /// A setting that cannot work; every rank finds the same.
  case configuration(String)
  /// The run refused to start: --out holds another run, or --resume has nothing of this run's.
  case refused(String)
  /// The output directory cannot be used.
  case output(String)
  /// The loss or its gradient became non-finite at `step`; the last good state is `checkpoint`.
  case nonFinite(step: Int, what: String, checkpoint: String?)
  /// The state to checkpoint after `step` holds NaN or ∞ (`what`: the parameters or a moment),
  /// though the step's loss and gradient were finite: Adam's update overflowed.
  case nonFiniteState(step: Int, what: String)
  case parametersDiverged(step: Int)

  public var description: String {
    switch self {
    case .configuration(let message), .refused(let message), .output(let message): return message
    case .nonFinite(let step, let what, let checkpoint):
      return "\(what) became NaN or infinite at step \(step); the step was not applied. "
        + (checkpoint.map { "The last good state (step \(step - 1)) is kept in \($0); " } ?? "")
        + "lower --lr (or pass --skip-nonfinite) and check the input data."
    case .nonFiniteState(let step, let what):
      return "the \(what) hold NaN or infinite values after step \(step), from finite gradients: the update overflowed. "
        + "Not checkpointed; lower --lr."
    case .parametersDiverged(let step):
      return "ranks hold different parameters at step \(step): the synchronized step is broken. "
        + "This is a bug in vae-dist; please report it with the command line."
    }
  }

  public var failureKind: FailureKind {
    switch self {
    case .configuration: return .configuration
    case .refused: return .refused
    case .output: return .output
    case .nonFinite, .nonFiniteState: return .nonFinite
    case .parametersDiverged: return .internalError
    }
  }
}

extension FileError: ClassifiedError {
  public var failureKind: FailureKind {
    if case .writeFailed = self { return .output }
    return .data
  }
}

extension DataError: ClassifiedError {
  public var failureKind: FailureKind {
    if case .setting = self { return .configuration }
    return .data
  }
}
