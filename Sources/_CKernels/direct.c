// Direct convolution and dense kernels on [C, H+2, W+2, N] activations (see include/CKernels.h), in
// three variants: AVX-512, AVX2 + FMA and portable x86-64. One source (direct_body.h) is compiled
// once per variant; only the register blocking differs. Each output element is one chain of fused
// multiply-adds in a fixed order, and lanes are images, so every variant gives the same bits: the
// portable one computes the same fused operations exactly in double arithmetic (direct_portable.h).
#include "CKernels.h"
#include "bf16_round.h"
#include "elementwise_builds.h"

#pragma STDC FP_CONTRACT OFF

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>
#endif

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

/// A thread's buffers and their sizes in floats.
typedef struct {
  float *buffer[VDK_BUFFERS];
  long capacity[VDK_BUFFERS];
} VDKThreadBuffers;

/// Frees a thread's buffers when it exits (Dispatch retires idle workers, and the tests' ranks are
/// threads of their own), and leaves them empty: the key's value is the thread's VDKThreadBuffers.
static pthread_key_t vdk_buffers_key;
static pthread_once_t vdk_buffers_once = PTHREAD_ONCE_INIT;
static void vdk_free_buffers(void *p) {
  VDKThreadBuffers *buffers = p;
  for (int slot = 0; slot < VDK_BUFFERS; slot++) {
    free(buffers->buffer[slot]);
    buffers->buffer[slot] = 0;
    buffers->capacity[slot] = 0;
  }
}
static void vdk_make_buffers_key(void) {
  if (pthread_key_create(&vdk_buffers_key, vdk_free_buffers)) abort();
}

/// This thread's buffer `slot` of at least `floats` floats, 64-byte aligned, grown as needed and kept
/// for the thread's life (the workers are few and long-lived). Aborts if memory runs out.
static float *vdk_thread_buffer(int slot, long floats) {
  static _Thread_local VDKThreadBuffers buffers;
  if (floats > buffers.capacity[slot]) {
    pthread_once(&vdk_buffers_once, vdk_make_buffers_key);
    if (pthread_setspecific(vdk_buffers_key, &buffers)) abort();
    free(buffers.buffer[slot]);
    buffers.buffer[slot] = aligned_alloc(64, (size_t)(floats + 15) / 16 * 64);
    if (!buffers.buffer[slot]) abort();
    buffers.capacity[slot] = floats;
  }
  return buffers.buffer[slot];
}

static float *vdk_thread_scratch(long floats) { return vdk_thread_buffer(VDK_BUFFER_PANEL, floats); }

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
static void vdk_dense_bias_grad(float *dbias, const float *dy, const long *dy_off, long nout, long lanes) {
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
static unsigned vdk_flush_begin(void) {
  const unsigned csr = _mm_getcsr();
  _mm_setcsr(csr | 0x8040);  // FTZ | DAZ
  return csr;
}
static void vdk_flush_end(unsigned csr) { _mm_setcsr(csr); }
#else
static unsigned vdk_flush_begin(void) { return 0; }
static void vdk_flush_end(unsigned csr) { (void)csr; }
#endif

#if defined(__x86_64__) && defined(__clang__)
#define VDK_SUFFIX avx512
#include "direct_avx512_blocking.h"
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"))), apply_to = function)
#include "direct_body.h"
#pragma clang attribute pop

#define VDK_SUFFIX avx2
#define VDK_WIDTH 8
#define VDK_GATHER_CO 6
#define VDK_GATHER_POS 2
#define VDK_WGRAD_SMALL 2
#define VDK_WGRAD_TAPS 6
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#include "direct_body.h"
#pragma clang attribute pop

#include "direct_avx512_builds.h"
#include "direct_bf16_check.h"
#else
int vdk_bf16_check_detects(int fault) { return (void)fault, -1; }
const char *vdk_bf16_check_difference(void) { return ""; }
#endif

#include "direct_portable.h"

typedef struct {
  const char *name;
  int pairs;        // the bf16 pair kernels: the windows' grids come unrounded (see direct_body.h)
  int elementwise;  // the build of kernels.c's elementwise kernels that runs with it (vdk_elementwise_build)
  void (*weight_grad)(const VDKWindow *, const float *, const float *, float *);
  void (*gather)(const VDKWindow *, const float *, const float *, int, const float *, const float *, float *, float *);
  void (*scatter)(const VDKWindow *, const float *, const float *, int, const float *, const float *, float *, float *);
  void (*dense)(const float *, long, long, const float *, int, const float *, int, const float *, const long *, long,
                float *, const long *, long, long);
  void (*dense_weight_grad)(float *, long, long, float *, const float *, const long *, long, const float *,
                            const long *, long, long);
} VDKVariant;

#define VDK_KERNELS(s, pairs, elementwise)                                                                \
  {                                                                                                    \
    #s, pairs, elementwise, vdk_conv_weight_grad_##s, vdk_conv_gather_##s, vdk_conv_scatter_##s,        \
        vdk_dense_##s, vdk_dense_weight_grad_##s                                                       \
  }
#define VDK_VARIANT(s, elementwise) VDK_KERNELS(s, 0, elementwise)
// Widest first: with no choice made, the first this CPU has runs (avx512_on_avx2 is for checking).
static const VDKVariant vdk_variants[] = {
#if defined(__x86_64__) && defined(__clang__)
    VDK_VARIANT(avx512, VDK_ELEMENTWISE_AVX512),
    VDK_VARIANT(avx2, VDK_ELEMENTWISE_AVX2),
    VDK_VARIANT(avx512_on_avx2, VDK_ELEMENTWISE_AVX2),
#endif
    VDK_VARIANT(portable, VDK_ELEMENTWISE_BASELINE),
};
enum { VDK_VARIANT_COUNT = sizeof vdk_variants / sizeof vdk_variants[0] };
// The bf16 kernels of a variant that has its own (direct_bf16.h picks them).
static const VDKVariant vdk_portable_bf16 = VDK_VARIANT(portable_bf16, VDK_ELEMENTWISE_BASELINE);
#if defined(__x86_64__) && defined(__clang__)
static const VDKVariant vdk_avx512_bf16 = VDK_KERNELS(avx512_bf16, 1, VDK_ELEMENTWISE_AVX512);
static const VDKVariant vdk_avx512_on_avx2_bf16 = VDK_KERNELS(avx512_on_avx2_bf16, 1, VDK_ELEMENTWISE_AVX2);
#endif

static int vdk_cpu_has(const char *name) {
#if defined(__x86_64__) && defined(__clang__)
  __builtin_cpu_init();
  if (!strcmp(name, "avx512"))
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
           __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx2") &&
           __builtin_cpu_supports("fma");  // its functions are built with avx2 too
  if (!strcmp(name, "avx2") || !strcmp(name, "avx512_on_avx2"))
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  return !strcmp(name, "portable");
}

// Set before any worker thread runs a kernel (vdk_select_kernels), else the widest on first use, which
// threads may reach together: atomic, and the default only where nothing is set yet, so it never
// overrides a choice made meanwhile.
static const VDKVariant *vdk_active;

static const VDKVariant *vdk_kernels(void) {
  const VDKVariant *active = __atomic_load_n(&vdk_active, __ATOMIC_ACQUIRE);
  if (!active) {
    const VDKVariant *widest = 0;
    for (int i = 0; i < VDK_VARIANT_COUNT && !widest; i++)
      if (vdk_cpu_has(vdk_variants[i].name)) widest = &vdk_variants[i];
    // On failure `active` (NULL, expected) becomes the choice another thread made meanwhile.
    if (__atomic_compare_exchange_n(&vdk_active, &active, widest, 0, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) active = widest;
  }
  return active;
}

static void vdk_bf16_choose(void);  // direct_bf16.h

int vdk_select_kernels(const char *name) {
  for (int i = 0; i < VDK_VARIANT_COUNT; i++) {
    if (strcmp(vdk_variants[i].name, name)) continue;
    if (!vdk_cpu_has(name)) return -2;
    __atomic_store_n(&vdk_active, &vdk_variants[i], __ATOMIC_RELEASE);
    vdk_bf16_choose();
    return 0;
  }
  return -1;
}

int vdk_kernels_supported(const char *name) {
  for (int i = 0; i < VDK_VARIANT_COUNT; i++)
    if (!strcmp(vdk_variants[i].name, name)) return vdk_cpu_has(name);
  return 0;
}

const char *vdk_kernels_name(void) { return vdk_kernels()->name; }

int vdk_elementwise_build(void) { return vdk_kernels()->elementwise; }

#include "direct_bf16.h"

void vdk_conv_weight_grad(const VDKWindow *g, const float *small, const float *large, float *dweight) {
  if (!VDK_BF16_ON()) {
    vdk_kernels()->weight_grad(g, small, large, dweight);
    return;
  }
  const VDKVariant *v = vdk_bf16_kernels();
  const float *s = v->pairs ? small : vdk_rounded_grid(g, small, 0, VDK_BUFFER_OPERAND_A);
  const float *l = v->pairs ? large : vdk_rounded_grid(g, large, 1, VDK_BUFFER_OPERAND_B);
  const unsigned csr = vdk_flush_begin();
  v->weight_grad(g, s, l, dweight);
  vdk_flush_end(csr);
}

void vdk_conv_gather(const VDKWindow *g, const float *weight, const float *bias, int relu, const float *mask,
                     const float *large, float *small, float *scratch) {
  if (!VDK_BF16_ON()) {
    vdk_kernels()->gather(g, weight, bias, relu, mask, large, small, scratch);
    return;
  }
  const VDKVariant *v = vdk_bf16_kernels();
  const float *w = vdk_rounded_weight(g, weight);
  const int copy = !v->pairs || vdk_window_direct(g->small_channels, g->large_channels, 1);
  const float *l = copy ? vdk_rounded_grid(g, large, 1, VDK_BUFFER_OPERAND_B) : large;
  const unsigned csr = vdk_flush_begin();
  v->gather(g, w, bias, relu, mask, l, small, scratch);
  vdk_flush_end(csr);
}

void vdk_conv_scatter(const VDKWindow *g, const float *weight, const float *bias, int relu, const float *mask,
                      const float *small, float *large, float *scratch) {
  if (!VDK_BF16_ON()) {
    vdk_kernels()->scatter(g, weight, bias, relu, mask, small, large, scratch);
    return;
  }
  const VDKVariant *v = vdk_bf16_kernels();
  const float *w = vdk_rounded_weight(g, weight);
  const int copy = !v->pairs || vdk_window_direct(g->large_channels, g->small_channels, 1);
  const float *s = copy ? vdk_rounded_grid(g, small, 0, VDK_BUFFER_OPERAND_B) : small;
  const unsigned csr = vdk_flush_begin();
  v->scatter(g, w, bias, relu, mask, s, large, scratch);
  vdk_flush_end(csr);
}

void vdk_dense(const float *weight, long w_out, long w_in, const float *bias, int relu, const float *mask, int accumulate,
               const float *in, const long *in_off, long nin, float *out, const long *out_off, long nout, long lanes) {
  if (!VDK_BF16_ON()) {
    vdk_kernels()->dense(weight, w_out, w_in, bias, relu, mask, accumulate, in, in_off, nin, out, out_off, nout, lanes);
    return;
  }
  const float *w = vdk_rounded(VDK_BUFFER_OPERAND_A, weight, (nout - 1) * w_out + (nin - 1) * w_in + 1);
  const float *x = vdk_rounded(VDK_BUFFER_OPERAND_B, in, vdk_runs_floats(in_off, nin, lanes));
  const unsigned csr = vdk_flush_begin();
  vdk_bf16_kernels()->dense(w, w_out, w_in, bias, relu, mask, accumulate, x, in_off, nin, out, out_off, nout, lanes);
  vdk_flush_end(csr);
}

void vdk_dense_weight_grad(float *dweight, long w_out, long w_in, float *dbias, const float *dy, const long *dy_off,
                           long nout, const float *x, const long *x_off, long nin, long lanes) {
  if (!VDK_BF16_ON()) {
    vdk_kernels()->dense_weight_grad(dweight, w_out, w_in, dbias, dy, dy_off, nout, x, x_off, nin, lanes);
    return;
  }
  if (dbias) vdk_dense_bias_grad(dbias, dy, dy_off, nout, lanes);
  const float *d = vdk_rounded(VDK_BUFFER_OPERAND_A, dy, vdk_runs_floats(dy_off, nout, lanes));
  const float *r = vdk_rounded(VDK_BUFFER_OPERAND_B, x, vdk_runs_floats(x_off, nin, lanes));
  const unsigned csr = vdk_flush_begin();
  vdk_bf16_kernels()->dense_weight_grad(dweight, w_out, w_in, NULL, d, dy_off, nout, r, x_off, nin, lanes);
  vdk_flush_end(csr);
}

void vdk_grid_sums(const float *grid, long channels, long side, long lanes, float *sums) {
  const long channel = vdk_grid_channel(side, lanes);
  for (long c = 0; c < channels; c++) {
    float acc[VDK_LANES] = {0};
    for (long b = 0; b < lanes / VDK_LANES; b++)
      for (long y = 0; y < side; y++)
        for (long x = 0; x < side; x++) {
          const float *v = grid + c * channel + ((y + 1) * (side + 2) + x + 1) * lanes + b * VDK_LANES;
          for (int l = 0; l < VDK_LANES; l++) acc[l] += v[l];
        }
    sums[c] = vdk_lane_tree(acc);
  }
}
