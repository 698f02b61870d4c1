/// How a 3×3 window connects a large grid to a small one, for a batch stored with the image index
/// innermost ([C, H, W, N], "CHWN"): small position (i, j) with tap (kh, kw) touches large position
/// (i·stride − pad + kh, j·stride − pad + kw). A convolution reads the large grid (its input) at each
/// small position (its output); a transposed convolution writes the large grid (its output) from each
/// small position (its input). So one im2col/col2im pair serves both layers.
///
/// Why CHWN: every spatial move is a move by whole runs of N contiguous values (one SIMD register
/// for a micro-batch of 16), so the window gathers and scatters are plain vector copies and adds
/// whatever the stride, and a convolution is still one matrix product over the whole micro-batch.
public struct WindowGeometry: Sendable {
  public let channels: Int
  public let batch: Int
  public let largeSide: Int
  public let smallSide: Int
  public let stride: Int
  public let pad: Int

  @inlinable
  public init(channels: Int, batch: Int, largeSide: Int, smallSide: Int, stride: Int, pad: Int) {
    self.channels = channels
    self.batch = batch
    self.largeSide = largeSide
    self.smallSide = smallSide
    self.stride = stride
    self.pad = pad
  }

  /// Columns of the im2col matrix: one per (image, small position).
  @inlinable public var columns: Int { batch * smallSide * smallSide }
  /// Rows of the im2col matrix: one per (channel, tap).
  @inlinable public var rows: Int { channels * Architecture.kernelTaps }
}

/// Gathers windows of `image` [C, L, L, N] into `cols` [C·9, S·S·N] (zero outside the image).
@inlinable
public func im2col<T: VAEScalar>(
  image: UnsafePointer<T>, cols: UnsafeMutablePointer<T>, geometry g: WindowGeometry
) {
  let small = g.smallSide, large = g.largeSide, n = g.batch
  for c in 0..<g.channels {
    for kh in 0..<3 {
      for kw in 0..<3 {
        let row = cols + (c * 9 + kh * 3 + kw) * g.columns
        for i in 0..<small {
          for j in 0..<small {
            let dst = row + (i * small + j) * n
            let hi = i * g.stride - g.pad + kh, wi = j * g.stride - g.pad + kw
            if hi < 0 || hi >= large || wi < 0 || wi >= large {
              dst.update(repeating: 0, count: n)
            } else {
              dst.update(from: image + ((c * large + hi) * large + wi) * n, count: n)
            }
          }
        }
      }
    }
  }
}

/// The adjoint of im2col: sets `image` [C, L, L, N] to the sum of the window entries of `cols`
/// [C·9, S·S·N] that land on each pixel.
@inlinable
public func col2im<T: VAEScalar>(
  cols: UnsafePointer<T>, image: UnsafeMutablePointer<T>, geometry g: WindowGeometry
) {
  let small = g.smallSide, large = g.largeSide, n = g.batch
  image.update(repeating: 0, count: g.channels * large * large * n)
  for c in 0..<g.channels {
    for kh in 0..<3 {
      for kw in 0..<3 {
        let row = cols + (c * 9 + kh * 3 + kw) * g.columns
        for i in 0..<small {
          for j in 0..<small {
            let hi = i * g.stride - g.pad + kh, wi = j * g.stride - g.pad + kw
            guard hi >= 0, hi < large, wi >= 0, wi < large else { continue }
            let src = row + (i * small + j) * n, dst = image + ((c * large + hi) * large + wi) * n
            for k in 0..<n { dst[k] += src[k] }
          }
        }
      }
    }
  }
}
