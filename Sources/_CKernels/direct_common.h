// What every translation unit of the direct kernels shares: direct.c (the choice of a build and the
// public entry points) and one file per build of the kernels (direct_avx512.c, direct_avx2.c,
// direct_avx512_on_avx2.c, direct_avx512_on_avx2_bf16.c, direct_avx512_bf16.c, direct_portable.c,
// direct_portable_bf16.c, direct_portable_bf16_in_range.c), which the compiler builds side by side:
// the vector types, loads and stores, the helpers the kernels inline, the thread's buffers, the
// windows' geometry and each build's entry points. One file held every build until 2026-12-04; under
// AddressSanitizer it took 74 s to compile on a Zen 1, alone on one core while every Swift module
// that imports the kernels waited for it.
#ifndef VDK_DIRECT_COMMON_H
#define VDK_DIRECT_COMMON_H
#include "CKernels.h"
#include "bf16_round.h"
#include "elementwise_builds.h"

// In every file that includes this one: no multiply and add is fused unless the source says so.
#pragma STDC FP_CONTRACT OFF

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>
#endif

/// Internal to the kernels: shared between their files, not part of CKernels.h.
#define VDK_INTERNAL __attribute__((visibility("hidden")))

enum { VDK_LANES = 16, VDK_MAX_POSITIONS = 28 * 28 };

typedef float vdk_v16 __attribute__((ext_vector_type(16)));
typedef float vdk_v8 __attribute__((ext_vector_type(8)));
typedef float vdk_v4 __attribute__((ext_vector_type(4)));
typedef unsigned vdk_u16 __attribute__((ext_vector_type(16)));
typedef unsigned vdk_u8 __attribute__((ext_vector_type(8)));

// Macros rather than functions: a vector wider than the variant's registers may not cross a call
// (clang refuses the ABI change), even an inlined one. `T` is the variant's vector type.
// Loads and stores through an alias of alignment 4: the buffers the model uses are 64-byte aligned,
// but callers (tests) may pass any float array, and unaligned vector moves cost nothing on aligned data.
#define vdk_load(T, p) ({ typedef T vdk_u_ __attribute__((aligned(4))); *(const vdk_u_ *)(p); })
#define vdk_store(T, p, v) ({ typedef T vdk_u_ __attribute__((aligned(4))); *(vdk_u_ *)(p) = (v); })
#define vdk_fma(a, b, c) __builtin_elementwise_fma((a), (b), (c))

/// The fixed sum of the 16 lanes at p: (l + l+8), then (+4), (+2), (+1).
static inline float vdk_lane_tree(const float *p) {
  float h8[8], h4[4];
  for (int k = 0; k < 8; k++) h8[k] = p[k] + p[k + 8];
  for (int k = 0; k < 4; k++) h4[k] = h8[k] + h8[k + 4];
  return (h4[0] + h4[2]) + (h4[1] + h4[3]);
}

/// Stores the 8 × 8 block r (r[c][k]: row c, column k) transposed: out[k · stride + c] = r[c][k].
/// Pairs of rows interleaved, then pairs of pairs, then the 128-bit halves. (A pointer, not vectors
/// by value: a 256-bit vector may not cross even an inlined call in the SSE-only variant.)
static inline __attribute__((always_inline)) void vdk_transpose8(const vdk_v8 *r, float *out, long stride) {
  vdk_v8 a[8], b[8];
  for (int c = 0; c < 8; c += 2) {
    a[c] = __builtin_shufflevector(r[c], r[c + 1], 0, 8, 1, 9, 4, 12, 5, 13);
    a[c + 1] = __builtin_shufflevector(r[c], r[c + 1], 2, 10, 3, 11, 6, 14, 7, 15);
  }
  for (int c = 0; c < 8; c += 4)
    for (int h = 0; h < 2; h++) {
      b[c + 2 * h] = __builtin_shufflevector(a[c + h], a[c + 2 + h], 0, 1, 8, 9, 4, 5, 12, 13);
      b[c + 2 * h + 1] = __builtin_shufflevector(a[c + h], a[c + 2 + h], 2, 3, 10, 11, 6, 7, 14, 15);
    }
  for (int k = 0; k < 4; k++) {
    vdk_store(vdk_v8, out + k * stride, __builtin_shufflevector(b[k], b[4 + k], 0, 1, 2, 3, 8, 9, 10, 11));
    vdk_store(vdk_v8, out + (k + 4) * stride, __builtin_shufflevector(b[k], b[4 + k], 4, 5, 6, 7, 12, 13, 14, 15));
  }
}

/// A thread's buffers: the kernels' panels, under bf16 the rounded copies of a call's two operands, and
/// the bf16 pair kernels' large grid in pairs.
enum { VDK_BUFFER_PANEL, VDK_BUFFER_OPERAND_A, VDK_BUFFER_OPERAND_B, VDK_BUFFER_PAIRS, VDK_BUFFERS };

/// This thread's buffer `slot` of at least `floats` floats, 64-byte aligned, grown as needed and kept
/// for the thread's life (direct.c).
VDK_INTERNAL float *vdk_thread_buffer(int slot, long floats);

static inline float *vdk_thread_scratch(long floats) { return vdk_thread_buffer(VDK_BUFFER_PANEL, floats); }

/// Two bf16-rounded floats as one VDPBF16PS operand word: hi's upper half (the chain's element r, which
/// the instruction multiplies first), then lo's (element r + 1).
static inline unsigned vdk_pair(float hi, float lo) {
  unsigned a, b;
  memcpy(&a, &hi, 4);
  memcpy(&b, &lo, 4);
  return (a & 0xffff0000u) | (b >> 16);
}

/// A dense layer's bias gradient, dbias[o] = Σ dy[dy_off[o] + lane]: per lane over the lane blocks, then
/// the lane tree (every variant's order; under bf16 from the fp32 dy: a sum, not a product).
__attribute__((unused)) static void vdk_dense_bias_grad(float *dbias, const float *dy, const long *dy_off, long nout, long lanes) {
  float acc[VDK_LANES];
  for (long o = 0; o < nout; o++) {
    for (int l = 0; l < VDK_LANES; l++) acc[l] = 0;
    for (long b = 0; b < lanes; b += VDK_LANES)
      for (int l = 0; l < VDK_LANES; l++) acc[l] += dy[dy_off[o] + b + l];
    dbias[o] = vdk_lane_tree(acc);
  }
}

#include "direct_geometry.h"

// MXCSR's DAZ and FTZ for a bf16 call (VDPBF16PS flushes denormals regardless of MXCSR), restored after.
#if defined(__x86_64__)
#include <xmmintrin.h>
static inline unsigned vdk_flush_begin(void) {
  const unsigned csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040);  // FTZ | DAZ
  return csr;
}
static inline void vdk_flush_end(unsigned csr) { _mm_setcsr(csr); }
#else
static inline unsigned vdk_flush_begin(void) { return 0; }
static inline void vdk_flush_end(unsigned csr) { (void)csr; }
#endif

/// A build's entry points (direct_body.h defines them; direct.c's table of builds holds them).
#define VDK_BUILD_ENTRY_POINTS(s)                                                                        \
  void vdk_conv_weight_grad_##s(const VDKWindow *g, const float *small, const float *large, float *dweight); \
  void vdk_conv_gather_##s(const VDKWindow *g, const float *weight, const float *bias, int relu, const float *mask, \
                           const float *large, float *small, float *scratch);                           \
  void vdk_conv_scatter_##s(const VDKWindow *g, const float *weight, const float *bias, int relu,        \
                            const float *mask, const float *small, float *large, float *scratch);       \
  void vdk_dense_##s(const float *weight, long w_out, long w_in, const float *bias, int relu, const float *mask, \
                     int accumulate, const float *in, const long *in_off, long nin, float *out,          \
                     const long *out_off, long nout, long lanes);                                        \
  void vdk_dense_weight_grad_##s(float *dweight, long w_out, long w_in, float *dbias, const float *dy,    \
                                 const long *dy_off, long nout, const float *x, const long *x_off, long nin, \
                                 long lanes);
#if defined(__x86_64__) && defined(__clang__)
VDK_BUILD_ENTRY_POINTS(avx512)
VDK_BUILD_ENTRY_POINTS(avx2)
VDK_BUILD_ENTRY_POINTS(avx512_on_avx2)
VDK_BUILD_ENTRY_POINTS(avx512_on_avx2_bf16)
VDK_BUILD_ENTRY_POINTS(avx512_bf16)
/// Whether this CPU's VDPBF16PS, VCVTNE2PS2BF16 and VCVTNEPS2BF16 give the models' bits
/// (direct_bf16_check.h, in direct_avx512_bf16.c).
VDK_INTERNAL int vdk_bf16_native_matches(void);
#endif
VDK_BUILD_ENTRY_POINTS(portable)
VDK_BUILD_ENTRY_POINTS(portable_bf16)
VDK_BUILD_ENTRY_POINTS(portable_bf16_in_range)
#undef VDK_BUILD_ENTRY_POINTS

#endif
