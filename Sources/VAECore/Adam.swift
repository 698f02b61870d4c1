import _CKernels
#if canImport(Glibc)
  import Glibc
#endif

/// Adam as Keras implements it (bias correction folded into the step size, ε outside the root):
///   m ← β1·m + (1−β1)·g,   v ← β2·v + (1−β2)·g²
///   p ← p − α_t · m / (√v + ε),   α_t = lr · √(1−β2^t) / (1−β1^t)
public struct AdamConfiguration: Sendable, Equatable, Codable {
  public var learningRate: Double
  public var beta1: Double
  public var beta2: Double
  public var epsilon: Double

  public init(learningRate: Double = 1e-3, beta1: Double = 0.9, beta2: Double = 0.999, epsilon: Double = 1e-7) {
    self.learningRate = learningRate
    self.beta1 = beta1
    self.beta2 = beta2
    self.epsilon = epsilon
  }
}

/// One Adam update of `count` parameters at step `t` (1 for the first update), in place, with the
/// gradient `gradients[i] / gradientDivisor` (the step passes the summed gradient and the image
/// count: the loss is the batch mean). Vectorized in C (vdk_adam), every operation rounded as written.
public func adamUpdate(
  parameters: UnsafeMutablePointer<Float>, gradients: UnsafePointer<Float>,
  firstMoment m: UnsafeMutablePointer<Float>, secondMoment v: UnsafeMutablePointer<Float>,
  count: Int, step t: Int, configuration c: AdamConfiguration, gradientDivisor: Float = 1
) {
  precondition(t >= 1)
  let alpha = Float(c.learningRate * (1 - pow(c.beta2, Double(t))).squareRoot() / (1 - pow(c.beta1, Double(t))))
  // In pieces on the threads (each element's update is its own, so any split gives the same bits).
  let piece = 16_384
  concurrentForEach((count + piece - 1) / piece) { k in
    let i = k * piece
    vdk_adam(
      parameters + i, gradients + i, m + i, v + i, min(piece, count - i), gradientDivisor, alpha, Float(c.beta1),
      Float(c.beta2), Float(c.epsilon))
  }
}
