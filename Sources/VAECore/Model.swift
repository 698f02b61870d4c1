/// Activations and scratch for one micro-batch of up to `capacity` images, owned by one worker
/// thread and reused every step: the training step allocates nothing.
///
/// Convolutional activations are [C, H·W·N] (image index innermost, see Window.swift); dense ones and
/// the images and logits the caller sees are [N, F].
///
/// Unchecked Sendable: only immutable references to ScalarBuffers; each worker thread computes in a
/// workspace of its own (MicroBatchLoop gives worker w workspace w), so none is written by two threads.
public final class VAEWorkspace<T: VAEScalar>: @unchecked Sendable {
  public let capacity: Int
  public let latentDim: Int
  typealias A = Architecture

  // Forward: encoder
  public let input: ScalarBuffer<T>  // [N, 784]
  public let inputGrid: ScalarBuffer<T>  // [1, 784·N]
  public let cols1: ScalarBuffer<T>  // [9, 196·N]
  public let conv1Out: ScalarBuffer<T>  // [32, 196·N], after ReLU
  public let cols2: ScalarBuffer<T>  // [288, 49·N]
  public let conv2Out: ScalarBuffer<T>  // [64, 49·N], after ReLU
  public let flat: ScalarBuffer<T>  // [N, 3136]
  public let hidden: ScalarBuffer<T>  // [N, 16], after ReLU
  public let mean: ScalarBuffer<T>  // [N, d]
  public let logVar: ScalarBuffer<T>  // [N, d]
  public let noise: ScalarBuffer<T>  // [N, d], ε ~ N(0, I), filled by the caller
  public let z: ScalarBuffer<T>  // [N, d]
  // Forward: decoder
  public let decoderDense: ScalarBuffer<T>  // [N, 3136], after ReLU
  public let decoderGrid: ScalarBuffer<T>  // [64, 49·N]
  public let deconv1Out: ScalarBuffer<T>  // [64, 196·N], after ReLU
  public let deconv2Out: ScalarBuffer<T>  // [32, 784·N], after ReLU
  public let logitsGrid: ScalarBuffer<T>  // [1, 784·N], before the sigmoid
  public let logits: ScalarBuffer<T>  // [N, 784], before the sigmoid
  // Scratch shared by the transposed convolutions' columns and every backward im2col.
  public let columns: ScalarBuffer<T>  // up to [288, 196·N]
  // Backward
  public let dLogits: ScalarBuffer<T>  // [N, 784]
  public let dLogitsGrid: ScalarBuffer<T>  // [1, 784·N]
  public let dDeconv2Out: ScalarBuffer<T>  // [32, 784·N]
  public let dDeconv1Out: ScalarBuffer<T>  // [64, 196·N]
  public let dDecoderGrid: ScalarBuffer<T>  // [64, 49·N]
  public let dDecoderDense: ScalarBuffer<T>  // [N, 3136]
  public let dz, dMean, dLogVar: ScalarBuffer<T>  // [N, d]
  public let dHidden: ScalarBuffer<T>  // [N, 16]
  public let dFlat: ScalarBuffer<T>  // [N, 3136]
  public let dConv2Out: ScalarBuffer<T>  // [64, 49·N]
  public let dConv1Out: ScalarBuffer<T>  // [32, 196·N]
  // Per-image loss parts of the last forward pass
  public let reconstructionPerImage: UnsafeMutablePointer<Double>
  public let klPerImage: UnsafeMutablePointer<Double>

  public init(capacity: Int, latentDim: Int) {
    precondition(capacity >= 1)
    self.capacity = capacity
    self.latentDim = latentDim
    let n = capacity, d = latentDim
    let area1 = A.side1 * A.side1, area2 = A.side2 * A.side2
    input = ScalarBuffer(count: n * A.pixels)
    inputGrid = ScalarBuffer(count: n * A.pixels)
    cols1 = ScalarBuffer(count: 9 * n * area1)
    conv1Out = ScalarBuffer(count: A.conv1Channels * n * area1)
    cols2 = ScalarBuffer(count: A.conv1Channels * 9 * n * area2)
    conv2Out = ScalarBuffer(count: A.conv2Channels * n * area2)
    flat = ScalarBuffer(count: n * A.flatFeatures)
    hidden = ScalarBuffer(count: n * A.hiddenUnits)
    mean = ScalarBuffer(count: n * d)
    logVar = ScalarBuffer(count: n * d)
    noise = ScalarBuffer(count: n * d)
    z = ScalarBuffer(count: n * d)
    decoderDense = ScalarBuffer(count: n * A.flatFeatures)
    decoderGrid = ScalarBuffer(count: n * A.flatFeatures)
    deconv1Out = ScalarBuffer(count: A.conv2Channels * n * area1)
    deconv2Out = ScalarBuffer(count: A.conv1Channels * n * A.pixels)
    logitsGrid = ScalarBuffer(count: n * A.pixels)
    logits = ScalarBuffer(count: n * A.pixels)
    columns = ScalarBuffer(
      count: max(
        A.conv2Channels * 9 * n * area2, A.conv1Channels * 9 * n * area1, 9 * n * A.pixels,
        A.conv1Channels * 9 * n * area2))
    dLogits = ScalarBuffer(count: n * A.pixels)
    dLogitsGrid = ScalarBuffer(count: n * A.pixels)
    dDeconv2Out = ScalarBuffer(count: A.conv1Channels * n * A.pixels)
    dDeconv1Out = ScalarBuffer(count: A.conv2Channels * n * area1)
    dDecoderGrid = ScalarBuffer(count: n * A.flatFeatures)
    dDecoderDense = ScalarBuffer(count: n * A.flatFeatures)
    dz = ScalarBuffer(count: n * d)
    dMean = ScalarBuffer(count: n * d)
    dLogVar = ScalarBuffer(count: n * d)
    dHidden = ScalarBuffer(count: n * A.hiddenUnits)
    dFlat = ScalarBuffer(count: n * A.flatFeatures)
    dConv2Out = ScalarBuffer(count: A.conv2Channels * n * area2)
    dConv1Out = ScalarBuffer(count: A.conv1Channels * n * area1)
    reconstructionPerImage = .allocate(capacity: n)
    reconstructionPerImage.initialize(repeating: 0, count: n)
    klPerImage = .allocate(capacity: n)
    klPerImage.initialize(repeating: 0, count: n)
  }

  deinit {
    reconstructionPerImage.deallocate()
    klPerImage.deallocate()
  }
}

/// The Keras-book convolutional VAE on one micro-batch: forward, loss and backward. Stateless: the
/// parameters come in as views of a flat buffer, activations live in a `VAEWorkspace`.
public struct VAEModel<T: VAEScalar>: Sendable {
  public let layout: ParameterLayout
  public var latentDim: Int { layout.latentDim }

  public init(latentDim: Int) { layout = ParameterLayout(latentDim: latentDim) }

  @inlinable public static func conv1Geometry(_ n: Int) -> WindowGeometry {
    WindowGeometry(channels: 1, batch: n, largeSide: 28, smallSide: 14, stride: 2, pad: 1)
  }
  @inlinable public static func conv2Geometry(_ n: Int) -> WindowGeometry {
    WindowGeometry(channels: 32, batch: n, largeSide: 14, smallSide: 7, stride: 2, pad: 1)
  }
  @inlinable public static func deconv1Geometry(_ n: Int) -> WindowGeometry {
    WindowGeometry(channels: 64, batch: n, largeSide: 14, smallSide: 7, stride: 2, pad: 1)
  }
  @inlinable public static func deconv2Geometry(_ n: Int) -> WindowGeometry {
    WindowGeometry(channels: 32, batch: n, largeSide: 28, smallSide: 14, stride: 2, pad: 1)
  }
  @inlinable public static func deconv3Geometry(_ n: Int) -> WindowGeometry {
    WindowGeometry(channels: 1, batch: n, largeSide: 28, smallSide: 28, stride: 1, pad: 1)
  }

  /// Encoder: workspace.input [N, 784] → workspace.mean, workspace.logVar [N, d].
  @inlinable
  public func encode(_ p: ParameterViews<T>, batch n: Int, workspace w: VAEWorkspace<T>) {
    precondition(n >= 1 && n <= w.capacity && w.latentDim == latentDim)
    let d = latentDim
    unflattenFromDense(w.input.pointer, w.inputGrid.pointer, channels: 1, batch: n, area: 784)
    conv2dForward(
      x: w.inputGrid.pointer, weight: p.conv1Weight, bias: p.conv1Bias, cols: w.cols1.pointer,
      y: w.conv1Out.pointer, outChannels: 32, relu: true, geometry: Self.conv1Geometry(n))
    conv2dForward(
      x: w.conv1Out.pointer, weight: p.conv2Weight, bias: p.conv2Bias, cols: w.cols2.pointer,
      y: w.conv2Out.pointer, outChannels: 64, relu: true, geometry: Self.conv2Geometry(n))
    flattenToDense(w.conv2Out.pointer, w.flat.pointer, channels: 64, batch: n, area: 49)
    linearForward(
      x: w.flat.pointer, weight: p.fcWeight, bias: p.fcBias, y: w.hidden.pointer,
      batch: n, inFeatures: 3136, outFeatures: 16)
    reluForward(w.hidden.pointer, count: n * 16)
    linearForward(
      x: w.hidden.pointer, weight: p.zMeanWeight, bias: p.zMeanBias, y: w.mean.pointer,
      batch: n, inFeatures: 16, outFeatures: d)
    linearForward(
      x: w.hidden.pointer, weight: p.zLogVarWeight, bias: p.zLogVarBias, y: w.logVar.pointer,
      batch: n, inFeatures: 16, outFeatures: d)
  }

  /// Decoder: workspace.z [N, d] → workspace.logits [N, 784] (pre-sigmoid).
  @inlinable
  public func decode(_ p: ParameterViews<T>, batch n: Int, workspace w: VAEWorkspace<T>) {
    precondition(n >= 1 && n <= w.capacity && w.latentDim == latentDim)
    linearForward(
      x: w.z.pointer, weight: p.decoderFcWeight, bias: p.decoderFcBias, y: w.decoderDense.pointer,
      batch: n, inFeatures: latentDim, outFeatures: 3136)
    reluForward(w.decoderDense.pointer, count: n * 3136)
    unflattenFromDense(w.decoderDense.pointer, w.decoderGrid.pointer, channels: 64, batch: n, area: 49)
    convTranspose2dForward(
      x: w.decoderGrid.pointer, weight: p.deconv1Weight, bias: p.deconv1Bias,
      cols: w.columns.pointer, y: w.deconv1Out.pointer, inChannels: 64, relu: true,
      geometry: Self.deconv1Geometry(n))
    convTranspose2dForward(
      x: w.deconv1Out.pointer, weight: p.deconv2Weight, bias: p.deconv2Bias,
      cols: w.columns.pointer, y: w.deconv2Out.pointer, inChannels: 64, relu: true,
      geometry: Self.deconv2Geometry(n))
    convTranspose2dForward(
      x: w.deconv2Out.pointer, weight: p.deconv3Weight, bias: p.deconv3Bias,
      cols: w.columns.pointer, y: w.logitsGrid.pointer, inChannels: 32, geometry: Self.deconv3Geometry(n))
    flattenToDense(w.logitsGrid.pointer, w.logits.pointer, channels: 1, batch: n, area: 784)
  }

  /// The whole forward pass and loss for `n` images in workspace.input with noise in workspace.noise.
  /// `useMean` decodes z = μ instead of sampling. Returns the loss parts summed over the n images.
  @inlinable
  public func forward(
    _ p: ParameterViews<T>, batch n: Int, workspace w: VAEWorkspace<T>, useMean: Bool = false
  ) -> LossSums {
    encode(p, batch: n, workspace: w)
    if useMean {
      w.z.pointer.update(from: w.mean.pointer, count: n * latentDim)
    } else {
      reparameterizeForward(
        mean: w.mean.pointer, logVar: w.logVar.pointer, noise: w.noise.pointer, z: w.z.pointer,
        count: n * latentDim)
    }
    decode(p, batch: n, workspace: w)
    // The loss's gradient with respect to the logits comes from the same pass, for `backward`.
    let reconstruction = T.bceWithLogits(
      logits: w.logits.pointer, targets: w.input.pointer, dLogits: w.dLogits.pointer, batch: n, pixels: 784,
      perImage: w.reconstructionPerImage)
    let kl = klForward(
      mean: w.mean.pointer, logVar: w.logVar.pointer, batch: n, latent: latentDim, perImage: w.klPerImage)
    return LossSums(reconstruction: reconstruction, kl: kl, count: n)
  }

  /// Backward pass after `forward` on the same workspace (which left the loss's gradient with respect
  /// to the logits in workspace.dLogits): sets `g` to the gradient of
  /// Σ_images (reconstruction + β·KL) — a sum, not a mean, so micro-batch gradients add up exactly to
  /// the batch's. Every gradient tensor is overwritten, so `g` needs no zeroing.
  @inlinable
  public func backward(
    _ p: ParameterViews<T>, gradients g: ParameterViews<T>, batch n: Int, beta: T,
    workspace w: VAEWorkspace<T>
  ) {
    let d = latentDim
    unflattenFromDense(w.dLogits.pointer, w.dLogitsGrid.pointer, channels: 1, batch: n, area: 784)
    convTranspose2dBackward(
      dy: w.dLogitsGrid.pointer, x: w.deconv2Out.pointer, weight: p.deconv3Weight,
      dWeight: g.deconv3Weight, dBias: g.deconv3Bias, dcols: w.columns.pointer,
      dx: w.dDeconv2Out.pointer, inChannels: 32, geometry: Self.deconv3Geometry(n))
    T.reluBackward(dy: w.dDeconv2Out.pointer, output: w.deconv2Out.pointer, count: 32 * n * 784)
    convTranspose2dBackward(
      dy: w.dDeconv2Out.pointer, x: w.deconv1Out.pointer, weight: p.deconv2Weight,
      dWeight: g.deconv2Weight, dBias: g.deconv2Bias, dcols: w.columns.pointer,
      dx: w.dDeconv1Out.pointer, inChannels: 64, geometry: Self.deconv2Geometry(n))
    T.reluBackward(dy: w.dDeconv1Out.pointer, output: w.deconv1Out.pointer, count: 64 * n * 196)
    convTranspose2dBackward(
      dy: w.dDeconv1Out.pointer, x: w.decoderGrid.pointer, weight: p.deconv1Weight,
      dWeight: g.deconv1Weight, dBias: g.deconv1Bias, dcols: w.columns.pointer,
      dx: w.dDecoderGrid.pointer, inChannels: 64, geometry: Self.deconv1Geometry(n))
    flattenToDense(w.dDecoderGrid.pointer, w.dDecoderDense.pointer, channels: 64, batch: n, area: 49)
    reluBackward(dy: w.dDecoderDense.pointer, output: w.decoderDense.pointer, count: n * 3136)
    linearBackward(
      dy: w.dDecoderDense.pointer, x: w.z.pointer, weight: p.decoderFcWeight,
      dWeight: g.decoderFcWeight, dBias: g.decoderFcBias, dx: w.dz.pointer,
      batch: n, inFeatures: d, outFeatures: 3136)
    reparameterizeAndKLBackward(
      dz: w.dz.pointer, mean: w.mean.pointer, logVar: w.logVar.pointer, noise: w.noise.pointer,
      beta: beta, dMean: w.dMean.pointer, dLogVar: w.dLogVar.pointer, count: n * d)
    linearBackward(
      dy: w.dMean.pointer, x: w.hidden.pointer, weight: p.zMeanWeight,
      dWeight: g.zMeanWeight, dBias: g.zMeanBias, dx: w.dHidden.pointer,
      batch: n, inFeatures: 16, outFeatures: d)
    linearBackward(
      dy: w.dLogVar.pointer, x: w.hidden.pointer, weight: p.zLogVarWeight,
      dWeight: g.zLogVarWeight, dBias: g.zLogVarBias, dx: w.dHidden.pointer, accumulateInput: true,
      batch: n, inFeatures: 16, outFeatures: d)
    reluBackward(dy: w.dHidden.pointer, output: w.hidden.pointer, count: n * 16)
    linearBackward(
      dy: w.dHidden.pointer, x: w.flat.pointer, weight: p.fcWeight,
      dWeight: g.fcWeight, dBias: g.fcBias, dx: w.dFlat.pointer,
      batch: n, inFeatures: 3136, outFeatures: 16)
    unflattenFromDense(w.dFlat.pointer, w.dConv2Out.pointer, channels: 64, batch: n, area: 49)
    T.reluBackward(dy: w.dConv2Out.pointer, output: w.conv2Out.pointer, count: 64 * n * 49)
    conv2dBackward(
      dy: w.dConv2Out.pointer, cols: w.cols2.pointer, weight: p.conv2Weight,
      dWeight: g.conv2Weight, dBias: g.conv2Bias, dcols: w.columns.pointer,
      dx: w.dConv1Out.pointer, outChannels: 64, geometry: Self.conv2Geometry(n))
    T.reluBackward(dy: w.dConv1Out.pointer, output: w.conv1Out.pointer, count: 32 * n * 196)
    conv2dBackward(
      dy: w.dConv1Out.pointer, cols: w.cols1.pointer, weight: p.conv1Weight,
      dWeight: g.conv1Weight, dBias: g.conv1Bias, dcols: w.columns.pointer,
      dx: nil, outChannels: 32, geometry: Self.conv1Geometry(n))
  }
}
