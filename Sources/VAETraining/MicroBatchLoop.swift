import CounterRNG
import Dispatch
import Synchronization
import VAECore
import VAEData
import VAEDistributed

/// The one loop that runs micro-batches on the worker threads, for training, evaluation and the
/// likelihood estimate alike: each worker claims the next unclaimed micro-batch from a shared
/// counter, fills its workspace's input rows with the images and, when asked, its noise rows with ε
/// keyed by (seed, purpose, step, image), runs `body`, and claims again until none is left.
///
/// Which worker runs micro-batch j depends on the threads' timing, and nothing else does: micro-batch
/// j's results depend only on j (its images, its noise, the parameters), never on the workspace that
/// held it or on what that workspace held before. So a thread that the host slows down (a busy
/// neighbour on a virtual machine) runs fewer micro-batches instead of holding the step back, and the
/// bits stay those of every other layout (`TrainerTests`, `testEveryLayoutEndsOnTheSameBits`).
package struct MicroBatchLoop {
  let workspaces: [VAEWorkspace<Float>]
  let images: ImageStore
  let latentDim: Int

  package init(workspaces: [VAEWorkspace<Float>], images: ImageStore, latentDim: Int) {
    (self.workspaces, self.images, self.latentDim) = (workspaces, images, latentDim)
  }

  package struct Noise {
    var seed: UInt64
    var purpose: RandomPurpose
    var step: Int
    package init(seed: UInt64, purpose: RandomPurpose, step: Int) { (self.seed, self.purpose, self.step) = (seed, purpose, step) }
  }

  /// - Parameters:
  ///   - batch: the file indices of micro-batch j (may be empty: `body` still runs, nothing is filled).
  ///   - fillSeconds: per worker, seconds spent filling (added to), when given.
  package func run(
    count: Int, batch: (Int) -> ArraySlice<Int>, noise: Noise?, fillSeconds: UnsafeMutablePointer<Double>? = nil,
    _ body: (_ worker: Int, _ index: Int, _ batch: ArraySlice<Int>, _ workspace: VAEWorkspace<Float>) -> Void
  ) {
    let next = Atomic<Int>(0)
    concurrentForEach(workspaces.count) { worker in
      let workspace = workspaces[worker]
      while true {
        let j = next.wrappingAdd(1, ordering: .relaxed).oldValue
        guard j < count else { break }
        let indices = batch(j)
        if !indices.isEmpty {
          let start = fillSeconds == nil ? 0 : monotonicSeconds()
          images.fill(workspace.input.pointer, fileIndices: indices)
          if let noise {
            fillNoise(
              workspace.noise.pointer, latentDim: latentDim, seed: noise.seed, purpose: noise.purpose, step: noise.step,
              fileIndices: indices)
          }
          if let fillSeconds { fillSeconds[worker] += monotonicSeconds() - start }
        }
        body(worker, j, indices, workspace)
      }
    }
  }

  /// Consecutive chunks of `size` images of the whole store: micro-batch j of an evaluation pass.
  static func chunks(of images: ImageStore, size: Int) -> (count: Int, batch: (Int) -> ArraySlice<Int>) {
    let batches = images.images.fileIndices.microBatches(of: size)
    return (batches.count, { batches[$0] })
  }
}

/// ε for each image, rows of `noise`, keyed by (seed, purpose, step, image index): the same whichever
/// rank or thread draws it.
package func fillNoise(
  _ noise: UnsafeMutablePointer<Float>, latentDim d: Int, seed: UInt64, purpose: RandomPurpose, step: Int,
  fileIndices: some Collection<Int>
) {
  for (row, index) in fileIndices.enumerated() {
    var random = CounterRandomStream(seed: seed, purpose: purpose, UInt64(step), UInt64(index))
    random.fillStandardNormal(UnsafeMutableBufferPointer(start: noise + row * d, count: d))
  }
}
