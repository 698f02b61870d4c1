// The direct convolution and dense kernels of one variant. direct.c includes this file once per
// variant, with the variant's target attribute in force and:
//   VDK_SUFFIX       the names' suffix;
//   VDK_WIDTH        floats per vector (16, 8 or 4): a lane block of 16 images is 16 / VDK_WIDTH vectors;
//   VDK_GATHER_CO,   the register block of the window and dense kernels: output channels × positions;
//   VDK_GATHER_POS
//   VDK_WGRAD_SMALL, the register block of the weight gradient: vectors of small channels × weights
//   VDK_WGRAD_TAPS   (large channel, tap), at most 12.
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
#define VRELU(v) ({ const VEC r_ = (v); r_ > (VEC)0.0f ? r_ : (VEC)0.0f; })
/// ReLU's backward fused into a store: v where the forward output m > 0, else +0.
#define VMASK(v, m) ({ const VEC m_ = (m); m_ > (VEC)0.0f ? (v) : (VEC)0.0f; })
/// A block of nc output channels (1 … VDK_GATHER_CO, known at run time) as BLOCK(C, P) with C a
/// constant, so every block size is unrolled into registers.
#define VDK_CHANNELS(BLOCK, nc, P)                                               \
  switch (nc) {                                                                  \
  case 1: BLOCK(1, P); break;                                                    \
  case 2: if (VDK_GATHER_CO >= 2) BLOCK(2 % (VDK_GATHER_CO + 1), P); break;      \
  case 3: if (VDK_GATHER_CO >= 3) BLOCK(3 % (VDK_GATHER_CO + 1), P); break;      \
  case 4: if (VDK_GATHER_CO >= 4) BLOCK(4 % (VDK_GATHER_CO + 1), P); break;      \
  case 5: if (VDK_GATHER_CO >= 5) BLOCK(5 % (VDK_GATHER_CO + 1), P); break;      \
  default: BLOCK(VDK_GATHER_CO, P); break;                                       \
  }

#include "direct_window.h"
#include "direct_weight_grad.h"
#include "direct_dense.h"

#undef VRELU
#undef VDK_CHANNELS
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
