import _CKernels

/// The arithmetic of the convolutions and dense products. `fp32`: float operands, float sums. `bf16`:
/// the operands (weights, activations, gradients) rounded to bfloat16, multiplied into float sums in
/// fp32's fixed order with denormals flushed, as AVX512_BF16's VDPBF16PS does; the parameters, the
/// loss, the reduction, Adam and the checkpoints stay float. Both give the same bits on every CPU and
/// kernel variant: with the avx512 kernels on a CPU with AVX512_BF16 the convolutions run VDPBF16PS
/// (BF16Mode.native); elsewhere they are emulated exactly on the float kernels.
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
    case .bf16: return "bf16 (\(BF16Mode.active.description))"
    }
  }
}

/// How the bf16 products run with the active kernel variant. The bits are the same every way.
public enum BF16Mode: Sendable {
  /// The avx512 variant's pair kernels with VDPBF16PS (the window and weight-gradient passes).
  case native
  /// avx512_on_avx2's pair kernels, VDPBF16PS modelled by two FMAs: the native kernels' code, checked.
  case modelled
  /// The variant's float kernels on operands rounded to bf16.
  case emulated
  /// Emulated because this CPU's VDPBF16PS did not give the model's bits (checked before first use).
  case emulatedInstructionDiffers

  public static var active: BF16Mode {
    switch Int(vdk_bf16_mode()) {
    case VDK_BF16_NATIVE: return .native
    case VDK_BF16_MODELLED: return .modelled
    case VDK_BF16_EMULATED_DIFFERS: return .emulatedInstructionDiffers
    default: return .emulated
    }
  }

  public var description: String {
    switch self {
    case .native: return "native: VDPBF16PS"
    case .modelled: return "VDPBF16PS modelled by FMAs: the avx512 bf16 kernels' code on AVX2"
    case .emulatedInstructionDiffers:
      let difference = String(cString: vdk_bf16_check_difference())
      return "emulated: this CPU's bf16 instructions do not give the reference bits\(difference.isEmpty ? "" : " (\(difference))"); see docs/precision.md"
    case .emulated:
      if !Precision.cpuHasBF16 { return "emulated: this CPU lacks AVX512_BF16" }
      return "emulated: the \(KernelVariant.active.rawValue) kernels have no VDPBF16PS; the avx512 ones do"
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
