// The avx512 variant's other builds (included by direct.c after it):
//   avx512_on_avx2       its code for AVX2 + FMA (a 16-float vector is two registers), so CPUs without
//                        AVX-512 run and test the code the avx512 variant runs;
//   avx512_bf16          its bf16 pair kernels with VDPBF16PS (AVX512_BF16);
//   avx512_on_avx2_bf16  the same pair kernels for AVX2 + FMA, VDPBF16PS modelled by two FMAs.
// The model is the instruction's definition (Intel SDM, VDPBF16PS): per float lane, acc + hi·hi then
// + lo·lo, each step one fused multiply-add rounded to nearest even with denormal inputs and results
// flushed to zero. The kernels run with MXCSR's DAZ and FTZ set (direct_bf16.h), so the model's FMAs
// flush as the instruction does; vdk_bf16_native_matches checks the instruction against the model on
// this CPU before the native kernels are used.

#define VDK_SUFFIX avx512_on_avx2
#include "direct_avx512_blocking.h"
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#include "direct_body.h"
#pragma clang attribute pop

/// VDPBF16PS on vectors of 16 floats (acc) and 16 pairs (x, w), as its definition reads.
#define vdk_dpbf16_model(acc, x, w)                                                                     \
  ({                                                                                                    \
    const vdk_u16 x_ = (x), w_ = (w);                                                                   \
    const vdk_v16 hi_ = vdk_fma((vdk_v16)(x_ & 0xffff0000u), (vdk_v16)(w_ & 0xffff0000u), (acc));      \
    vdk_fma((vdk_v16)(x_ << 16), (vdk_v16)(w_ << 16), hi_);                                            \
  })
#define vdk_dpbf16_native(acc, x, w) ((vdk_v16)_mm512_dpbf16_ps((__m512)(acc), (__m512bh)(x), (__m512bh)(w)))

#define VDK_SUFFIX avx512_on_avx2_bf16
#define VDK_PAIRS 1
#define vdk_dpbf16 vdk_dpbf16_model
#include "direct_avx512_blocking.h"
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#include "direct_body.h"
#pragma clang attribute pop
#undef vdk_dpbf16

#define VDK_SUFFIX avx512_bf16
#define VDK_PAIRS 1
#define vdk_dpbf16 vdk_dpbf16_native
#include "direct_avx512_blocking.h"
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,avx2,fma"))), \
                             apply_to = function)
#include "direct_body.h"
#pragma clang attribute pop
#undef vdk_dpbf16
