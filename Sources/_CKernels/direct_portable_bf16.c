// The portable variant's build for bf16 operands, for a call in which some product may leave float's
// normal range (direct_bf16.h runs direct_portable_bf16_in_range.c where none can).
#include "direct_common.h"
#include "direct_portable.h"

// Under bf16 the portable kernels take a shortcut with the same bits: a product of two bf16 values is
// exact in float, so a·b + c rounded once is the float multiply, then the float add. Only where the
// product leaves float's normal range (a flushed underflow, an overflow) does a vector take the exact
// path, out of line (BF16KernelTests.testProductsOutsideFloatsRangeAreFused reaches both). `bench
// --precision bf16 --threads 1 --steps 3` takes half the time it takes with the fp32 build on
// rounded operands; the check per product is most of what remains.
__attribute__((noinline, cold)) static vdk_v4 vdk_fma_bf16_exact(vdk_v4 a, vdk_v4 b, vdk_v4 c) {
  return vdk_fma_exact(a, b, c);
}
static inline vdk_v4 vdk_fma_bf16(vdk_v4 a, vdk_v4 b, vdk_v4 c) {
  const vdk_v4 p = a * b;
  // p is 0 (here from nonzero operands: a flushed underflow), infinite or NaN: |p|'s bits less 1 at or
  // above 0x7f7fffff as unsigned numbers, compared as signed ones with the sign bit flipped.
  const vdk_i4 outside = (vdk_i4)(((vdk_u4)p & 0x7fffffffu) + 0x7fffffffu) > -0x800002;
  if (__builtin_expect(__builtin_reduce_or(outside & (a != 0) & (b != 0)) != 0, 0)) return vdk_fma_bf16_exact(a, b, c);
  return p + c;
}
#undef vdk_fma
#define vdk_fma(a, b, c) vdk_fma_bf16((a), (b), (c))

#define VDK_SUFFIX portable_bf16
#include "direct_portable_blocking.h"
#include "direct_body.h"
