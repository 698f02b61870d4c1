// The portable builds' fused multiply-add (direct_portable.c, direct_portable_bf16.c): SSE2 only,
// exact without the instruction.
#ifndef VDK_DIRECT_PORTABLE_H
#define VDK_DIRECT_PORTABLE_H

// The portable variant's fused multiply-add, exact without the instruction. The product of two floats
// is exact in double, and their sum with c rounded to double, s, is then rounded to float. Two
// roundings give the once-rounded a·b + c except where the first lands exactly on a midpoint of the
// second: s a float midpoint (its 29 low mantissa bits 1 then 28 zeros), or s in float's denormal
// range (0 < |s| < 2^-126), where the midpoints lie higher. A vector with such a lane (a random sum
// is a midpoint once in 2^29) takes the slow path: the sum rounded to odd (a lost bit forces the
// last bit to 1), which rounded to float is the once-rounded result in every case. The fast path
// made the portable fp32 step 2.5 times as fast as the slow path alone (KernelTests.
// testPortableFusedMultiplyAddIsExact checks both against the instruction, with sums planted on
// both kinds of midpoint).
typedef double vdk_d4 __attribute__((ext_vector_type(4)));
typedef long vdk_l4 __attribute__((ext_vector_type(4)));
typedef int vdk_i4 __attribute__((ext_vector_type(4)));
typedef unsigned vdk_u4 __attribute__((ext_vector_type(4)));
__attribute__((noinline, cold)) static vdk_v4 vdk_fma_to_odd(vdk_v4 a, vdk_v4 b, vdk_v4 c) {
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
static inline vdk_v4 vdk_fma_exact(vdk_v4 a, vdk_v4 b, vdk_v4 c) {
  const vdk_d4 s = __builtin_convertvector(a, vdk_d4) * __builtin_convertvector(b, vdk_d4) +
                   __builtin_convertvector(c, vdk_d4);
  const vdk_l4 bits = (vdk_l4)s;
  const vdk_i4 low = __builtin_convertvector(bits, vdk_i4);
  const vdk_i4 high = __builtin_convertvector(bits >> 32, vdk_i4) & 0x7fffffff;  // |s|'s exponent, top bits
  const vdk_i4 midpoint = (low & 0x1fffffff) == 0x10000000;
  const vdk_i4 tiny = (high > 0) & (high < (1023 - 126) << 20);  // s is 0 only if p + c is
  if (__builtin_expect(__builtin_reduce_or(midpoint | tiny) != 0, 0)) return vdk_fma_to_odd(a, b, c);
  return __builtin_convertvector(s, vdk_v4);
}

#endif
