/// Activations and scratch for one micro-batch of up to `capacity` images, owned by one worker
/// thread and reused every step: the training step allocates nothing.
///
/// What callers fill and read is row-major, one row per image: `input`, `noise`, `mean`, `logVar`,
/// `z`, `logits`. Inside, activations are lane-major: a convolution's are bordered grids
/// [C, side+2, side+2, lanes] (GridShape), a dense layer's [F, lanes], with `lanes` the capacity
/// rounded up to 16; lanes past the micro-batch hold zero images.
///
/// Unchecked Sendable: only immutable references to buffers; each worker thread computes in a
/// workspace of its own (MicroBatchLoop gives worker w workspace w), so none is written by two threads.
public final class VAEWorkspace<T: VAEScalar>: @unchecked Sendable {
  public let capacity: Int
  public let latentDim: Int
  public let lanes: Int
  typealias A = Architecture

  // Shapes of the grids, and where dense layers find their features.
  public let imageGrid, conv1Grid, conv2Grid, deconv1Grid, deconv2Grid: GridShape
  public let imageFeatures, conv2Features, hiddenFeatures, latentFeatures: FeatureOffsets
  /// The window of each convolution: conv1, conv2 (encoder) and the three transposed ones (decoder).
  public let window: (conv1: ConvWindow, conv2: ConvWindow, deconv1: ConvWindow, deconv2: ConvWindow, deconv3: ConvWindow)

  // Rows, one per image: filled or read by callers.
  public let input: ScalarBuffer<T>  // [N, 784]
  public let noise: ScalarBuffer<T>  // [N, d], ε ~ N(0, I)
  public let mean, logVar, z: ScalarBuffer<T>  // [N, d]
  public let logits: ScalarBuffer<T>  // [N, 784], before the sigmoid
  public let dLogits: ScalarBuffer<T>  // [N, 784]
  public let dz, dMean, dLogVar: ScalarBuffer<T>  // [N, d]

  // Forward, lane-major.
  public let inputGrid: ScalarBuffer<T>  // imageGrid [1, 28]
  public let conv1Out: ScalarBuffer<T>  // conv1Grid [32, 14], after ReLU
  public let conv2Out: ScalarBuffer<T>  // conv2Grid [64, 7], after ReLU
  public let hidden: ScalarBuffer<T>  // [16, lanes], after ReLU
  public let meanLanes, logVarLanes, zLanes: ScalarBuffer<T>  // [d, lanes]
  public let decoderGrid: ScalarBuffer<T>  // conv2Grid [64, 7], after ReLU
  public let deconv1Out: ScalarBuffer<T>  // deconv1Grid [64, 14], after ReLU
  public let deconv2Out: ScalarBuffer<T>  // deconv2Grid [32, 28], after ReLU
  public let logitsGrid: ScalarBuffer<T>  // imageGrid [1, 28]
  // Backward, lane-major.
  public let dLogitsGrid: ScalarBuffer<T>  // imageGrid
  public let dDeconv2Out: ScalarBuffer<T>  // deconv2Grid
  public let dDeconv1Out: ScalarBuffer<T>  // deconv1Grid
  public let dDecoderGrid: ScalarBuffer<T>  // conv2Grid
  public let dzLanes, dMeanLanes, dLogVarLanes: ScalarBuffer<T>  // [d, lanes]
  public let dHidden: ScalarBuffer<T>  // [16, lanes]
  public let dConv2Out: ScalarBuffer<T>  // conv2Grid
  public let dConv1Out: ScalarBuffer<T>  // conv1Grid
  /// The convolution kernels' packed weights: 9 · 64 · 64.
  public let scratch: ScalarBuffer<T>
  // Per-image loss parts of the last forward pass
  public let reconstructionPerImage: UnsafeMutablePointer<Double>
  public let klPerImage: UnsafeMutablePointer<Double>

  public init(capacity: Int, latentDim: Int) {
    precondition(capacity >= 1)
    self.capacity = capacity
    self.latentDim = latentDim
    let n = capacity, d = latentDim, l = (capacity + 15) / 16 * 16
    lanes = l
    (imageGrid, conv1Grid, conv2Grid, deconv1Grid, deconv2Grid) = A.grids(lanes: l)
    window = A.windows(lanes: l)
    imageFeatures = FeatureOffsets(grid: imageGrid)
    conv2Features = FeatureOffsets(grid: conv2Grid)
    hiddenFeatures = FeatureOffsets(rows: A.hiddenUnits, lanes: l)
    latentFeatures = FeatureOffsets(rows: d, lanes: l)

    input = ScalarBuffer(count: n * A.pixels)
    noise = ScalarBuffer(count: n * d)
    mean = ScalarBuffer(count: n * d)
    logVar = ScalarBuffer(count: n * d)
    z = ScalarBuffer(count: n * d)
    logits = ScalarBuffer(count: n * A.pixels)
    dLogits = ScalarBuffer(count: n * A.pixels)
    dz = ScalarBuffer(count: n * d)
    dMean = ScalarBuffer(count: n * d)
    dLogVar = ScalarBuffer(count: n * d)

    inputGrid = ScalarBuffer(count: imageGrid.count)
    conv1Out = ScalarBuffer(count: conv1Grid.count)
    conv2Out = ScalarBuffer(count: conv2Grid.count)
    hidden = ScalarBuffer(count: A.hiddenUnits * l)
    meanLanes = ScalarBuffer(count: d * l)
    logVarLanes = ScalarBuffer(count: d * l)
    zLanes = ScalarBuffer(count: d * l)
    decoderGrid = ScalarBuffer(count: conv2Grid.count)
    deconv1Out = ScalarBuffer(count: deconv1Grid.count)
    deconv2Out = ScalarBuffer(count: deconv2Grid.count)
    logitsGrid = ScalarBuffer(count: imageGrid.count)
    dLogitsGrid = ScalarBuffer(count: imageGrid.count)
    dDeconv2Out = ScalarBuffer(count: deconv2Grid.count)
    dDeconv1Out = ScalarBuffer(count: deconv1Grid.count)
    dDecoderGrid = ScalarBuffer(count: conv2Grid.count)
    dzLanes = ScalarBuffer(count: d * l)
    dMeanLanes = ScalarBuffer(count: d * l)
    dLogVarLanes = ScalarBuffer(count: d * l)
    dHidden = ScalarBuffer(count: A.hiddenUnits * l)
    dConv2Out = ScalarBuffer(count: conv2Grid.count)
    dConv1Out = ScalarBuffer(count: conv1Grid.count)
    scratch = ScalarBuffer(count: 9 * A.conv2Channels * A.conv2Channels)
    reconstructionPerImage = .allocate(capacity: n)
    reconstructionPerImage.initialize(repeating: 0, count: n)
    klPerImage = .allocate(capacity: n)
    klPerImage.initialize(repeating: 0, count: n)
  }

  /// The bytes `init(capacity:latentDim:)` allocates, computed without allocating them: what the
  /// memory check counts for each worker thread (a test holds it to the buffers' own counts).
  public static func bytes(capacity n: Int, latentDim d: Int) -> Int {
    let l = (n + 15) / 16 * 16, g = A.grids(lanes: l)
    let rows = 3 * n * A.pixels + 7 * n * d  // input, logits, dLogits; noise, mean, logVar, z, dz, dMean, dLogVar
    let grids = 3 * g.image.count + 2 * g.conv1.count + 4 * g.conv2.count + 2 * g.deconv1.count + 2 * g.deconv2.count
    let lanesRows = 2 * A.hiddenUnits * l + 6 * d * l  // hidden, dHidden; the six [d, lanes]
    let scalars = rows + grids + lanesRows + 9 * A.conv2Channels * A.conv2Channels
    return scalars * MemoryLayout<T>.stride + 2 * n * MemoryLayout<Double>.stride
  }

  deinit {
    reconstructionPerImage.deallocate()
    klPerImage.deallocate()
  }

  /// Hidden unit u of image i (after the ReLU).
  @inlinable public func hiddenUnit(_ u: Int, image i: Int) -> T { hidden.pointer[u * lanes + i] }
}

extension Architecture {
  /// The grids between the layers: the image (and the logits), conv1's and conv2's outputs (conv2's
  /// shape is also the decoder's first grid), convT1's and convT2's outputs.
  public static func grids(lanes l: Int) -> (image: GridShape, conv1: GridShape, conv2: GridShape, deconv1: GridShape, deconv2: GridShape) {
    (
      GridShape(channels: 1, side: imageSide, lanes: l), GridShape(channels: conv1Channels, side: side1, lanes: l),
      GridShape(channels: conv2Channels, side: side2, lanes: l), GridShape(channels: conv2Channels, side: side1, lanes: l),
      GridShape(channels: conv1Channels, side: imageSide, lanes: l)
    )
  }

  /// The five windows, conv1, conv2, convT1, convT2, convT3, as the workspace's.
  public static func windows(lanes l: Int) -> (conv1: ConvWindow, conv2: ConvWindow, deconv1: ConvWindow, deconv2: ConvWindow, deconv3: ConvWindow) {
    let g = grids(lanes: l)
    return (
      ConvWindow(small: g.conv1, large: g.image, stride: 2), ConvWindow(small: g.conv2, large: g.conv1, stride: 2),
      ConvWindow(small: g.conv2, large: g.deconv1, stride: 2), ConvWindow(small: g.deconv1, large: g.deconv2, stride: 2),
      ConvWindow(small: g.deconv2, large: g.image, stride: 1)
    )
  }
}

extension RandomAccessCollection where Index == Int {
  /// Consecutive slices of `size` elements, the last one shorter if need be: the micro-batches of a
  /// pass over images (or latent points) in order.
  public func microBatches(of size: Int) -> [SubSequence] {
    precondition(size >= 1)
    return stride(from: startIndex, to: endIndex, by: size).map { self[$0..<Swift.min(endIndex, $0 + size)] }
  }
}
