// Conv2d(Cin→Cout, 3×3, stride s, padding p), PyTorch semantics (cross-correlation):
//   y[co, i, j, n] = b[co] + Σ_{ci,kh,kw} W[co, ci, kh, kw] · x[ci, i·s − p + kh, j·s − p + kw, n]
// As a matrix product over the micro-batch: y[Cout, S·S·N] = W[Cout, Cin·9] · im2col(x)[Cin·9, S·S·N].

/// x: [Cin, L, L, N] → y: [Cout, S, S, N], followed by a ReLU if `relu`; `cols` [Cin·9, S·S·N] is
/// kept for the backward pass. `geometry.channels` is Cin, the large grid is the input.
@inlinable
public func conv2dForward<T: VAEScalar>(
  x: UnsafePointer<T>, weight: UnsafePointer<T>, bias: UnsafePointer<T>,
  cols: UnsafeMutablePointer<T>, y: UnsafeMutablePointer<T>,
  outChannels: Int, relu: Bool = false, geometry g: WindowGeometry
) {
  T.im2col(image: x, cols: cols, geometry: g)
  T.gemm(
    transposeA: false, transposeB: false, m: outChannels, n: g.columns, k: g.rows,
    alpha: 1, a: weight, lda: g.rows, b: cols, ldb: g.columns, beta: 0, c: y, ldc: g.columns)
  T.addBias(y, bias: bias, relu: relu, channels: outChannels, columns: g.columns)
}

/// Given dy: [Cout, S·S·N], sets dWeight [Cout, Cin·9] = dy · colsᵀ and dBias = Σ dy; if `dx` is given,
/// also dx [Cin, L, L, N] = col2im(Wᵀ · dy), using `dcols` [Cin·9, S·S·N] as scratch.
@inlinable
public func conv2dBackward<T: VAEScalar>(
  dy: UnsafePointer<T>, cols: UnsafePointer<T>, weight: UnsafePointer<T>,
  dWeight: UnsafeMutablePointer<T>, dBias: UnsafeMutablePointer<T>,
  dcols: UnsafeMutablePointer<T>, dx: UnsafeMutablePointer<T>?,
  outChannels: Int, geometry g: WindowGeometry
) {
  conv2dBackwardWeights(dy: dy, cols: cols, dWeight: dWeight, dBias: dBias, outChannels: outChannels, geometry: g)
  guard let dx else { return }
  conv2dBackwardData(dy: dy, weight: weight, dcols: dcols, dx: dx, outChannels: outChannels, geometry: g)
}

/// The weights' half of `conv2dBackward`: dWeight [Cout, Cin·9] = dy · colsᵀ, dBias = Σ dy.
@inlinable
public func conv2dBackwardWeights<T: VAEScalar>(
  dy: UnsafePointer<T>, cols: UnsafePointer<T>, dWeight: UnsafeMutablePointer<T>, dBias: UnsafeMutablePointer<T>,
  outChannels: Int, geometry g: WindowGeometry
) {
  T.gemm(
    transposeA: false, transposeB: true, m: outChannels, n: g.rows, k: g.columns,
    alpha: 1, a: dy, lda: g.columns, b: cols, ldb: g.columns, beta: 0, c: dWeight, ldc: g.rows)
  T.channelSums(dy, into: dBias, channels: outChannels, columns: g.columns)
}

/// The input's half of `conv2dBackward`: dx [Cin, L, L, N] = col2im(Wᵀ · dy), dcols [Cin·9, S·S·N] scratch.
@inlinable
public func conv2dBackwardData<T: VAEScalar>(
  dy: UnsafePointer<T>, weight: UnsafePointer<T>, dcols: UnsafeMutablePointer<T>, dx: UnsafeMutablePointer<T>,
  outChannels: Int, geometry g: WindowGeometry
) {
  T.gemm(
    transposeA: true, transposeB: false, m: g.rows, n: g.columns, k: outChannels,
    alpha: 1, a: weight, lda: g.rows, b: dy, ldb: g.columns, beta: 0, c: dcols, ldc: g.columns)
  T.col2im(cols: dcols, image: dx, bias: nil, relu: false, geometry: g)
}
