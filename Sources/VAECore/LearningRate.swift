#if canImport(Glibc)
  import Glibc
#endif

/// The learning rate as a pure function of the step, so that a resumed run, any layout and any
/// host take the same rate at the same step (Goyal et al. 2017, "Accurate, Large Minibatch SGD":
/// the rate scaled with the batch, reached by a linear warm-up).
///
///   peak   = lr · s(B/128),  s = 1 (none), B/128 (linear), √(B/128) (sqrt), B the global batch
///   warm-up, t ≤ W:   rate(t) = peak · t/W                      (t = 1 is the first update)
///   then, u = t − W:  constant   peak
///                     cosine     peak · (f + (1−f)·½(1 + cos(π·min(1, (u−1)/(D−1)))))   over D steps
///                     step       peak · γ^⌊(u−1)/K⌋
public struct LearningRateSchedule: Sendable, Equatable, Codable {
  public enum Shape: String, Sendable, Codable, CaseIterable { case constant, cosine, step }
  public enum Scaling: String, Sendable, Codable, CaseIterable { case none, linear, sqrt }

  public var shape = Shape.constant
  /// W: updates over which the rate ramps linearly from 0 to the peak (0: none).
  public var warmupSteps = 0
  public var scaling = Scaling.none
  /// cosine: D, the updates after the warm-up over which the rate decays (0: the rest of the run).
  public var decaySteps = 0
  /// cosine: f, where the decay ends, as a fraction of the peak.
  public var finalFraction = 0.0
  /// step: K and γ, the rate multiplied by γ every K updates after the warm-up.
  public var stepEvery = 0
  public var gamma = 0.1

  public init() {}

  public var isConstant: Bool { self == LearningRateSchedule() }

  /// The same schedule with the fields its shape does not read at their defaults: schedules that
  /// give the same rates compare equal (a checkpoint's and a resume's).
  public var canonical: LearningRateSchedule {
    var s = LearningRateSchedule()
    (s.shape, s.warmupSteps, s.scaling) = (shape, warmupSteps, scaling)
    switch shape {
    case .constant: break
    case .cosine: (s.decaySteps, s.finalFraction) = (decaySteps, finalFraction)
    case .step: (s.stepEvery, s.gamma) = (stepEvery, gamma)
    }
    return s
  }

  /// The flags set away from their defaults that this shape does not read, each with the shape
  /// that would ("--lr-gamma", .step): a setting that silently does nothing is a mistake.
  public var unreadFlags: [(flag: String, readBy: Shape)] {
    let plain = LearningRateSchedule()
    let fields: [(String, Shape, Bool)] = [
      ("--lr-final", .cosine, finalFraction != plain.finalFraction), ("--lr-decay-steps", .cosine, decaySteps != plain.decaySteps),
      ("--lr-step-every", .step, stepEvery != plain.stepEvery), ("--lr-gamma", .step, gamma != plain.gamma),
    ]
    return fields.filter { $0.2 && $0.1 != shape }.map { ($0.0, $0.1) }
  }

  /// The rate reached after the warm-up.
  public func peak(base: Double, batchSize: Int) -> Double {
    let ratio = Double(batchSize) / 128
    switch scaling {
    case .none: return base
    case .linear: return base * ratio
    case .sqrt: return base * ratio.squareRoot()
    }
  }

  /// The rate of update `t` (1: the first) of a run of `runSteps` updates in all (its epochs' steps).
  public func rate(step t: Int, base: Double, batchSize: Int, runSteps: Int) -> Double {
    let peak = peak(base: base, batchSize: batchSize)
    if warmupSteps > 0 && t <= warmupSteps { return peak * Double(t) / Double(warmupSteps) }
    let u = t - warmupSteps
    switch shape {
    case .constant:
      return peak
    case .cosine:
      let span = decaySteps > 0 ? decaySteps : max(1, runSteps - warmupSteps)
      let progress = span <= 1 ? 1 : min(1, Double(u - 1) / Double(span - 1))
      return peak * (finalFraction + (1 - finalFraction) * 0.5 * (1 + cos(Double.pi * progress)))
    case .step:
      return stepEvery > 0 ? peak * pow(gamma, Double((u - 1) / stepEvery)) : peak
    }
  }

  /// "cosine to 0 over the run, warm-up 100, linear scaling" (for banners).
  public var description: String { text(shortNumber) }
  /// The same with every digit (refusals, where two schedules must read apart).
  public var exactDescription: String { text { "\($0)" } }

  private func text(_ shortNumber: (Double) -> String) -> String {
    var parts: [String] = []
    switch shape {
    case .constant: parts.append("constant")
    case .cosine:
      parts.append("cosine to \(shortNumber(finalFraction)) of the peak over \(decaySteps > 0 ? "\(decaySteps) steps" : "the run")")
    case .step: parts.append("×\(shortNumber(gamma)) every \(stepEvery) steps")
    }
    if warmupSteps > 0 { parts.append("warm-up \(warmupSteps) steps") }
    if scaling != .none { parts.append("\(scaling.rawValue) scaling with the batch") }
    return parts.joined(separator: ", ")
  }
}
