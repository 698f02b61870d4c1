import _CKernels

// The loops of the step besides the matrix products. Each is a requirement of `VAEScalar` whose
// default is the plain Swift reference loop (Window.swift, Elementwise.swift, Loss.swift), which Double
// uses for the gradient checks. Float, the training type, runs the C kernels of `_CKernels`: compiled
// for AVX-512, AVX2 and baseline x86-64 and picked for the CPU at load time, fused (col2im + bias + ReLU,
// loss + its gradient) so each activation is read and written once. KernelTests compares the two.

extension VAEScalar {
  @inlinable
  public static func im2col(image: UnsafePointer<Self>, cols: UnsafeMutablePointer<Self>, geometry: WindowGeometry) {
    VAECore.im2col(image: image, cols: cols, geometry: geometry)
  }

  @inlinable
  public static func col2im(
    cols: UnsafePointer<Self>, image: UnsafeMutablePointer<Self>, bias: UnsafePointer<Self>?, relu: Bool,
    geometry g: WindowGeometry
  ) {
    VAECore.col2im(cols: cols, image: image, geometry: g)
    let columns = g.batch * g.largeSide * g.largeSide
    if let bias { addChannelBias(image, bias: bias, channels: g.channels, columns: columns) }
    if relu { reluForward(image, count: g.channels * columns) }
  }

  @inlinable
  public static func addBias(
    _ y: UnsafeMutablePointer<Self>, bias: UnsafePointer<Self>, relu: Bool, channels: Int, columns: Int
  ) {
    addChannelBias(y, bias: bias, channels: channels, columns: columns)
    if relu { reluForward(y, count: channels * columns) }
  }

  @inlinable
  public static func channelSums(
    _ y: UnsafePointer<Self>, into sums: UnsafeMutablePointer<Self>, channels: Int, columns: Int
  ) {
    channelBiasBackward(dy: y, dBias: sums, channels: channels, columns: columns)
  }

  @inlinable
  public static func reluBackward(dy: UnsafeMutablePointer<Self>, output: UnsafePointer<Self>, count: Int) {
    VAECore.reluBackward(dy: dy, output: output, count: count)
  }

  @inlinable
  public static func bceWithLogits(
    logits: UnsafePointer<Self>, targets: UnsafePointer<Self>, dLogits: UnsafeMutablePointer<Self>?,
    batch: Int, pixels: Int, perImage: UnsafeMutablePointer<Double>?
  ) -> Double {
    let total = bceWithLogitsForward(logits: logits, targets: targets, batch: batch, pixels: pixels, perImage: perImage)
    if let dLogits {
      bceWithLogitsBackward(logits: logits, targets: targets, dLogits: dLogits, count: batch * pixels)
    }
    return total
  }
}

extension Float {
  public static func im2col(image: UnsafePointer<Float>, cols: UnsafeMutablePointer<Float>, geometry g: WindowGeometry) {
    vdk_im2col3x3(image, cols, g.channels, g.batch, g.largeSide, g.smallSide, g.stride, g.pad)
  }

  public static func col2im(
    cols: UnsafePointer<Float>, image: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>?, relu: Bool,
    geometry g: WindowGeometry
  ) {
    vdk_col2im3x3(cols, image, bias, relu ? 1 : 0, g.channels, g.batch, g.largeSide, g.smallSide, g.stride, g.pad)
  }

  public static func addBias(
    _ y: UnsafeMutablePointer<Float>, bias: UnsafePointer<Float>, relu: Bool, channels: Int, columns: Int
  ) {
    vdk_bias_relu(y, bias, relu ? 1 : 0, channels, columns)
  }

  public static func channelSums(
    _ y: UnsafePointer<Float>, into sums: UnsafeMutablePointer<Float>, channels: Int, columns: Int
  ) {
    vdk_channel_sums(y, sums, channels, columns)
  }

  public static func reluBackward(dy: UnsafeMutablePointer<Float>, output: UnsafePointer<Float>, count: Int) {
    vdk_relu_backward(dy, output, count)
  }

  public static func bceWithLogits(
    logits: UnsafePointer<Float>, targets: UnsafePointer<Float>, dLogits: UnsafeMutablePointer<Float>?,
    batch: Int, pixels: Int, perImage: UnsafeMutablePointer<Double>?
  ) -> Double {
    guard let dLogits else {
      return bceWithLogitsForward(logits: logits, targets: targets, batch: batch, pixels: pixels, perImage: perImage)
    }
    return vdk_bce_with_logits(logits, targets, dLogits, batch, pixels, perImage)
  }
}

/// The instruction set the Float kernels run with here ("x86-64-v4" is AVX-512, "x86-64-v3" AVX2).
public func kernelInstructionSet() -> String { String(cString: vdk_instruction_set()) }
