/// How a 3×3 window connects a large grid to a small one, for a batch stored channel-major
/// ([C, N, H, W], "CNHW"): small position (i, j) with tap (kh, kw) touches large position
/// (i·stride − pad + kh, j·stride − pad + kw). A convolution reads the large grid (its input) at each
/// small position (its output); a transposed convolution writes the large grid (its output) from each
/// small position (its input). So one im2col/col2im pair serves both layers.
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

/// Gathers windows of `image` [C, N, L, L] into `cols` [C·9, N·S·S] (zero outside the image).
@inlinable
public func im2col<T: VAEScalar>(
  image: UnsafePointer<T>, cols: UnsafeMutablePointer<T>, geometry g: WindowGeometry
) {
  let small = g.smallSide, large = g.largeSide
  let smallArea = small * small, largeArea = large * large
  for c in 0..<g.channels {
    for kh in 0..<3 {
      for kw in 0..<3 {
        let row = cols + (c * 9 + kh * 3 + kw) * g.columns
        for n in 0..<g.batch {
          let plane = image + (c * g.batch + n) * largeArea
          let out = row + n * smallArea
          for i in 0..<small {
            let dst = out + i * small
            let hi = i * g.stride - g.pad + kh
            if hi < 0 || hi >= large {
              dst.update(repeating: 0, count: small)
              continue
            }
            let src = plane + hi * large
            for j in 0..<small {
              let wi = j * g.stride - g.pad + kw
              dst[j] = (wi >= 0 && wi < large) ? src[wi] : 0
            }
          }
        }
      }
    }
  }
}

/// The adjoint of im2col: sets `image` [C, N, L, L] to the sum of the window entries of `cols`
/// [C·9, N·S·S] that land on each pixel.
@inlinable
public func col2im<T: VAEScalar>(
  cols: UnsafePointer<T>, image: UnsafeMutablePointer<T>, geometry g: WindowGeometry
) {
  let small = g.smallSide, large = g.largeSide
  let smallArea = small * small, largeArea = large * large
  image.update(repeating: 0, count: g.channels * g.batch * largeArea)
  for c in 0..<g.channels {
    for kh in 0..<3 {
      for kw in 0..<3 {
        let row = cols + (c * 9 + kh * 3 + kw) * g.columns
        for n in 0..<g.batch {
          let plane = image + (c * g.batch + n) * largeArea
          let input = row + n * smallArea
          for i in 0..<small {
            let hi = i * g.stride - g.pad + kh
            if hi < 0 || hi >= large { continue }
            let src = input + i * small
            let dst = plane + hi * large
            for j in 0..<small {
              let wi = j * g.stride - g.pad + kw
              if wi >= 0 && wi < large { dst[wi] += src[j] }
            }
          }
        }
      }
    }
  }
}
