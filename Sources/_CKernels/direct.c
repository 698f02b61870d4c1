// The direct convolution and dense kernels' public entry points (include/CKernels.h): the choice of a
// build (the variant: AVX-512, AVX2 + FMA or portable x86-64; under bf16 its bf16 build), the thread's
// buffers and the bf16 operands. Each build is its own file (direct_<build>.c): one source,
// direct_body.h, compiled once per variant with only the register blocking differing. Each output
// element is one chain of fused multiply-adds in a fixed order, and lanes are images, so every variant
// gives the same bits: the portable one computes the same fused operations exactly in double
// arithmetic (direct_portable.h).
#include "direct_common.h"

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
VDK_INTERNAL float *vdk_thread_buffer(int slot, long floats) {
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

#if !(defined(__x86_64__) && defined(__clang__))
int vdk_bf16_check_detects(int fault) { return (void)fault, -1; }
const char *vdk_bf16_check_difference(void) { return ""; }
#endif

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
static const VDKVariant vdk_portable_bf16_in_range = VDK_VARIANT(portable_bf16_in_range, VDK_ELEMENTWISE_BASELINE);
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
  v = vdk_bf16_build(v, s, vdk_grid_floats(g, 0), l, vdk_grid_floats(g, 1));
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
  v = vdk_bf16_build(v, w, 9 * g->small_channels * g->large_channels, l, vdk_grid_floats(g, 1));
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
  v = vdk_bf16_build(v, w, 9 * g->small_channels * g->large_channels, s, vdk_grid_floats(g, 0));
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
  const long nw = (nout - 1) * w_out + (nin - 1) * w_in + 1, nx = vdk_runs_floats(in_off, nin, lanes);
  const float *w = vdk_rounded(VDK_BUFFER_OPERAND_A, weight, nw), *x = vdk_rounded(VDK_BUFFER_OPERAND_B, in, nx);
  const unsigned csr = vdk_flush_begin();
  vdk_bf16_build(vdk_bf16_kernels(), w, nw, x, nx)->dense(w, w_out, w_in, bias, relu, mask, accumulate, x, in_off, nin, out, out_off, nout, lanes);
  vdk_flush_end(csr);
}

void vdk_dense_weight_grad(float *dweight, long w_out, long w_in, float *dbias, const float *dy, const long *dy_off,
                           long nout, const float *x, const long *x_off, long nin, long lanes) {
  if (!VDK_BF16_ON()) {
    vdk_kernels()->dense_weight_grad(dweight, w_out, w_in, dbias, dy, dy_off, nout, x, x_off, nin, lanes);
    return;
  }
  if (dbias) vdk_dense_bias_grad(dbias, dy, dy_off, nout, lanes);
  const long nd = vdk_runs_floats(dy_off, nout, lanes), nr = vdk_runs_floats(x_off, nin, lanes);
  const float *d = vdk_rounded(VDK_BUFFER_OPERAND_A, dy, nd), *r = vdk_rounded(VDK_BUFFER_OPERAND_B, x, nr);
  const unsigned csr = vdk_flush_begin();
  vdk_bf16_build(vdk_bf16_kernels(), d, nd, r, nr)->dense_weight_grad(dweight, w_out, w_in, NULL, d, dy_off, nout, r, x_off, nin, lanes);
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
