/// Sizes of the Keras-book convolutional VAE. Only the latent size is a choice.
public enum Architecture {
  public static let imageSide = 28
  public static let pixels = 784  // 1×28×28
  public static let conv1Channels = 32  // 14×14 after stride 2
  public static let conv2Channels = 64  // 7×7 after stride 2
  public static let side1 = 14
  public static let side2 = 7
  public static let flatFeatures = 3136  // 64·7·7, channel-major as torch.flatten on NCHW
  public static let hiddenUnits = 16
  public static let kernelTaps = 9  // 3×3
}

/// One named tensor in the flat parameter buffer: PyTorch's state_dict name and shape.
public struct TensorSpec: Sendable, Equatable {
  public let name: String
  public let shape: [Int]
  public let offset: Int
  public var count: Int { shape.reduce(1, *) }
}

/// Where each of the 18 parameter tensors lives in one contiguous buffer, in PyTorch's
/// state_dict order and layouts (Conv2d weight [out,in,kh,kw], ConvTranspose2d weight [in,out,kh,kw],
/// Linear weight [out,in]). Parameters, gradients and both Adam moments share this layout, so one
/// allreduce moves all gradients and one writer saves any of them.
public struct ParameterLayout: Sendable, Equatable {
  public let latentDim: Int
  public let tensors: [TensorSpec]
  public let totalCount: Int

  public init(latentDim: Int) {
    precondition(latentDim >= 1, "latent size must be at least 1")
    self.latentDim = latentDim
    typealias A = Architecture
    let shapes: [(String, [Int])] = [
      ("encoder.conv1.weight", [A.conv1Channels, 1, 3, 3]),
      ("encoder.conv1.bias", [A.conv1Channels]),
      ("encoder.conv2.weight", [A.conv2Channels, A.conv1Channels, 3, 3]),
      ("encoder.conv2.bias", [A.conv2Channels]),
      ("encoder.fc.weight", [A.hiddenUnits, A.flatFeatures]),
      ("encoder.fc.bias", [A.hiddenUnits]),
      ("encoder.z_mean.weight", [latentDim, A.hiddenUnits]),
      ("encoder.z_mean.bias", [latentDim]),
      ("encoder.z_log_var.weight", [latentDim, A.hiddenUnits]),
      ("encoder.z_log_var.bias", [latentDim]),
      ("decoder.fc.weight", [A.flatFeatures, latentDim]),
      ("decoder.fc.bias", [A.flatFeatures]),
      ("decoder.deconv1.weight", [A.conv2Channels, A.conv2Channels, 3, 3]),
      ("decoder.deconv1.bias", [A.conv2Channels]),
      ("decoder.deconv2.weight", [A.conv2Channels, A.conv1Channels, 3, 3]),
      ("decoder.deconv2.bias", [A.conv1Channels]),
      ("decoder.deconv3.weight", [A.conv1Channels, 1, 3, 3]),
      ("decoder.deconv3.bias", [1]),
    ]
    var offset = 0
    var specs: [TensorSpec] = []
    for (name, shape) in shapes {
      let spec = TensorSpec(name: name, shape: shape, offset: offset)
      specs.append(spec)
      offset += spec.count
    }
    tensors = specs
    totalCount = offset
  }

  public func spec(named name: String) -> TensorSpec? { tensors.first { $0.name == name } }
}

/// Named pointers into one flat buffer laid out by `ParameterLayout` (llm.c's ParameterTensors).
/// The same struct views parameters, gradients or Adam moments.
public struct ParameterViews<T: VAEScalar> {
  public let conv1Weight, conv1Bias: UnsafeMutablePointer<T>
  public let conv2Weight, conv2Bias: UnsafeMutablePointer<T>
  public let fcWeight, fcBias: UnsafeMutablePointer<T>
  public let zMeanWeight, zMeanBias: UnsafeMutablePointer<T>
  public let zLogVarWeight, zLogVarBias: UnsafeMutablePointer<T>
  public let decoderFcWeight, decoderFcBias: UnsafeMutablePointer<T>
  public let deconv1Weight, deconv1Bias: UnsafeMutablePointer<T>
  public let deconv2Weight, deconv2Bias: UnsafeMutablePointer<T>
  public let deconv3Weight, deconv3Bias: UnsafeMutablePointer<T>

  public init(layout: ParameterLayout, base: UnsafeMutablePointer<T>) {
    let p = layout.tensors.map { base + $0.offset }
    (conv1Weight, conv1Bias, conv2Weight, conv2Bias) = (p[0], p[1], p[2], p[3])
    (fcWeight, fcBias, zMeanWeight, zMeanBias) = (p[4], p[5], p[6], p[7])
    (zLogVarWeight, zLogVarBias, decoderFcWeight, decoderFcBias) = (p[8], p[9], p[10], p[11])
    (deconv1Weight, deconv1Bias, deconv2Weight, deconv2Bias) = (p[12], p[13], p[14], p[15])
    (deconv3Weight, deconv3Bias) = (p[16], p[17])
  }
}
