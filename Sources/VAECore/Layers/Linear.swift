// Linear(in→out), PyTorch semantics: y[N, out] = x[N, in] · Wᵀ + b, with W: [out, in].

@inlinable
public func linearForward<T: VAEScalar>(
  x: UnsafePointer<T>, weight: UnsafePointer<T>, bias: UnsafePointer<T>, y: UnsafeMutablePointer<T>,
  batch: Int, inFeatures: Int, outFeatures: Int
) {
  for n in 0..<batch { (y + n * outFeatures).update(from: bias, count: outFeatures) }
  T.gemm(
    transposeA: false, transposeB: true, m: batch, n: outFeatures, k: inFeatures,
    alpha: 1, a: x, lda: inFeatures, b: weight, ldb: inFeatures, beta: 1, c: y, ldc: outFeatures)
}

/// Given dy [N, out]: dWeight [out, in] = dyᵀ · x, dBias = Σ_n dy; if given, dx [N, in] = dy · W,
/// added to what dx holds when `accumulateInput` (a hidden layer feeding two heads), set otherwise.
@inlinable
public func linearBackward<T: VAEScalar>(
  dy: UnsafePointer<T>, x: UnsafePointer<T>, weight: UnsafePointer<T>,
  dWeight: UnsafeMutablePointer<T>, dBias: UnsafeMutablePointer<T>,
  dx: UnsafeMutablePointer<T>?, accumulateInput: Bool = false,
  batch: Int, inFeatures: Int, outFeatures: Int
) {
  T.gemm(
    transposeA: true, transposeB: false, m: outFeatures, n: inFeatures, k: batch,
    alpha: 1, a: dy, lda: outFeatures, b: x, ldb: inFeatures, beta: 0, c: dWeight, ldc: inFeatures)
  for o in 0..<outFeatures {
    var sum: T = 0
    for n in 0..<batch { sum += dy[n * outFeatures + o] }
    dBias[o] = sum
  }
  guard let dx else { return }
  T.gemm(
    transposeA: false, transposeB: false, m: batch, n: inFeatures, k: outFeatures,
    alpha: 1, a: dy, lda: outFeatures, b: weight, ldb: inFeatures,
    beta: accumulateInput ? 1 : 0, c: dx, ldc: inFeatures)
}
