// The portable variant (included by direct.c after the vector variants): SSE2 only, with an exact
// fused multiply-add, compiled twice: for fp32, and for bf16 operands with a faster path.

// The portable variant's fused multiply-add, exact without the instruction: the product of two floats
// is exact in double; their sum with c, rounded to odd (a lost bit forces the last bit to 1), then
// rounded once to float is the correctly rounded a·b + c (round to odd at 53 bits, then to 24).
// Four lanes at a time in SSE2: about a tenth of the FMA units' rate, and bit for bit the same.
typedef double vdk_d4 __attribute__((ext_vector_type(4)));
typedef long vdk_l4 __attribute__((ext_vector_type(4)));
static inline vdk_v4 vdk_fma_exact(vdk_v4 a, vdk_v4 b, vdk_v4 c) {
  const vdk_d4 p = __builtin_convertvector(a, vdk_d4) * __builtin_convertvector(b, vdk_d4);
  const vdk_d4 cd = __builtin_convertvector(c, vdk_d4);
  const vdk_d4 s = p + cd, bb = s - p;
  const vdk_d4 err = (p - (s - bb)) + (cd - bb);  // s + err = p + c exactly (TwoSum)
  const vdk_l4 bits = (vdk_l4)s;
  const vdk_l4 inexactEven = (err != 0) & ((bits & 1) == 0) & (s - s == 0);  // s finite
  const vdk_l4 away = (err > 0) == (s > 0);                                   // the exact sum lies farther from 0
  const vdk_l4 step = (away & 1) | (~away & -1);
  const vdk_d4 odd = (vdk_d4)(bits + (inexactEven & step));
  return __builtin_convertvector(odd, vdk_v4);
}
#undef vdk_fma
#define vdk_fma(a, b, c) vdk_fma_exact((a), (b), (c))

#define VDK_SUFFIX portable
#define VDK_WIDTH 4
#define VDK_GATHER_CO 2
#define VDK_GATHER_POS 4
#define VDK_WGRAD_SMALL 2
#define VDK_WGRAD_TAPS 6
#include "direct_body.h"

// Under bf16 the portable kernels take a shortcut with the same bits: a product of two bf16 values is
// exact in float, so a·b + c rounded once is the float multiply, then the float add. Only where the
// product leaves float's normal range (a flushed underflow, an overflow) does a vector take the exact
// path. About five times the speed of the exact path alone.
typedef int vdk_i4 __attribute__((ext_vector_type(4)));
static inline vdk_v4 vdk_fma_bf16(vdk_v4 a, vdk_v4 b, vdk_v4 c) {
  const vdk_v4 p = a * b;
  const vdk_i4 underflow = (p == 0) & (a != 0) & (b != 0);
  const vdk_i4 overflow = (p - p != 0) & (a - a == 0) & (b - b == 0);  // p infinite, a and b finite
  if (__builtin_reduce_or(underflow | overflow)) return vdk_fma_exact(a, b, c);
  return p + c;
}
#undef vdk_fma
#define vdk_fma(a, b, c) vdk_fma_bf16((a), (b), (c))

#define VDK_SUFFIX portable_bf16
#define VDK_WIDTH 4
#define VDK_GATHER_CO 2
#define VDK_GATHER_POS 4
#define VDK_WGRAD_SMALL 2
#define VDK_WGRAD_TAPS 6
#include "direct_body.h"
