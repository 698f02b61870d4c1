// ConvTranspose2d(Cin→Cout, 3×3, stride s, padding p, output_padding), PyTorch semantics:
//   y[co, i·s − p + kh, j·s − p + kw, n] += W[ci, co, kh, kw] · x[ci, i, j, n]   (then + b[co])
// As matrix products: cols[Cout·9, S·S·N] = Wᵀ[Cout·9, Cin] · x[Cin, S·S·N]; y = col2im(cols).
// The weight [Cin, Cout, 3, 3] is the matrix [Cin, Cout·9]; output_padding only makes the large grid
// one row and column bigger, which the geometry's largeSide already says.

/// x: [Cin, S, S, N] → y: [Cout, L, L, N], followed by a ReLU if `relu`; `cols` [Cout·9, S·S·N] is
/// scratch. `geometry.channels` is Cout, the large grid is the output.
@inlinable
public func convTranspose2dForward<T: VAEScalar>(
  x: UnsafePointer<T>, weight: UnsafePointer<T>, bias: UnsafePointer<T>,
  cols: UnsafeMutablePointer<T>, y: UnsafeMutablePointer<T>,
  inChannels: Int, relu: Bool = false, geometry g: WindowGeometry
) {
  T.gemm(
    transposeA: true, transposeB: false, m: g.rows, n: g.columns, k: inChannels,
    alpha: 1, a: weight, lda: g.rows, b: x, ldb: g.columns, beta: 0, c: cols, ldc: g.columns)
  T.col2im(cols: cols, image: y, bias: bias, relu: relu, geometry: g)
}

/// Given dy: [Cout, L, L, N] and the forward input x: [Cin, S·S·N], with dcols = im2col(dy)
/// [Cout·9, S·S·N] as scratch: dWeight [Cin, Cout·9] = x · dcolsᵀ, dBias = Σ dy, and if given,
/// dx [Cin, S·S·N] = W · dcols.
@inlinable
public func convTranspose2dBackward<T: VAEScalar>(
  dy: UnsafePointer<T>, x: UnsafePointer<T>, weight: UnsafePointer<T>,
  dWeight: UnsafeMutablePointer<T>, dBias: UnsafeMutablePointer<T>,
  dcols: UnsafeMutablePointer<T>, dx: UnsafeMutablePointer<T>?,
  inChannels: Int, geometry g: WindowGeometry
) {
  convTranspose2dBackwardWeights(dy: dy, x: x, dWeight: dWeight, dBias: dBias, dcols: dcols, inChannels: inChannels, geometry: g)
  guard let dx else { return }
  convTranspose2dBackwardData(weight: weight, dcols: dcols, dx: dx, inChannels: inChannels, geometry: g)
}

/// The weights' half of `convTranspose2dBackward`, which leaves dcols = im2col(dy) for the other half.
@inlinable
public func convTranspose2dBackwardWeights<T: VAEScalar>(
  dy: UnsafePointer<T>, x: UnsafePointer<T>, dWeight: UnsafeMutablePointer<T>, dBias: UnsafeMutablePointer<T>,
  dcols: UnsafeMutablePointer<T>, inChannels: Int, geometry g: WindowGeometry
) {
  T.im2col(image: dy, cols: dcols, geometry: g)
  T.gemm(
    transposeA: false, transposeB: true, m: inChannels, n: g.rows, k: g.columns,
    alpha: 1, a: x, lda: g.columns, b: dcols, ldb: g.columns, beta: 0, c: dWeight, ldc: g.rows)
  T.channelSums(dy, into: dBias, channels: g.channels, columns: g.batch * g.largeSide * g.largeSide)
}

/// The input's half of `convTranspose2dBackward`: dx [Cin, S·S·N] = W · dcols, after the weights' half
/// filled dcols = im2col(dy).
@inlinable
public func convTranspose2dBackwardData<T: VAEScalar>(
  weight: UnsafePointer<T>, dcols: UnsafePointer<T>, dx: UnsafeMutablePointer<T>, inChannels: Int, geometry g: WindowGeometry
) {
  T.gemm(
    transposeA: false, transposeB: false, m: inChannels, n: g.columns, k: g.rows,
    alpha: 1, a: weight, lda: g.rows, b: dcols, ldb: g.columns, beta: 0, c: dx, ldc: g.columns)
}
