// Bias, ReLU and layout changes. Activations inside a micro-batch are channel-major ([C, N·H·W]) so
// each convolution is one matrix product over the whole micro-batch; the dense layers use [N, F].

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

/// [C, N, P] (channel-major) → [N, C·P] (PyTorch's flatten of NCHW). Its own adjoint is
/// `unflattenFromDense`.
@inlinable
public func flattenToDense<T: VAEScalar>(
  _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, channels: Int, batch: Int, area: Int
) {
  for c in 0..<channels {
    for n in 0..<batch {
      (y + n * channels * area + c * area).update(from: x + (c * batch + n) * area, count: area)
    }
  }
}

/// [N, C·P] → [C, N, P]: the inverse of `flattenToDense`.
@inlinable
public func unflattenFromDense<T: VAEScalar>(
  _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, channels: Int, batch: Int, area: Int
) {
  for c in 0..<channels {
    for n in 0..<batch {
      (y + (c * batch + n) * area).update(from: x + n * channels * area + c * area, count: area)
    }
  }
}

/// σ(x) = 1 / (1 + e^−x), without overflow for large |x|.
@inlinable
public func sigmoid<T: VAEScalar>(_ x: T) -> T {
  if x >= 0 { return 1 / (1 + T.exponential(-x)) }
  let e = T.exponential(x)
  return e / (1 + e)
}
