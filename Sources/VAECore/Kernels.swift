import _CKernels

// The loops of the step. Each is a requirement of `VAEScalar` whose default is the plain Swift
// reference (Grid.swift, Dense.swift, Elementwise.swift, Loss.swift), which Double uses for the
// gradient checks. Float, the training type, runs the C kernels of `_CKernels`: direct convolutions
// and dense products in a fixed order of operations (the same bits on every CPU and variant), and
// fused elementwise loops. KernelTests compares the two.

extension VAEScalar {
  @inlinable
  public static func convGather(
    _ g: ConvWindow, weight: UnsafePointer<Self>, bias: UnsafePointer<Self>?, relu: Bool, mask: UnsafePointer<Self>?,
    large: UnsafePointer<Self>, small: UnsafeMutablePointer<Self>, scratch: UnsafeMutablePointer<Self>
  ) {
    referenceGather(g, weight: weight, bias: bias, relu: relu, large: large, small: small)
    if let mask { VAECore.reluBackward(dy: small, output: mask, count: g.small.count) }
  }

  @inlinable
  public static func convScatter(
    _ g: ConvWindow, weight: UnsafePointer<Self>, bias: UnsafePointer<Self>?, relu: Bool, mask: UnsafePointer<Self>?,
    small: UnsafePointer<Self>, large: UnsafeMutablePointer<Self>, scratch: UnsafeMutablePointer<Self>
  ) {
    referenceScatter(g, weight: weight, bias: bias, relu: relu, small: small, large: large)
    if let mask { VAECore.reluBackward(dy: large, output: mask, count: g.large.count) }
  }

  @inlinable
  public static func convWeightGradient(
    _ g: ConvWindow, small: UnsafePointer<Self>, large: UnsafePointer<Self>, dWeight: UnsafeMutablePointer<Self>
  ) {
    referenceWeightGradient(g, small: small, large: large, dWeight: dWeight)
  }

  @inlinable
  public static func gridSums(_ grid: UnsafePointer<Self>, shape: GridShape, into sums: UnsafeMutablePointer<Self>) {
    referenceGridSums(grid, shape: shape, into: sums)
  }

  @inlinable
  public static func dense(
    weight: UnsafePointer<Self>, outStride: Int, inStride: Int, bias: UnsafePointer<Self>?, relu: Bool,
    mask: UnsafePointer<Self>?, accumulate: Bool, input: UnsafePointer<Self>, inOffsets: FeatureOffsets,
    output: UnsafeMutablePointer<Self>, outOffsets: FeatureOffsets, lanes: Int
  ) {
    referenceDense(
      weight: weight, outStride: outStride, inStride: inStride, bias: bias, relu: relu, accumulate: accumulate,
      input: input, inOffsets: inOffsets, output: output, outOffsets: outOffsets, lanes: lanes)
    if let mask {
      for o in 0..<outOffsets.count {
        VAECore.reluBackward(dy: output + outOffsets.pointer[o], output: mask + outOffsets.pointer[o], count: lanes)
      }
    }
  }

  @inlinable
  public static func denseWeightGradient(
    dWeight: UnsafeMutablePointer<Self>, outStride: Int, inStride: Int, dBias: UnsafeMutablePointer<Self>?,
    dy: UnsafePointer<Self>, dyOffsets: FeatureOffsets, x: UnsafePointer<Self>, xOffsets: FeatureOffsets, lanes: Int
  ) {
    referenceDenseWeightGradient(
      dWeight: dWeight, outStride: outStride, inStride: inStride, dBias: dBias, dy: dy, dyOffsets: dyOffsets, x: x,
      xOffsets: xOffsets, lanes: lanes)
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
  public static func convGather(
    _ g: ConvWindow, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, relu: Bool, mask: UnsafePointer<Float>?,
    large: UnsafePointer<Float>, small: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
  ) {
    var window = g.c
    vdk_conv_gather(&window, weight, bias, relu ? 1 : 0, mask, large, small, scratch)
  }

  public static func convScatter(
    _ g: ConvWindow, weight: UnsafePointer<Float>, bias: UnsafePointer<Float>?, relu: Bool, mask: UnsafePointer<Float>?,
    small: UnsafePointer<Float>, large: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
  ) {
    var window = g.c
    vdk_conv_scatter(&window, weight, bias, relu ? 1 : 0, mask, small, large, scratch)
  }

  public static func convWeightGradient(
    _ g: ConvWindow, small: UnsafePointer<Float>, large: UnsafePointer<Float>, dWeight: UnsafeMutablePointer<Float>
  ) {
    var window = g.c
    vdk_conv_weight_grad(&window, small, large, dWeight)
  }

  public static func gridSums(_ grid: UnsafePointer<Float>, shape: GridShape, into sums: UnsafeMutablePointer<Float>) {
    vdk_grid_sums(grid, shape.channels, shape.side, shape.lanes, sums)
  }

  public static func dense(
    weight: UnsafePointer<Float>, outStride: Int, inStride: Int, bias: UnsafePointer<Float>?, relu: Bool,
    mask: UnsafePointer<Float>?, accumulate: Bool, input: UnsafePointer<Float>, inOffsets: FeatureOffsets,
    output: UnsafeMutablePointer<Float>, outOffsets: FeatureOffsets, lanes: Int
  ) {
    vdk_dense(
      weight, outStride, inStride, bias, relu ? 1 : 0, mask, accumulate ? 1 : 0, input, inOffsets.pointer, inOffsets.count,
      output, outOffsets.pointer, outOffsets.count, lanes)
  }

  public static func denseWeightGradient(
    dWeight: UnsafeMutablePointer<Float>, outStride: Int, inStride: Int, dBias: UnsafeMutablePointer<Float>?,
    dy: UnsafePointer<Float>, dyOffsets: FeatureOffsets, x: UnsafePointer<Float>, xOffsets: FeatureOffsets, lanes: Int
  ) {
    vdk_dense_weight_grad(
      dWeight, outStride, inStride, dBias, dy, dyOffsets.pointer, dyOffsets.count, x, xOffsets.pointer, xOffsets.count,
      lanes)
  }

  public static func reluBackward(dy: UnsafeMutablePointer<Float>, output: UnsafePointer<Float>, count: Int) {
    vdk_relu_backward(dy, output, count)
  }

  public static func bceWithLogits(
    logits: UnsafePointer<Float>, targets: UnsafePointer<Float>, dLogits: UnsafeMutablePointer<Float>?,
    batch: Int, pixels: Int, perImage: UnsafeMutablePointer<Double>?
  ) -> Double {
    vdk_bce_with_logits(logits, targets, dLogits, batch, pixels, perImage)
  }
}

/// The build of the elementwise Float kernels (ReLU, the loss, the reduction's conversions, Adam, the
/// bf16 rounding) that runs with the active `KernelVariant`: "avx512" with avx512, "avx2" with avx2
/// and avx512_on_avx2, "baseline" (SSE2) with portable. Every build gives the same bits.
public func kernelInstructionSet() -> String { String(cString: vdk_instruction_set()) }

/// The convolution kernels' variants, widest first. `avx512_on_avx2` is the avx512 variant's code
/// built for AVX2 (and its bf16 pair kernels with VDPBF16PS modelled by two FMAs): slower than
/// `avx2`, it lets a CPU without AVX-512 run and test the code an AVX-512 CPU runs.
public enum KernelVariant: String, CaseIterable, Sendable {
  case avx512, avx2, avx512OnAVX2 = "avx512_on_avx2", portable

  /// Whether this CPU has the variant's instructions.
  public var isSupported: Bool { vdk_kernels_supported(rawValue) != 0 }

  /// The variants this CPU has, widest first.
  public static var supported: [KernelVariant] { allCases.filter(\.isSupported) }

  /// One variant this CPU has for each build of the elementwise kernels, widest first: what a test of
  /// those kernels selects in turn.
  public static var elementwiseBuilds: [KernelVariant] {
    supported.reduce(into: []) { chosen, v in
      if !chosen.contains(where: { $0.elementwiseBuild == v.elementwiseBuild }) { chosen.append(v) }
    }
  }

  /// Goes back to the default, the widest variant this CPU has.
  public static func selectDefault() { try! supported[0].select() }

  /// Runs `body` once with each of `elementwiseBuilds` selected, then goes back to the default: how a
  /// test runs every build of the elementwise kernels this CPU has.
  public static func withEachElementwiseBuild(_ body: () throws -> Void) rethrows {
    defer { selectDefault() }
    for variant in elementwiseBuilds {
      try! variant.select()  // supported, so it cannot fail
      try body()
    }
  }

  /// The variant in use: the widest this CPU has, unless `select` chose one.
  public static var active: KernelVariant { KernelVariant(rawValue: String(cString: vdk_kernels_name())) ?? .portable }

  /// The build of the elementwise kernels that runs with this variant (`kernelInstructionSet()`).
  public var elementwiseBuild: String {
    switch self {
    case .avx512: "avx512"
    case .avx2, .avx512OnAVX2: "avx2"
    case .portable: "baseline"
    }
  }

  /// Uses this variant from now on; call before any kernel runs. Every variant gives the same bits.
  public func select() throws {
    switch vdk_select_kernels(rawValue) {
    case 0: return
    default: throw KernelVariantError.unsupported(self)
    }
  }
}

public enum KernelVariantError: Error, CustomStringConvertible, Equatable {
  case unsupported(KernelVariant)
  case unknown(String)

  public var description: String {
    switch self {
    case .unsupported(let v):
      return "VAE_DIST_KERNELS=\(v.rawValue): this CPU lacks the instructions of the \(v.rawValue) kernels; "
        + "choose one of \(KernelVariant.supported.map(\.rawValue).joined(separator: ", ")) or unset it."
    case .unknown(let name):
      return "VAE_DIST_KERNELS=\(name) is not a kernel variant; choose one of "
        + "\(KernelVariant.allCases.map(\.rawValue).joined(separator: ", ")) or unset it."
    }
  }
}
