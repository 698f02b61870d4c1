// The VAE loss for one image: binary cross-entropy of the decoder's output against the pixels, summed
// over the 784 pixels, plus β times the KL divergence of q(z|x) = N(μ, e^{logVar}) from N(0, I).
// The BCE is computed from the pre-sigmoid logits l:
//   BCE(σ(l), x) = max(l, 0) − l·x + log(1 + e^−|l|),   ∂/∂l = σ(l) − x.

/// The parts of the loss summed over a set of images. Sums are kept in Double and divided by `count`
/// only when reported, so micro-batch results can be added in any grouping.
public struct LossSums: Sendable, Equatable {
  public var reconstruction: Double
  public var kl: Double
  public var count: Int

  public init(reconstruction: Double = 0, kl: Double = 0, count: Int = 0) {
    self.reconstruction = reconstruction
    self.kl = kl
    self.count = count
  }

  public static func + (a: LossSums, b: LossSums) -> LossSums {
    LossSums(reconstruction: a.reconstruction + b.reconstruction, kl: a.kl + b.kl, count: a.count + b.count)
  }

  public var meanReconstruction: Double { count > 0 ? reconstruction / Double(count) : .nan }
  public var meanKL: Double { count > 0 ? kl / Double(count) : .nan }
  public func meanLoss(beta: Double) -> Double { count > 0 ? (reconstruction + beta * kl) / Double(count) : .nan }
}

/// z[N, d] = mean + exp(½·logVar) · noise.
@inlinable
public func reparameterizeForward<T: VAEScalar>(
  mean: UnsafePointer<T>, logVar: UnsafePointer<T>, noise: UnsafePointer<T>,
  z: UnsafeMutablePointer<T>, count: Int
) {
  for i in 0..<count { z[i] = mean[i] + T.exponential(logVar[i] / 2) * noise[i] }
}

/// Σ over N images of Σ over `pixels` of BCE(σ(logits), targets); per-image sums go to `perImage`.
@inlinable
public func bceWithLogitsForward<T: VAEScalar>(
  logits: UnsafePointer<T>, targets: UnsafePointer<T>, batch: Int, pixels: Int,
  perImage: UnsafeMutablePointer<Double>? = nil
) -> Double {
  var total = 0.0
  for n in 0..<batch {
    var sum = 0.0
    let l = logits + n * pixels, x = targets + n * pixels
    for p in 0..<pixels {
      let value = l[p]
      let term = max(value, 0) - value * x[p] + T.logOnePlus(T.exponential(-abs(value)))
      sum += Double(term)
    }
    perImage?[n] = sum
    total += sum
  }
  return total
}

/// dLogits = σ(logits) − targets: the gradient of the summed BCE.
@inlinable
public func bceWithLogitsBackward<T: VAEScalar>(
  logits: UnsafePointer<T>, targets: UnsafePointer<T>, dLogits: UnsafeMutablePointer<T>, count: Int
) {
  for i in 0..<count { dLogits[i] = sigmoid(logits[i]) - targets[i] }
}

/// Σ over N images of KL(N(μ, e^{logVar}) ‖ N(0, I)) = −½ Σ_k (1 + logVar − μ² − e^{logVar}).
@inlinable
public func klForward<T: VAEScalar>(
  mean: UnsafePointer<T>, logVar: UnsafePointer<T>, batch: Int, latent: Int,
  perImage: UnsafeMutablePointer<Double>? = nil
) -> Double {
  var total = 0.0
  for n in 0..<batch {
    var sum = 0.0
    for k in 0..<latent {
      let m = Double(mean[n * latent + k]), v = Double(logVar[n * latent + k])
      sum += -0.5 * (1 + v - m * m - Double(T.exponential(T(v))))
    }
    perImage?[n] = sum
    total += sum
  }
  return total
}

/// Back through z = μ + e^{½logVar}·ε and β·KL:
///   dμ = dz + β·μ,   dlogVar = dz·ε·½e^{½logVar} + β·½(e^{logVar} − 1).
@inlinable
public func reparameterizeAndKLBackward<T: VAEScalar>(
  dz: UnsafePointer<T>, mean: UnsafePointer<T>, logVar: UnsafePointer<T>, noise: UnsafePointer<T>,
  beta: T, dMean: UnsafeMutablePointer<T>, dLogVar: UnsafeMutablePointer<T>, count: Int
) {
  for i in 0..<count {
    let halfStd = T.exponential(logVar[i] / 2) / 2
    dMean[i] = dz[i] + beta * mean[i]
    dLogVar[i] = dz[i] * noise[i] * halfStd + beta * (T.exponential(logVar[i]) - 1) / 2
  }
}
