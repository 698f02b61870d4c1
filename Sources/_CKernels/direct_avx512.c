// The avx512 variant: 16-float vectors (one lane block) on AVX-512.
#include "direct_common.h"
#if defined(__x86_64__) && defined(__clang__)
#define VDK_SUFFIX avx512
#include "direct_avx512_blocking.h"
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma"))), apply_to = function)
#include "direct_body.h"
#pragma clang attribute pop
#endif
