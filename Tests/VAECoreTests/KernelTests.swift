import VAECore
import XCTest
import _CKernels

/// The Float kernels (C, `_CKernels`) against the Swift reference loops run in Double, in every
/// variant this CPU can run, and each variant's bits against the others'.
final class KernelTests: XCTestCase {
  override func tearDown() {
    // Back to the default, the widest variant this CPU has.
    KernelVariant.selectDefault()
  }

  func testConvolutionKernelsMatchTheReferenceWithTheSameBitsInEveryVariant() throws {
    for g in KernelCases.windows {
      let reference = KernelCases.passes(g, Double.self)
      var first: (KernelVariant, [[Float]])?
      for variant in KernelVariant.supported {
        try variant.select()
        let got = KernelCases.passes(g, Float.self)
        for (k, name) in KernelCases.names.enumerated() {
          let scale = max(1, reference[k].map(abs).max()!)
          let difference = maxAbsoluteDifference(got[k].map { Double($0) }, reference[k]) / scale
          print("\(variant) \(name) \(KernelCases.describe(g)): max difference / scale \(difference)")
          XCTAssertLessThan(difference, 2e-6, "\(variant) \(name) \(KernelCases.describe(g))")
          if name.contains("ReLU") { XCTAssertTrue(got[k].allSatisfy { $0 >= 0 }) }
        }
        if let (base, expected) = first {
          XCTAssertEqual(got.map { $0.map(\.bitPattern) }, expected.map { $0.map(\.bitPattern) }, "\(variant) vs \(base) \(KernelCases.describe(g))")
        } else {
          first = (variant, got)
        }
      }
    }
  }

  func testDenseKernelsMatchTheReferenceWithTheSameBitsInEveryVariant() throws {
    let reference = KernelCases.dense(Double.self)
    var first: [[Float]]?
    for variant in KernelVariant.supported {
      try variant.select()
      let got = KernelCases.dense(Float.self)
      for (k, name) in KernelCases.denseNames.enumerated() {
        let difference = maxAbsoluteDifference(got[k].map { Double($0) }, reference[k])
        print("\(variant) dense \(name): max difference \(difference)")
        XCTAssertLessThan(difference, 1e-5, "\(variant) \(name)")
      }
      if let first { XCTAssertEqual(got.map { $0.map(\.bitPattern) }, first.map { $0.map(\.bitPattern) }, "\(variant)") }
      first = first ?? got
    }
  }

  /// The portable variant's fused multiply-add (double arithmetic, no FMA instruction) against the
  /// instruction's (Float.addingProduct) on random operands of every exponent, and on sums planted just
  /// off a float midpoint, where rounding to double and then to float errs: at normal results, at
  /// denormal results and at the edge of overflow.
  func testPortableFusedMultiplyAddIsExact() {
    var state: UInt64 = 0x9e37_79b9_7f4a_7c15
    func next() -> UInt32 {
      state ^= state << 13; state ^= state >> 7; state ^= state << 17
      return UInt32(truncatingIfNeeded: state >> 16)
    }
    func sign() -> Float { next() & 1 == 0 ? 1 : -1 }
    var cases: [(String, Float, Float, Float)] = []
    for _ in 0..<100_000 {
      cases.append(("random", Float(bitPattern: next()), Float(bitPattern: next()), Float(bitPattern: next())))
    }
    let specials: [Float] = [0, -0, .infinity, -.infinity, .nan, .leastNonzeroMagnitude, -.leastNormalMagnitude, .greatestFiniteMagnitude, 1]
    for a in specials { for b in specials { for c in specials { cases.append(("special", a, b, c)) } } }
    // a·b = ±2^-24 (1 − 2^-46) · 2^e beside c = ±(1 + k 2^-23) 2^e: the exact sum lies 2^-70 off the
    // midpoint beside c, inside half a double's unit, so the double sum is the midpoint itself.
    let up: Float = 1 + 0x1p-23, down: Float = 1 - 0x1p-23
    for _ in 0..<20_000 {
      let e = Int(next() % 200) - 100, k = Float(next() & 0x7f_ffff)
      cases.append(("normal midpoint", sign() * up * Float(sign: .plus, exponent: e / 2, significand: 1),
                    down * Float(sign: .plus, exponent: e - e / 2 - 24, significand: 1),
                    sign() * (1 + k * 0x1p-23) * Float(sign: .plus, exponent: e, significand: 1)))
    }
    // The same at the denormals' unit: a·b = ±2^-150 (1 − 2^-46), c = ±k 2^-149.
    for _ in 0..<20_000 {
      let j = Int(next() % 40), k = Float(next() & 0x7f_ffff)
      cases.append(("denormal midpoint", sign() * up * Float(sign: .plus, exponent: -75 + j, significand: 1),
                    down * Float(sign: .plus, exponent: -75 - j, significand: 1),
                    sign() * k * .leastNonzeroMagnitude))
    }
    // Float's largest value and the midpoint between it and 2^128.
    for s in [Float(1), -1] {
      cases.append(("overflow midpoint", s * up * 0x1p52, down * 0x1p51, s * .greatestFiniteMagnitude))
    }
    // Each kind in its own calls, so that a vector of one kind never takes the slow path for another's.
    var wrong: [String: Int] = [:], twoRoundingsErr: [String: Int] = [:]
    for kind in Set(cases.map(\.0)).sorted() {
      let these = cases.filter { $0.0 == kind }
      let a = these.map(\.1), b = these.map(\.2), c = these.map(\.3)
      var got = [Float](repeating: 0, count: these.count)
      vdk_portable_fma(a, b, c, &got, these.count)
      for (i, (_, x, y, z)) in these.enumerated() {
        let want = z.addingProduct(x, y)
        if got[i].bitPattern != want.bitPattern && !(got[i].isNaN && want.isNaN) {
          wrong[kind, default: 0] += 1
          if wrong[kind]! <= 3 { print("\(kind): \(x) · \(y) + \(z) gave \(got[i]), the instruction \(want)") }
        }
        let twice = Float(Double(x) * Double(y) + Double(z))
        if twice.bitPattern != want.bitPattern && !(twice.isNaN && want.isNaN) { twoRoundingsErr[kind, default: 0] += 1 }
      }
      print("\(kind): \(these.count) sums, \(wrong[kind] ?? 0) wrong; two plain roundings err in \(twoRoundingsErr[kind] ?? 0)")
      XCTAssertEqual(wrong[kind] ?? 0, 0, kind)
    }
    // The planted sums are traps: rounded twice, many come out wrong.
    for kind in ["normal midpoint", "denormal midpoint"] { XCTAssertGreaterThan(twoRoundingsErr[kind] ?? 0, 1_000, kind) }
    XCTAssertEqual(twoRoundingsErr["overflow midpoint"], 2)
  }

  func testAVariantTheCPULacksIsRefusedByName() {
    for variant in KernelVariant.allCases where !variant.isSupported {
      XCTAssertThrowsError(try variant.select()) { error in
        print("\(variant): \(error)")
        XCTAssertTrue("\(error)".contains("lacks the instructions of the \(variant.rawValue) kernels"))
      }
    }
    XCTAssertTrue(KernelVariant.portable.isSupported)
  }

  /// The elementwise kernels below run in the build that goes with each variant (baseline with
  /// portable, avx2 with avx2 and avx512_on_avx2, avx512 with avx512), so each build this CPU has is
  /// checked.
  func testReLUBackward() throws {
    let y = randomValues(1_000, seed: 74).map { Float($0) }, dy = randomValues(1_000, seed: 75).map { Float($0) }
    KernelVariant.withEachElementwiseBuild {
      var got = dy
      y.withUnsafeBufferPointer { Float.reluBackward(dy: &got, output: $0.baseAddress!, count: y.count) }
      let wrong = (0..<dy.count).filter { got[$0].bitPattern != (y[$0] > 0 ? dy[$0] : 0).bitPattern }
      XCTAssertEqual(wrong, [], "\(kernelInstructionSet())")
    }
  }

  func testLossAndItsGradientInOnePass() throws {
    var first: (build: String, bits: [UInt64])?
    try KernelVariant.withEachElementwiseBuild {
      let bits = try lossAndItsGradientInOnePass()
      if let first {
        XCTAssertEqual(bits, first.bits, "\(kernelInstructionSet()) against \(first.build)")
      } else {
        first = (kernelInstructionSet(), bits)
      }
    }
  }

  /// The loss per image and its gradient against the Double reference; their bits.
  func lossAndItsGradientInOnePass() throws -> [UInt64] {
    let batch = 3, pixels = 784
    // Logits up to ±40 reach the saturated ends of the sigmoid.
    let logits = randomValues(batch * pixels, seed: 76, scale: 40)
    let targets = randomValues(batch * pixels, seed: 77).map { ($0 + 1) / 2 }
    var referencePerImage = [Double](repeating: 0, count: batch)
    let referenceGradient = [Double](repeating: 0, count: batch * pixels).withCopy { d in
      logits.withUnsafeBufferPointer { l in
        targets.withUnsafeBufferPointer { x in
          _ = Double.bceWithLogits(
            logits: l.baseAddress!, targets: x.baseAddress!, dLogits: d, batch: batch, pixels: pixels,
            perImage: &referencePerImage)
        }
      }
    }
    let floatLogits = logits.map { Float($0) }, floatTargets = targets.map { Float($0) }
    var perImage = [Double](repeating: 0, count: batch)
    var gradient = [Float](repeating: .nan, count: batch * pixels)
    let total = Float.bceWithLogits(
      logits: floatLogits, targets: floatTargets, dLogits: &gradient, batch: batch, pixels: pixels, perImage: &perImage)
    let lossError = maxRelativeError(perImage, referencePerImage)
    let gradientDifference = maxAbsoluteDifference(gradient.map { Double($0) }, referenceGradient)
    print("loss (\(kernelInstructionSet())): max relative difference per image \(lossError); gradient: max difference \(gradientDifference)")
    XCTAssertLessThan(lossError, 1e-6)
    XCTAssertLessThan(gradientDifference, 1e-6)
    XCTAssertEqual(total, perImage.reduce(0, +), accuracy: 1e-9 * abs(total))
    // The loss alone (evaluation) gives the same bits as with its gradient.
    var alonePerImage = [Double](repeating: 0, count: batch)
    let alone = floatLogits.withUnsafeBufferPointer { l in
      floatTargets.withUnsafeBufferPointer { x in
        Float.bceWithLogits(
          logits: l.baseAddress!, targets: x.baseAddress!, dLogits: nil, batch: batch, pixels: pixels,
          perImage: &alonePerImage)
      }
    }
    XCTAssertEqual(alone.bitPattern, total.bitPattern)
    XCTAssertEqual(alonePerImage.map(\.bitPattern), perImage.map(\.bitPattern))
    return perImage.map(\.bitPattern) + gradient.map { UInt64($0.bitPattern) }
  }

  /// The loss's own e^−|v| and log(1 + e^−|v|) (no libm) at the ends of their range, against the
  /// Double reference on the same float inputs; NaN stays NaN.
  func testLossAtExtremeLogits() throws {
    KernelVariant.withEachElementwiseBuild {
      lossAtExtremeLogits()
    }
  }

  func lossAtExtremeLogits() {
    let logits: [Float] = [0, 1e-30, -1e-30, 0.5, -3, 17, -17, 87.5, -87.5, 103.9, -103.9, 150, -150, 700, -701, 1e30, -1e30]
    let targets: [Float] = [0.5, 1, 0, 0.25, 1, 0, 1, 1, 0, 0.5, 0.5, 1, 0, 1, 0, 1, 0]
    let n = logits.count
    var perImage = [Double](repeating: 0, count: n), referencePerImage = [Double](repeating: 0, count: n)
    var gradient = [Float](repeating: .nan, count: n)
    _ = Float.bceWithLogits(logits: logits, targets: targets, dLogits: &gradient, batch: n, pixels: 1, perImage: &perImage)
    let doubleLogits = logits.map { Double($0) }, doubleTargets = targets.map { Double($0) }
    _ = bceWithLogitsForward(logits: doubleLogits, targets: doubleTargets, batch: n, pixels: 1, perImage: &referencePerImage)
    for i in 0..<n {
      let referenceGradient = sigmoid(doubleLogits[i]) - doubleTargets[i]
      print("\(kernelInstructionSet()): logit \(logits[i]) target \(targets[i]): loss \(perImage[i]) (Double \(referencePerImage[i])), gradient \(gradient[i]) (Double \(referenceGradient))")
      XCTAssertEqual(perImage[i], referencePerImage[i], accuracy: 1e-13 * max(1, abs(referencePerImage[i])), "logit \(logits[i])")
      XCTAssertEqual(Double(gradient[i]), referenceGradient, accuracy: max(1e-7 * abs(referenceGradient), Double(Float.leastNonzeroMagnitude)), "logit \(logits[i])")
    }
    var nanLoss = [Double](repeating: 0, count: 1)
    var nanGradient: [Float] = [0]
    _ = Float.bceWithLogits(logits: [.nan], targets: [1], dLogits: &nanGradient, batch: 1, pixels: 1, perImage: &nanLoss)
    XCTAssertTrue(nanLoss[0].isNaN && nanGradient[0].isNaN)
  }

  func testInstructionSetAndVariantAreNamed() throws {
    print("elementwise kernels run with \(kernelInstructionSet()); convolutions with \(KernelVariant.active)")
    XCTAssertTrue(KernelVariant.active.isSupported)
    // The C side runs the build the Swift side names for each variant, and the tests above run them all.
    for variant in KernelVariant.supported {
      try variant.select()
      XCTAssertEqual(kernelInstructionSet(), variant.elementwiseBuild, "\(variant)")
    }
    XCTAssertEqual(Set(KernelVariant.elementwiseBuilds.map(\.elementwiseBuild)), Set(KernelVariant.supported.map(\.elementwiseBuild)))
    XCTAssertTrue(KernelVariant.elementwiseBuilds.contains(.portable), "the baseline build runs on every CPU")
  }
}
