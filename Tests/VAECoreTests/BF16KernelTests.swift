import VAECore
import XCTest
import _CKernels

/// `--precision bf16`'s arithmetic: operands rounded as VCVTNEPS2BF16 rounds, then float sums in
/// fp32's fixed order. Each variant's bf16 kernels against the Double reference on rounded
/// operands, bit for bit against the fp32 kernels on rounded operands, and against each other.
final class BF16KernelTests: XCTestCase {
  override func tearDown() {
    Precision.fp32.select()
    KernelVariant.selectDefault()
  }

  /// The rounding, against the instruction's rule written out in Swift on the edge cases: ties to
  /// even both ways, the carry into the exponent and to infinity, denormals to signed zero, NaN.
  func testRoundingFollowsTheInstruction() throws {
    func reference(_ bits: UInt32) -> UInt32 {
      let exponent = bits & 0x7f80_0000, fraction = bits & 0x007f_ffff
      if exponent == 0 { return bits & 0x8000_0000 }
      if exponent == 0x7f80_0000 { return fraction != 0 ? (bits | 0x0040_0000) & 0xffff_0000 : bits }
      let lsb = (bits >> 16) & 1, dropped = bits & 0xffff
      let up = dropped > 0x8000 || (dropped == 0x8000 && lsb == 1)
      return (bits & 0xffff_0000) &+ (up ? 0x1_0000 : 0)
    }
    var cases: [UInt32] = [
      0x3f80_8000, 0x3f81_8000, 0x3f80_8001, 0x3f80_7fff, 0xbf81_8000, 0x3fff_ffff, 0x7f7f_ffff, 0xff7f_8000,
      0x7f7f_7fff, 0x0000_0001, 0x807f_ffff, 0x0080_0000, 0x0080_8000, 0x7f80_0000, 0xff80_0000, 0x7f80_0001,
      0xffc0_1234, 0x0000_0000, 0x8000_0000, 0x3f80_0000,
    ]
    var state: UInt32 = 12345
    for _ in 0..<10_000 {
      state = state &* 1_664_525 &+ 1_013_904_223
      cases.append(state)
    }
    for bits in cases {
      let got = roundedToBF16(Float(bitPattern: bits)).bitPattern
      XCTAssertEqual(got, reference(bits), String(format: "0x%08x", bits))
    }
    // All at once (vectors of 16 and a tail of 4) in every build of the kernel this CPU has.
    let values = cases.map { Float(bitPattern: $0) }, expected = cases.map(reference)
    KernelVariant.withEachElementwiseBuild {
      var out = [Float](repeating: 0, count: values.count)
      vdk_round_bf16(values, &out, values.count)
      let wrong = values.indices.filter { out[$0].bitPattern != expected[$0] }
      XCTAssertEqual(wrong.count, 0, "\(kernelInstructionSet()): \(wrong.prefix(3).map { String(format: "0x%08x", cases[$0]) })")
    }
    XCTAssertEqual(roundedToBF16(Float(bitPattern: 0x7f7f_ffff)), .infinity)
    XCTAssertEqual(roundedToBF16(Float(bitPattern: 0x807f_ffff)).bitPattern, 0x8000_0000)
  }

  /// The check that runs before the native kernels' first use compares VDPBF16PS with its model (two
  /// FMAs, the high pair first, denormals flushed) and VCVTNE2PS2BF16 / VCVTNEPS2BF16 (with the
  /// interleaving into pairs) with the rounding the modelled kernels run. It must tell the models from
  /// the ways another implementation could differ, or a CPU that rounds differently would run natively
  /// with other bits: here each such implementation, written out, stands in for the instructions.
  func testTheNativeCheckTellsOtherImplementationsApart() throws {
    guard vdk_bf16_check_detects(0) >= 0 else { throw XCTSkip("the check needs AVX2 and FMA") }
    XCTAssertEqual(vdk_bf16_check_detects(0), 0, "the models against themselves and the rounding's definition")
    XCTAssertEqual(String(cString: vdk_bf16_check_difference()), "", "no difference to report")
    // Each fault, and the instruction the check's report must name as the first that differs.
    for (fault, name, instruction) in [
      (1, "the low pair first", "VDPBF16PS"), (2, "results not flushed", "VDPBF16PS"),
      (3, "inputs not flushed", "VDPBF16PS"), (4, "one rounding for both products", "VDPBF16PS"),
      (5, "a truncating rounding", "VCVTNE2PS2BF16"), (6, "denormals rounded as numbers", "VCVTNE2PS2BF16"),
      (7, "ties away from zero", "VCVTNE2PS2BF16"), (8, "a row pair's halves swapped", "VCVTNE2PS2BF16"),
      (9, "a lane pair's halves swapped", "VCVTNEPS2BF16"),
    ] {
      XCTAssertEqual(vdk_bf16_check_detects(Int32(fault)), 1, "the check misses an implementation with \(name)")
      // "VDPBF16PS: accumulator …, pairs … and … gave G; its definition gives D", G ≠ D.
      let report = String(cString: vdk_bf16_check_difference())
      XCTAssertTrue(report.hasPrefix(instruction + ":"), "fault \(fault) (\(name)) reported as: \(report)")
      let results = report.split(separator: ";").map { $0.split(separator: " ").last.map(String.init) ?? "" }
      XCTAssertEqual(results.count, 2, report)
      XCTAssertNotEqual(results.first, results.last, "the report shows two different results: \(report)")
      print("BF16KernelTests: fault \(fault), \(name): \(report)")
    }
    XCTAssertEqual(vdk_bf16_check_detects(10), -1)
  }

  func bits(_ x: [[Float]]) -> [[UInt32]] { x.map { $0.map(\.bitPattern) } }
  let round: (Double) -> Double = { Double(roundedToBF16(Float($0))) }

  func testConvolutionKernelsInBF16() throws {
    for g in KernelCases.windows {
      let reference = KernelCases.passes(g, Double.self, operand: round)
      var first: (KernelVariant, [[Float]])?
      for variant in KernelVariant.supported {
        try variant.select()
        Precision.fp32.select()
        let onRounded = KernelCases.passes(g, Float.self, operand: round)
        let plain = KernelCases.passes(g, Float.self)
        Precision.bf16.select()
        let got = KernelCases.passes(g, Float.self)
        for (k, name) in KernelCases.names.enumerated() {
          let scale = max(1, reference[k].map(abs).max()!)
          let difference = maxAbsoluteDifference(got[k].map { Double($0) }, reference[k]) / scale
          let fromFP32 = maxAbsoluteDifference(got[k].map { Double($0) }, plain[k].map { Double($0) }) / scale
          print("\(variant) bf16 \(name) \(KernelCases.describe(g)): max difference / scale \(difference) (from fp32: \(fromFP32))")
          XCTAssertLessThan(difference, 2e-6, "\(variant) \(name) \(KernelCases.describe(g))")
          // The rounding happened: the products moved by about bf16's 2^-9, the sums did not move.
          if name == "channel sums" { XCTAssertEqual(got[k], plain[k]) } else { XCTAssertGreaterThan(fromFP32, 1e-4, name) }
        }
        XCTAssertEqual(bits(got), bits(onRounded), "\(variant) bf16 vs fp32 on rounded operands \(KernelCases.describe(g))")
        if let (base, expected) = first {
          XCTAssertEqual(bits(got), bits(expected), "\(variant) vs \(base) \(KernelCases.describe(g))")
        } else {
          first = (variant, got)
        }
      }
    }
  }

  func testDenseKernelsInBF16() throws {
    let reference = KernelCases.dense(Double.self, operand: round)
    let biasGradients = KernelCases.denseNames.indices.filter { KernelCases.denseNames[$0].hasPrefix("bias gradient") }
    var first: [[Float]]?
    for variant in KernelVariant.supported {
      try variant.select()
      Precision.fp32.select()
      let onRounded = KernelCases.dense(Float.self, operand: round), plain = KernelCases.dense(Float.self)
      Precision.bf16.select()
      let got = KernelCases.dense(Float.self)
      for (k, name) in KernelCases.denseNames.enumerated() {
        // A bias gradient sums the fp32 dy: it is fp32's, not the rounded reference's.
        let expected = biasGradients.contains(k) ? plain[k] : onRounded[k]
        XCTAssertEqual(got[k].map(\.bitPattern), expected.map(\.bitPattern), "\(variant) bf16 \(name)")
        guard !biasGradients.contains(k) else { continue }
        let difference = maxAbsoluteDifference(got[k].map { Double($0) }, reference[k])
        print("\(variant) bf16 dense \(name): max difference \(difference)")
        XCTAssertLessThan(difference, 1e-5, "\(variant) \(name)")
      }
      if let first { XCTAssertEqual(bits(got), bits(first), "\(variant)") }
      first = first ?? got
    }
  }

  /// The windows of the edge-case tests below: one output channel (the direct kernel), and 2 output
  /// channels from 7 input channels at stride 1 (the panel kernel, chains of 63, 42 and 28 terms).
  let edgeWindows: [ConvWindow] = [(1, 2, 7, 2), (2, 7, 7, 1)].map { small, large, side, stride in
    ConvWindow(
      small: GridShape(channels: small, side: side, lanes: 16),
      large: GridShape(channels: large, side: side * stride, lanes: 16), stride: stride)
  }

  /// The offsets of a grid's inside values (every channel, position and lane; not the border).
  func inside(_ grid: GridShape) -> [Int] {
    var offsets: [Int] = []
    for c in 0..<grid.channels { for y in 0..<grid.side { for x in 0..<grid.side { for l in 0..<grid.lanes {
      offsets.append(grid.offset(channel: c, y: y, x: x) + l) } } } }
    return offsets
  }

  /// A grid with `value` inside and zeros on its border.
  func filled(_ grid: GridShape, _ value: Float) -> [Float] {
    var values = [Float](repeating: 0, count: grid.count)
    for o in inside(grid) { values[o] = value }
    return values
  }

  /// Denormal operands and a denormal accumulator count as zero, and no result is denormal, as in
  /// VDPBF16PS: a gather whose products and bias all lie below float's smallest normal gives +0 or -0.
  /// And a sum of −0 stays −0 (a bias of −0 plus products −1 · +0), also where the pair kernels pad a
  /// chain of odd length. Two windows: one output channel (the direct kernel), and 2 output
  /// channels from 7 input channels (the panel kernel, chains of 63, 42 and 28 terms).
  func testDenormalsAreFlushedAndNegativeZeroKept() throws {
    for g in edgeWindows {
      let small = g.small.channels, large = g.large.channels
      let tiny = filled(g.large, 1e-20), zero = filled(g.large, 0)
      var scratch = [Float](repeating: 0, count: 9 * small * large)
      for variant in KernelVariant.supported {
        try variant.select()
        for precision in Precision.allCases {
          precision.select()
          var out = [Float](repeating: .nan, count: g.small.count)
          Float.convGather(
            g, weight: [Float](repeating: 1e-20, count: 9 * small * large),
            bias: [Float](repeating: .leastNormalMagnitude / 8, count: small), relu: false, mask: nil, large: tiny,
            small: &out, scratch: &scratch)
          let centre = out[g.small.offset(channel: small - 1, y: 3, x: 3)]
          print("\(variant) \(precision) \(KernelCases.describe(g)): a denormal bias + \(9 * large) products of 1e-20 · 1e-20 = \(centre)")
          // fp32 keeps the denormal sum (a bias of 2^-129 and products near 1e-40); bf16 flushes each.
          if precision == .fp32 { XCTAssertTrue(centre.isSubnormal && centre > 0, "\(centre)") } else { XCTAssertEqual(centre.bitPattern, 0) }
          Float.convGather(
            g, weight: [Float](repeating: -1, count: 9 * small * large), bias: [Float](repeating: -0.0, count: small),
            relu: false, mask: nil, large: zero, small: &out, scratch: &scratch)
          for o in inside(g.small) {
            XCTAssertEqual(out[o].bitPattern, (-0.0 as Float).bitPattern, "\(variant) \(precision) offset \(o): \(out[o])")
          }
        }
      }
    }
  }

  /// The portable bf16 kernels skip their check per product only for a call whose operands' exponents
  /// keep every product zero or a normal float; at each limit, the last step inside and the first
  /// outside. (The kernel tests above reach that build; the edge cases below, the checked one.)
  func testThePortableBuildWithoutTheCheckIsChosenOnlyInsideFloatsRange() {
    func inRange(_ a: [Float], _ b: [Float], first n: Int? = nil) -> Bool {
      vdk_bf16_products_in_range(a, n ?? a.count, b, b.count) != 0
    }
    XCTAssertTrue(inRange([0x1p-63, 1, 0], [-0x1p-63, 3]), "2^-126, the least normal")
    XCTAssertFalse(inRange([0x1p-64, 1], [0x1p-63]), "2^-127, flushed to zero")
    XCTAssertTrue(inRange([0x1.fep63], [-0x1.fep63]), "just below 2^128")
    XCTAssertFalse(inRange([0x1p64], [0x1p64]), "2^128, infinite")
    XCTAssertFalse(inRange([0x1p64], [0x1p63]), "2^127: a float, but the exponents alone cannot tell")
    XCTAssertTrue(inRange([0, -0.0, 1e-30], [0, 0]), "zeros multiply into zeros")
    XCTAssertTrue(inRange([.leastNonzeroMagnitude, 1], [1]), "a denormal operand is a zero (DAZ)")
    XCTAssertFalse(inRange([1, .infinity], [0]), "an infinity")
    XCTAssertFalse(inRange([1], [.nan]), "a NaN")
    XCTAssertTrue(inRange([1, .infinity], [1], first: 1), "only the first na floats")
  }

  /// Each product enters its sum unrounded, also where it alone would leave float's range, in every
  /// variant and precision: a negative product below the smallest normal added to +0 flushes to −0,
  /// not +0 (bf16; fp32 keeps the negative denormal), and 2^64 · 2^64 added to −(largest float) is
  /// 2^104, not infinity. Shortcuts that round the product first (the portable bf16 kernels' float
  /// multiply, then add) must see these and take the exact path.
  func testProductsOutsideFloatsRangeAreFused() throws {
    for g in edgeWindows {
      let small = g.small.channels, large = g.large.channels
      let tiny = filled(g.large, 1e-20)
      // One input position of 2^64: each output it reaches has one product of 2^128.
      var huge = filled(g.large, 0)
      for l in 0..<16 { huge[g.large.offset(channel: 0, y: 3, x: 3) + l] = 0x1p64 }
      var scratch = [Float](repeating: 0, count: 9 * small * large)
      for variant in KernelVariant.supported {
        try variant.select()
        for precision in Precision.allCases {
          precision.select()
          let name = "\(variant) \(precision) \(KernelCases.describe(g))"
          var out = [Float](repeating: .nan, count: g.small.count)
          Float.convGather(
            g, weight: [Float](repeating: -1e-20, count: 9 * small * large), bias: [Float](repeating: 0, count: small),
            relu: false, mask: nil, large: tiny, small: &out, scratch: &scratch)
          let centre = out[g.small.offset(channel: small - 1, y: 3, x: 3)]
          if precision == .fp32 { XCTAssertTrue(centre.isSubnormal && centre < 0, "\(name): \(centre)") }
          else { XCTAssertEqual(centre.bitPattern, (-0.0 as Float).bitPattern, "\(name): \(centre)") }
          Float.convGather(
            g, weight: [Float](repeating: 0x1p64, count: 9 * small * large),
            bias: [Float](repeating: -.greatestFiniteMagnitude, count: small), relu: false, mask: nil, large: huge,
            small: &out, scratch: &scratch)
          let reached = inside(g.small).map { out[$0] }.filter { $0 != -.greatestFiniteMagnitude }
          print("\(name): −0 sum \(centre); outputs reached by 2^64 · 2^64: \(Set(reached))")
          XCTAssertFalse(reached.isEmpty, name)
          XCTAssertTrue(reached.allSatisfy { $0 == 0x1p104 }, "\(name): \(Set(reached))")
        }
      }
    }
  }
}
