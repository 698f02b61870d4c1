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
  if inFeatures <= 4 {
    // The decoder's dense layer (latent → 3,136): a product of 2 columns, where BLAS's transposed
    // path took 2 ms a step (bench --layers); row by row over dy instead, each sum over n in order.
    for o in 0..<outFeatures {
      for i in 0..<inFeatures { dWeight[o * inFeatures + i] = dy[o] * x[i] }
    }
    for n in 1..<max(1, batch) {
      let row = dy + n * outFeatures, input = x + n * inFeatures
      for o in 0..<outFeatures {
        for i in 0..<inFeatures { dWeight[o * inFeatures + i] += row[o] * input[i] }
      }
    }
  } else {
    T.gemm(
      transposeA: true, transposeB: false, m: outFeatures, n: inFeatures, k: batch,
      alpha: 1, a: dy, lda: outFeatures, b: x, ldb: inFeatures, beta: 0, c: dWeight, ldc: inFeatures)
  }
  // Row by row (contiguous), each dBias[o] still summed over n = 0, 1, … in order: the same bits as
  // a column loop, without a strided pass over dy (3,136 columns for the decoder's dense layer).
  dBias.update(from: dy, count: outFeatures)
  for n in 1..<max(1, batch) {
    let row = dy + n * outFeatures
    for o in 0..<outFeatures { dBias[o] += row[o] }
  }
  guard let dx else { return }
  T.gemm(
    transposeA: false, transposeB: false, m: batch, n: inFeatures, k: outFeatures,
    alpha: 1, a: dy, lda: outFeatures, b: weight, ldb: inFeatures,
    beta: accumulateInput ? 1 : 0, c: dx, ldc: inFeatures)
}
