import CounterRNG
import Dispatch
import Foundation
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

/// The importance-weighted estimate of the test log-likelihood (Burda et al. 2016) beside the ELBO.
public struct LikelihoodEstimate: Sendable {
  /// Mean over images of log p̂(x) = log (1/k) Σ_s p(x|z_s) p(z_s) / q(z_s|x), z_s ~ q(z|x), in nats.
  public var logLikelihood: Double
  /// Mean over images of the ELBO, −(reconstruction + KL), with the first of the k samples.
  public var elbo: Double
  public var samples: Int
  public var images: Int
}

extension Evaluator {
  /// log p̂(x) with k samples per image. The encoder runs once per image, the decoder k times.
  /// Sample s of an image is keyed by (seed, s, image), and sample 0 is the noise `loss` uses, so
  /// with k = 1 the estimate is the single-sample ELBO with the KL term sampled.
  public func importanceWeighted(
    parameters: ScalarBuffer<Float>, images: ImageStore, samples k: Int, progress: ((Int, Int) -> Void)? = nil
  ) -> LikelihoodEstimate {
    precondition(k >= 1)
    let indices = images.images.fileIndices
    let size = microBatchSize, d = model.latentDim
    let chunks = (indices.count + size - 1) / size
    var sums = [(logLikelihood: Double, elbo: Double)](repeating: (0, 0), count: chunks)
    let views = ParameterViews(layout: model.layout, base: parameters.pointer)
    let threads = workspaces.count
    let done = ProgressCounter()
    sums.withUnsafeMutableBufferPointer { sums in
      DispatchQueue.concurrentPerform(iterations: threads) { worker in
        let w = workspaces[worker]
        var largest = [Double](repeating: 0, count: size), total = [Double](repeating: 0, count: size)
        for chunk in stride(from: worker, to: chunks, by: threads) {
          let batch = indices[(chunk * size)..<min(indices.count, (chunk + 1) * size)]
          let n = batch.count
          images.fill(w.input.pointer, fileIndices: batch)
          model.encode(views, batch: n, workspace: w)
          var elbo = 0.0
          for sample in 0..<k {
            fillNoise(w.noise.pointer, latentDim: d, seed: seed, purpose: .evaluationNoise, step: sample, fileIndices: batch)
            reparameterizeForward(mean: w.mean.pointer, logVar: w.logVar.pointer, noise: w.noise.pointer, z: w.z.pointer, count: n * d)
            model.decode(views, batch: n, workspace: w)
            _ = bceWithLogitsForward(logits: w.logits.pointer, targets: w.input.pointer, batch: n, pixels: 784, perImage: w.reconstructionPerImage)
            if sample == 0 {
              let kl = klForward(mean: w.mean.pointer, logVar: w.logVar.pointer, batch: n, latent: d)
              elbo = -(0..<n).reduce(0.0) { $0 + w.reconstructionPerImage[$1] } - kl
            }
            for i in 0..<n {
              // log p(x|z) + log p(z) − log q(z|x); the log 2π terms cancel.
              var logWeight = -w.reconstructionPerImage[i]
              for j in 0..<d {
                let z = Double(w.z.pointer[i * d + j]), e = Double(w.noise.pointer[i * d + j])
                logWeight += 0.5 * (e * e - z * z + Double(w.logVar.pointer[i * d + j]))
              }
              if sample == 0 || logWeight > largest[i] {
                total[i] = sample == 0 ? 1 : total[i] * exp(largest[i] - logWeight) + 1
                largest[i] = logWeight
              } else {
                total[i] += exp(logWeight - largest[i])
              }
            }
          }
          let logK = log(Double(k))
          sums[chunk] = ((0..<n).reduce(0.0) { $0 + largest[$1] + log(total[$1]) - logK }, elbo)
          progress?(done.add(n), indices.count)
        }
      }
    }
    withExtendedLifetime(parameters) {}
    let count = Double(indices.count)
    return LikelihoodEstimate(
      logLikelihood: sums.reduce(0.0) { $0 + $1.logLikelihood } / count, elbo: sums.reduce(0.0) { $0 + $1.elbo } / count,
      samples: k, images: indices.count)
  }
}

/// A count shared by worker threads (for progress reports).
final class ProgressCounter: @unchecked Sendable {
  private var value = 0
  private let lock = NSLock()
  func add(_ n: Int) -> Int { lock.withLock { value += n; return value } }
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
