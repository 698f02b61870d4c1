import CounterRNG
import Dispatch
import Foundation
import VAECore
import VAEData
import VAEDistributed

/// Forward passes over a whole image set on worker threads, for the test loss and the evaluate
/// command. Micro-batch sums are added in a fixed order, so results do not depend on the threads.
public final class Evaluator {
  public let model: VAEModel<Float>
  public let seed: UInt64
  let workspaces: [VAEWorkspace<Float>]

  public var microBatchSize: Int { workspaces[0].capacity }

  /// Reuses `workspaces` (one per thread) when given: the trainer lends its own.
  public init(latentDim: Int, seed: UInt64, threads: Int, microBatchSize: Int = 16, workspaces: [VAEWorkspace<Float>]? = nil) {
    model = VAEModel(latentDim: latentDim)
    self.seed = seed
    self.workspaces =
      workspaces ?? (0..<max(1, threads)).map { _ in VAEWorkspace(capacity: microBatchSize, latentDim: latentDim) }
  }

  /// The loss parts summed over every image of `images`, with z sampled (noise keyed by the seed and
  /// the image, the same at every call) or z = μ, and the encoder's hidden units that fired.
  public func evaluate(parameters: ScalarBuffer<Float>, images: ImageStore, useMean: Bool = false) -> SetEvaluation {
    chunks(parameters: parameters, images: images, useMean: useMean, part: (0, 1)).reduce(SetEvaluation(), +)
  }

  /// The same, the passes shared out over every rank of `communicator` (rank r takes the
  /// micro-batches j with j mod n = r). Each micro-batch's sum is the same whoever computes it, the
  /// allreduce adds each to zeros only (exact; the activity mask too, an integer below 2¹⁶), and every
  /// rank adds them in micro-batch order: the result has the same bits for any number of ranks and
  /// threads.
  public func evaluate(
    parameters: ScalarBuffer<Float>, images: ImageStore, useMean: Bool = false, over communicator: Communicator, phase: String
  ) throws -> SetEvaluation {
    let parts = chunks(parameters: parameters, images: images, useMean: useMean, part: (communicator.rank, communicator.size))
    var flat = parts.flatMap { [$0.loss.reconstruction, $0.loss.kl, Double($0.loss.count), Double($0.hiddenActive)] }
    if communicator.size > 1 { try flat.withUnsafeMutableBufferPointer { try communicator.allreduce($0, .sum, phase: phase) } }
    return (0..<parts.count).reduce(SetEvaluation()) { total, j in
      total + SetEvaluation(
        loss: LossSums(reconstruction: flat[4 * j], kl: flat[4 * j + 1], count: Int(flat[4 * j + 2])),
        hiddenActive: UInt32(flat[4 * j + 3]))
    }
  }

  /// Per micro-batch (chunk of `microBatchSize` images, in file order), its evaluation; empty ones
  /// for the chunks outside `part` (index, count).
  func chunks(parameters: ScalarBuffer<Float>, images: ImageStore, useMean: Bool, part: (Int, Int)) -> [SetEvaluation] {
    let (chunks, batch) = MicroBatchLoop.chunks(of: images, size: microBatchSize)
    let mine = Array(stride(from: part.0, to: chunks, by: part.1))
    var parts = [SetEvaluation](repeating: SetEvaluation(), count: chunks)
    let views = ParameterViews(layout: model.layout, base: parameters.pointer)
    parts.withUnsafeMutableBufferPointer { parts in
      loop(images).run(count: mine.count, batch: { batch(mine[$0]) }, noise: .init(seed: seed, purpose: .evaluationNoise, step: 0)) {
        _, j, batch, workspace in
        let loss = model.forward(views, batch: batch.count, workspace: workspace, useMean: useMean)
        parts[mine[j]] = SetEvaluation(loss: loss, hiddenActive: hiddenActivity(workspace, images: batch.count))
      }
    }
    // `views` holds raw pointers into `parameters`: keep it alive until the passes are done.
    withExtendedLifetime(parameters) {}
    return parts
  }

  func loop(_ images: ImageStore) -> MicroBatchLoop {
    MicroBatchLoop(workspaces: workspaces, images: images, latentDim: model.latentDim)
  }
}

/// What an evaluation pass over a set of images gives: the loss sums, and which of the encoder's
/// hidden ReLU units (Dense 16) were positive for at least one image. A unit that never is, a dead
/// unit, passes nothing on to z and gets no gradient from these images; how many of the 16 survive
/// the first epoch decides much of a run's final loss, in Keras as in vae-dist (docs/model.md).
public struct SetEvaluation: Sendable, Equatable {
  public var loss = LossSums()
  /// Bit u: hidden unit u was positive for some image.
  public var hiddenActive: UInt32 = 0

  public init(loss: LossSums = LossSums(), hiddenActive: UInt32 = 0) {
    self.loss = loss
    self.hiddenActive = hiddenActive
  }

  public var deadHiddenUnits: Int { Architecture.hiddenUnits - hiddenActive.nonzeroBitCount }

  public static func + (a: SetEvaluation, b: SetEvaluation) -> SetEvaluation {
    SetEvaluation(loss: a.loss + b.loss, hiddenActive: a.hiddenActive | b.hiddenActive)
  }
}

/// The mask of hidden units positive (after the ReLU) for some of the first `images` images of `w`.
func hiddenActivity(_ w: VAEWorkspace<Float>, images: Int) -> UInt32 {
  var mask: UInt32 = 0
  for u in 0..<Architecture.hiddenUnits where (0..<images).contains(where: { w.hiddenUnit(u, image: $0) > 0 }) {
    mask |= 1 << UInt32(u)
  }
  return mask
}

/// A count shared by worker threads (for progress reports).
///
/// Behind an NSLock, not Synchronization's Mutex: on Linux a contended Mutex waits in a futex call
/// ThreadSanitizer cannot see, so it reports the counts made under the lock as races (measured: 4
/// threads adding under a Mutex, 2 reports; under an NSLock, a pthread mutex it follows, none).
/// The count is touched only under the lock.
final class ProgressCounter: @unchecked Sendable {
  private let lock = NSLock()
  private var count = 0
  /// Adds `n`; `report`, given the new count, runs before the lock is let go, so reports never overlap.
  func add(_ n: Int, report: ((Int) -> Void)? = nil) -> Int {
    lock.withLock {
      count += n
      report?(count)
      return count
    }
  }
  var value: Int { lock.withLock { count } }
}
