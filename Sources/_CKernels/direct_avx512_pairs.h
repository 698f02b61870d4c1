// The avx512 variant's bf16 pair kernels' operations (direct_avx512_on_avx2_bf16.c,
// direct_avx512_bf16.c and the check in direct_bf16_check.h), modelled and native. The model is the
// instruction's definition (Intel SDM, VDPBF16PS): per float lane, acc + hi·hi then + lo·lo, each step
// one fused multiply-add rounded to nearest even with denormal inputs and results flushed to zero.
// The kernels run with MXCSR's DAZ and FTZ set (direct_bf16.h), so the model's FMAs flush as the
// instruction does; vdk_bf16_native_matches checks the instruction against the model on this CPU
// before the native kernels are used.
#ifndef VDK_DIRECT_AVX512_PAIRS_H
#define VDK_DIRECT_AVX512_PAIRS_H

/// VDPBF16PS on vectors of 16 floats (acc) and 16 pairs (x, w), as its definition reads.
#define vdk_dpbf16_model(acc, x, w)                                                                     \
  ({                                                                                                    \
    const vdk_u16 x_ = (x), w_ = (w);                                                                   \
    const vdk_v16 hi_ = vdk_fma((vdk_v16)(x_ & 0xffff0000u), (vdk_v16)(w_ & 0xffff0000u), (acc));      \
    vdk_fma((vdk_v16)(x_ << 16), (vdk_v16)(w_ << 16), hi_);                                            \
  })
#define vdk_dpbf16_native(acc, x, w) ((vdk_v16)_mm512_dpbf16_ps((__m512)(acc), (__m512bh)(x), (__m512bh)(w)))

/// Two vectors of 16 floats rounded to bf16 into 16 pairs, lane by lane hi's in the high halves and
/// lo's in the low ones (the window panels' rows): VDK_BF16_ROUND written out (VCVTNEPS2BF16's
/// definition), or VCVTNE2PS2BF16 (lo's 16 results, then hi's) with VPERMW interleaving them.
#define vdk_pair_rows_model(hi, lo)                                                                     \
  ((vdk_u16)VDK_BF16_ROUND(vdk_u16, (vdk_u16)(hi)) | (vdk_u16)VDK_BF16_ROUND(vdk_u16, (vdk_u16)(lo)) >> 16)
#define vdk_pair_rows_native(hi, lo)                                                                    \
  ((vdk_u16)_mm512_permutexvar_epi16(                                                                   \
      _mm512_set_epi16(31, 15, 30, 14, 29, 13, 28, 12, 27, 11, 26, 10, 25, 9, 24, 8, 23, 7, 22, 6, 21, 5,  \
                       20, 4, 19, 3, 18, 2, 17, 1, 16, 0),                                               \
      (__m512i)_mm512_cvtne2ps_pbh((__m512)(hi), (__m512)(lo))))
/// A vector of 16 floats rounded to bf16 into 8 pairs of neighbouring lanes, lane 2k in pair k's
/// high half (the weight gradient's large grid): written out, or VCVTNEPS2BF16 with each pair's
/// halves swapped.
#define vdk_pair_lanes_model(x)                                                                         \
  ({                                                                                                    \
    const vdk_u16 r_ = VDK_BF16_ROUND(vdk_u16, (vdk_u16)(x));                                           \
    (vdk_u8)__builtin_shufflevector(r_, r_, 0, 2, 4, 6, 8, 10, 12, 14) |                                \
        (vdk_u8)__builtin_shufflevector(r_, r_, 1, 3, 5, 7, 9, 11, 13, 15) >> 16;                       \
  })
#define vdk_pair_lanes_native(x) ((vdk_u8)_mm256_ror_epi32((__m256i)_mm512_cvtneps_pbh((__m512)(x)), 16))

#endif
