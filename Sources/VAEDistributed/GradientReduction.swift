import Dispatch
import VAECore
import _CKernels

#if canImport(Glibc)
  import Glibc
#endif

/// How the micro-batch gradients of a step are summed over threads and ranks.
public enum ReductionMode: String, Sendable, CaseIterable, Codable {
  /// Bit-identical results for any number of ranks and threads (the default).
  case deterministic
  /// Float sums in MPI_Allreduce's own order: results depend on the rank count.
  case fast
}

/// What one step's reduction produced: the summed gradient and the summed loss parts.
public struct ReducedStep: Sendable {
  public var losses: LossSums
  /// False when any gradient or loss was NaN or infinite on any rank; the gradient is then unusable.
  public var isFinite: Bool
  /// True when any rank raised its flag for this step (a stop was requested): every rank learns it
  /// in the same step, so all stop together.
  public var anyFlag: Bool
}

/// Sums the gradients of the step's micro-batches — spread over this rank's threads and over all
/// ranks — into one buffer that every rank receives.
///
/// Deterministic mode: each micro-batch gradient is turned into 64-bit fixed point with one exponent
/// per tensor, chosen from the largest magnitude of that tensor over all micro-batches (an MPI MAX,
/// which is exact in any order). Integer addition is associative, so summing in any order — within a
/// thread, across threads, inside MPI_Allreduce for any rank count — gives the same bits. The scale
/// leaves headroom for the number of micro-batches, so the sum cannot overflow, and keeps ~58
/// significant bits relative to the tensor's largest entry: any Float entry above 2⁻³⁴ of it is
/// converted exactly, so the result is the exact sum rounded once to Float.
public final class GradientReducer {
  public let layout: ParameterLayout
  public let mode: ReductionMode
  /// Number of micro-batches in a step over all ranks (the headroom needed for the sum).
  public let totalMicroBatches: Int
  /// The parameter index space cut into pieces of at most 16 Ki entries, none spanning two tensors:
  /// the units the worker threads share out (any split gives the same integers).
  private let pieces: [(tensor: Int, range: Range<Int>)]
  private let integers: UnsafeMutablePointer<Int64>
  private let integerCount: Int
  // Scratch reused every step (the step allocates nothing): per-piece maxima, and per scale — one
  // per tensor, then reconstruction, KL and image count — the maximum and the exponent; the maxima
  // have one more slot, for the flag.
  private let pieceMaxima: UnsafeMutablePointer<Float>
  private let maxima: UnsafeMutablePointer<Double>
  private let exponents: UnsafeMutablePointer<Int>
  private var scaleCount: Int { layout.tensors.count + 3 }

  public init(layout: ParameterLayout, mode: ReductionMode, totalMicroBatches: Int) {
    self.layout = layout
    self.mode = mode
    self.totalMicroBatches = totalMicroBatches
    let p = layout.totalCount
    integerCount = p + 3
    integers = .allocate(capacity: integerCount)
    pieces = layout.tensors.enumerated().flatMap { index, tensor in
      stride(from: tensor.offset, to: tensor.offset + tensor.count, by: 16_384).map {
        (index, $0..<min($0 + 16_384, tensor.offset + tensor.count))
      }
    }
    pieceMaxima = .allocate(capacity: pieces.count)
    maxima = .allocate(capacity: layout.tensors.count + 4)
    exponents = .allocate(capacity: layout.tensors.count + 3)
  }

  deinit {
    integers.deallocate()
    pieceMaxima.deallocate()
    maxima.deallocate()
    exponents.deallocate()
  }

  /// The number of pieces the parameters are cut into: the length of one micro-batch's `pieceMaxima`.
  public var pieceCount: Int { pieces.count }

  /// The largest magnitude in each piece of one micro-batch's gradient (+∞ where one is NaN or
  /// infinite), the deterministic reduction's first step. The thread that wrote the gradient runs
  /// this while the gradient is still in its core's cache, and passes the result to `reduce`, which
  /// would otherwise read all the gradients once more for it.
  public func pieceMaxima(of gradient: UnsafePointer<Float>, into maxima: UnsafeMutablePointer<Float>) {
    for (k, piece) in pieces.enumerated() {
      maxima[k] = vdk_max_abs(gradient + piece.range.lowerBound, piece.range.count)
    }
  }

  /// Sums `gradients` (this rank's micro-batch gradients, each `layout.totalCount` floats) and
  /// `losses` (their loss parts) over all ranks into `result`, identical on every rank. `maxima`
  /// holds each gradient's `pieceMaxima` (`pieceCount` floats each); the fast mode needs none.
  public func reduce(
    gradients: [UnsafeMutablePointer<Float>], maxima: [UnsafeMutablePointer<Float>]? = nil, losses: [LossSums],
    flag: Bool = false, into result: UnsafeMutablePointer<Float>, communicator: Communicator,
    phase: @autoclosure () -> String
  ) throws -> ReducedStep {
    precondition(gradients.count == losses.count && (maxima?.count ?? gradients.count) == gradients.count)
    switch mode {
    case .deterministic:
      guard let maxima else { preconditionFailure("the deterministic reduction needs each gradient's pieceMaxima") }
      return try reduceDeterministically(gradients, maxima, losses, flag, result, communicator, phase)
    case .fast:
      return try reduceFast(gradients, losses, flag, result, communicator, phase)
    }
  }

  private func reduceDeterministically(
    _ gradients: [UnsafeMutablePointer<Float>], _ given: [UnsafeMutablePointer<Float>], _ losses: [LossSums], _ flag: Bool,
    _ result: UnsafeMutablePointer<Float>, _ communicator: Communicator, _ phase: () -> String
  ) throws -> ReducedStep {
    let tensorCount = layout.tensors.count, scales = scaleCount
    let pieceMaxima = pieceMaxima, maxima = maxima, exponents = exponents
    // 1. Largest magnitude per scale over this rank's micro-batches (+∞ marks a non-finite value), from
    // the pieces' maxima, and the flag in the last slot, which rides along in the same MAX.
    for k in 0..<pieces.count { pieceMaxima[k] = given.reduce(0) { max($0, $1[k]) } }
    maxima.update(repeating: 0, count: scales + 1)
    for k in 0..<pieces.count {
      maxima[pieces[k].tensor] = max(maxima[pieces[k].tensor], Double(pieceMaxima[k]))
    }
    for l in losses {
      let reconstruction = abs(l.reconstruction), kl = abs(l.kl)
      maxima[tensorCount] = reconstruction.isFinite ? max(maxima[tensorCount], reconstruction) : .infinity
      maxima[tensorCount + 1] = kl.isFinite ? max(maxima[tensorCount + 1], kl) : .infinity
      maxima[tensorCount + 2] = max(maxima[tensorCount + 2], Double(l.count))
    }
    maxima[scales] = flag ? 1 : 0
    try communicator.allreduce(
      UnsafeMutableBufferPointer(start: maxima, count: scales + 1), .max, phase: phase() + " (gradient scale)")
    let anyFlag = maxima[scales] > 0
    guard (0..<scales).allSatisfy({ maxima[$0].isFinite }) else {
      return ReducedStep(losses: LossSums(), isFinite: false, anyFlag: anyFlag)
    }

    // 2. Fixed point with a per-scale exponent and headroom for the number of terms.
    let headroom = Int(ceil(log2(Double(totalMicroBatches + 1))))
    for k in 0..<scales {
      exponents[k] = maxima[k] > 0 ? 62 - (Int(maxima[k].exponent) + 1) - headroom : 0
    }
    let sums = integers
    concurrentForEach(pieces.count) { k in
      let scale = Double(sign: .plus, exponent: exponents[pieces[k].tensor], significand: 1)
      let range = pieces[k].range
      // Zeroed here, piece by piece on the threads while the piece is in cache, rather than all 1 MB at
      // once before, on one thread.
      (sums + range.lowerBound).initialize(repeating: 0, count: range.count)
      for gradient in gradients {
        vdk_add_fixed_point(gradient + range.lowerBound, sums + range.lowerBound, range.count, scale)
      }
    }
    let p = layout.totalCount
    (sums + p).initialize(repeating: 0, count: 3)
    let reconstructionScale = Double(sign: .plus, exponent: exponents[tensorCount], significand: 1)
    let klScale = Double(sign: .plus, exponent: exponents[tensorCount + 1], significand: 1)
    for l in losses {
      integers[p] &+= Int64((l.reconstruction * reconstructionScale).rounded(.toNearestOrEven))
      integers[p + 1] &+= Int64((l.kl * klScale).rounded(.toNearestOrEven))
      integers[p + 2] &+= Int64(l.count)
    }

    // 3. One integer allreduce; the order MPI sums in cannot change the result.
    try communicator.allreduce(
      UnsafeMutableBufferPointer(start: integers, count: integerCount), .sum, phase: phase())

    // 4. Back to floating point.
    concurrentForEach(pieces.count) { k in
      let inverse = Double(sign: .plus, exponent: -exponents[pieces[k].tensor], significand: 1)
      let range = pieces[k].range
      vdk_from_fixed_point(sums + range.lowerBound, result + range.lowerBound, range.count, inverse)
    }
    func unscale(_ k: Int) -> Double {
      Double(integers[p + k]) * Double(sign: .plus, exponent: -exponents[tensorCount + k], significand: 1)
    }
    return ReducedStep(
      losses: LossSums(reconstruction: unscale(0), kl: unscale(1), count: Int(integers[p + 2])),
      isFinite: true, anyFlag: anyFlag)
  }

  private func reduceFast(
    _ gradients: [UnsafeMutablePointer<Float>], _ losses: [LossSums], _ flag: Bool, _ result: UnsafeMutablePointer<Float>,
    _ communicator: Communicator, _ phase: () -> String
  ) throws -> ReducedStep {
    let count = layout.totalCount
    result.update(repeating: 0, count: count)
    for gradient in gradients {
      for i in 0..<count { result[i] += gradient[i] }
    }
    try communicator.allreduce(UnsafeMutableBufferPointer(start: result, count: count), .sum, phase: phase())
    let local = losses.reduce(LossSums(), +)
    var totals = [local.reconstruction, local.kl, Double(local.count), flag ? 1 : 0]
    try totals.withUnsafeMutableBufferPointer { try communicator.allreduce($0, .sum, phase: phase() + " (losses)") }
    var finite = totals[0].isFinite && totals[1].isFinite
    for i in 0..<count where !result[i].isFinite {
      finite = false
      break
    }
    return ReducedStep(
      losses: LossSums(reconstruction: totals[0], kl: totals[1], count: Int(totals[2])), isFinite: finite,
      anyFlag: totals[3] > 0)
  }
}
