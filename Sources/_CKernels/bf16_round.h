// Rounding float32 to bfloat16 as VCVTNEPS2BF16 does, on a vector of float bits (included by
// kernels.c for vdk_round_bf16 and by the direct kernels for the modelled bf16 pair kernels, which round their
// operands as they pack them, and for the check of the native ones' rounding instructions: one rule,
// checked by BF16KernelTests on its edge cases).
#ifndef VDK_BF16_ROUND_H
#define VDK_BF16_ROUND_H

/// The bits u (a vector of type U, unsigned) rounded to bf16, kept in the high halves (the low halves
/// 0): to nearest even; zeros and denormals to a zero of their sign; infinities kept; NaNs made quiet.
/// A carry out of the largest finite values reaches infinity, as it must.
#define VDK_BF16_ROUND(U, u)                                                                   \
  ({                                                                                           \
    const U u_ = (u), e_ = u_ & 0x7f800000u;                                                   \
    const U zero_ = (U)(e_ == 0), top_ = (U)(e_ == 0x7f800000u);                               \
    const U nan_ = top_ & (U)((u_ & 0x007fffffu) != 0);                                        \
    const U near_ = (u_ + 0x7fffu + ((u_ >> 16) & 1u)) & 0xffff0000u;                          \
    const U special_ = (zero_ & u_ & 0x80000000u) | (top_ & (u_ | (nan_ & 0x00400000u)) & 0xffff0000u); \
    (near_ & ~(zero_ | top_)) | special_;                                                      \
  })

#endif
