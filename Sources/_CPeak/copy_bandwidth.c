// The host's memory bandwidth at a given working set, measured: a copy with plain 32-byte vector
// loads and stores (AVX where the CPU has it), as the step's kernels move their operands, not the
// non-temporal stores a large memcpy switches to. A pass that would need more bytes per second at
// the FMA peak than this copy moves at the pass's working set is limited by memory, not by its FMAs.
#include "CPeak.h"

typedef float vdk_copy_v8 __attribute__((ext_vector_type(8), aligned(4)));

static inline __attribute__((always_inline)) void copy_body(float *restrict dst, const float *restrict src, long floats) {
  for (long i = 0; i + 32 <= floats; i += 32)
    for (int k = 0; k < 32; k += 8) *(vdk_copy_v8 *)(dst + i + k) = *(const vdk_copy_v8 *)(src + i + k);
}

#if defined(__x86_64__) && defined(__clang__)
__attribute__((target("avx"))) static void copy_avx(float *restrict dst, const float *restrict src, long floats) {
  copy_body(dst, src, floats);
}
#endif

static void copy_plain(float *restrict dst, const float *restrict src, long floats) { copy_body(dst, src, floats); }

double vdk_copy_bytes(float *dst, const float *src, long floats, long rounds) {
  void (*copy)(float *restrict, const float *restrict, long) = copy_plain;
#if defined(__x86_64__) && defined(__clang__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx")) copy = copy_avx;
#endif
  for (long r = 0; r < rounds; r++) {
    copy(dst, src, floats);
    __asm__ volatile("" ::: "memory");  // every round's stores happen
  }
  return (double)(floats / 32 * 32) * 4 * 2 * rounds;
}
