import VAECore
import XCTest

/// The reference layers (Grid.swift, Dense.swift, in Double) against independent definitions on NCHW
/// tensors (Support.swift), and their backward passes against central finite differences of
/// L = Σ r ⊙ y for a fixed random r.
final class LayerTests: XCTestCase {
  let tolerance = 1e-6

  func window(small: Int, large: Int, side: Int, stride: Int) -> ConvWindow {
    ConvWindow(
      small: GridShape(channels: small, side: side, lanes: 16),
      large: GridShape(channels: large, side: side * stride, lanes: 16), stride: stride)
  }

  /// Conv2d(Cin → Cout): the gather from the large grid (Cin) into the small one (Cout).
  func conv2d(_ g: ConvWindow, x: [Double], w: [Double], b: [Double], batch: Int) -> [Double] {
    var y = [Double](repeating: 0, count: g.small.count)
    referenceGather(g, weight: w, bias: b, relu: false, large: toGrid(x, batch: batch, shape: g.large), small: &y)
    return fromGrid(y, batch: batch, shape: g.small)
  }

  /// ConvTranspose2d(Cin → Cout): the scatter from the small grid (Cin) into the large one (Cout).
  func convTranspose2d(_ g: ConvWindow, x: [Double], w: [Double], b: [Double], batch: Int) -> [Double] {
    var y = [Double](repeating: 0, count: g.large.count)
    referenceScatter(g, weight: w, bias: b, relu: false, small: toGrid(x, batch: batch, shape: g.small), large: &y)
    return fromGrid(y, batch: batch, shape: g.large)
  }

  func testConv2dForwardMatchesTheDefinition() {
    for (cin, cout, side, stride, batch) in [(1, 4, 28, 2, 2), (3, 5, 14, 2, 3), (2, 3, 6, 1, 2)] {
      let x = randomValues(batch * cin * side * side, seed: 1)
      let weight = randomValues(cout * cin * 9, seed: 2), bias = randomValues(cout, seed: 3)
      let (expected, outSide) = referenceConv2d(
        x: x, weight: weight, bias: bias, batch: batch, inChannels: cin, outChannels: cout, side: side, stride: stride, pad: 1)
      let g = window(small: cout, large: cin, side: outSide, stride: stride)
      let error = maxAbsoluteDifference(conv2d(g, x: x, w: weight, b: bias, batch: batch), expected)
      print("conv2d forward (\(cin)→\(cout), \(side)px, stride \(stride)): max |difference| \(error)")
      XCTAssertLessThan(error, 1e-12)
    }
  }

  func testConvTranspose2dForwardMatchesTheDefinition() {
    for (cin, cout, side, stride, outputPadding, batch) in [(4, 3, 7, 2, 1, 2), (3, 1, 6, 1, 0, 2)] {
      let x = randomValues(batch * cin * side * side, seed: 4)
      let weight = randomValues(cin * cout * 9, seed: 5), bias = randomValues(cout, seed: 6)
      let (expected, _) = referenceConvTranspose2d(
        x: x, weight: weight, bias: bias, batch: batch, inChannels: cin, outChannels: cout, side: side, stride: stride,
        pad: 1, outputPadding: outputPadding)
      let g = window(small: cin, large: cout, side: side, stride: stride)
      let error = maxAbsoluteDifference(convTranspose2d(g, x: x, w: weight, b: bias, batch: batch), expected)
      print("convTranspose2d forward (\(cin)→\(cout), \(side)px, stride \(stride)): max |difference| \(error)")
      XCTAssertLessThan(error, 1e-12)
    }
  }

  /// Checks analytic gradients of L = Σ r ⊙ layer(x, W, b) with respect to x, W and b.
  func checkGradients(
    name: String, x: [Double], weight: [Double], bias: [Double], outputCount: Int,
    forward: ([Double], [Double], [Double]) -> [Double],
    backward: (_ dy: [Double], _ x: [Double], _ w: [Double]) -> (dx: [Double], dw: [Double], db: [Double])
  ) {
    let r = randomValues(outputCount, seed: 11)
    func loss(_ x: [Double], _ w: [Double], _ b: [Double]) -> Double {
      zip(forward(x, w, b), r).reduce(0) { $0 + $1.0 * $1.1 }
    }
    let (dx, dw, db) = backward(r, x, weight)
    var xs = x, ws = weight, bs = bias
    let numericX = (0..<x.count).map { i in centralDifference(&xs, i) { loss($0, weight, bias) } }
    let numericW = (0..<weight.count).map { i in centralDifference(&ws, i) { loss(x, $0, bias) } }
    let numericB = (0..<bias.count).map { i in centralDifference(&bs, i) { loss(x, weight, $0) } }
    let errors = [maxRelativeError(dx, numericX), maxRelativeError(dw, numericW), maxRelativeError(db, numericB)]
    print("\(name) backward vs finite differences: max relative error dx \(errors[0]), dW \(errors[1]), db \(errors[2])")
    for error in errors { XCTAssertLessThan(error, tolerance, name) }
  }

  /// Conv2d's backward: dW from the weight gradient (small = dy, large = x), dx from the scatter.
  func testConv2dBackward() {
    for (stride, side) in [(2, 3), (1, 4)] {
      let (cin, cout, batch) = (2, 3, 2)
      let g = window(small: cout, large: cin, side: side, stride: stride)
      checkGradients(
        name: "conv2d (stride \(stride))", x: randomValues(batch * cin * g.large.side * g.large.side, seed: 21),
        weight: randomValues(cout * cin * 9, seed: 22), bias: randomValues(cout, seed: 23),
        outputCount: batch * cout * side * side,
        forward: { x, w, b in self.conv2d(g, x: x, w: w, b: b, batch: batch) },
        backward: { dy, x, w in
          let dyGrid = toGrid(dy, batch: batch, shape: g.small), xGrid = toGrid(x, batch: batch, shape: g.large)
          var dw = [Double](repeating: 0, count: w.count), db = [Double](repeating: 0, count: cout)
          var dx = [Double](repeating: 0, count: g.large.count)
          referenceWeightGradient(g, small: dyGrid, large: xGrid, dWeight: &dw)
          referenceGridSums(dyGrid, shape: g.small, into: &db)
          referenceScatter(g, weight: w, bias: nil, relu: false, small: dyGrid, large: &dx)
          return (fromGrid(dx, batch: batch, shape: g.large), dw, db)
        })
    }
  }

  /// ConvTranspose2d's backward: dW from the weight gradient (small = x, large = dy), dx from the gather.
  func testConvTranspose2dBackward() {
    for (stride, side) in [(2, 3), (1, 4)] {
      let (cin, cout, batch) = (3, 2, 2)
      let g = window(small: cin, large: cout, side: side, stride: stride)
      checkGradients(
        name: "convTranspose2d (stride \(stride))", x: randomValues(batch * cin * side * side, seed: 31),
        weight: randomValues(cin * cout * 9, seed: 32), bias: randomValues(cout, seed: 33),
        outputCount: batch * cout * g.large.side * g.large.side,
        forward: { x, w, b in self.convTranspose2d(g, x: x, w: w, b: b, batch: batch) },
        backward: { dy, x, w in
          let dyGrid = toGrid(dy, batch: batch, shape: g.large), xGrid = toGrid(x, batch: batch, shape: g.small)
          var dw = [Double](repeating: 0, count: w.count), db = [Double](repeating: 0, count: cout)
          var dx = [Double](repeating: 0, count: g.small.count)
          referenceWeightGradient(g, small: xGrid, large: dyGrid, dWeight: &dw)
          referenceGridSums(dyGrid, shape: g.large, into: &db)
          referenceGather(g, weight: w, bias: nil, relu: false, large: dyGrid, small: &dx)
          return (fromGrid(dx, batch: batch, shape: g.small), dw, db)
        })
    }
  }

  /// Linear(in → out) on lane-major rows: forward, and its backward (the same weight read transposed).
  func testLinearForwardAndBackward() {
    let (batch, inF, outF, lanes) = (3, 5, 4, 16)
    let inputs = FeatureOffsets(rows: inF, lanes: lanes), outputs = FeatureOffsets(rows: outF, lanes: lanes)
    func lanesOf(_ rows: [Double], _ features: Int) -> [Double] {
      var out = [Double](repeating: 0, count: features * lanes)
      for n in 0..<batch { for f in 0..<features { out[f * lanes + n] = rows[n * features + f] } }
      return out
    }
    func rowsOf(_ l: [Double], _ features: Int) -> [Double] {
      (0..<batch * features).map { l[($0 % features) * lanes + $0 / features] }
    }
    let x = randomValues(batch * inF, seed: 7), w = randomValues(outF * inF, seed: 8), b = randomValues(outF, seed: 9)
    func forward(_ x: [Double], _ w: [Double], _ b: [Double]) -> [Double] {
      var y = [Double](repeating: 0, count: outF * lanes)
      referenceDense(
        weight: w, outStride: inF, inStride: 1, bias: b, relu: false, accumulate: false, input: lanesOf(x, inF),
        inOffsets: inputs, output: &y, outOffsets: outputs, lanes: lanes)
      return rowsOf(y, outF)
    }
    let expected = (0..<batch * outF).map { k in
      let (n, o) = (k / outF, k % outF)
      return b[o] + (0..<inF).reduce(0.0) { $0 + w[o * inF + $1] * x[n * inF + $1] }
    }
    XCTAssertLessThan(maxAbsoluteDifference(forward(x, w, b), expected), 1e-12)
    checkGradients(
      name: "linear", x: x, weight: w, bias: b, outputCount: batch * outF, forward: forward,
      backward: { dy, x, w in
        var dx = [Double](repeating: 0, count: inF * lanes), dw = [Double](repeating: 0, count: w.count)
        var db = [Double](repeating: 0, count: outF)
        let dyLanes = lanesOf(dy, outF)
        referenceDenseWeightGradient(
          dWeight: &dw, outStride: inF, inStride: 1, dBias: &db, dy: dyLanes, dyOffsets: outputs, x: lanesOf(x, inF),
          xOffsets: inputs, lanes: lanes)
        referenceDense(
          weight: w, outStride: 1, inStride: inF, bias: nil, relu: false, accumulate: false, input: dyLanes,
          inOffsets: outputs, output: &dx, outOffsets: inputs, lanes: lanes)
        return (rowsOf(dx, inF), dw, db)
      })
  }
}
