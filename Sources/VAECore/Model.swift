/// The Keras-book convolutional VAE on one micro-batch: forward, loss and backward. Stateless: the
/// parameters come in as views of a flat buffer, activations live in a `VAEWorkspace`.
public struct VAEModel<T: VAEScalar>: Sendable {
  public let layout: ParameterLayout
  public var latentDim: Int { layout.latentDim }

  public init(latentDim: Int) { layout = ParameterLayout(latentDim: latentDim) }

  /// The nominal work of a training step per image: three times the forward products (forward,
  /// backward-data, backward-weights), 2 FLOPs per multiply-add, padded taps included: 40.0 MFLOP
  /// at latent size 2, the figure every throughput here is counted with.
  public static func nominalFlopsPerImage(latentDim d: Int) -> Double {
    let forward = (Pass.encoder + Pass.decoder).reduce(0) { $0 + $1.multiplyAddsPerImage(latentDim: d) }
    return 3 * 2 * Double(forward)
  }

  /// Encoder: workspace.input [N, 784] → workspace.mean, workspace.logVar [N, d].
  @inlinable
  public func encode(_ p: ParameterViews<T>, batch n: Int, workspace w: VAEWorkspace<T>) {
    precondition(n >= 1 && n <= w.capacity && w.latentDim == latentDim)
    for pass in Pass.encoder { run(pass, p, batch: n, workspace: w) }
  }

  /// Decoder: workspace.z [N, d] → workspace.logits [N, 784] (pre-sigmoid).
  @inlinable
  public func decode(_ p: ParameterViews<T>, batch n: Int, workspace w: VAEWorkspace<T>) {
    precondition(n >= 1 && n <= w.capacity && w.latentDim == latentDim)
    for pass in Pass.decoder { run(pass, p, batch: n, workspace: w) }
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
        mean: w.mean.pointer, logVar: w.logVar.pointer, noise: w.noise.pointer, z: w.z.pointer, count: n * latentDim)
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
    _ p: ParameterViews<T>, gradients g: ParameterViews<T>, batch n: Int, beta: T, workspace w: VAEWorkspace<T>
  ) {
    for pass in Pass.backward { run(pass, p, gradients: g, batch: n, beta: beta, workspace: w) }
  }

  /// One pass (Pass), reading what the passes before it left in `w`. Backward passes need `g` and `beta`.
  @inlinable
  public func run(
    _ pass: Pass, _ p: ParameterViews<T>, gradients g: ParameterViews<T>? = nil, batch n: Int, beta: T = 1,
    workspace w: VAEWorkspace<T>
  ) {
    let d = latentDim, lanes = w.lanes, scratch = w.scratch.pointer
    let flat = w.conv2Features, hidden = w.hiddenFeatures, latent = w.latentFeatures
    switch pass {
    // input [N, 784] → inputGrid → conv1 (ReLU) → conv2 (ReLU) → dense 3136→16 (ReLU) → μ, log σ² [N, d]
    case .inputLayout:
      rowsToLanes(w.input.pointer, count: n, into: w.inputGrid.pointer, offsets: w.imageFeatures, lanes: lanes)
    case .conv1Forward:
      T.convGather(
        w.window.conv1, weight: p.conv1Weight, bias: p.conv1Bias, relu: true, mask: nil, large: w.inputGrid.pointer,
        small: w.conv1Out.pointer, scratch: scratch)
    case .conv2Forward:
      T.convGather(
        w.window.conv2, weight: p.conv2Weight, bias: p.conv2Bias, relu: true, mask: nil, large: w.conv1Out.pointer,
        small: w.conv2Out.pointer, scratch: scratch)
    case .denseForward:
      T.dense(
        weight: p.fcWeight, outStride: Architecture.flatFeatures, inStride: 1, bias: p.fcBias, relu: true, mask: nil,
        accumulate: false, input: w.conv2Out.pointer, inOffsets: flat, output: w.hidden.pointer, outOffsets: hidden,
        lanes: lanes)
    case .latentForward:
      T.dense(
        weight: p.zMeanWeight, outStride: Architecture.hiddenUnits, inStride: 1, bias: p.zMeanBias, relu: false, mask: nil,
        accumulate: false, input: w.hidden.pointer, inOffsets: hidden, output: w.meanLanes.pointer, outOffsets: latent,
        lanes: lanes)
      T.dense(
        weight: p.zLogVarWeight, outStride: Architecture.hiddenUnits, inStride: 1, bias: p.zLogVarBias, relu: false, mask: nil,
        accumulate: false, input: w.hidden.pointer, inOffsets: hidden, output: w.logVarLanes.pointer,
        outOffsets: latent, lanes: lanes)
      lanesToRows(w.meanLanes.pointer, offsets: latent, count: n, into: w.mean.pointer)
      lanesToRows(w.logVarLanes.pointer, offsets: latent, count: n, into: w.logVar.pointer)
    // z [N, d] → dense d→3136 (ReLU) → convT1 (ReLU) → convT2 (ReLU) → convT3 → logits [N, 784]
    case .decoderInputLayout:
      rowsToLanes(w.z.pointer, count: n, into: w.zLanes.pointer, offsets: latent, lanes: lanes)
    case .decoderDenseForward:
      T.dense(
        weight: p.decoderFcWeight, outStride: d, inStride: 1, bias: p.decoderFcBias, relu: true, mask: nil, accumulate: false,
        input: w.zLanes.pointer, inOffsets: latent, output: w.decoderGrid.pointer, outOffsets: flat, lanes: lanes)
    case .deconv1Forward:
      T.convScatter(
        w.window.deconv1, weight: p.deconv1Weight, bias: p.deconv1Bias, relu: true, mask: nil, small: w.decoderGrid.pointer,
        large: w.deconv1Out.pointer, scratch: scratch)
    case .deconv2Forward:
      T.convScatter(
        w.window.deconv2, weight: p.deconv2Weight, bias: p.deconv2Bias, relu: true, mask: nil, small: w.deconv1Out.pointer,
        large: w.deconv2Out.pointer, scratch: scratch)
    case .deconv3Forward:
      T.convScatter(
        w.window.deconv3, weight: p.deconv3Weight, bias: p.deconv3Bias, relu: false, mask: nil, small: w.deconv2Out.pointer,
        large: w.logitsGrid.pointer, scratch: scratch)
    case .logitsLayout:
      lanesToRows(w.logitsGrid.pointer, offsets: w.imageFeatures, count: n, into: w.logits.pointer)
    default:
      guard let g else { preconditionFailure("\(pass) is a backward pass: give it the gradients") }
      runBackward(pass, p, gradients: g, batch: n, beta: beta, workspace: w)
    }
  }

  /// The backward passes of `run`, from dLogits [N, 784] to the gradients of every tensor.
  @inlinable
  func runBackward(
    _ pass: Pass, _ p: ParameterViews<T>, gradients g: ParameterViews<T>, batch n: Int, beta: T,
    workspace w: VAEWorkspace<T>
  ) {
    let d = latentDim, lanes = w.lanes, scratch = w.scratch.pointer
    let flat = w.conv2Features, hidden = w.hiddenFeatures, latent = w.latentFeatures
    switch pass {
    case .dLogitsLayout:
      rowsToLanes(w.dLogits.pointer, count: n, into: w.dLogitsGrid.pointer, offsets: w.imageFeatures, lanes: lanes)
    case .deconv3Weights:
      T.convWeightGradient(w.window.deconv3, small: w.deconv2Out.pointer, large: w.dLogitsGrid.pointer, dWeight: g.deconv3Weight)
      T.gridSums(w.dLogitsGrid.pointer, shape: w.imageGrid, into: g.deconv3Bias)
    case .deconv3Data:
      T.convGather(
        w.window.deconv3, weight: p.deconv3Weight, bias: nil, relu: false, mask: w.deconv2Out.pointer,
        large: w.dLogitsGrid.pointer, small: w.dDeconv2Out.pointer, scratch: scratch)
    case .deconv2Weights:
      T.convWeightGradient(w.window.deconv2, small: w.deconv1Out.pointer, large: w.dDeconv2Out.pointer, dWeight: g.deconv2Weight)
      T.gridSums(w.dDeconv2Out.pointer, shape: w.deconv2Grid, into: g.deconv2Bias)
    case .deconv2Data:
      T.convGather(
        w.window.deconv2, weight: p.deconv2Weight, bias: nil, relu: false, mask: w.deconv1Out.pointer,
        large: w.dDeconv2Out.pointer, small: w.dDeconv1Out.pointer, scratch: scratch)
    case .deconv1Weights:
      T.convWeightGradient(w.window.deconv1, small: w.decoderGrid.pointer, large: w.dDeconv1Out.pointer, dWeight: g.deconv1Weight)
      T.gridSums(w.dDeconv1Out.pointer, shape: w.deconv1Grid, into: g.deconv1Bias)
    case .deconv1Data:
      T.convGather(
        w.window.deconv1, weight: p.deconv1Weight, bias: nil, relu: false, mask: w.decoderGrid.pointer,
        large: w.dDeconv1Out.pointer, small: w.dDecoderGrid.pointer, scratch: scratch)
    case .decoderDenseWeights:
      T.denseWeightGradient(
        dWeight: g.decoderFcWeight, outStride: d, inStride: 1, dBias: g.decoderFcBias, dy: w.dDecoderGrid.pointer,
        dyOffsets: flat, x: w.zLanes.pointer, xOffsets: latent, lanes: lanes)
    case .decoderDenseData:
      T.dense(
        weight: p.decoderFcWeight, outStride: 1, inStride: d, bias: nil, relu: false, mask: nil, accumulate: false,
        input: w.dDecoderGrid.pointer, inOffsets: flat, output: w.dzLanes.pointer, outOffsets: latent, lanes: lanes)
    case .latentBackward:
      lanesToRows(w.dzLanes.pointer, offsets: latent, count: n, into: w.dz.pointer)
      reparameterizeAndKLBackward(
        dz: w.dz.pointer, mean: w.mean.pointer, logVar: w.logVar.pointer, noise: w.noise.pointer, beta: beta,
        dMean: w.dMean.pointer, dLogVar: w.dLogVar.pointer, count: n * d)
      rowsToLanes(w.dMean.pointer, count: n, into: w.dMeanLanes.pointer, offsets: latent, lanes: lanes)
      rowsToLanes(w.dLogVar.pointer, count: n, into: w.dLogVarLanes.pointer, offsets: latent, lanes: lanes)
    case .latentWeights:
      T.denseWeightGradient(
        dWeight: g.zMeanWeight, outStride: Architecture.hiddenUnits, inStride: 1, dBias: g.zMeanBias,
        dy: w.dMeanLanes.pointer, dyOffsets: latent, x: w.hidden.pointer, xOffsets: hidden, lanes: lanes)
      T.denseWeightGradient(
        dWeight: g.zLogVarWeight, outStride: Architecture.hiddenUnits, inStride: 1, dBias: g.zLogVarBias,
        dy: w.dLogVarLanes.pointer, dyOffsets: latent, x: w.hidden.pointer, xOffsets: hidden, lanes: lanes)
    case .latentData:
      // dHidden = Wμᵀ·dμ, then + Wσᵀ·d log σ² on the same chains, through the ReLU as it is stored.
      T.dense(
        weight: p.zMeanWeight, outStride: 1, inStride: Architecture.hiddenUnits, bias: nil, relu: false, mask: nil,
        accumulate: false, input: w.dMeanLanes.pointer, inOffsets: latent, output: w.dHidden.pointer,
        outOffsets: hidden, lanes: lanes)
      T.dense(
        weight: p.zLogVarWeight, outStride: 1, inStride: Architecture.hiddenUnits, bias: nil, relu: false,
        mask: w.hidden.pointer, accumulate: true, input: w.dLogVarLanes.pointer, inOffsets: latent,
        output: w.dHidden.pointer, outOffsets: hidden, lanes: lanes)
    case .denseWeights:
      T.denseWeightGradient(
        dWeight: g.fcWeight, outStride: Architecture.flatFeatures, inStride: 1, dBias: g.fcBias, dy: w.dHidden.pointer,
        dyOffsets: hidden, x: w.conv2Out.pointer, xOffsets: flat, lanes: lanes)
    case .denseData:
      T.dense(
        weight: p.fcWeight, outStride: 1, inStride: Architecture.flatFeatures, bias: nil, relu: false,
        mask: w.conv2Out.pointer, accumulate: false, input: w.dHidden.pointer, inOffsets: hidden,
        output: w.dConv2Out.pointer, outOffsets: flat, lanes: lanes)
    case .conv2Weights:
      T.convWeightGradient(w.window.conv2, small: w.dConv2Out.pointer, large: w.conv1Out.pointer, dWeight: g.conv2Weight)
      T.gridSums(w.dConv2Out.pointer, shape: w.conv2Grid, into: g.conv2Bias)
    case .conv2Data:
      T.convScatter(
        w.window.conv2, weight: p.conv2Weight, bias: nil, relu: false, mask: w.conv1Out.pointer,
        small: w.dConv2Out.pointer, large: w.dConv1Out.pointer, scratch: scratch)
    case .conv1Weights:
      T.convWeightGradient(w.window.conv1, small: w.dConv1Out.pointer, large: w.inputGrid.pointer, dWeight: g.conv1Weight)
      T.gridSums(w.dConv1Out.pointer, shape: w.conv1Grid, into: g.conv1Bias)
    default:
      preconditionFailure("\(pass) is a forward pass")
    }
  }
}
