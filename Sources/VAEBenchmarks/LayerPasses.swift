import VAECore

/// The model's work split into its layers' passes (forward, backward-weights, backward-data), each a
/// closure over one workspace, for `vae-dist bench --layers`: run after a real forward and backward on
/// the same workspace, each pass reads the activations that step left and writes its own outputs, so
/// it can be repeated alone and timed. `VAEModel.forward`/`backward` stay the one place the step is
/// written; these calls are the same layer functions with the same buffers.
public struct LayerPass {
  public init(layer: String, pass: String, flopsPerImage: Double, run: @escaping () -> Void) {
    (self.layer, self.pass, self.flopsPerImage, self.run) = (layer, pass, flopsPerImage, run)
  }
  public let layer: String
  /// "forward", "backward-weights" (dW, db) or "backward-data" (dx).
  public let pass: String
  /// Nominal floating-point operations per image: 2 per multiply-add of the layer's matrix product.
  public let flopsPerImage: Double
  public let run: () -> Void
}

extension VAEModel {
  /// The passes of every layer with a matrix product (the rest, elementwise work, is in "loss and
  /// elementwise"), for `n` images in `w`, with gradients written into `g`. Inlinable, so the passes
  /// are specialised for Float as the step's own calls are.
  @inlinable
  public func layerPasses(
    _ p: ParameterViews<T>, gradients g: ParameterViews<T>, batch n: Int, workspace w: VAEWorkspace<T>
  ) -> [LayerPass] {
    let d = latentDim
    let c1 = Self.conv1Geometry(n), c2 = Self.conv2Geometry(n)
    let t1 = Self.deconv1Geometry(n), t2 = Self.deconv2Geometry(n), t3 = Self.deconv3Geometry(n)
    // Multiply-adds per image of each layer's product (the same in every pass of the layer).
    let macs: [String: Double] = [
      "conv1 1→32 s2": 196 * 32 * 9, "conv2 32→64 s2": 49 * 64 * 288, "dense 3136→16": 3136 * 16,
      "dense 2→3136": Double(d * 3136), "convT1 64→64 s2": 49 * 576 * 64, "convT2 64→32 s2": 196 * 288 * 64,
      "convT3 32→1": 784 * 9 * 32,
    ]
    func pass(_ layer: String, _ kind: String, _ run: @escaping () -> Void) -> LayerPass {
      LayerPass(layer: layer, pass: kind, flopsPerImage: 2 * macs[layer]!, run: run)
    }
    return [
      pass("conv1 1→32 s2", "forward") {
        conv2dForward(
          x: w.inputGrid.pointer, weight: p.conv1Weight, bias: p.conv1Bias, cols: w.cols1.pointer,
          y: w.conv1Out.pointer, outChannels: 32, relu: true, geometry: c1)
      },
      pass("conv1 1→32 s2", "backward-weights") {
        conv2dBackwardWeights(
          dy: w.dConv1Out.pointer, cols: w.cols1.pointer, dWeight: g.conv1Weight, dBias: g.conv1Bias, outChannels: 32, geometry: c1)
      },
      pass("conv2 32→64 s2", "forward") {
        conv2dForward(
          x: w.conv1Out.pointer, weight: p.conv2Weight, bias: p.conv2Bias, cols: w.cols2.pointer,
          y: w.conv2Out.pointer, outChannels: 64, relu: true, geometry: c2)
      },
      pass("conv2 32→64 s2", "backward-weights") {
        conv2dBackwardWeights(
          dy: w.dConv2Out.pointer, cols: w.cols2.pointer, dWeight: g.conv2Weight, dBias: g.conv2Bias, outChannels: 64, geometry: c2)
      },
      pass("conv2 32→64 s2", "backward-data") {
        conv2dBackwardData(
          dy: w.dConv2Out.pointer, weight: p.conv2Weight, dcols: w.columns.pointer, dx: w.dConv1Out.pointer,
          outChannels: 64, geometry: c2)
      },
      pass("dense 3136→16", "forward") {
        linearForward(
          x: w.flat.pointer, weight: p.fcWeight, bias: p.fcBias, y: w.hidden.pointer, batch: n, inFeatures: 3136, outFeatures: 16)
      },
      pass("dense 3136→16", "backward-weights") {
        linearBackward(
          dy: w.dHidden.pointer, x: w.flat.pointer, weight: p.fcWeight, dWeight: g.fcWeight, dBias: g.fcBias, dx: nil,
          batch: n, inFeatures: 3136, outFeatures: 16)
      },
      pass("dense 3136→16", "backward-data") {
        T.gemm(
          transposeA: false, transposeB: false, m: n, n: 3136, k: 16, alpha: 1, a: w.dHidden.pointer, lda: 16,
          b: p.fcWeight, ldb: 3136, beta: 0, c: w.dFlat.pointer, ldc: 3136)
      },
      pass("dense 2→3136", "forward") {
        linearForward(
          x: w.z.pointer, weight: p.decoderFcWeight, bias: p.decoderFcBias, y: w.decoderDense.pointer,
          batch: n, inFeatures: d, outFeatures: 3136)
      },
      pass("dense 2→3136", "backward-weights") {
        linearBackward(
          dy: w.dDecoderDense.pointer, x: w.z.pointer, weight: p.decoderFcWeight, dWeight: g.decoderFcWeight,
          dBias: g.decoderFcBias, dx: nil, batch: n, inFeatures: d, outFeatures: 3136)
      },
      pass("convT1 64→64 s2", "forward") {
        convTranspose2dForward(
          x: w.decoderGrid.pointer, weight: p.deconv1Weight, bias: p.deconv1Bias, cols: w.columns.pointer,
          y: w.deconv1Out.pointer, inChannels: 64, relu: true, geometry: t1)
      },
      pass("convT1 64→64 s2", "backward-weights") {
        convTranspose2dBackwardWeights(
          dy: w.dDeconv1Out.pointer, x: w.decoderGrid.pointer, dWeight: g.deconv1Weight, dBias: g.deconv1Bias,
          dcols: w.columns.pointer, inChannels: 64, geometry: t1)
      },
      pass("convT1 64→64 s2", "backward-data") {
        convTranspose2dBackwardData(
          weight: p.deconv1Weight, dcols: w.columns.pointer, dx: w.dDecoderGrid.pointer, inChannels: 64, geometry: t1)
      },
      pass("convT2 64→32 s2", "forward") {
        convTranspose2dForward(
          x: w.deconv1Out.pointer, weight: p.deconv2Weight, bias: p.deconv2Bias, cols: w.columns.pointer,
          y: w.deconv2Out.pointer, inChannels: 64, relu: true, geometry: t2)
      },
      pass("convT2 64→32 s2", "backward-weights") {
        convTranspose2dBackwardWeights(
          dy: w.dDeconv2Out.pointer, x: w.deconv1Out.pointer, dWeight: g.deconv2Weight, dBias: g.deconv2Bias,
          dcols: w.columns.pointer, inChannels: 64, geometry: t2)
      },
      pass("convT2 64→32 s2", "backward-data") {
        convTranspose2dBackwardData(
          weight: p.deconv2Weight, dcols: w.columns.pointer, dx: w.dDeconv1Out.pointer, inChannels: 64, geometry: t2)
      },
      pass("convT3 32→1", "forward") {
        convTranspose2dForward(
          x: w.deconv2Out.pointer, weight: p.deconv3Weight, bias: p.deconv3Bias, cols: w.columns.pointer,
          y: w.logitsGrid.pointer, inChannels: 32, geometry: t3)
      },
      pass("convT3 32→1", "backward-weights") {
        convTranspose2dBackwardWeights(
          dy: w.dLogitsGrid.pointer, x: w.deconv2Out.pointer, dWeight: g.deconv3Weight, dBias: g.deconv3Bias,
          dcols: w.columns.pointer, inChannels: 32, geometry: t3)
      },
      pass("convT3 32→1", "backward-data") {
        convTranspose2dBackwardData(
          weight: p.deconv3Weight, dcols: w.columns.pointer, dx: w.dDeconv2Out.pointer, inChannels: 32, geometry: t3)
      },
    ]
  }
}
