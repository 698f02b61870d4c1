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

/// Whether this CPU's VDPBF16PS gives the model's bits: 65,536 lanes of operands spread over the
/// exponents where sums cancel, products underflow into denormals or overflow, accumulators are
/// denormal, zeros of both signs and infinities (a NaN matches any NaN). Call with DAZ and FTZ set.
__attribute__((target("avx512f,avx512bf16,avx2,fma"))) static int vdk_bf16_native_matches(void) {
  unsigned state = 2463534242u;
#define VDK_NEXT() (state ^= state << 13, state ^= state >> 17, state ^= state << 5, state)
  // A bf16 with a random sign and mantissa and an exponent near `e` (clamped to [0, 255]).
#define VDK_BF16_NEAR(e)                                                                          \
  ({                                                                                              \
    const unsigned r_ = VDK_NEXT();                                                               \
    long x_ = (long)(e) + (long)(r_ >> 8 & 15) - 8;                                               \
    x_ = x_ < 0 ? 0 : x_ > 255 ? 255 : x_;                                                        \
    (unsigned)((r_ & 0x8000u) | (unsigned)x_ << 7 | (r_ & 0x7fu));                               \
  })
  for (int round = 0; round < 4096; round++) {
    // The exponents of this round: around 1, the smallest normals, the largest, or far apart.
    static const int centres[][3] = {{127, 127, 127}, {63, 63, 0}, {190, 190, 254}, {127, 127, 140},
                                     {66, 66, 10}, {127, 127, 100}, {200, 190, 255}, {20, 120, 0}};
    const int *c = centres[round % 8];
    unsigned xs[16], ws[16], as[16], ms[16], ns[16];
    for (int l = 0; l < 16; l++) {
      xs[l] = VDK_BF16_NEAR(c[0]) << 16 | VDK_BF16_NEAR(c[0]);
      ws[l] = VDK_BF16_NEAR(c[1]) << 16 | VDK_BF16_NEAR(c[1]);
      as[l] = VDK_BF16_NEAR(c[2]) << 16 | (VDK_NEXT() & 0xffffu);
    }
    const vdk_u16 x = vdk_load(vdk_u16, xs), w = vdk_load(vdk_u16, ws);
    const vdk_v16 acc = (vdk_v16)vdk_load(vdk_u16, as);
    vdk_store(vdk_u16, ms, (vdk_u16)vdk_dpbf16_model(acc, x, w));
    vdk_store(vdk_u16, ns, (vdk_u16)vdk_dpbf16_native(acc, x, w));
    for (int l = 0; l < 16; l++) {
      const int nan = (ms[l] & 0x7fffffffu) > 0x7f800000u && (ns[l] & 0x7fffffffu) > 0x7f800000u;
      if (ms[l] != ns[l] && !nan) return 0;
    }
  }
#undef VDK_BF16_NEAR
#undef VDK_NEXT
  return 1;
}
