// The avx512 variant's bf16 pair kernels with VDPBF16PS (AVX512_BF16), and the check of this CPU's
// instructions against their models that runs before these kernels' first use (direct_bf16_check.h).
#include "direct_common.h"
#if defined(__x86_64__) && defined(__clang__)
#include "direct_avx512_pairs.h"

#define VDK_SUFFIX avx512_bf16
#define VDK_PAIRS 1
#define vdk_dpbf16 vdk_dpbf16_native
#define vdk_pair_rows vdk_pair_rows_native
#define vdk_pair_lanes vdk_pair_lanes_native
#include "direct_avx512_blocking.h"
#pragma clang attribute push(__attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx512bf16,avx2,fma"))), \
                             apply_to = function)
#include "direct_body.h"
#pragma clang attribute pop

#include "direct_bf16_check.h"
#endif
