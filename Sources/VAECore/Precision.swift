import _CKernels

/// The arithmetic of the convolutions and dense products. `fp32`: float operands, float sums. `bf16`:
/// the operands (weights, activations, gradients) rounded to bfloat16, multiplied into float sums in
/// fp32's fixed order with denormals flushed, as AVX512_BF16's VDPBF16PS does; the parameters, the
/// loss, the reduction, Adam and the checkpoints stay float. Both give the same bits on every CPU and
/// kernel variant. This build computes bf16 by exact emulation on the float kernels everywhere (the
/// native VDPBF16PS kernels are not written yet): bf16 changes the numbers, at about fp32's speed.
public enum Precision: String, Codable, CaseIterable, Sendable {
  case fp32, bf16

  /// Uses this precision from now on; call before any kernel runs.
  public func select() { vdk_set_bf16(self == .bf16 ? 1 : 0) }

  /// The precision in use.
  public static var active: Precision { vdk_bf16() != 0 ? .bf16 : .fp32 }

  /// Whether this CPU has AVX512_BF16.
  public static var cpuHasBF16: Bool { vdk_cpu_has_bf16() != 0 }

  /// What the banner says: "fp32", or bf16 and how it is computed here.
  public var banner: String {
    switch self {
    case .fp32: return "fp32"
    case .bf16:
      return Self.cpuHasBF16
        ? "bf16 (emulated: this build has no native AVX512_BF16 kernels yet)"
        : "bf16 (emulated: this CPU lacks AVX512_BF16)"
    }
  }
}

/// x rounded to bf16 (to nearest even, denormals to zero, NaN quiet) as the bf16 kernels round their
/// operands, as a Float.
public func roundedToBF16(_ x: Float) -> Float {
  var value = x, out: Float = 0
  vdk_round_bf16(&value, &out, 1)
  return out
}
