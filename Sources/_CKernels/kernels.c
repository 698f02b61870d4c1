// The elementwise kernels (the convolutions and dense products are in direct.c). See
// include/CKernels.h for what each function computes and README.md for why it is C.
//
// Every kernel (elementwise_body.h) is compiled three times: x86-64-v4 (AVX-512), x86-64-v3 (AVX2) and
// the baseline, and each call runs the build that goes with the convolutions' variant (vdk_build,
// below), so a test can run every build the CPU has. Contraction into FMAs is off (the pragma below),
// no fast-math flag is used, and reductions keep explicit lane accumulators, so the three builds do
// the same IEEE operations in the same order and produce the same bits. The flags live here rather
// than in Package.swift, which then needs no unsafeFlags.
#include "CKernels.h"
#include "bf16_round.h"

#pragma STDC FP_CONTRACT OFF

#include <math.h>
#include <string.h>

typedef union {
  double d;
  unsigned long long u;
} vdk_bits;

enum { LANES = 16, BCE_CHUNK = 256 };

// The builds: x86-64-v4 (AVX-512), x86-64-v3 (AVX2 + FMA) and the baseline (SSE2). no_builtin: a copy of
// a 16-float run stays inline vector moves, not a call to memcpy or memset.
typedef struct {
  const char *name;
  void (*relu_backward)(float *, const float *, long);
  double (*bce_with_logits)(const float *, const float *, float *, long, long, double *);
  float (*max_abs)(const float *, long);
  void (*add_fixed_point)(const float *, int64_t *, long, double);
  void (*from_fixed_point)(const int64_t *, float *, long, double);
  void (*adam)(float *, const float *, float *, float *, long, float, float, float, float, float);
  void (*round_bf16)(const float *, float *, long);
} VDKElementwise;

#define VDK_ELEMENTWISE(s, label)                                                                          \
  {                                                                                                   \
    label, relu_backward_##s, bce_with_logits_##s, max_abs_##s, add_fixed_point_##s, from_fixed_point_##s, \
        adam_##s, round_bf16_##s                                                                     \
  }

#define VDK_EW(name) name##_baseline
#pragma clang attribute push(__attribute__((no_builtin("memcpy", "memset"))), apply_to = function)
#include "elementwise_body.h"
#pragma clang attribute pop
#undef VDK_EW

#if defined(__x86_64__) && defined(__clang__)
#define VDK_EW(name) name##_v3
#pragma clang attribute push(__attribute__((target("arch=x86-64-v3"), no_builtin("memcpy", "memset"))), apply_to = function)
#include "elementwise_body.h"
#pragma clang attribute pop
#undef VDK_EW

#define VDK_EW(name) name##_v4
#pragma clang attribute push(__attribute__((target("arch=x86-64-v4"), no_builtin("memcpy", "memset"))), apply_to = function)
#include "elementwise_body.h"
#pragma clang attribute pop
#undef VDK_EW
#endif

static const VDKElementwise vdk_builds[] = {
    VDK_ELEMENTWISE(baseline, "baseline"),
#if defined(__x86_64__) && defined(__clang__)
    VDK_ELEMENTWISE(v3, "x86-64-v3"),
    VDK_ELEMENTWISE(v4, "x86-64-v4"),
#endif
};

/// The build that goes with the convolutions' variant (direct.c): the portable variant runs with the
/// baseline, avx2 and avx512_on_avx2 with x86-64-v3, avx512 with x86-64-v4 where the CPU has all of
/// it. So VAE_DIST_KERNELS=portable runs the whole step as a CPU without AVX2 would.
static const VDKElementwise *vdk_build(void) {
#if defined(__x86_64__) && defined(__clang__)
  const char *variant = vdk_kernels_name();
  if (!strcmp(variant, "portable")) return &vdk_builds[0];
  __builtin_cpu_init();
  if (!strcmp(variant, "avx512") && __builtin_cpu_supports("x86-64-v4")) return &vdk_builds[2];
  return &vdk_builds[1];
#else
  return &vdk_builds[0];
#endif
}

void vdk_relu_backward(float *dy, const float *output, long count) { vdk_build()->relu_backward(dy, output, count); }

double vdk_bce_with_logits(const float *logits, const float *targets, float *dlogits, long batch, long pixels,
                           double *per_image) {
  return vdk_build()->bce_with_logits(logits, targets, dlogits, batch, pixels, per_image);
}

float vdk_max_abs(const float *x, long count) { return vdk_build()->max_abs(x, count); }

void vdk_add_fixed_point(const float *x, int64_t *sums, long count, double scale) {
  vdk_build()->add_fixed_point(x, sums, count, scale);
}

void vdk_from_fixed_point(const int64_t *sums, float *out, long count, double inverse_scale) {
  vdk_build()->from_fixed_point(sums, out, count, inverse_scale);
}

void vdk_adam(float *parameters, const float *gradient_sum, float *m, float *v, long count, float divisor, float alpha,
              float beta1, float beta2, float epsilon) {
  vdk_build()->adam(parameters, gradient_sum, m, v, count, divisor, alpha, beta1, beta2, epsilon);
}

void vdk_round_bf16(const float *x, float *out, long count) { vdk_build()->round_bf16(x, out, count); }

const char *vdk_instruction_set(void) { return vdk_build()->name; }
