// Single-precision loops of the VAE step that are not matrix products: window gathers and scatters,
// bias, ReLU, the loss, and the fixed-point conversions of the gradient reduction. Layouts and
// semantics are those of the Swift reference versions in VAECore and VAEDistributed, which the tests
// compare these against. See README.md.
#ifndef VAE_DIST_CKERNELS_H
#define VAE_DIST_CKERNELS_H

#include <stdint.h>

/// im2col: image [C, L, L, N] → cols [C·9, S·S·N] (zero outside the image) for a 3×3 window with
/// the given stride and padding.
void vdk_im2col3x3(const float *image, float *cols, long channels, long batch, long large, long small,
                   long stride, long pad);

/// col2im: image [C, L, L, N] = Σ of the window entries of cols [C·9, S·S·N] landing on each pixel,
/// plus bias[c] if bias is non-null, then max(·, 0) if relu is non-zero. Each pixel is written once.
void vdk_col2im3x3(const float *cols, float *image, const float *bias, int relu, long channels,
                   long batch, long large, long small, long stride, long pad);

/// y[c, i] = y[c, i] + bias[c], then max(·, 0) if relu is non-zero; y is [C, M].
void vdk_bias_relu(float *y, const float *bias, int relu, long channels, long columns);

/// sums[c] = Σ_i y[c, i] over the M columns of y [C, M].
void vdk_channel_sums(const float *y, float *sums, long channels, long columns);

/// dy[i] = 0 where output[i] ≤ 0 (ReLU backward, in place).
void vdk_relu_backward(float *dy, const float *output, long count);

/// Binary cross-entropy of σ(logits) against targets, summed per image into per_image (if non-null),
/// returned summed over all; also sets dlogits = σ(logits) − targets. logits, targets, dlogits: [N, P].
double vdk_bce_with_logits(const float *logits, const float *targets, float *dlogits, long batch,
                           long pixels, double *per_image);

/// The largest |x[i]|; +∞ if any x[i] is NaN or infinite.
float vdk_max_abs(const float *x, long count);

/// sums[i] += round_to_nearest_even(x[i] · scale), with scale a power of two (exact products).
void vdk_add_fixed_point(const float *x, int64_t *sums, long count, double scale);

/// out[i] = (float)(sums[i] · inverse_scale).
void vdk_from_fixed_point(const int64_t *sums, float *out, long count, double inverse_scale);

/// The instruction set the kernels run with on this CPU: "x86-64-v4" (AVX-512), "x86-64-v3" (AVX2,
/// FMA), or "baseline".
const char *vdk_instruction_set(void);

#endif
