import Foundation
import CounterRNG
import VAECore
import XCTest

/// True in launch/sanitize.sh's runs (AddressSanitizer or ThreadSanitizer): a test that repeats one
/// code path many times (the finite differences) repeats it less there.
let underSanitizer = ProcessInfo.processInfo.environment["VAE_DIST_SANITIZER"] != nil

/// Random values for tests, from the project's own counter-based generator (any source would do).
func randomValues(_ count: Int, seed: UInt64, scale: Double = 1) -> [Double] {
  var random = CounterRandomStream(seed: seed, purpose: .priorSamples, 99, 0)
  return (0..<count).map { _ in (2 * random.nextOpenUnit() - 1) * scale }
}

/// max |a − b| / max(|a|, |b|, floor) over two arrays.
func maxRelativeError(_ a: [Double], _ b: [Double], floor: Double = 1e-6) -> Double {
  precondition(a.count == b.count)
  var worst = 0.0
  for (x, y) in zip(a, b) { worst = max(worst, abs(x - y) / max(abs(x), abs(y), floor)) }
  return worst
}

func maxAbsoluteDifference(_ a: [Double], _ b: [Double]) -> Double {
  zip(a, b).map { abs($0 - $1) }.max() ?? 0
}

/// Central finite difference of f at x along coordinate i.
func centralDifference(_ x: inout [Double], _ i: Int, step h: Double = 1e-6, _ f: ([Double]) -> Double) -> Double {
  let saved = x[i]
  x[i] = saved + h
  let plus = f(x)
  x[i] = saved - h
  let minus = f(x)
  x[i] = saved
  return (plus - minus) / (2 * h)
}

extension Array where Element == Double {
  /// Calls body with a mutable pointer to a copy of the array; returns the (possibly updated) copy.
  func withCopy(_ body: (UnsafeMutablePointer<Double>) -> Void) -> [Double] {
    var copy = self
    copy.withUnsafeMutableBufferPointer { body($0.baseAddress!) }
    return copy
  }
}

// Independent references, written from PyTorch's definitions on NCHW tensors, one image at a time,
// sharing nothing with the im2col/BLAS code under test.

/// Conv2d on x [N, Cin, H, H] with weight [Cout, Cin, 3, 3] → [N, Cout, S, S].
func referenceConv2d(
  x: [Double], weight: [Double], bias: [Double], batch: Int, inChannels: Int, outChannels: Int,
  side: Int, stride: Int, pad: Int
) -> (output: [Double], side: Int) {
  let outSide = (side + 2 * pad - 3) / stride + 1
  var y = [Double](repeating: 0, count: batch * outChannels * outSide * outSide)
  for n in 0..<batch {
    for co in 0..<outChannels {
      for i in 0..<outSide {
        for j in 0..<outSide {
          var sum = bias[co]
          for ci in 0..<inChannels {
            for kh in 0..<3 {
              for kw in 0..<3 {
                let r = i * stride - pad + kh, c = j * stride - pad + kw
                guard r >= 0, r < side, c >= 0, c < side else { continue }
                sum += weight[((co * inChannels + ci) * 3 + kh) * 3 + kw]
                  * x[((n * inChannels + ci) * side + r) * side + c]
              }
            }
          }
          y[((n * outChannels + co) * outSide + i) * outSide + j] = sum
        }
      }
    }
  }
  return (y, outSide)
}

/// ConvTranspose2d on x [N, Cin, H, H] with weight [Cin, Cout, 3, 3] → [N, Cout, L, L],
/// L = (H − 1)·stride − 2·pad + 3 + outputPadding.
func referenceConvTranspose2d(
  x: [Double], weight: [Double], bias: [Double], batch: Int, inChannels: Int, outChannels: Int,
  side: Int, stride: Int, pad: Int, outputPadding: Int
) -> (output: [Double], side: Int) {
  let outSide = (side - 1) * stride - 2 * pad + 3 + outputPadding
  var y = [Double](repeating: 0, count: batch * outChannels * outSide * outSide)
  for n in 0..<batch {
    for co in 0..<outChannels {
      for p in 0..<(outSide * outSide) { y[(n * outChannels + co) * outSide * outSide + p] = bias[co] }
    }
    for ci in 0..<inChannels {
      for i in 0..<side {
        for j in 0..<side {
          let value = x[((n * inChannels + ci) * side + i) * side + j]
          for co in 0..<outChannels {
            for kh in 0..<3 {
              for kw in 0..<3 {
                let r = i * stride - pad + kh, c = j * stride - pad + kw
                guard r >= 0, r < outSide, c >= 0, c < outSide else { continue }
                y[((n * outChannels + co) * outSide + r) * outSide + c] +=
                  value * weight[((ci * outChannels + co) * 3 + kh) * 3 + kw]
              }
            }
          }
        }
      }
    }
  }
  return (y, outSide)
}

/// NCHW [N, C, H, H] ↔ a bordered grid [C, H+2, H+2, lanes] (lanes past N zero).
func toGrid(_ x: [Double], batch: Int, shape: GridShape) -> [Double] {
  var grid = [Double](repeating: 0, count: shape.count)
  for n in 0..<batch {
    for c in 0..<shape.channels {
      for y in 0..<shape.side {
        for x0 in 0..<shape.side {
          grid[shape.offset(channel: c, y: y, x: x0) + n] = x[((n * shape.channels + c) * shape.side + y) * shape.side + x0]
        }
      }
    }
  }
  return grid
}

func fromGrid(_ grid: [Double], batch: Int, shape: GridShape) -> [Double] {
  var x = [Double](repeating: 0, count: batch * shape.channels * shape.side * shape.side)
  for n in 0..<batch {
    for c in 0..<shape.channels {
      for y in 0..<shape.side {
        for x0 in 0..<shape.side {
          x[((n * shape.channels + c) * shape.side + y) * shape.side + x0] = grid[shape.offset(channel: c, y: y, x: x0) + n]
        }
      }
    }
  }
  return x
}
