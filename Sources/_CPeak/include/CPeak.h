#ifndef VAE_CPEAK_H
#define VAE_CPEAK_H

/// Runs `iterations` rounds of 12 independent vector FMA chains in the widest instruction set the
/// CPU has and returns the floating-point operations done (2 per lane per FMA); fma_peak.c.
double vdk_fma_flops(long iterations);

/// The instruction set vdk_fma_flops uses here: "AVX-512 FMA", "AVX2 FMA" or "SSE mul+add".
const char *vdk_fma_isa(void);

/// Whether this CPU (and its operating system) runs AVX512_BF16's VDPBF16PS.
int vdk_bf16_available(void);

/// Runs `iterations` rounds of 16 independent chains of VDPBF16PS on 512-bit vectors and returns the
/// floating-point operations done (4 per float lane per instruction: two products, two sums), or 0
/// where the CPU lacks AVX512_BF16: the most a bf16 kernel can do here; fma_peak.c.
double vdk_bf16_flops(long iterations);

/// Copies the first floats − floats % 32 floats of src to dst `rounds` times with plain vector loads
/// and stores (32 bytes each where the CPU has AVX) and returns the bytes moved, read and written
/// counted apart: the bandwidth bound of a pass whose operands take as much room; copy_bandwidth.c.
double vdk_copy_bytes(float *dst, const float *src, long floats, long rounds);

#endif
