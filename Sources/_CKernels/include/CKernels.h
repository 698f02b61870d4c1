// Single-precision loops of the VAE step: the direct convolutions and dense products, ReLU, the loss,
// and the fixed-point conversions of the gradient reduction. Layouts and
// semantics are those of the Swift reference versions in VAECore and VAEDistributed, which the tests
// compare these against. See README.md.
#ifndef VAE_DIST_CKERNELS_H
#define VAE_DIST_CKERNELS_H

#include <stdint.h>

/// dy[i] = 0 where output[i] ≤ 0 (ReLU backward, in place).
void vdk_relu_backward(float *dy, const float *output, long count);

/// Binary cross-entropy of σ(logits) against targets, summed per image (in pixel order, in double)
/// into per_image (if non-null), returned summed over all; also sets dlogits = σ(logits) − targets
/// unless dlogits is null. logits, targets, dlogits: [N, P]. e^−|v| and log(1 + e^−|v|) are computed
/// in double without libm, so every CPU gives the same bits.
double vdk_bce_with_logits(const float *logits, const float *targets, float *dlogits, long batch,
                           long pixels, double *per_image);

/// The largest |x[i]|; +∞ if any x[i] is NaN or infinite.
float vdk_max_abs(const float *x, long count);

/// sums[i] += round_to_nearest_even(x[i] · scale), with scale a power of two (exact products) and
/// |x[i] · scale| < 2^62.
void vdk_add_fixed_point(const float *x, int64_t *sums, long count, double scale);

/// out[i] = (float)(sums[i] · inverse_scale).
void vdk_from_fixed_point(const int64_t *sums, float *out, long count, double inverse_scale);

/// One Adam update in place (Adam.swift says which form): g = gradient_sum[i] / divisor, then
/// m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g·g, p ← p − α·m / (√v + ε), each operation rounded to
/// float in that order (no fused multiply-adds), the same bits on every CPU.
void vdk_adam(float *parameters, const float *gradient_sum, float *m, float *v, long count, float divisor, float alpha,
              float beta1, float beta2, float epsilon);

/// The build the elementwise kernels above run with, the one that goes with the convolutions' variant
/// (vdk_select_kernels): "avx512" with avx512, "avx2" (AVX2 + FMA) with avx2 and avx512_on_avx2,
/// "baseline" (SSE2) with portable.
const char *vdk_instruction_set(void);

// Direct convolution on grids stored with a one-pixel zero border: [C, side+2, side+2, lanes], lanes a
// multiple of 16 (the images of a micro-batch, padded with zero images). Kernels write only interiors,
// so borders stay zero. A 3×3 window with padding 1 joins a large grid to a small one: small position
// (i, j) with tap (kh, kw) touches large position (stride·i − 1 + kh, stride·j − 1 + kw). The weight is
// W[small channel][large channel][kh][kw]: Conv2d's [out, in, 3, 3] and ConvTranspose2d's [in, out, 3, 3].
//
// Fixed order, so every variant gives the same bits: each output lane is one chain of FMAs starting
// from the bias (or 0), over the input channels in order and, within each, the taps in increasing
// kh·3 + kw (a window kernel with more than one input and output channel leaves out the taps that
// read the zero border: w · 0 changes no sum but a zero's sign); a weight gradient is, per lane
// block and row of small positions, one chain from 0 over the row's columns and, within each, its
// 16 lanes, and these rows' sums are added to the weight in order (lane blocks, then rows).
typedef struct {
  long small_channels, large_channels, small_side, large_side, stride, lanes;
} VDKWindow;

/// Conv2d forward or ConvTranspose2d backward-data: small = relu?(bias + Σ W · window(large)), then,
/// if mask is non-null, 0 wherever mask (a ReLU's forward output, laid out as small) is not > 0: the
/// ReLU's backward fused into the store. scratch: 9 · small_channels · large_channels floats.
void vdk_conv_gather(const VDKWindow *g, const float *weight, const float *bias, int relu, const float *mask,
                     const float *large, float *small, float *scratch);

/// ConvTranspose2d forward or Conv2d backward-data: large = relu?(bias + Σ of W · small over the taps
/// reaching each large position), masked as vdk_conv_gather. scratch: 9 · small_channels · large_channels floats.
void vdk_conv_scatter(const VDKWindow *g, const float *weight, const float *bias, int relu, const float *mask,
                      const float *small, float *large, float *scratch);

/// The weight gradient of either: dW[s][l][kh][kw] = Σ over images and small positions of
/// small[s] · large[l] at the tap (Conv2d: small = dy, large = x; ConvTranspose2d: small = x, large = dy).
void vdk_conv_weight_grad(const VDKWindow *g, const float *small, const float *large, float *dweight);

/// sums[c] = Σ over lanes and interior positions of a bordered grid's channel c.
void vdk_grid_sums(const float *grid, long channels, long side, long lanes, float *sums);

/// Dense: out[out_off[o]] = relu?(bias[o] (or, if accumulate, what out holds) + Σ_i W[o·w_out + i·w_in] ·
/// in[in_off[i]]), each a run of `lanes` floats, masked as vdk_conv_gather (mask laid out as out).
void vdk_dense(const float *weight, long w_out, long w_in, const float *bias, int relu, const float *mask, int accumulate,
               const float *in, const long *in_off, long nin, float *out, const long *out_off, long nout, long lanes);

/// dW[o·w_out + i·w_in] = Σ over lanes of dy[dy_off[o]] · x[x_off[i]]; dbias[o] = Σ dy[dy_off[o]] if non-null.
void vdk_dense_weight_grad(float *dweight, long w_out, long w_in, float *dbias, const float *dy, const long *dy_off,
                           long nout, const float *x, const long *x_off, long nin, long lanes);

/// bf16 arithmetic (`--precision bf16`): while on, the direct kernels and dense products round their
/// operands (weights, activations, gradients; not a bias, a mask or an accumulated output) to bf16 as
/// vdk_round_bf16 does and multiply them into fp32 sums in the same fixed order as fp32, every step
/// of a chain one rounding of sum + product with denormals flushed (inputs and results): what
/// AVX512_BF16's VDPBF16PS computes per lane, its odd (higher) element first. The bias gradients
/// stay sums of the fp32 values. With the avx512 variant on a CPU with AVX512_BF16 (whose VDPBF16PS
/// gave the model's bits on a check at the first call) the convolutions run VDPBF16PS on operands
/// packed in pairs; elsewhere the fp32 kernels run on rounded copies (vdk_bf16_mode). Set before any
/// worker thread runs a kernel.
void vdk_set_bf16(int on);
int vdk_bf16(void);
/// 1 if this CPU has AVX512_BF16 (VDPBF16PS).
int vdk_cpu_has_bf16(void);
/// How the bf16 products run with the active variant (the bits are the same every way):
enum {
  VDK_BF16_EMULATED = 0,          // the variant's fp32 kernels on rounded operands (no pair kernels)
  VDK_BF16_NATIVE = 1,            // avx512's pair kernels with VDPBF16PS
  VDK_BF16_MODELLED = 2,          // avx512_on_avx2's pair kernels, VDPBF16PS modelled by two FMAs
  VDK_BF16_EMULATED_DIFFERS = 3,  // emulated: this CPU's VDPBF16PS did not give the model's bits
};
int vdk_bf16_mode(void);
/// For tests: 1 if the check run before the native kernels' first use (VDPBF16PS, VCVTNE2PS2BF16 and
/// VCVTNEPS2BF16 against their models) tells the model from an implementation with `fault`: 0 none
/// (the model against itself, and the vector rounding against its definition one value at a time);
/// in the dot product 1 the low pair first, 2 results not flushed, 3 inputs not flushed, 4 one
/// rounding for both products; in the rounding into pairs 5 truncation, 6 denormals rounded as
/// numbers, 7 ties away from zero, 8 a row pair's halves swapped, 9 a lane pair's halves swapped.
/// 0 if not, -1 where it cannot run (an unknown fault, or a CPU without AVX2 and FMA).
int vdk_bf16_check_detects(int fault);
/// The first difference the check's last comparison found, in words: the instruction, its operands,
/// what this CPU gave and what the definition gives; "" if it found none (or has not run).
const char *vdk_bf16_check_difference(void);
/// For tests: out[i] = a[i]·b[i] + c[i] rounded once, by the portable variant's fused multiply-add
/// (exact without the FMA instruction), under the caller's MXCSR.
void vdk_portable_fma(const float *a, const float *b, const float *c, float *out, long count);
/// out[i] = x[i] rounded to bf16, as VCVTNEPS2BF16 does (to nearest even; a denormal to a zero of its
/// sign; NaN made quiet), kept as a float whose low 16 bits are 0. out may be x.
void vdk_round_bf16(const float *x, float *out, long count);
/// Whether every product of one of `a`'s first `na` floats and one of `b`'s first `nb` is zero or a
/// normal float, judged by their exponents alone (so a product near a limit may be refused): then the
/// portable bf16 kernels run without their check per product. The operands are bf16 values (no
/// denormals); an infinity or a NaN in either refuses.
int vdk_bf16_products_in_range(const float *a, long na, const float *b, long nb);

/// Chooses the direct kernels' variant: "avx512", "avx2", "avx512_on_avx2" (the avx512 variant's code
/// built for AVX2, to check it on CPUs without AVX-512) or "portable". 0 on success, -1 for an unknown
/// name, -2 when this CPU lacks the variant's instructions. Call before any kernel runs.
int vdk_select_kernels(const char *name);
/// 1 if this CPU can run the named variant.
int vdk_kernels_supported(const char *name);
/// The variant in use (the widest this CPU has, unless vdk_select_kernels chose one).
const char *vdk_kernels_name(void);

#endif
