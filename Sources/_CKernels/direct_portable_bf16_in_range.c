// The portable variant's bf16 build for a call in which no product can leave float's normal range
// (direct_bf16.h checks the call's operands first: vdk_bf16_products_in_range). A product of two bf16
// values is exact in float, so a·b + c rounded once is the float multiply, then the float add, with
// no check per product: the other build's check (direct_portable_bf16.c) took two thirds of its time.
#include "direct_common.h"

#undef vdk_fma
#define vdk_fma(a, b, c) ((a) * (b) + (c))  // not fused: FP_CONTRACT is off (direct_common.h)

#define VDK_SUFFIX portable_bf16_in_range
#include "direct_portable_blocking.h"
#include "direct_body.h"
