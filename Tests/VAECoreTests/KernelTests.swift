import VAECore
import XCTest

/// The Float kernels (C, `_CKernels`) against the Swift reference loops run in Double, in every
/// variant this CPU can run, and each variant's bits against the others'.
final class KernelTests: XCTestCase {
  override func tearDown() {
    // Back to the default, the widest variant this CPU has.
    try? KernelVariant.allCases.first(where: \.isSupported)!.select()
  }

  /// Each of the model's window kinds (28→14 and 14→7 at stride 2, 28→28 at stride 1) with few
  /// channels and 16 or 32 lanes, and two of the model's own windows.
  let windows: [ConvWindow] = {
    func window(_ small: Int, _ large: Int, _ side: Int, _ stride: Int, lanes: Int) -> ConvWindow {
      ConvWindow(
        small: GridShape(channels: small, side: side, lanes: lanes),
        large: GridShape(channels: large, side: side * stride, lanes: lanes), stride: stride)
    }
    let model = Architecture.windows(lanes: 16)
    return [
      window(5, 1, 14, 2, lanes: 16), window(7, 3, 7, 2, lanes: 32), window(3, 1, 28, 1, lanes: 16),
      window(1, 4, 14, 2, lanes: 16), window(13, 6, 7, 2, lanes: 16), model.conv2, model.deconv3,
    ]
  }()

  func describe(_ g: ConvWindow) -> String {
    "small \(g.small.channels)×\(g.small.side) large \(g.large.channels)×\(g.large.side) stride \(g.stride) lanes \(g.small.lanes)"
  }

  /// A bordered grid of random values with a zero border.
  func randomGrid(_ shape: GridShape, seed: UInt64) -> [Double] {
    var grid = [Double](repeating: 0, count: shape.count)
    let values = randomValues(shape.channels * shape.side * shape.side * shape.lanes, seed: seed)
    var k = 0
    for c in 0..<shape.channels {
      for y in 0..<shape.side {
        for x in 0..<shape.side {
          for lane in 0..<shape.lanes {
            grid[shape.offset(channel: c, y: y, x: x) + lane] = values[k]
            k += 1
          }
        }
      }
    }
    return grid
  }

  /// gather, scatter (each with and without bias and ReLU) and the weight gradient of window g, in T.
  func passes<T: VAEScalar>(_ g: ConvWindow, _: T.Type) -> [[T]] {
    let weight = randomValues(g.small.channels * g.large.channels * 9, seed: 81).map { T($0) }
    let smallBias = randomValues(g.small.channels, seed: 82).map { T($0) }
    let largeBias = randomValues(g.large.channels, seed: 83).map { T($0) }
    let large = randomGrid(g.large, seed: 84).map { T($0) }, small = randomGrid(g.small, seed: 85).map { T($0) }
    var scratch = [T](repeating: 0, count: 9 * g.small.channels * g.large.channels)
    var results: [[T]] = []
    for (bias, relu) in [(false, false), (true, true)] {
      var out = [T](repeating: 0, count: g.small.count)
      // The masked (ReLU-backward) form with the bias runs: mask by the small grid's own input values.
      T.convGather(
        g, weight: weight, bias: bias ? smallBias : nil, relu: relu, mask: bias ? small : nil, large: large, small: &out,
        scratch: &scratch)
      results.append(out)
      out = [T](repeating: 0, count: g.large.count)
      T.convScatter(
        g, weight: weight, bias: bias ? largeBias : nil, relu: relu, mask: bias ? large : nil, small: small, large: &out,
        scratch: &scratch)
      results.append(out)
    }
    var dWeight = [T](repeating: .nan, count: weight.count)
    T.convWeightGradient(g, small: small, large: large, dWeight: &dWeight)
    results.append(dWeight)
    var sums = [T](repeating: .nan, count: g.large.channels)
    T.gridSums(large, shape: g.large, into: &sums)
    results.append(sums)
    return results
  }

  func testConvolutionKernelsMatchTheReferenceWithTheSameBitsInEveryVariant() throws {
    let names = ["gather", "scatter", "gather + bias + ReLU + mask", "scatter + bias + ReLU + mask", "weight gradient", "channel sums"]
    for g in windows {
      let reference = passes(g, Double.self)
      var first: (KernelVariant, [[Float]])?
      for variant in KernelVariant.allCases where variant.isSupported {
        // The portable variant (fmaf through libm) is slow: only the small windows.
        if variant == .portable && g.small.channels * g.large.channels > 100 { continue }
        try variant.select()
        let got = passes(g, Float.self)
        for (k, name) in names.enumerated() {
          let scale = max(1, reference[k].map(abs).max()!)
          let difference = maxAbsoluteDifference(got[k].map { Double($0) }, reference[k]) / scale
          print("\(variant) \(name) \(describe(g)): max difference / scale \(difference)")
          XCTAssertLessThan(difference, 2e-6, "\(variant) \(name) \(describe(g))")
          if name.contains("ReLU") { XCTAssertTrue(got[k].allSatisfy { $0 >= 0 }) }
        }
        if let (base, expected) = first {
          XCTAssertEqual(got.map { $0.map(\.bitPattern) }, expected.map { $0.map(\.bitPattern) }, "\(variant) vs \(base) \(describe(g))")
        } else {
          first = (variant, got)
        }
      }
    }
  }

  func testDenseKernelsMatchTheReferenceWithTheSameBitsInEveryVariant() throws {
    let lanes = 32, grid = GridShape(channels: 3, side: 5, lanes: lanes)
    let features = FeatureOffsets(grid: grid), rows = FeatureOffsets(rows: 13, lanes: lanes)
    let weight = randomValues(13 * 75, seed: 91), bias = randomValues(13, seed: 92)
    let x = randomGrid(grid, seed: 93), dy = randomValues(13 * lanes, seed: 94)
    func run<T: VAEScalar>(_: T.Type) -> [[T]] {
      let w = weight.map { T($0) }, b = bias.map { T($0) }, input = x.map { T($0) }, g = dy.map { T($0) }
      var forward = [T](repeating: 0, count: 13 * lanes), back = [T](repeating: 0, count: grid.count)
      T.dense(
        weight: w, outStride: 75, inStride: 1, bias: b, relu: true, mask: nil, accumulate: false, input: input,
        inOffsets: features, output: &forward, outOffsets: rows, lanes: lanes)
      // Backward-data, accumulated onto the forward input (as dHidden gathers its two heads).
      back = input
      T.dense(
        weight: w, outStride: 1, inStride: 75, bias: nil, relu: false, mask: input, accumulate: true, input: g,
        inOffsets: rows, output: &back, outOffsets: features, lanes: lanes)
      var dWeight = [T](repeating: .nan, count: 13 * 75), dBias = [T](repeating: .nan, count: 13)
      T.denseWeightGradient(
        dWeight: &dWeight, outStride: 75, inStride: 1, dBias: &dBias, dy: g, dyOffsets: rows, x: input,
        xOffsets: features, lanes: lanes)
      // The other way round, as the decoder's dense layer: more outputs (a grid's 75) than inputs (13).
      var dWeightWide = [T](repeating: .nan, count: 75 * 13), dBiasWide = [T](repeating: .nan, count: 75)
      T.denseWeightGradient(
        dWeight: &dWeightWide, outStride: 13, inStride: 1, dBias: &dBiasWide, dy: input, dyOffsets: features, x: g,
        xOffsets: rows, lanes: lanes)
      return [forward, back, dWeight, dBias, dWeightWide, dBiasWide]
    }
    let reference = run(Double.self)
    var first: [[Float]]?
    for variant in KernelVariant.allCases where variant.isSupported {
      try variant.select()
      let got = run(Float.self)
      for (k, name) in [
        "forward + ReLU", "backward-data, accumulated, masked", "weight gradient", "bias gradient",
        "weight gradient (more outputs)", "bias gradient (more outputs)",
      ].enumerated() {
        let difference = maxAbsoluteDifference(got[k].map { Double($0) }, reference[k])
        print("\(variant) dense \(name): max difference \(difference)")
        XCTAssertLessThan(difference, 1e-5, "\(variant) \(name)")
      }
      if let first { XCTAssertEqual(got.map { $0.map(\.bitPattern) }, first.map { $0.map(\.bitPattern) }, "\(variant)") }
      first = first ?? got
    }
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

  func testReLUBackward() {
    let y = randomValues(1_000, seed: 74).map { Float($0) }, dy = randomValues(1_000, seed: 75).map { Float($0) }
    var got = dy
    y.withUnsafeBufferPointer { Float.reluBackward(dy: &got, output: $0.baseAddress!, count: y.count) }
    for i in 0..<dy.count { XCTAssertEqual(got[i], y[i] > 0 ? dy[i] : 0) }
  }

  func testLossAndItsGradientInOnePass() {
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
    print("loss: max relative difference per image \(lossError); gradient: max difference \(gradientDifference)")
    XCTAssertLessThan(lossError, 1e-6)
    XCTAssertLessThan(gradientDifference, 1e-6)
    XCTAssertEqual(total, perImage.reduce(0, +), accuracy: 1e-9 * abs(total))
  }

  func testInstructionSetAndVariantAreNamed() {
    print("elementwise kernels run with \(kernelInstructionSet()); convolutions with \(KernelVariant.active)")
    XCTAssertTrue(["x86-64-v4", "x86-64-v3", "baseline"].contains(kernelInstructionSet()))
    XCTAssertTrue(KernelVariant.active.isSupported)
  }
}
