import VAECore

/// The kernel tests' cases: windows and dense shapes with random data, each pass run in a scalar
/// type. `operand` maps every operand of a product (weights, activations, gradients) before the
/// pass, and nothing else (biases, masks, the summed grid): the identity for fp32, rounding to bf16
/// for the bf16 reference.
enum KernelCases {
  /// Each of the model's window kinds (28→14 and 14→7 at stride 2, 28→28 at stride 1) with few
  /// channels and 16 or 32 lanes, stride-1 windows with enough rows for the panel kernel (whose
  /// border positions skip their outside taps, 9 classes of them; 7 · 9 = 63 and 5 · 9 = 45 rows, odd,
  /// so the bf16 pair kernels pad a chain and cut 63 rows into chunks of 32 and 31), and two of the
  /// model's own windows.
  static let windows: [ConvWindow] = {
    func window(_ small: Int, _ large: Int, _ side: Int, _ stride: Int, lanes: Int) -> ConvWindow {
      ConvWindow(
        small: GridShape(channels: small, side: side, lanes: lanes),
        large: GridShape(channels: large, side: side * stride, lanes: lanes), stride: stride)
    }
    let model = Architecture.windows(lanes: 16)
    return [
      window(5, 1, 14, 2, lanes: 16), window(7, 3, 7, 2, lanes: 32), window(3, 1, 28, 1, lanes: 16),
      window(1, 4, 14, 2, lanes: 16), window(13, 6, 7, 2, lanes: 16), window(4, 6, 7, 1, lanes: 16), window(5, 7, 7, 1, lanes: 16), model.conv2,
      model.deconv3,
    ]
  }()

  static func describe(_ g: ConvWindow) -> String {
    "small \(g.small.channels)×\(g.small.side) large \(g.large.channels)×\(g.large.side) stride \(g.stride) lanes \(g.small.lanes)"
  }

  /// A bordered grid of random values with a zero border.
  static func randomGrid(_ shape: GridShape, seed: UInt64) -> [Double] {
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

  static let names = ["gather", "scatter", "gather + bias + ReLU + mask", "scatter + bias + ReLU + mask", "weight gradient", "channel sums"]

  /// gather, scatter (each with and without bias and ReLU) and the weight gradient of window g, and
  /// the large grid's channel sums, in T.
  static func passes<T: VAEScalar>(_ g: ConvWindow, _: T.Type, operand: (Double) -> Double = { $0 }) -> [[T]] {
    let weight = randomValues(g.small.channels * g.large.channels * 9, seed: 81).map { T(operand($0)) }
    let smallBias = randomValues(g.small.channels, seed: 82).map { T($0) }
    let largeBias = randomValues(g.large.channels, seed: 83).map { T($0) }
    let largeValues = randomGrid(g.large, seed: 84), smallValues = randomGrid(g.small, seed: 85)
    let large = largeValues.map { T(operand($0)) }, small = smallValues.map { T(operand($0)) }
    var scratch = [T](repeating: 0, count: 9 * g.small.channels * g.large.channels)
    var results: [[T]] = []
    for (bias, relu) in [(false, false), (true, true)] {
      var out = [T](repeating: 0, count: g.small.count)
      // The masked (ReLU-backward) form with the bias runs: mask by the small grid's own input values.
      let smallMask = smallValues.map { T($0) }, largeMask = largeValues.map { T($0) }
      T.convGather(
        g, weight: weight, bias: bias ? smallBias : nil, relu: relu, mask: bias ? smallMask : nil, large: large,
        small: &out, scratch: &scratch)
      results.append(out)
      out = [T](repeating: 0, count: g.large.count)
      T.convScatter(
        g, weight: weight, bias: bias ? largeBias : nil, relu: relu, mask: bias ? largeMask : nil, small: small,
        large: &out, scratch: &scratch)
      results.append(out)
    }
    var dWeight = [T](repeating: .nan, count: weight.count)
    T.convWeightGradient(g, small: small, large: large, dWeight: &dWeight)
    results.append(dWeight)
    var sums = [T](repeating: .nan, count: g.large.channels)
    T.gridSums(largeValues.map { T($0) }, shape: g.large, into: &sums)
    results.append(sums)
    return results
  }

  static let denseNames = [32, 16].flatMap { lanes in
    [
      "forward + ReLU", "backward-data, accumulated, masked", "weight gradient", "bias gradient",
      "weight gradient (more outputs)", "bias gradient (more outputs)",
    ].map { "\($0), \(lanes) lanes" }
  }

  /// A dense layer's passes, both ways round, in T: with two lane blocks, then one (the weight
  /// gradient's own path for a micro-batch of at most 16).
  static func dense<T: VAEScalar>(_: T.Type, operand: (Double) -> Double = { $0 }) -> [[T]] {
    dense(T.self, lanes: 32, operand: operand) + dense(T.self, lanes: 16, operand: operand)
  }

  static func dense<T: VAEScalar>(_: T.Type, lanes: Int, operand: (Double) -> Double) -> [[T]] {
    let grid = GridShape(channels: 3, side: 5, lanes: lanes)
    let features = FeatureOffsets(grid: grid), rows = FeatureOffsets(rows: 13, lanes: lanes)
    let weight = randomValues(13 * 75, seed: 91), bias = randomValues(13, seed: 92)
    let x = randomGrid(grid, seed: 93), dy = randomValues(13 * lanes, seed: 94)
    let w = weight.map { T(operand($0)) }, b = bias.map { T($0) }, input = x.map { T(operand($0)) }
    let g = dy.map { T(operand($0)) }, rawInput = x.map { T($0) }
    var forward = [T](repeating: 0, count: 13 * lanes), back = [T](repeating: 0, count: grid.count)
    T.dense(
      weight: w, outStride: 75, inStride: 1, bias: b, relu: true, mask: nil, accumulate: false, input: input,
      inOffsets: features, output: &forward, outOffsets: rows, lanes: lanes)
    // Backward-data, accumulated onto the forward input (as dHidden gathers its two heads).
    back = rawInput
    T.dense(
      weight: w, outStride: 1, inStride: 75, bias: nil, relu: false, mask: rawInput, accumulate: true, input: g,
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
}
