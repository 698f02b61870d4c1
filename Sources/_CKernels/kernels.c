// The elementwise kernels (the convolutions and dense products are in direct.c). See
// include/CKernels.h for what each function computes and README.md for why it is C.
//
// Every kernel is compiled three times (target_clones) and the dynamic loader picks, once, the
// variant for the CPU it runs on: x86-64-v4 (AVX-512), x86-64-v3 (AVX2) or the baseline. Contraction
// into FMAs is off (the pragma below), no fast-math flag is used, and reductions keep explicit lane
// accumulators, so the three variants do the same IEEE operations in the same order and produce the
// same bits. The flags live here rather than in Package.swift, which then needs no unsafeFlags.
#include "CKernels.h"

#pragma STDC FP_CONTRACT OFF

#include <math.h>

#if defined(__x86_64__) && defined(__clang__)
// no_builtin: a copy of a 16-float run stays inline vector moves, not a call to memcpy or memset.
#define VDK_CLONES \
  __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default"), no_builtin("memcpy", "memset")))
#else
#define VDK_CLONES
#endif

enum { LANES = 16 };

VDK_CLONES
void vdk_relu_backward(float *dy, const float *output, long count) {
  for (long i = 0; i < count; i++) dy[i] = output[i] > 0 ? dy[i] : 0;
}

VDK_CLONES
double vdk_bce_with_logits(const float *logits, const float *targets, float *dlogits, long batch,
                           long pixels, double *per_image) {
  double total = 0;
  for (long n = 0; n < batch; n++) {
    const float *l = logits + n * pixels, *x = targets + n * pixels;
    float *d = dlogits + n * pixels;
    double sum = 0;
    for (long p = 0; p < pixels; p++) {
      const float v = l[p], e = expf(-fabsf(v));
      // BCE(σ(v), x) = max(v, 0) − v·x + log(1 + e^−|v|);  σ(v) = 1/(1+e) for v ≥ 0, e/(1+e) below.
      sum += (double)((v > 0 ? v : 0) - v * x[p] + log1pf(e));
      const float sigma = v >= 0 ? 1 / (1 + e) : e / (1 + e);
      d[p] = sigma - x[p];
    }
    if (per_image) per_image[n] = sum;
    total += sum;
  }
  return total;
}

VDK_CLONES
float vdk_max_abs(const float *x, long count) {
  float lane[LANES] = {0};
  int finite = 1;
  long i = 0;
  for (; i + LANES <= count; i += LANES) {
    for (long l = 0; l < LANES; l++) {
      const float a = fabsf(x[i + l]);
      finite &= a <= 3.40282347e38f;
      lane[l] = a > lane[l] ? a : lane[l];
    }
  }
  float largest = 0;
  for (long l = 0; l < LANES; l++) largest = lane[l] > largest ? lane[l] : largest;
  for (; i < count; i++) {
    const float a = fabsf(x[i]);
    finite &= a <= 3.40282347e38f;
    largest = a > largest ? a : largest;
  }
  return finite ? largest : INFINITY;
}

VDK_CLONES
void vdk_add_fixed_point(const float *x, int64_t *sums, long count, double scale) {
  for (long i = 0; i < count; i++) sums[i] += (int64_t)rint((double)x[i] * scale);
}

VDK_CLONES
void vdk_from_fixed_point(const int64_t *sums, float *out, long count, double inverse_scale) {
  for (long i = 0; i < count; i++) out[i] = (float)((double)sums[i] * inverse_scale);
}

const char *vdk_instruction_set(void) {
#if defined(__x86_64__) && defined(__clang__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return "x86-64-v4";
  if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3";
#endif
  return "baseline";
}

/// fp32 bits rounded to bf16 (kept in the high half, the low half 0) as VCVTNEPS2BF16 rounds: to
/// nearest even; zeros and denormals to a zero of their sign; infinities kept; NaNs made quiet.
static inline unsigned vdk_bf16_bits(unsigned u) {
  const unsigned exponent = u & 0x7f800000u, nan = exponent == 0x7f800000u && (u & 0x007fffffu);
  const unsigned rounded = (u + 0x7fffu + ((u >> 16) & 1)) & 0xffff0000u;  // a carry may reach ∞: right
  return exponent == 0 ? u & 0x80000000u : exponent == 0x7f800000u ? (nan ? (u | 0x00400000u) & 0xffff0000u : u) : rounded;
}

VDK_CLONES
void vdk_round_bf16(const float *x, float *out, long count) {
  typedef unsigned vdk_bits __attribute__((may_alias));
  const vdk_bits *in = (const vdk_bits *)x;
  vdk_bits *o = (vdk_bits *)out;
  for (long i = 0; i < count; i++) o[i] = vdk_bf16_bits(in[i]);
}
