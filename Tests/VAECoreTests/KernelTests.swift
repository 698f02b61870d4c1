import VAECore
import XCTest

/// The Float kernels (SIMD C, `_CKernels`) against the Swift reference loops run in Double, on every
/// window shape the model uses and on others (odd sizes, no padding, small grids).
final class KernelTests: XCTestCase {
  /// The model's three shapes (28→14 and 14→7 at stride 2, 28→28 at stride 1; channels and batch
  /// reduced), then odd sizes, no padding and a small stride-1 grid.
  let geometries: [WindowGeometry] = [
    WindowGeometry(channels: 1, batch: 3, largeSide: 28, smallSide: 14, stride: 2, pad: 1),
    WindowGeometry(channels: 5, batch: 2, largeSide: 14, smallSide: 7, stride: 2, pad: 1),
    WindowGeometry(channels: 4, batch: 2, largeSide: 28, smallSide: 28, stride: 1, pad: 1),
    WindowGeometry(channels: 3, batch: 2, largeSide: 13, smallSide: 7, stride: 2, pad: 1),
    WindowGeometry(channels: 2, batch: 3, largeSide: 9, smallSide: 4, stride: 2, pad: 0),
    WindowGeometry(channels: 2, batch: 1, largeSide: 6, smallSide: 6, stride: 1, pad: 1),
  ]

  func describe(_ g: WindowGeometry) -> String {
    "C \(g.channels) N \(g.batch) L \(g.largeSide) S \(g.smallSide) stride \(g.stride) pad \(g.pad)"
  }

  func testIm2colIsExactlyTheReference() {
    for g in geometries {
      let image = randomValues(g.channels * g.batch * g.largeSide * g.largeSide, seed: 71)
      let reference = [Double](repeating: .nan, count: g.rows * g.columns).withCopy { cols in
        image.withUnsafeBufferPointer { im2col(image: $0.baseAddress!, cols: cols, geometry: g) }
      }
      var got = [Float](repeating: .nan, count: g.rows * g.columns)
      let floats = image.map { Float($0) }
      got.withUnsafeMutableBufferPointer { cols in
        floats.withUnsafeBufferPointer { Float.im2col(image: $0.baseAddress!, cols: cols.baseAddress!, geometry: g) }
      }
      let difference = maxAbsoluteDifference(got.map { Double($0) }, reference.map { Double(Float($0)) })
      print("im2col \(describe(g)): max difference \(difference)")
      XCTAssertEqual(difference, 0, describe(g))
    }
  }

  func testCol2imWithBiasAndReLUMatchesTheReference() {
    for g in geometries {
      for (useBias, relu) in [(false, false), (true, true), (true, false)] {
        let cols = randomValues(g.rows * g.columns, seed: 72)
        let bias = randomValues(g.channels, seed: 73)
        let pixels = g.channels * g.batch * g.largeSide * g.largeSide
        let reference = [Double](repeating: .nan, count: pixels).withCopy { image in
          cols.withUnsafeBufferPointer { c in
            bias.withUnsafeBufferPointer { b in
              Double.col2im(
                cols: c.baseAddress!, image: image, bias: useBias ? b.baseAddress! : nil, relu: relu, geometry: g)
            }
          }
        }
        var got = [Float](repeating: .nan, count: pixels)
        let floatCols = cols.map { Float($0) }, floatBias = bias.map { Float($0) }
        got.withUnsafeMutableBufferPointer { image in
          floatCols.withUnsafeBufferPointer { c in
            floatBias.withUnsafeBufferPointer { b in
              Float.col2im(
                cols: c.baseAddress!, image: image.baseAddress!, bias: useBias ? b.baseAddress! : nil, relu: relu,
                geometry: g)
            }
          }
        }
        let difference = maxAbsoluteDifference(got.map { Double($0) }, reference)
        print("col2im \(describe(g)) bias \(useBias) relu \(relu): max difference \(difference)")
        XCTAssertLessThan(difference, 5e-6, describe(g))
        if relu { XCTAssertTrue(got.allSatisfy { $0 >= 0 }) }
      }
    }
  }

  func testBiasReLUChannelSumsAndReLUBackward() {
    let channels = 5, columns = 1_000
    let y = randomValues(channels * columns, seed: 74), bias = randomValues(channels, seed: 75)
    let floatY = y.map { Float($0) }, floatBias = bias.map { Float($0) }
    for relu in [false, true] {
      let reference = y.withCopy { out in
        bias.withUnsafeBufferPointer { Double.addBias(out, bias: $0.baseAddress!, relu: relu, channels: channels, columns: columns) }
      }
      var got = floatY
      got.withUnsafeMutableBufferPointer { out in
        floatBias.withUnsafeBufferPointer {
          Float.addBias(out.baseAddress!, bias: $0.baseAddress!, relu: relu, channels: channels, columns: columns)
        }
      }
      let difference = maxAbsoluteDifference(got.map { Double($0) }, reference)
      print("bias + relu \(relu): max difference \(difference)")
      XCTAssertLessThan(difference, 1e-6)
    }

    let referenceSums = (0..<channels).map { c in (0..<columns).reduce(0.0) { $0 + y[c * columns + $1] } }
    var sums = [Float](repeating: .nan, count: channels)
    floatY.withUnsafeBufferPointer { Float.channelSums($0.baseAddress!, into: &sums, channels: channels, columns: columns) }
    let sumDifference = maxAbsoluteDifference(sums.map { Double($0) }, referenceSums)
    print("channel sums over \(columns): max difference \(sumDifference)")
    XCTAssertLessThan(sumDifference, 1e-4)

    var dy = floatBias + floatY
    let output = floatY + floatBias
    output.withUnsafeBufferPointer { Float.reluBackward(dy: &dy, output: $0.baseAddress!, count: output.count) }
    for i in 0..<dy.count {
      XCTAssertEqual(dy[i], output[i] > 0 ? (floatBias + floatY)[i] : 0)
    }
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

  func testInstructionSetIsNamed() {
    let name = kernelInstructionSet()
    print("kernels run with \(name)")
    XCTAssertTrue(["x86-64-v4", "x86-64-v3", "baseline"].contains(name))
  }
}
