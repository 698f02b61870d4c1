// The avx512 variant's bf16 pair kernels for AVX2 + FMA, VDPBF16PS modelled by two FMAs
// (direct_avx512_pairs.h).
#include "direct_common.h"
#if defined(__x86_64__) && defined(__clang__)
#include "direct_avx512_pairs.h"

#define VDK_SUFFIX avx512_on_avx2_bf16
#define VDK_PAIRS 1
#define vdk_dpbf16 vdk_dpbf16_model
#define vdk_pair_rows vdk_pair_rows_model
#define vdk_pair_lanes vdk_pair_lanes_model
#include "direct_avx512_blocking.h"
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#include "direct_body.h"
#pragma clang attribute pop
#endif
