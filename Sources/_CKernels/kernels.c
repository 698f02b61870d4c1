// The elementwise kernels (the convolutions and dense products are in direct.c). See
// include/CKernels.h for what each function computes and README.md for why it is C.
//
// Every kernel (elementwise_body.h) is compiled three times, for the instruction sets of the
// convolutions' variants: AVX-512 (avx512), AVX2 + FMA (avx2, avx512_on_avx2) and the baseline
// (portable), and each call runs the build that goes with the active variant (vdk_elementwise_build),
// so a test can run every build the CPU has. Contraction into FMAs is off (the pragma below), no
// fast-math flag is used, and reductions keep explicit lane accumulators, so the three builds do the
// same IEEE operations in the same order and produce the same bits. The flags live here rather than
// in Package.swift, which then needs no unsafeFlags.
#include "CKernels.h"
#include "bf16_round.h"
#include "elementwise_builds.h"

#pragma STDC FP_CONTRACT OFF

#include <math.h>

typedef union {
  double d;
  unsigned long long u;
} vdk_bits;

enum { LANES = 16, BCE_CHUNK = 256 };

/// One build's kernels, named after the variant's instruction set.
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

#define VDK_ELEMENTWISE(s)                                                                                  \
  {                                                                                                      \
    #s, relu_backward_##s, bce_with_logits_##s, max_abs_##s, add_fixed_point_##s, from_fixed_point_##s,  \
        adam_##s, round_bf16_##s                                                                        \
  }

// no_builtin: a copy of a 16-float run stays inline vector moves, not a call to memcpy or memset.
#define VDK_EW(name) name##_baseline
#pragma clang attribute push(__attribute__((no_builtin("memcpy", "memset"))), apply_to = function)
#include "elementwise_body.h"
#pragma clang attribute pop
#undef VDK_EW

#if defined(__x86_64__) && defined(__clang__)
// The targets of the direct kernels' avx2 and avx512 variants, which vdk_cpu_has checks.
#define VDK_EW(name) name##_avx2
#pragma clang attribute push(__attribute__((target("avx2,fma"), no_builtin("memcpy", "memset"))), apply_to = function)
#include "elementwise_body.h"
#pragma clang attribute pop
#undef VDK_EW

#define VDK_EW(name) name##_avx512
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"), no_builtin("memcpy", "memset"))), apply_to = function)
#include "elementwise_body.h"
#pragma clang attribute pop
#undef VDK_EW
#endif

static const VDKElementwise vdk_builds[] = {
    [VDK_ELEMENTWISE_BASELINE] = VDK_ELEMENTWISE(baseline),
#if defined(__x86_64__) && defined(__clang__)
    [VDK_ELEMENTWISE_AVX2] = VDK_ELEMENTWISE(avx2),
    [VDK_ELEMENTWISE_AVX512] = VDK_ELEMENTWISE(avx512),
#endif
};

static const VDKElementwise *vdk_build(void) { return &vdk_builds[vdk_elementwise_build()]; }

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
