// The direct convolution and dense kernels of one variant. Each direct_<build>.c includes this file
// once, with the variant's target attribute in force and:
//   VDK_SUFFIX       the names' suffix;
//   VDK_WIDTH        floats per vector (16, 8 or 4): a lane block of 16 images is 16 / VDK_WIDTH vectors;
//   VDK_GATHER_CO,   the register block of the window and dense kernels: output channels × positions;
//   VDK_GATHER_POS
//   VDK_WGRAD_SMALL, the register block of the weight gradient: vectors of small channels × weights
//   VDK_WGRAD_TAPS   (large channel, tap), at most 12;
//   VDK_PAIRS        optional, 1 for the bf16 pair kernels: the window panels and the weight gradient
//                    then hold pairs of bf16 operands (chain element r in a 32-bit word's high half,
//                    r + 1 in its low half) and multiply them with vdk_dpbf16(acc, x, w), which the
//                    includer defines (VDPBF16PS, or its model in two FMAs), as it defines the
//                    rounding into pairs: vdk_pair_rows(hi, lo) (two vectors of floats, lane by lane)
//                    and vdk_pair_lanes(x) (neighbouring lanes, 8 pairs); VCVTNE2PS2BF16 and
//                    VCVTNEPS2BF16, or VDK_BF16_ROUND written out. The weights, the dense
//                    layers' operands and the grids of a window call that may run window_direct
//                    (vdk_window_direct) come rounded (direct.c's entry points), and those kernels run
//                    their fp32 code; the other grids come in float32 and are rounded where the panel
//                    copy and the weight gradient's packing read them.
//
// The arithmetic is the same in every variant: every output is one chain of FMAs in the order
// CKernels.h documents, and no vector holds two terms of one chain. Blocking and vector width only
// decide which chains run side by side.

#define VDK_CAT2(a, b) a##_##b
#define VDK_CAT(a, b) VDK_CAT2(a, b)
#define VDK_FN(name) VDK_CAT(name, VDK_SUFFIX)
#define VDK_INLINE static inline __attribute__((always_inline))

typedef float VDK_FN(vec) __attribute__((ext_vector_type(VDK_WIDTH)));
#define VEC VDK_FN(vec)
typedef unsigned VDK_FN(uvec) __attribute__((ext_vector_type(VDK_WIDTH)));
#define UVEC VDK_FN(uvec)
// What a window panel and the weight gradient multiply: ELEM (a float, or a pair of bf16 that is
// PER chain elements) in vectors XVEC, one step of the chains being MAC(acc, x, w).
#if VDK_PAIRS
#define ELEM unsigned
#define XVEC UVEC
#define PER 2
#define MAC(acc, x, w) vdk_dpbf16((acc), (x), (w))
/// The pair (hi, lo) of two vectors of floats, each rounded to bf16: lane by lane hi's, then lo's.
#define VPAIR(hi, lo) ((UVEC)vdk_pair_rows((hi), (lo)))
#else
#define ELEM float
#define XVEC VEC
#define PER 1
#define MAC(acc, x, w) vdk_fma((w), (x), (acc))
#endif
#define VRELU(v) ({ const VEC r_ = (v); r_ > (VEC)0.0f ? r_ : (VEC)0.0f; })
/// ReLU's backward fused into a store: v where the forward output m > 0, else +0.
#define VMASK(v, m) ({ const VEC m_ = (m); m_ > (VEC)0.0f ? (v) : (VEC)0.0f; })
/// BLOCK(k, …) for the run-time count n (1 … MAX ≤ 12) as a constant k, so each block size is
/// unrolled into registers; a count above MAX runs BLOCK(MAX, …).
#define VDK_CONSTANT(BLOCK, n, MAX, ...)                                          \
  switch (n) {                                                                   \
  case 1: BLOCK(1, ##__VA_ARGS__); break;                                        \
  case 2: if ((MAX) >= 2) BLOCK(2 % ((MAX) + 1), ##__VA_ARGS__); break;          \
  case 3: if ((MAX) >= 3) BLOCK(3 % ((MAX) + 1), ##__VA_ARGS__); break;          \
  case 4: if ((MAX) >= 4) BLOCK(4 % ((MAX) + 1), ##__VA_ARGS__); break;          \
  case 5: if ((MAX) >= 5) BLOCK(5 % ((MAX) + 1), ##__VA_ARGS__); break;          \
  case 6: if ((MAX) >= 6) BLOCK(6 % ((MAX) + 1), ##__VA_ARGS__); break;          \
  case 7: if ((MAX) >= 7) BLOCK(7 % ((MAX) + 1), ##__VA_ARGS__); break;          \
  case 8: if ((MAX) >= 8) BLOCK(8 % ((MAX) + 1), ##__VA_ARGS__); break;          \
  case 9: if ((MAX) >= 9) BLOCK(9 % ((MAX) + 1), ##__VA_ARGS__); break;          \
  case 10: if ((MAX) >= 10) BLOCK(10 % ((MAX) + 1), ##__VA_ARGS__); break;       \
  case 11: if ((MAX) >= 11) BLOCK(11 % ((MAX) + 1), ##__VA_ARGS__); break;       \
  default: BLOCK(MAX, ##__VA_ARGS__); break;                                     \
  }
/// A window panel's row of 16 lanes at dst from the chain's rows src[0 … PER − 1] (a row past the
/// chain's end is 0), and a packed weight from w[off[0]] and, of `left` ≥ 1 elements still in the
/// chain, the next at w[off[1]]. Under VDK_PAIRS a missing element pads the pair: input −0, weight +0, so its
/// product −0 leaves every sum as it is (x + −0 = x, also for x = ±0).
VDK_INLINE void VDK_FN(panel_row)(ELEM *restrict dst, const float *const *src) {
  for (int h = 0; h < 16 / VDK_WIDTH; h++) {
#if VDK_PAIRS
    const VEC lo = src[1] ? vdk_load(VEC, src[1] + h * VDK_WIDTH) : (VEC)-0.0f;
    vdk_store(XVEC, dst + h * VDK_WIDTH, VPAIR(vdk_load(VEC, src[0] + h * VDK_WIDTH), lo));
#else
    vdk_store(VEC, dst + h * VDK_WIDTH, vdk_load(VEC, src[0] + h * VDK_WIDTH));
#endif
  }
}
VDK_INLINE ELEM VDK_FN(weight_element)(const float *w, const long *off, long left) {
#if VDK_PAIRS
  return vdk_pair(w[off[0]], left > 1 ? w[off[1]] : 0.0f);
#else
  (void)left;
  return w[off[0]];
#endif
}

/// A block of nc output channels (1 … VDK_GATHER_CO) as BLOCK(C, P) with C a constant.
#define VDK_CHANNELS(BLOCK, nc, P) VDK_CONSTANT(BLOCK, nc, VDK_GATHER_CO, P)

/// The dense kernels' register block: output features (one vector of lanes each), at most 12.
#define VDK_DENSE_OUT (VDK_GATHER_CO * VDK_GATHER_POS < 12 ? VDK_GATHER_CO * VDK_GATHER_POS : 12)

#include "direct_window.h"
#include "direct_weight_grad.h"
#include "direct_dense.h"

#undef ELEM
#undef XVEC
#undef PER
#undef MAC
#undef VPAIR
#undef UVEC
#undef VRELU
#undef VDK_CHANNELS
#undef VDK_DENSE_OUT
#undef VDK_CONSTANT
#undef VMASK
#undef VEC
#undef VDK_FN
#undef VDK_CAT
#undef VDK_CAT2
#undef VDK_INLINE
// The variant's parameters, so the next variant defines its own.
#undef VDK_SUFFIX
#undef VDK_GATHER_CO
#undef VDK_GATHER_POS
#undef VDK_WGRAD_TAPS
#undef VDK_WIDTH
#undef VDK_WGRAD_SMALL
#undef VDK_PAIRS
