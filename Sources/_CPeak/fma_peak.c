// The host's floating-point peak, measured: independent chains of vector FMAs in the widest
// instruction set the CPU has (AVX-512, else AVX2 + FMA, else SSE multiply and add), so the FMA
// units never wait on a result. This is the bound "fraction of the FMA peak" is taken against; it
// calibrates itself to the clock the cores actually run at while busy.
#include "CPeak.h"

#if defined(__x86_64__) && defined(__clang__)
#include <immintrin.h>

// An empty asm statement per chain and round hides the values from the optimiser, which would
// otherwise drop the loop (its result is never used but for one sink). 12 accumulators: more than latency (4) × pipes (2) on Zen 3–5 and recent Intel cores.
#define VDK_CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)

__attribute__((target("avx512f"))) static double fma_avx512(long iterations) {
  const __m512 m = _mm512_set1_ps(0.999999f), c = _mm512_set1_ps(1e-6f);
#define DECLARE(i) __m512 a##i = _mm512_set1_ps(1.0f + (float)(i) * 1e-3f);
  VDK_CHAINS(DECLARE)
#undef DECLARE
  for (long k = 0; k < iterations; k++) {
#define STEP(i) a##i = _mm512_fmadd_ps(a##i, m, c); __asm__("" : "+v"(a##i));
    VDK_CHAINS(STEP)
#undef STEP
  }
  __m512 s = _mm512_setzero_ps();
#define SUM(i) s = _mm512_add_ps(s, a##i);
  VDK_CHAINS(SUM)
#undef SUM
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return (double)iterations * 12 * 16 * 2;
}

__attribute__((target("avx2,fma"))) static double fma_avx2(long iterations) {
  const __m256 m = _mm256_set1_ps(0.999999f), c = _mm256_set1_ps(1e-6f);
#define DECLARE(i) __m256 a##i = _mm256_set1_ps(1.0f + (float)(i) * 1e-3f);
  VDK_CHAINS(DECLARE)
#undef DECLARE
  for (long k = 0; k < iterations; k++) {
#define STEP(i) a##i = _mm256_fmadd_ps(a##i, m, c); __asm__("" : "+v"(a##i));
    VDK_CHAINS(STEP)
#undef STEP
  }
  __m256 s = _mm256_setzero_ps();
#define SUM(i) s = _mm256_add_ps(s, a##i);
  VDK_CHAINS(SUM)
#undef SUM
  float lanes[8];
  _mm256_storeu_ps(lanes, s);
  volatile float sink = lanes[0];
  (void)sink;
  return (double)iterations * 12 * 8 * 2;
}

static double fma_sse(long iterations) {
  const __m128 m = _mm_set1_ps(0.999999f), c = _mm_set1_ps(1e-6f);
#define DECLARE(i) __m128 a##i = _mm_set1_ps(1.0f + (float)(i) * 1e-3f);
  VDK_CHAINS(DECLARE)
#undef DECLARE
  for (long k = 0; k < iterations; k++) {
#define STEP(i) a##i = _mm_add_ps(_mm_mul_ps(a##i, m), c); __asm__("" : "+x"(a##i));
    VDK_CHAINS(STEP)
#undef STEP
  }
  __m128 s = _mm_setzero_ps();
#define SUM(i) s = _mm_add_ps(s, a##i);
  VDK_CHAINS(SUM)
#undef SUM
  float lanes[4];
  _mm_storeu_ps(lanes, s);
  volatile float sink = lanes[0];
  (void)sink;
  return (double)iterations * 12 * 4 * 2;
}

// VDPBF16PS (AVX512_BF16): each instruction multiplies 16 lanes × 2 bf16 pairs into float sums, 64
// floating-point operations. 16 chains: its latency is 6 cycles on Zen 4 and Zen 5, which issue up to
// two a cycle (Zen 5's 512-bit datapath). The inputs stay normal numbers: the instruction flushes
// denormals, and a flushed chain would still run at full speed, but its sums would not be these.
__attribute__((target("avx512f,avx512bf16"))) static double bf16_avx512(long iterations) {
  const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3f7f3f7f), w = (__m512bh)_mm512_set1_epi32(0x358637bd);
#define VDK_BF16_CHAINS(X) VDK_CHAINS(X) X(12) X(13) X(14) X(15)
#define DECLARE(i) __m512 a##i = _mm512_set1_ps(1.0f + (float)(i) * 1e-3f);
  VDK_BF16_CHAINS(DECLARE)
#undef DECLARE
  for (long k = 0; k < iterations; k++) {
#define STEP(i) a##i = _mm512_dpbf16_ps(a##i, x, w); __asm__("" : "+v"(a##i));
    VDK_BF16_CHAINS(STEP)
#undef STEP
  }
  __m512 s = _mm512_setzero_ps();
#define SUM(i) s = _mm512_add_ps(s, a##i);
  VDK_BF16_CHAINS(SUM)
#undef SUM
#undef VDK_BF16_CHAINS
  volatile float sink = _mm512_reduce_add_ps(s);
  (void)sink;
  return (double)iterations * 16 * 16 * 4;
}

int vdk_bf16_available(void) {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bf16");
}

double vdk_bf16_flops(long iterations) { return vdk_bf16_available() ? bf16_avx512(iterations) : 0; }

const char *vdk_fma_isa(void) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return "AVX-512 FMA";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "AVX2 FMA";
  return "SSE mul+add";
}

double vdk_fma_flops(long iterations) {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return fma_avx512(iterations);
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return fma_avx2(iterations);
  return fma_sse(iterations);
}
#else
int vdk_bf16_available(void) { return 0; }
double vdk_bf16_flops(long iterations) { (void)iterations; return 0; }
const char *vdk_fma_isa(void) { return "scalar"; }
double vdk_fma_flops(long iterations) {
  volatile float a = 1.0f;
  for (long k = 0; k < iterations; k++) a = a * 0.999999f + 1e-6f;
  return (double)iterations * 2;
}
#endif
