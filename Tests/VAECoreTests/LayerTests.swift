import VAECore
import XCTest

/// Each layer's forward against an independent reference, and its backward against central finite
/// differences of L = Σ r ⊙ y for a fixed random r, all in Double.
final class LayerTests: XCTestCase {
  let tolerance = 1e-6

  func testConv2dForwardMatchesReference() {
    for (cin, cout, side, batch) in [(1, 4, 28, 2), (3, 5, 14, 3)] {
      let x = randomValues(batch * cin * side * side, seed: 1)
      let weight = randomValues(cout * cin * 9, seed: 2)
      let bias = randomValues(cout, seed: 3)
      let (expected, outSide) = referenceConv2d(
        x: x, weight: weight, bias: bias, batch: batch, inChannels: cin, outChannels: cout,
        side: side, stride: 2, pad: 1)
      let g = WindowGeometry(channels: cin, batch: batch, largeSide: side, smallSide: outSide, stride: 2, pad: 1)
      var y = [Double](repeating: 0, count: cout * g.columns)
      var cols = [Double](repeating: 0, count: g.rows * g.columns)
      let xc = toChannelMajor(x, batch: batch, channels: cin, area: side * side)
      conv2dForward(
        x: xc, weight: weight, bias: bias, cols: &cols, y: &y, outChannels: cout, geometry: g)
      let got = fromChannelMajor(y, batch: batch, channels: cout, area: outSide * outSide)
      let error = maxAbsoluteDifference(got, expected)
      print("conv2d forward (\(cin)→\(cout), \(side)px): max |difference| \(error)")
      XCTAssertLessThan(error, 1e-12)
    }
  }

  func testConvTranspose2dForwardMatchesReference() {
    for (cin, cout, side, stride, outputPadding, batch) in [(4, 3, 7, 2, 1, 2), (3, 1, 6, 1, 0, 2)] {
      let x = randomValues(batch * cin * side * side, seed: 4)
      let weight = randomValues(cin * cout * 9, seed: 5)
      let bias = randomValues(cout, seed: 6)
      let (expected, outSide) = referenceConvTranspose2d(
        x: x, weight: weight, bias: bias, batch: batch, inChannels: cin, outChannels: cout,
        side: side, stride: stride, pad: 1, outputPadding: outputPadding)
      let g = WindowGeometry(
        channels: cout, batch: batch, largeSide: outSide, smallSide: side, stride: stride, pad: 1)
      var y = [Double](repeating: 0, count: cout * batch * outSide * outSide)
      var cols = [Double](repeating: 0, count: g.rows * g.columns)
      let xc = toChannelMajor(x, batch: batch, channels: cin, area: side * side)
      convTranspose2dForward(
        x: xc, weight: weight, bias: bias, cols: &cols, y: &y, inChannels: cin, geometry: g)
      let got = fromChannelMajor(y, batch: batch, channels: cout, area: outSide * outSide)
      let error = maxAbsoluteDifference(got, expected)
      print("convTranspose2d forward (\(cin)→\(cout), \(side)→\(outSide)px): max |difference| \(error)")
      XCTAssertLessThan(error, 1e-12)
    }
  }

  func testLinearForwardMatchesReference() {
    let (batch, inF, outF) = (3, 7, 5)
    let x = randomValues(batch * inF, seed: 7), w = randomValues(outF * inF, seed: 8)
    let b = randomValues(outF, seed: 9)
    var y = [Double](repeating: 0, count: batch * outF)
    linearForward(x: x, weight: w, bias: b, y: &y, batch: batch, inFeatures: inF, outFeatures: outF)
    var expected = [Double](repeating: 0, count: batch * outF)
    for n in 0..<batch {
      for o in 0..<outF {
        expected[n * outF + o] = b[o] + (0..<inF).reduce(0.0) { $0 + w[o * inF + $1] * x[n * inF + $1] }
      }
    }
    XCTAssertLessThan(maxAbsoluteDifference(y, expected), 1e-12)
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
    let errors = [
      maxRelativeError(dx, numericX), maxRelativeError(dw, numericW), maxRelativeError(db, numericB),
    ]
    print("\(name) backward vs finite differences: max relative error dx \(errors[0]), dW \(errors[1]), db \(errors[2])")
    for error in errors { XCTAssertLessThan(error, tolerance, name) }
  }

  func testConv2dBackward() {
    let (cin, cout, side, batch) = (2, 3, 6, 2)
    let g = WindowGeometry(channels: cin, batch: batch, largeSide: side, smallSide: 3, stride: 2, pad: 1)
    let outCount = cout * g.columns
    checkGradients(
      name: "conv2d", x: randomValues(cin * batch * side * side, seed: 21),
      weight: randomValues(cout * cin * 9, seed: 22), bias: randomValues(cout, seed: 23),
      outputCount: outCount,
      forward: { x, w, b in
        var y = [Double](repeating: 0, count: outCount)
        var cols = [Double](repeating: 0, count: g.rows * g.columns)
        conv2dForward(x: x, weight: w, bias: b, cols: &cols, y: &y, outChannels: cout, geometry: g)
        return y
      },
      backward: { dy, x, w in
        var cols = [Double](repeating: 0, count: g.rows * g.columns)
        var y = [Double](repeating: 0, count: outCount)
        conv2dForward(x: x, weight: w, bias: [Double](repeating: 0, count: cout), cols: &cols, y: &y, outChannels: cout, geometry: g)
        var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
        var db = [Double](repeating: 0, count: cout), dcols = cols
        conv2dBackward(
          dy: dy, cols: cols, weight: w, dWeight: &dw, dBias: &db, dcols: &dcols, dx: &dx,
          outChannels: cout, geometry: g)
        return (dx, dw, db)
      })
  }

  func testConvTranspose2dBackward() {
    for (stride, small, large) in [(2, 3, 6), (1, 4, 4)] {
      let (cin, cout, batch) = (3, 2, 2)
      let g = WindowGeometry(channels: cout, batch: batch, largeSide: large, smallSide: small, stride: stride, pad: 1)
      let outCount = cout * batch * large * large
      checkGradients(
        name: "convTranspose2d(stride \(stride))", x: randomValues(cin * g.columns, seed: 31),
        weight: randomValues(cin * cout * 9, seed: 32), bias: randomValues(cout, seed: 33),
        outputCount: outCount,
        forward: { x, w, b in
          var y = [Double](repeating: 0, count: outCount)
          var cols = [Double](repeating: 0, count: g.rows * g.columns)
          convTranspose2dForward(x: x, weight: w, bias: b, cols: &cols, y: &y, inChannels: cin, geometry: g)
          return y
        },
        backward: { dy, x, w in
          var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
          var db = [Double](repeating: 0, count: cout)
          var dcols = [Double](repeating: 0, count: g.rows * g.columns)
          convTranspose2dBackward(
            dy: dy, x: x, weight: w, dWeight: &dw, dBias: &db, dcols: &dcols, dx: &dx,
            inChannels: cin, geometry: g)
          return (dx, dw, db)
        })
    }
  }

  func testLinearBackward() {
    let (batch, inF, outF) = (3, 5, 4)
    checkGradients(
      name: "linear", x: randomValues(batch * inF, seed: 41), weight: randomValues(outF * inF, seed: 42),
      bias: randomValues(outF, seed: 43), outputCount: batch * outF,
      forward: { x, w, b in
        var y = [Double](repeating: 0, count: batch * outF)
        linearForward(x: x, weight: w, bias: b, y: &y, batch: batch, inFeatures: inF, outFeatures: outF)
        return y
      },
      backward: { dy, x, w in
        var dx = [Double](repeating: 0, count: x.count), dw = [Double](repeating: 0, count: w.count)
        var db = [Double](repeating: 0, count: outF)
        linearBackward(
          dy: dy, x: x, weight: w, dWeight: &dw, dBias: &db, dx: &dx,
          batch: batch, inFeatures: inF, outFeatures: outF)
        return (dx, dw, db)
      })
  }
}
