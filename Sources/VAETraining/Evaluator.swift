import CounterRNG
import Dispatch
import VAECore
import VAEData

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
  /// the image, the same at every call) or z = μ.
  public func loss(parameters: ScalarBuffer<Float>, images: ImageStore, useMean: Bool = false) -> LossSums {
    let indices = images.images.fileIndices
    let size = microBatchSize
    let chunks = (indices.count + size - 1) / size
    var sums = [LossSums](repeating: LossSums(), count: chunks)
    let views = ParameterViews(layout: model.layout, base: parameters.pointer)
    let threads = workspaces.count
    sums.withUnsafeMutableBufferPointer { sums in
      DispatchQueue.concurrentPerform(iterations: threads) { worker in
        let workspace = workspaces[worker]
        for chunk in stride(from: worker, to: chunks, by: threads) {
          let batch = indices[(chunk * size)..<min(indices.count, (chunk + 1) * size)]
          images.fill(workspace.input.pointer, fileIndices: batch)
          fillNoise(workspace.noise.pointer, latentDim: model.latentDim, seed: seed, purpose: .evaluationNoise, step: 0, fileIndices: batch)
          sums[chunk] = model.forward(views, batch: batch.count, workspace: workspace, useMean: useMean)
        }
      }
    }
    // `views` holds raw pointers into `parameters`: keep it alive until the passes are done.
    withExtendedLifetime(parameters) {}
    return sums.reduce(LossSums(), +)
  }
}

/// ε for each image, rows of `noise`, keyed by (seed, purpose, step, image index): the same whichever
/// rank or thread draws it.
func fillNoise(
  _ noise: UnsafeMutablePointer<Float>, latentDim d: Int, seed: UInt64, purpose: RandomPurpose, step: Int,
  fileIndices: some Collection<Int>
) {
  for (row, index) in fileIndices.enumerated() {
    var random = CounterRandomStream(seed: seed, purpose: purpose, UInt64(step), UInt64(index))
    random.fillStandardNormal(UnsafeMutableBufferPointer(start: noise + row * d, count: d))
  }
}
