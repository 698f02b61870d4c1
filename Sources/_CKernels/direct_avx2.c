// The avx2 variant: 8-float vectors (half a lane block) on AVX2 + FMA.
#include "direct_common.h"
#if defined(__x86_64__) && defined(__clang__)
#define VDK_SUFFIX avx2
#define VDK_WIDTH 8
#define VDK_GATHER_CO 6
#define VDK_GATHER_POS 2
#define VDK_WGRAD_SMALL 2
#define VDK_WGRAD_TAPS 6
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#include "direct_body.h"
#pragma clang attribute pop
#endif
