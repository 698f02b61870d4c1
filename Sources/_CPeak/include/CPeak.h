#ifndef VAE_CPEAK_H
#define VAE_CPEAK_H

/// Runs `iterations` rounds of 12 independent vector FMA chains in the widest instruction set the
/// CPU has and returns the floating-point operations done (2 per lane per FMA); fma_peak.c.
double vdk_fma_flops(long iterations);

/// The instruction set vdk_fma_flops uses here: "AVX-512 FMA", "AVX2 FMA" or "SSE mul+add".
const char *vdk_fma_isa(void);

#endif
