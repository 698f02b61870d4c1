// The avx512 variant's code for AVX2 + FMA (a 16-float vector is two registers), so CPUs without
// AVX-512 run and test the code the avx512 variant runs.
#include "direct_common.h"
#if defined(__x86_64__) && defined(__clang__)
#define VDK_SUFFIX avx512_on_avx2
#include "direct_avx512_blocking.h"
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#include "direct_body.h"
#pragma clang attribute pop
#endif
