// ReLU and the sigmoid, on any layout.

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

/// σ(x) = 1 / (1 + e^−x), without overflow for large |x|.
@inlinable
public func sigmoid<T: VAEScalar>(_ x: T) -> T {
  if x >= 0 { return 1 / (1 + T.exponential(-x)) }
  let e = T.exponential(x)
  return e / (1 + e)
}
