/// Why a run ended, as every rank and the launcher see it: one kind per exit status, so a supervisor
/// can tell a fault that a restart may fix from an error that no restart fixes.
public enum FailureKind: Int32, Sendable, Codable, CaseIterable {
  /// A bug or an error nothing else names.
  case internalError = 1
  /// Settings that cannot work together (flags); every rank finds the same.
  case configuration = 2
  /// A rank waited longer than --stall-timeout in a collective (a peer stalled, died or lost the
  /// network), or rank zero's work alone outlasted --write-timeout (a hung file system).
  case peerLost = 3
  /// An input file is missing, unreadable or corrupt (--data, a checkpoint or model file).
  case data = 4
  /// A file could not be written (--out unwritable, a full disk).
  case output = 5
  /// The loss or its gradient became NaN or infinite.
  case nonFinite = 6
  /// The run refused to start: --out belongs to another run, or --resume has nothing of this run's.
  case refused = 7

  /// True for faults a restart with --resume may get past (a lost or stalled peer); false for errors
  /// that would only happen again.
  public var restartable: Bool { self == .peerLost || self == .internalError }

  public var exitStatus: Int32 { rawValue }
}

/// An error that knows which kind of failure it is.
public protocol ClassifiedError: Error {
  var failureKind: FailureKind { get }
}

/// A failure that the ranks have agreed on: every rank throws the same one (same kind, same text),
/// so every rank can exit with the same status without MPI_Abort. `rank` is the rank that found it.
public struct RunFailure: Error, CustomStringConvertible, ClassifiedError {
  public var kind: FailureKind
  public var message: String
  public var rank: Int
  /// True once every rank knows of it (it came through `together` or `rootDecides`).
  public var agreed: Bool

  public init(kind: FailureKind, message: String, rank: Int, agreed: Bool) {
    self.kind = kind
    self.message = message
    self.rank = rank
    self.agreed = agreed
  }

  /// The failure an error on `rank` amounts to.
  public init(_ error: Error, rank: Int) {
    if let failure = error as? RunFailure {
      self = failure
    } else {
      self.init(
        kind: (error as? ClassifiedError)?.failureKind ?? .internalError, message: "\(error)", rank: rank, agreed: false)
    }
  }

  public var failureKind: FailureKind { kind }
  public var description: String { message }
}

extension CommunicationError: ClassifiedError {
  public var failureKind: FailureKind { .peerLost }
}
