/// The passes of the network, in the order a step runs them, with the work and traffic each one
/// counts from its geometry. `VAEModel.run` (Model.swift) wires each pass, the one place the VAE is
/// wired: the forward, the backward, the evaluation and `bench --layers` all run these.
public enum Pass: Int, CaseIterable, Sendable {
  // Encoder, forward
  case inputLayout, conv1Forward, conv2Forward, denseForward, latentForward
  // Decoder, forward (from z)
  case decoderInputLayout, decoderDenseForward, deconv1Forward, deconv2Forward, deconv3Forward, logitsLayout
  // Backward (after the loss left dLogits)
  case dLogitsLayout, deconv3Weights, deconv3Data, deconv2Weights, deconv2Data, deconv1Weights, deconv1Data
  case decoderDenseWeights, decoderDenseData, latentBackward, latentWeights, latentData
  case denseWeights, denseData, conv2Weights, conv2Data, conv1Weights

  public static let encoder: [Pass] = [.inputLayout, .conv1Forward, .conv2Forward, .denseForward, .latentForward]
  public static let decoder: [Pass] = [
    .decoderInputLayout, .decoderDenseForward, .deconv1Forward, .deconv2Forward, .deconv3Forward, .logitsLayout,
  ]
  public static let backward: [Pass] = Array(allCases[Pass.dLogitsLayout.rawValue...])

  /// The layer a pass belongs to and which of its passes it is ("forward", "backward-weights",
  /// "backward-data"); "dense 16→d ×2" is z_mean and z_log_var; layout changes and the latent
  /// elementwise work are "elementwise".
  public var layer: (name: String, kind: String) {
    switch self {
    case .conv1Forward: ("conv1 1→32 s2", "forward")
    case .conv1Weights: ("conv1 1→32 s2", "backward-weights")
    case .conv2Forward: ("conv2 32→64 s2", "forward")
    case .conv2Weights: ("conv2 32→64 s2", "backward-weights")
    case .conv2Data: ("conv2 32→64 s2", "backward-data")
    case .denseForward: ("dense 3136→16", "forward")
    case .denseWeights: ("dense 3136→16", "backward-weights")
    case .denseData: ("dense 3136→16", "backward-data")
    case .latentForward: ("dense 16→d ×2", "forward")
    case .latentWeights: ("dense 16→d ×2", "backward-weights")
    case .latentData: ("dense 16→d ×2", "backward-data")
    case .decoderDenseForward: ("dense d→3136", "forward")
    case .decoderDenseWeights: ("dense d→3136", "backward-weights")
    case .decoderDenseData: ("dense d→3136", "backward-data")
    case .deconv1Forward: ("convT1 64→64 s2", "forward")
    case .deconv1Weights: ("convT1 64→64 s2", "backward-weights")
    case .deconv1Data: ("convT1 64→64 s2", "backward-data")
    case .deconv2Forward: ("convT2 64→32 s2", "forward")
    case .deconv2Weights: ("convT2 64→32 s2", "backward-weights")
    case .deconv2Data: ("convT2 64→32 s2", "backward-data")
    case .deconv3Forward: ("convT3 32→1", "forward")
    case .deconv3Weights: ("convT3 32→1", "backward-weights")
    case .deconv3Data: ("convT3 32→1", "backward-data")
    default: ("loss and elementwise", "elementwise")
    }
  }

  /// Nominal multiply-adds per image (padded taps included), from the layer's geometry; 0 for elementwise passes.
  public func multiplyAddsPerImage(latentDim d: Int) -> Int {
    let w = Architecture.windows(lanes: 16)
    switch self {
    case .conv1Forward, .conv1Weights: return w.conv1.multiplyAddsPerImage
    case .conv2Forward, .conv2Weights, .conv2Data: return w.conv2.multiplyAddsPerImage
    case .deconv1Forward, .deconv1Weights, .deconv1Data: return w.deconv1.multiplyAddsPerImage
    case .deconv2Forward, .deconv2Weights, .deconv2Data: return w.deconv2.multiplyAddsPerImage
    case .deconv3Forward, .deconv3Weights, .deconv3Data: return w.deconv3.multiplyAddsPerImage
    case .denseForward, .denseWeights, .denseData: return Architecture.flatFeatures * Architecture.hiddenUnits
    case .decoderDenseForward, .decoderDenseWeights, .decoderDenseData: return Architecture.flatFeatures * d
    case .latentForward, .latentWeights, .latentData: return 2 * Architecture.hiddenUnits * d
    default: return 0
    }
  }

  /// The floats a pass must read and write at least for a micro-batch of n images: its operands
  /// (activations as interior pixels, the ReLU mask of a backward-data pass, the weights once) and
  /// its results (a weight pass's bias sums read the gradient grid once more); 0 for elementwise
  /// passes. Divided by the FLOPs, the bytes per FLOP the pass needs from where its operands live.
  public func floatsMoved(latentDim d: Int, images n: Int) -> Int {
    let w = Architecture.windows(lanes: 16)
    func grid(_ g: GridShape) -> Int { n * g.channels * g.side * g.side }
    func weights(_ c: ConvWindow) -> Int { c.small.channels * c.large.channels * 9 }
    /// Conv2d: the large grid is x, the small one y. ConvTranspose2d: the small grid is x, the large one y.
    func conv(_ c: ConvWindow, transposed: Bool, _ kind: Pass.Kind) -> Int {
      let (x, y) = transposed ? (grid(c.small), grid(c.large)) : (grid(c.large), grid(c.small))
      switch kind {
      case .forward: return x + y + weights(c)
      case .weights: return x + 2 * y + weights(c)  // x, dy, dy again for the bias sums, dW
      case .data: return y + 2 * x + weights(c)  // dy, the mask (x's ReLU output), dx
      }
    }
    func dense(_ inputs: Int, _ outputs: Int, _ kind: Pass.Kind, masked: Bool) -> Int {
      let weights = inputs * outputs
      switch kind {
      case .forward: return n * (inputs + outputs) + weights
      case .weights: return n * (inputs + 2 * outputs) + weights
      case .data: return n * (outputs + (masked ? 2 : 1) * inputs) + weights
      }
    }
    let (flat, hidden) = (Architecture.flatFeatures, Architecture.hiddenUnits)
    switch self {
    case .conv1Forward: return conv(w.conv1, transposed: false, .forward)
    case .conv1Weights: return conv(w.conv1, transposed: false, .weights)
    case .conv2Forward: return conv(w.conv2, transposed: false, .forward)
    case .conv2Weights: return conv(w.conv2, transposed: false, .weights)
    case .conv2Data: return conv(w.conv2, transposed: false, .data)
    case .deconv1Forward: return conv(w.deconv1, transposed: true, .forward)
    case .deconv1Weights: return conv(w.deconv1, transposed: true, .weights)
    case .deconv1Data: return conv(w.deconv1, transposed: true, .data)
    case .deconv2Forward: return conv(w.deconv2, transposed: true, .forward)
    case .deconv2Weights: return conv(w.deconv2, transposed: true, .weights)
    case .deconv2Data: return conv(w.deconv2, transposed: true, .data)
    case .deconv3Forward: return conv(w.deconv3, transposed: true, .forward)
    case .deconv3Weights: return conv(w.deconv3, transposed: true, .weights)
    case .deconv3Data: return conv(w.deconv3, transposed: true, .data)
    case .denseForward: return dense(flat, hidden, .forward, masked: false)
    case .denseWeights: return dense(flat, hidden, .weights, masked: false)
    case .denseData: return dense(flat, hidden, .data, masked: true)
    case .latentForward: return 2 * dense(hidden, d, .forward, masked: false)
    case .latentWeights: return 2 * dense(hidden, d, .weights, masked: false)
    case .latentData: return 2 * dense(hidden, d, .data, masked: true)
    case .decoderDenseForward: return dense(d, flat, .forward, masked: false)
    case .decoderDenseWeights: return dense(d, flat, .weights, masked: false)
    case .decoderDenseData: return dense(d, flat, .data, masked: false)
    default: return 0
    }
  }

  /// Which of a layer's products a pass computes.
  private enum Kind { case forward, weights, data }
}
