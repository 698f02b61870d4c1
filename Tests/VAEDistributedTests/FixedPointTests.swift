import CounterRNG
import VAECore
import XCTest
import _CKernels

/// The reduction's conversions to and from fixed point (vdk_add_fixed_point, vdk_from_fixed_point)
/// against Swift's own rounding, one element at a time: the same integers and the same floats. The
/// kernels split each value into 32-bit halves (AVX2 has no vector conversion between double and
/// int64), so the cases include what a split gets wrong first: ties, values whose low half crosses
/// 2^32, negative values just below a tie, and the ends of the range.
///
/// Each test runs every build of these kernels this CPU has (baseline with the portable kernels,
/// avx2 with avx2, avx512 with avx512).
final class FixedPointTests: XCTestCase {
  /// Floats of every exponent and sign whose product with `scale` stays under 2^62, and the edges.
  func floats(scale: Double, random: inout CounterRandomStream) -> [Float] {
    var values: [Float] = []
    // Around ties and halves: k + 0.5 and its float neighbours, in units of the fixed point.
    let ks: [Double] = [0, 1, 2, 3, 0x1p20, 0x1p31 - 1, 0x1p31, 0x1p32 - 1, 0x1p32, 0x1p33]
    for k in ks {
      for fraction: Double in [0, 0.25, 0.5, 0.75] {
        let unit = Float((k + fraction) / scale)
        guard unit.isFinite else { continue }
        for v in [unit, unit.nextUp, unit.nextDown] { values += [v, -v] }
      }
    }
    let top = Float(0x1p61 / scale)
    let edges: [Float] = [top, top.nextDown, .leastNonzeroMagnitude, .leastNormalMagnitude]
    for v in edges where v.isFinite && abs(Double(v) * scale) < 0x1p62 {
      values += [v, -v]
    }
    // Random bit patterns: every exponent, the finite ones in range.
    while values.count < 4_003 {  // not a multiple of any vector width: the scalar tail runs too
      let v = Float(bitPattern: UInt32(truncatingIfNeeded: random.next()))
      if v.isFinite && abs(Double(v) * scale) < 0x1p62 { values.append(v) }
    }
    return values
  }

  func testFixedPointSumsAreTheRoundedProducts() throws {
    KernelVariant.withEachElementwiseBuild {
      fixedPointSumsAreTheRoundedProducts()
    }
  }

  func fixedPointSumsAreTheRoundedProducts() {
    var random = CounterRandomStream(seed: 5, purpose: .priorSamples, 3, 0)
    var checked = 0
    for exponent in stride(from: -70, through: 130, by: 7) {
      let scale = Double(sign: .plus, exponent: exponent, significand: 1)
      let x = floats(scale: scale, random: &random)
      // Start from nonzero sums: the kernel adds.
      var sums = x.indices.map { Int64($0) * 1_000_003 - 2_000_000_000 }
      let start = sums
      vdk_add_fixed_point(x, &sums, x.count, scale)
      for i in x.indices {
        let expected = start[i] &+ Int64((Double(x[i]) * scale).rounded(.toNearestOrEven))
        if sums[i] != expected {
          XCTFail("\(kernelInstructionSet()): x = \(x[i]) (\(x[i].bitPattern)), scale 2^\(exponent): \(sums[i]) against \(expected)")
          return
        }
      }
      checked += x.count
    }
    print("fixed point (\(kernelInstructionSet())): \(checked) products, every one the rounded product")
  }

  func testFloatsFromFixedPointAreTheRoundedQuotients() throws {
    KernelVariant.withEachElementwiseBuild {
      floatsFromFixedPointAreTheRoundedQuotients()
    }
  }

  func floatsFromFixedPointAreTheRoundedQuotients() {
    var random = CounterRandomStream(seed: 5, purpose: .priorSamples, 4, 0)
    var sums: [Int64] = [0, 1, -1, .max, .min + 1, .min, (1 << 53) + 1, -(1 << 53) - 1, (1 << 62) - 1, -(1 << 62) + 1]
    sums += [0xffff_ffff, -0xffff_ffff, 1 << 32, -(1 << 32), (1 << 32) + 1, (1 << 54) + 3, (1 << 54) + 2]
    while sums.count < 4_001 {
      let bits = Int64(bitPattern: random.next())
      sums.append(bits >> Int64(random.next() % 64))
    }
    var checked = 0
    for exponent in [-100, -62, -40, -1, 0, 3] {
      let inverse = Double(sign: .plus, exponent: exponent, significand: 1)
      var out = [Float](repeating: .nan, count: sums.count)
      vdk_from_fixed_point(sums, &out, sums.count, inverse)
      for i in sums.indices {
        let expected = Float(Double(sums[i]) * inverse)
        if out[i].bitPattern != expected.bitPattern {
          XCTFail("\(kernelInstructionSet()): \(sums[i]) · 2^\(exponent): \(out[i]) against \(expected)")
          return
        }
      }
      checked += sums.count
    }
    print("fixed point (\(kernelInstructionSet())): \(checked) conversions back, every one the rounded quotient")
  }

  /// The largest magnitude (vdk_max_abs, which sets each tensor's scale): 67 random floats of either
  /// sign below 2^-2, with the largest put at each place in turn (every lane of the vectors and the
  /// tail), and +∞ for a NaN or an infinity at each place, in every build.
  func testLargestMagnitudeAndNonFiniteValues() throws {
    var random = CounterRandomStream(seed: 5, purpose: .priorSamples, 5, 0)
    let base = (0..<67).map { _ in Float(bitPattern: UInt32(truncatingIfNeeded: random.next()) & 0xbe7f_ffff) }
    KernelVariant.withEachElementwiseBuild {
      for place in base.indices {
        var x = base
        x[place] = -3.5e37
        XCTAssertEqual(vdk_max_abs(x, x.count), 3.5e37, "\(kernelInstructionSet()): the largest at \(place)")
        for bad: Float in [.nan, .infinity, -.infinity] {
          x[place] = bad
          XCTAssertEqual(vdk_max_abs(x, x.count), .infinity, "\(kernelInstructionSet()): \(bad) at \(place)")
        }
      }
      XCTAssertEqual(vdk_max_abs(base, 0), 0)
    }
  }
}
