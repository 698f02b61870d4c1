// Bias, ReLU and layout changes. Convolutional activations inside a micro-batch are [C, H·W·N] (see
// Window.swift) so each convolution is one matrix product over the whole micro-batch; the dense
// layers use [N, F].

/// y[C, M] += bias[C] for each of the M columns.
@inlinable
public func addChannelBias<T: VAEScalar>(
  _ y: UnsafeMutablePointer<T>, bias: UnsafePointer<T>, channels: Int, columns: Int
) {
  for c in 0..<channels {
    let row = y + c * columns
    let b = bias[c]
    for i in 0..<columns { row[i] += b }
  }
}

/// dBias[C] = Σ over M columns of dy[C, M].
@inlinable
public func channelBiasBackward<T: VAEScalar>(
  dy: UnsafePointer<T>, dBias: UnsafeMutablePointer<T>, channels: Int, columns: Int
) {
  for c in 0..<channels {
    let row = dy + c * columns
    var sum: T = 0
    for i in 0..<columns { sum += row[i] }
    dBias[c] = sum
  }
}

/// y = max(y, 0) in place.
@inlinable
public func reluForward<T: VAEScalar>(_ y: UnsafeMutablePointer<T>, count: Int) {
  for i in 0..<count where y[i] < 0 { y[i] = 0 }
}

/// dy ← dy · [y > 0], with y the ReLU's output.
@inlinable
public func reluBackward<T: VAEScalar>(
  dy: UnsafeMutablePointer<T>, output y: UnsafePointer<T>, count: Int
) {
  for i in 0..<count where !(y[i] > 0) { dy[i] = 0 }
}

/// [C, P, N] (a convolution's layout, pixel p of channel c for N images) → [N, C·P] (PyTorch's flatten
/// of NCHW, what a dense layer takes). Its own adjoint is `unflattenFromDense`; with C = 1 it is
/// the transpose that turns the decoder's output grid into one row of pixels per image.
@inlinable
public func flattenToDense<T: VAEScalar>(
  _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, channels: Int, batch: Int, area: Int
) {
  let features = channels * area
  for f in 0..<features {
    let column = x + f * batch
    for n in 0..<batch { y[n * features + f] = column[n] }
  }
}

/// [N, C·P] → [C, P, N]: the inverse of `flattenToDense`.
@inlinable
public func unflattenFromDense<T: VAEScalar>(
  _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, channels: Int, batch: Int, area: Int
) {
  let features = channels * area
  for f in 0..<features {
    let column = y + f * batch
    for n in 0..<batch { column[n] = x[n * features + f] }
  }
}

/// σ(x) = 1 / (1 + e^−x), without overflow for large |x|.
@inlinable
public func sigmoid<T: VAEScalar>(_ x: T) -> T {
  if x >= 0 { return 1 / (1 + T.exponential(-x)) }
  let e = T.exponential(x)
  return e / (1 + e)
}
