import _CKernels

/// A micro-batch of feature maps as the convolutions keep them: [C, side+2, side+2, lanes] (each
/// map followed by one spare cache line), with a
/// one-pixel zero border around each map and the images innermost. `lanes` is the micro-batch rounded
/// up to 16: one AVX-512 register (two AVX2 ones) per pixel, whatever the stride. The border makes
/// every tap of a 3×3 window with padding 1 a plain load, and no kernel writes it, so it stays zero;
/// lanes past the micro-batch hold zero images.
public struct GridShape: Sendable, Equatable {
  public let channels: Int
  public let side: Int
  public let lanes: Int

  @inlinable public init(channels: Int, side: Int, lanes: Int) {
    precondition(lanes % 16 == 0 && lanes > 0)
    (self.channels, self.side, self.lanes) = (channels, side, lanes)
  }

  /// Floats between one channel's map and the next: the bordered map and one unused cache line, so
  /// that maps whose size is a multiple of 4 KiB (14×14 with 16 lanes: 16 KiB) do not put every
  /// channel's pixel (y, x) in the same cache set (vdk_grid_channel in _CKernels/direct.c).
  @inlinable public var channelStride: Int { (side + 2) * (side + 2) * lanes + 16 }
  @inlinable public var count: Int { channels * channelStride }
  /// Where image lane 0 of pixel (y, x) of channel c starts; y and x may be −1 or `side` (the border).
  @inlinable public func offset(channel c: Int, y: Int, x: Int) -> Int {
    c * channelStride + ((y + 1) * (side + 2) + x + 1) * lanes
  }
  /// The offsets of every interior pixel, in PyTorch's flatten order (channel, row, column): how a
  /// dense layer addresses this grid as features.
  public var featureOffsets: [Int] {
    var offsets: [Int] = []
    offsets.reserveCapacity(channels * side * side)
    for c in 0..<channels { for y in 0..<side { for x in 0..<side { offsets.append(offset(channel: c, y: y, x: x)) } } }
    return offsets
  }
}

/// How a 3×3 window with padding 1 joins a large grid to a small one: small position (i, j) with tap
/// (kh, kw) touches large position (stride·i − 1 + kh, stride·j − 1 + kw). A convolution reads the
/// large grid and writes the small one; a transposed convolution the reverse. The weight is
/// W[small channel][large channel][kh][kw]: Conv2d's [out, in, 3, 3] and ConvTranspose2d's [in, out, 3, 3].
public struct ConvWindow: Sendable, Equatable {
  public let small: GridShape
  public let large: GridShape
  public let stride: Int

  /// The most positions (side × side) a grid of a window may have: the kernels' position tables
  /// (direct.c's VDK_MAX_POSITIONS) hold 28 × 28.
  public static let maximumPositions = 28 * 28

  @inlinable public init(small: GridShape, large: GridShape, stride: Int) {
    precondition(small.lanes == large.lanes && (stride == 1 || stride == 2) && large.side == stride * small.side)
    precondition(small.side * small.side <= Self.maximumPositions && (stride == 2 || large.side * large.side <= Self.maximumPositions),
                 "a window's grids hold at most 28 × 28 positions (the kernels' tables)")
    (self.small, self.large, self.stride) = (small, large, stride)
  }

  /// Multiply-adds per image, counting the taps that fall on padding (the nominal count).
  @inlinable public var multiplyAddsPerImage: Int { small.channels * large.channels * 9 * small.side * small.side }

  @inlinable var c: VDKWindow {
    VDKWindow(
      small_channels: small.channels, large_channels: large.channels, small_side: small.side, large_side: large.side,
      stride: stride, lanes: small.lanes)
  }
}

// The reference loops, in the element type's own arithmetic: what Double runs for the gradient checks
// and what the tests compare the C kernels with. They follow the definitions directly.

/// small[s, i, j] = relu?(bias[s] + Σ_{l, kh, kw} W[s, l, kh, kw] · large[l, stride·i − 1 + kh, stride·j − 1 + kw]).
@inlinable
public func referenceGather<T: VAEScalar>(
  _ g: ConvWindow, weight: UnsafePointer<T>, bias: UnsafePointer<T>?, relu: Bool, large: UnsafePointer<T>,
  small: UnsafeMutablePointer<T>
) {
  let n = g.small.lanes
  for s in 0..<g.small.channels {
    for i in 0..<g.small.side {
      for j in 0..<g.small.side {
        let out = small + g.small.offset(channel: s, y: i, x: j)
        for lane in 0..<n { out[lane] = bias?[s] ?? 0 }
        for l in 0..<g.large.channels {
          for kh in 0..<3 {
            for kw in 0..<3 {
              let w = weight[(s * g.large.channels + l) * 9 + kh * 3 + kw]
              let x = large + g.large.offset(channel: l, y: g.stride * i - 1 + kh, x: g.stride * j - 1 + kw)
              for lane in 0..<n { out[lane] += w * x[lane] }
            }
          }
        }
        if relu { for lane in 0..<n where !(out[lane] > 0) { out[lane] = 0 } }
      }
    }
  }
}

/// large[l, y, x] = relu?(bias[l] + Σ of W[s, l, kh, kw] · small[s, i, j] over the (s, i, j, kh, kw)
/// with stride·i − 1 + kh = y and stride·j − 1 + kw = x.
@inlinable
public func referenceScatter<T: VAEScalar>(
  _ g: ConvWindow, weight: UnsafePointer<T>, bias: UnsafePointer<T>?, relu: Bool, small: UnsafePointer<T>,
  large: UnsafeMutablePointer<T>
) {
  let n = g.small.lanes
  for l in 0..<g.large.channels {
    for y in 0..<g.large.side {
      for x in 0..<g.large.side {
        let out = large + g.large.offset(channel: l, y: y, x: x)
        for lane in 0..<n { out[lane] = bias?[l] ?? 0 }
      }
    }
  }
  for s in 0..<g.small.channels {
    for i in 0..<g.small.side {
      for j in 0..<g.small.side {
        let x = small + g.small.offset(channel: s, y: i, x: j)
        for kh in 0..<3 {
          for kw in 0..<3 {
            let ly = g.stride * i - 1 + kh, lx = g.stride * j - 1 + kw
            guard ly >= 0, ly < g.large.side, lx >= 0, lx < g.large.side else { continue }
            for l in 0..<g.large.channels {
              let w = weight[(s * g.large.channels + l) * 9 + kh * 3 + kw]
              let out = large + g.large.offset(channel: l, y: ly, x: lx)
              for lane in 0..<n { out[lane] += w * x[lane] }
            }
          }
        }
      }
    }
  }
  if relu {
    for l in 0..<g.large.channels {
      for y in 0..<g.large.side {
        for x in 0..<g.large.side {
          let out = large + g.large.offset(channel: l, y: y, x: x)
          for lane in 0..<n where !(out[lane] > 0) { out[lane] = 0 }
        }
      }
    }
  }
}

/// dW[s, l, kh, kw] = Σ over lanes and small positions (i, j) of small[s, i, j] · large[l, stride·i − 1 + kh, stride·j − 1 + kw].
@inlinable
public func referenceWeightGradient<T: VAEScalar>(
  _ g: ConvWindow, small: UnsafePointer<T>, large: UnsafePointer<T>, dWeight: UnsafeMutablePointer<T>
) {
  let n = g.small.lanes
  for s in 0..<g.small.channels {
    for l in 0..<g.large.channels {
      for kh in 0..<3 {
        for kw in 0..<3 {
          var sum: T = 0
          for i in 0..<g.small.side {
            for j in 0..<g.small.side {
              let a = small + g.small.offset(channel: s, y: i, x: j)
              let b = large + g.large.offset(channel: l, y: g.stride * i - 1 + kh, x: g.stride * j - 1 + kw)
              for lane in 0..<n { sum += a[lane] * b[lane] }
            }
          }
          dWeight[(s * g.large.channels + l) * 9 + kh * 3 + kw] = sum
        }
      }
    }
  }
}

/// sums[c] = Σ over lanes and interior pixels of channel c.
@inlinable
public func referenceGridSums<T: VAEScalar>(_ grid: UnsafePointer<T>, shape: GridShape, into sums: UnsafeMutablePointer<T>) {
  for c in 0..<shape.channels {
    var sum: T = 0
    for y in 0..<shape.side {
      for x in 0..<shape.side {
        let v = grid + shape.offset(channel: c, y: y, x: x)
        for lane in 0..<shape.lanes { sum += v[lane] }
      }
    }
    sums[c] = sum
  }
}
