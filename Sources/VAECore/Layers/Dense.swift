// Dense layers on lane-major activations: feature f of a micro-batch is a run of `lanes` values
// (one per image) at offsets[f]. The offsets let a dense layer read or write a grid's interior pixels
// in PyTorch's flatten order as well as a plain [F, lanes] matrix, so no layout change sits between
// the convolutions and the dense layers.

/// Where each feature of a lane-major activation lives. Unchecked Sendable: immutable after init.
public final class FeatureOffsets: @unchecked Sendable {
  public let count: Int
  public let pointer: UnsafeMutablePointer<Int>

  public init(_ offsets: [Int]) {
    count = offsets.count
    pointer = .allocate(capacity: max(1, count))
    pointer.initialize(from: offsets, count: count)
  }
  /// A plain [F, lanes] matrix.
  public convenience init(rows: Int, lanes: Int) { self.init((0..<rows).map { $0 * lanes }) }
  /// A grid's interior pixels, channel by channel, row by row.
  public convenience init(grid: GridShape) { self.init(grid.featureOffsets) }

  deinit { pointer.deallocate() }
}

/// out[outOffsets[o]] = relu?(start + Σ_i W[o·outStride + i·inStride] · in[inOffsets[i]]) per lane,
/// where start is what out holds if `accumulate`, else bias[o] (or 0).
@inlinable
public func referenceDense<T: VAEScalar>(
  weight: UnsafePointer<T>, outStride: Int, inStride: Int, bias: UnsafePointer<T>?, relu: Bool, accumulate: Bool,
  input: UnsafePointer<T>, inOffsets: FeatureOffsets, output: UnsafeMutablePointer<T>, outOffsets: FeatureOffsets,
  lanes: Int
) {
  for o in 0..<outOffsets.count {
    let out = output + outOffsets.pointer[o]
    for lane in 0..<lanes {
      var sum: T = accumulate ? out[lane] : (bias?[o] ?? 0)
      for i in 0..<inOffsets.count { sum += weight[o * outStride + i * inStride] * input[inOffsets.pointer[i] + lane] }
      out[lane] = relu && !(sum > 0) ? 0 : sum
    }
  }
}

/// dW[o·outStride + i·inStride] = Σ over lanes of dy[o] · x[i]; dBias[o] = Σ over lanes of dy[o].
@inlinable
public func referenceDenseWeightGradient<T: VAEScalar>(
  dWeight: UnsafeMutablePointer<T>, outStride: Int, inStride: Int, dBias: UnsafeMutablePointer<T>?,
  dy: UnsafePointer<T>, dyOffsets: FeatureOffsets, x: UnsafePointer<T>, xOffsets: FeatureOffsets, lanes: Int
) {
  for o in 0..<dyOffsets.count {
    let g = dy + dyOffsets.pointer[o]
    if let dBias { dBias[o] = (0..<lanes).reduce(0) { $0 + g[$1] } }
    for i in 0..<xOffsets.count {
      let v = x + xOffsets.pointer[i]
      dWeight[o * outStride + i * inStride] = (0..<lanes).reduce(0) { $0 + g[$1] * v[$1] }
    }
  }
}

/// rows [n, F] → lane-major features at `offsets`, lanes n..<lanes set to zero (zero images).
@inlinable
public func rowsToLanes<T: VAEScalar>(
  _ rows: UnsafePointer<T>, count n: Int, into lanesBuffer: UnsafeMutablePointer<T>, offsets: FeatureOffsets, lanes: Int
) {
  let features = offsets.count
  for f in 0..<features {
    let out = lanesBuffer + offsets.pointer[f]
    for i in 0..<n { out[i] = rows[i * features + f] }
    for i in n..<lanes { out[i] = 0 }
  }
}

/// Lane-major features at `offsets` → rows [n, F].
@inlinable
public func lanesToRows<T: VAEScalar>(
  _ lanesBuffer: UnsafePointer<T>, offsets: FeatureOffsets, count n: Int, into rows: UnsafeMutablePointer<T>
) {
  let features = offsets.count
  for f in 0..<features {
    let v = lanesBuffer + offsets.pointer[f]
    for i in 0..<n { rows[i * features + f] = v[i] }
  }
}
