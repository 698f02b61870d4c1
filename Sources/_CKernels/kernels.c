// See include/CKernels.h for what each function computes and README.md for why it is C.
//
// Every kernel is compiled three times (target_clones) and the dynamic loader picks, once, the
// variant for the CPU it runs on: x86-64-v4 (AVX-512), x86-64-v3 (AVX2) or the baseline. The build
// passes -ffp-contract=off and no fast-math flags, and reductions keep explicit lane accumulators, so
// the three variants do the same IEEE operations in the same order and produce the same bits.
#include "CKernels.h"

#include <math.h>

#if defined(__x86_64__) && defined(__clang__)
#define VDK_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define VDK_CLONES
#endif

enum { LANES = 16 };

// The first j in [0, small) whose tap lands inside [0, large), and one past the last.
static inline void valid_columns(long small, long large, long stride, long pad, long tap, long *first,
                                 long *end) {
  long lo = 0;
  while (lo < small && lo * stride - pad + tap < 0) lo++;
  long hi = small;
  while (hi > lo && (hi - 1) * stride - pad + tap >= large) hi--;
  *first = lo;
  *end = hi;
}

// The strided case (stride 2, padding 1, large = 2·small): window row i, tap kh reads image row
// 2i − 1 + kh at columns 2j − 1 + kw, i.e. the row's odd pixels shifted by one (kw = 0), its even
// pixels (kw = 1) or its odd pixels (kw = 2). Splitting the row into even and odd pixels once makes
// the three taps unit-stride copies.
static inline __attribute__((always_inline)) void im2col_stride2(const float *image, float *cols,
                                                                 long channels, long batch, long small) {
  const long large = 2 * small, small_area = small * small, large_area = large * large,
             columns = batch * small_area;
  float even[64], odd[64];
  for (long c = 0; c < channels; c++) {
    for (long n = 0; n < batch; n++) {
      const float *plane = image + (c * batch + n) * large_area;
      for (long kh = 0; kh < 3; kh++) {
        float *left = cols + (c * 9 + kh * 3) * columns + n * small_area;
        float *centre = left + columns, *right = left + 2 * columns;
        for (long i = 0; i < small; i++) {
          const long y = 2 * i - 1 + kh;
          float *l = left + i * small, *m = centre + i * small, *r = right + i * small;
          if (y < 0 || y >= large) {
            for (long j = 0; j < small; j++) l[j] = m[j] = r[j] = 0;
            continue;
          }
          const float *row = plane + y * large;
          for (long j = 0; j < small; j++) even[j] = row[2 * j], odd[j] = row[2 * j + 1];
          l[0] = 0;
          for (long j = 1; j < small; j++) l[j] = odd[j - 1];
          for (long j = 0; j < small; j++) m[j] = even[j];
          for (long j = 0; j < small; j++) r[j] = odd[j];
        }
      }
    }
  }
}

VDK_CLONES
void vdk_im2col3x3(const float *image, float *cols, long channels, long batch, long large, long small,
                   long stride, long pad) {
  if (stride == 2 && pad == 1 && large == 2 * small && small <= 64) {
    im2col_stride2(image, cols, channels, batch, small);
    return;
  }
  const long small_area = small * small, large_area = large * large, columns = batch * small_area;
  for (long c = 0; c < channels; c++) {
    for (long kh = 0; kh < 3; kh++) {
      for (long kw = 0; kw < 3; kw++) {
        long first, end;
        valid_columns(small, large, stride, pad, kw, &first, &end);
        float *row = cols + (c * 9 + kh * 3 + kw) * columns;
        for (long n = 0; n < batch; n++) {
          const float *plane = image + (c * batch + n) * large_area;
          for (long i = 0; i < small; i++) {
            float *dst = row + n * small_area + i * small;
            const long hi = i * stride - pad + kh;
            if (hi < 0 || hi >= large || first >= end) {
              for (long j = 0; j < small; j++) dst[j] = 0;
              continue;
            }
            const float *src = plane + hi * large - pad + kw;
            for (long j = 0; j < first; j++) dst[j] = 0;
            if (stride == 1) {
              for (long j = first; j < end; j++) dst[j] = src[j];
            } else {
              for (long j = first; j < end; j++) dst[j] = src[j * 2];
            }
            for (long j = end; j < small; j++) dst[j] = 0;
          }
        }
      }
    }
  }
}

// The transposed convolutions' case (stride 2, padding 1, large = 2·small): pixel x = 2j − 1 + kw of
// an output row comes from tap kw = 1 at j = x/2 when x is even, from kw = 2 at j = (x−1)/2 and kw = 0
// at j = (x+1)/2 when odd. Summing the even and odd halves as contiguous rows and interleaving them
// once keeps the loops unit-stride.
static inline __attribute__((always_inline)) void col2im_stride2(const float *cols, float *image, const float *bias, int relu,
                                  long channels, long batch, long small) {
  const long large = 2 * small, small_area = small * small, columns = batch * small_area;
  float even[64], odd[64];
  for (long c = 0; c < channels; c++) {
    const float b = bias ? bias[c] : 0.0f;
    for (long n = 0; n < batch; n++) {
      for (long y = 0; y < large; y++) {
        for (long j = 0; j < small; j++) even[j] = b, odd[j] = b;
        for (long kh = 0; kh < 3; kh++) {
          const long t = y + 1 - kh;
          if (t < 0 || (t & 1) || t / 2 >= small) continue;
          const float *tap = cols + (c * 9 + kh * 3) * columns + n * small_area + (t / 2) * small;
          const float *left = tap, *centre = tap + columns, *right = tap + 2 * columns;
          for (long j = 0; j < small; j++) even[j] += centre[j];
          for (long j = 0; j < small; j++) odd[j] += right[j];
          for (long j = 0; j + 1 < small; j++) odd[j] += left[j + 1];
        }
        float *dst = image + ((c * batch + n) * large + y) * large;
        if (relu) {
          for (long j = 0; j < small; j++) {
            dst[2 * j] = even[j] > 0 ? even[j] : 0;
            dst[2 * j + 1] = odd[j] > 0 ? odd[j] : 0;
          }
        } else {
          for (long j = 0; j < small; j++) dst[2 * j] = even[j], dst[2 * j + 1] = odd[j];
        }
      }
    }
  }
}

VDK_CLONES
void vdk_col2im3x3(const float *cols, float *image, const float *bias, int relu, long channels,
                   long batch, long large, long small, long stride, long pad) {
  if (stride == 2 && pad == 1 && large == 2 * small && small <= 64) {
    col2im_stride2(cols, image, bias, relu, channels, batch, small);
    return;
  }
  const long small_area = small * small, large_area = large * large, columns = batch * small_area;
  long first[3], end[3];
  for (long kw = 0; kw < 3; kw++) valid_columns(small, large, stride, pad, kw, &first[kw], &end[kw]);
  for (long c = 0; c < channels; c++) {
    const float b = bias ? bias[c] : 0.0f;
    for (long n = 0; n < batch; n++) {
      for (long y = 0; y < large; y++) {
        float *dst = image + ((c * batch + n) * large + y) * large;
        for (long x = 0; x < large; x++) dst[x] = b;
        for (long kh = 0; kh < 3; kh++) {
          const long t = y + pad - kh;
          if (t < 0 || t % stride != 0 || t / stride >= small) continue;
          const long i = t / stride;
          for (long kw = 0; kw < 3; kw++) {
            const float *src = cols + (c * 9 + kh * 3 + kw) * columns + n * small_area + i * small;
            float *out = dst - pad + kw;
            if (stride == 1) {
              for (long j = first[kw]; j < end[kw]; j++) out[j] += src[j];
            } else {
              for (long j = first[kw]; j < end[kw]; j++) out[j * 2] += src[j];
            }
          }
        }
        if (relu)
          for (long x = 0; x < large; x++) dst[x] = dst[x] > 0 ? dst[x] : 0;
      }
    }
  }
}

VDK_CLONES
void vdk_bias_relu(float *y, const float *bias, int relu, long channels, long columns) {
  for (long c = 0; c < channels; c++) {
    float *row = y + c * columns;
    const float b = bias[c];
    if (relu) {
      for (long i = 0; i < columns; i++) {
        const float v = row[i] + b;
        row[i] = v > 0 ? v : 0;
      }
    } else {
      for (long i = 0; i < columns; i++) row[i] += b;
    }
  }
}

VDK_CLONES
void vdk_channel_sums(const float *y, float *sums, long channels, long columns) {
  for (long c = 0; c < channels; c++) {
    const float *row = y + c * columns;
    float lane[LANES] = {0};
    long i = 0;
    for (; i + LANES <= columns; i += LANES)
      for (long l = 0; l < LANES; l++) lane[l] += row[i + l];
    float sum = 0;
    for (long l = 0; l < LANES; l++) sum += lane[l];
    for (; i < columns; i++) sum += row[i];
    sums[c] = sum;
  }
}

VDK_CLONES
void vdk_relu_backward(float *dy, const float *output, long count) {
  for (long i = 0; i < count; i++) dy[i] = output[i] > 0 ? dy[i] : 0;
}

VDK_CLONES
double vdk_bce_with_logits(const float *logits, const float *targets, float *dlogits, long batch,
                           long pixels, double *per_image) {
  double total = 0;
  for (long n = 0; n < batch; n++) {
    const float *l = logits + n * pixels, *x = targets + n * pixels;
    float *d = dlogits + n * pixels;
    double sum = 0;
    for (long p = 0; p < pixels; p++) {
      const float v = l[p], e = expf(-fabsf(v));
      // BCE(σ(v), x) = max(v, 0) − v·x + log(1 + e^−|v|);  σ(v) = 1/(1+e) for v ≥ 0, e/(1+e) below.
      sum += (double)((v > 0 ? v : 0) - v * x[p] + log1pf(e));
      const float sigma = v >= 0 ? 1 / (1 + e) : e / (1 + e);
      d[p] = sigma - x[p];
    }
    if (per_image) per_image[n] = sum;
    total += sum;
  }
  return total;
}

VDK_CLONES
float vdk_max_abs(const float *x, long count) {
  float lane[LANES] = {0};
  int finite = 1;
  long i = 0;
  for (; i + LANES <= count; i += LANES) {
    for (long l = 0; l < LANES; l++) {
      const float a = fabsf(x[i + l]);
      finite &= a <= 3.40282347e38f;
      lane[l] = a > lane[l] ? a : lane[l];
    }
  }
  float largest = 0;
  for (long l = 0; l < LANES; l++) largest = lane[l] > largest ? lane[l] : largest;
  for (; i < count; i++) {
    const float a = fabsf(x[i]);
    finite &= a <= 3.40282347e38f;
    largest = a > largest ? a : largest;
  }
  return finite ? largest : INFINITY;
}

VDK_CLONES
void vdk_add_fixed_point(const float *x, int64_t *sums, long count, double scale) {
  for (long i = 0; i < count; i++) sums[i] += (int64_t)rint((double)x[i] * scale);
}

VDK_CLONES
void vdk_from_fixed_point(const int64_t *sums, float *out, long count, double inverse_scale) {
  for (long i = 0; i < count; i++) out[i] = (float)((double)sums[i] * inverse_scale);
}

const char *vdk_instruction_set(void) {
#if defined(__x86_64__) && defined(__clang__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("x86-64-v4")) return "x86-64-v4";
  if (__builtin_cpu_supports("x86-64-v3")) return "x86-64-v3";
#endif
  return "baseline";
}
