// The portable variant (SSE2 only, every x86-64 CPU) for fp32, with an exact fused multiply-add.
#include "direct_common.h"
#include "direct_portable.h"

void vdk_portable_fma(const float *a, const float *b, const float *c, float *out, long count) {
  for (long i = 0; i < count; i += 4) {
    float v[3][4] = {{0}};
    const long n = count - i < 4 ? count - i : 4;
    for (long k = 0; k < n; k++) v[0][k] = a[i + k], v[1][k] = b[i + k], v[2][k] = c[i + k];
    const vdk_v4 r = vdk_fma_exact(vdk_load(vdk_v4, v[0]), vdk_load(vdk_v4, v[1]), vdk_load(vdk_v4, v[2]));
    for (long k = 0; k < n; k++) out[i + k] = r[k];
  }
}
#undef vdk_fma
#define vdk_fma(a, b, c) vdk_fma_exact((a), (b), (c))

#define VDK_SUFFIX portable
#include "direct_portable_blocking.h"
#include "direct_body.h"
