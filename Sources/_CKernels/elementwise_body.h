// The elementwise kernels of one build (included by kernels.c once per build, with the build's target
// attribute in force and VDK_EW(name) giving the build's names: baseline, avx2, avx512): ReLU backward, the loss, the largest
// magnitude, the fixed-point conversions of the gradient reduction, Adam and the bf16 rounding. Every
// build does the same IEEE operations in the same order (contraction into FMAs is off in kernels.c),
// so every build gives the same bits; the tests run each build the CPU has.

static void VDK_EW(relu_backward)(float *dy, const float *output, long count) {
  for (long i = 0; i < count; i++) dy[i] = output[i] > 0 ? dy[i] : 0;
}

// The loss's e^−|v| and log(1 + e^−|v|) in double arithmetic of our own rather than libm's expf and
// log1pf: the same IEEE operations on every CPU (glibc's FMA and plain paths round differently on a
// few inputs), and vectorized. Relative error below 1e-14, far under float's rounding.

/// c[0] + x·(c[1] + x·(… + x·c[n − 1])): the multiplies and adds in that order.
static inline double VDK_EW(horner)(double x, const double *c, int n) {
  double p = c[n - 1];
  for (int i = n - 2; i >= 0; i--) p = p * x + c[i];
  return p;
}

/// e^−a for a ≥ 0 (+∞ gives 0, NaN gives NaN): −a = k·ln 2 + r with k an integer ≤ 0 and |r| ≤ ln 2 / 2,
/// e^r by its Taylor series to r¹¹ (error below 7e-15), 2^k from its bits.
static inline double VDK_EW(exp_neg)(double a) {
  static const double taylor[12] = {1,          1,           1.0 / 2,      1.0 / 6,       1.0 / 24,        1.0 / 120,
                                    1.0 / 720,  1.0 / 5040,  1.0 / 40320,  1.0 / 362880,  1.0 / 3628800,   1.0 / 39916800};
  const double shifter = 0x1.8p52, x = -a;
  vdk_bits t = {.d = x * 0x1.71547652b82fep0 + shifter};  // round(x / ln 2) in the low bits
  const double k = t.d - shifter;
  // ln 2 split so that k · LN2_HI is exact for |k| < 2^20 (fdlibm's constants).
  const double r = (x - k * 6.93147180369123816490e-01) - k * 1.90821492927058770002e-10;
  const double p = VDK_EW(horner)(r, taylor, 12);
  // 2^k: k (≥ −1010 below) sits in t's low bits as a two's-complement integer.
  const vdk_bits scale = {.u = (t.u - 0x4338000000000000ull + 1023) << 52};
  return a > 700 ? 0 : p * scale.d;
}

/// log(1 + e) for 0 ≤ e ≤ 1: 2·atanh(s), s = e / (2 + e) ≤ 1/3, by its series to s²⁹ (error below 1e-15).
static inline double VDK_EW(log1p_unit)(double e) {
  static const double odd[15] = {1,        1.0 / 3,  1.0 / 5,  1.0 / 7,  1.0 / 9,  1.0 / 11, 1.0 / 13, 1.0 / 15,
                                 1.0 / 17, 1.0 / 19, 1.0 / 21, 1.0 / 23, 1.0 / 25, 1.0 / 27, 1.0 / 29};
  const double s = e / (2 + e);
  return 2 * s * VDK_EW(horner)(s * s, odd, 15);
}

/// One image's pixels: the per-pixel terms, then their sum in pixel order (a fixed order; the terms
/// loop vectorizes, the sum does not).
static inline __attribute__((always_inline)) double VDK_EW(bce_image)(const float *l, const float *x, float *d, long pixels,
                                                                  int gradient) {
  double sum = 0, term[BCE_CHUNK];
  for (long p0 = 0; p0 < pixels; p0 += BCE_CHUNK) {
    const long m = pixels - p0 < BCE_CHUNK ? pixels - p0 : BCE_CHUNK;
    // Four vectors in flight: each pixel is two long chains of dependent multiply-adds.
#pragma clang loop interleave_count(4)
    for (long p = 0; p < m; p++) {
      const double v = l[p0 + p], t = x[p0 + p], e = VDK_EW(exp_neg)(v < 0 ? -v : v);
      // BCE(σ(v), t) = max(v, 0) − v·t + log(1 + e^−|v|);  σ(v) = 1/(1+e) for v ≥ 0, e/(1+e) below.
      term[p] = ((v > 0 ? v : 0) - v * t) + VDK_EW(log1p_unit)(e);
      if (gradient) d[p0 + p] = (float)((v >= 0 ? 1 : e) / (1 + e) - t);
    }
    for (long p = 0; p < m; p++) sum += term[p];
  }
  return sum;
}

static double VDK_EW(bce_with_logits)(const float *logits, const float *targets, float *dlogits, long batch,
                           long pixels, double *per_image) {
  double total = 0;
  for (long n = 0; n < batch; n++) {
    const float *l = logits + n * pixels, *x = targets + n * pixels;
    const double sum = dlogits ? VDK_EW(bce_image)(l, x, dlogits + n * pixels, pixels, 1)
                               : VDK_EW(bce_image)(l, x, 0, pixels, 0);
    if (per_image) per_image[n] = sum;
    total += sum;
  }
  return total;
}

static float VDK_EW(max_abs)(const float *x, long count) {
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

// AVX2 has no conversion between double and int64 (AVX-512DQ has), so the compiler turns these casts
// into one scalar instruction per element. Both are split instead into 32-bit halves, which vector
// adds convert exactly: a half h becomes an integer in the low bits of h + 1.5·2^52 (the magic
// number exp_neg uses; 2^52 for the unsigned low half of an int64). They give the casts' bits on
// every input in range, the only ones the reducer passes (FixedPointTests); on a Zen 2 the
// reduction's fixed-point sums took 0.40 ms a step instead of 0.71 (docs/kernels.md).

// round_to_nearest_even(x · scale), |x · scale| < 2^62: v = x · scale (exact) = hi · 2^32 + r with
// hi = trunc(v / 2^32). r has v's sign and v's low bits, so it is exact too, and as hi · 2^32 is even,
// rounding r rounds v, ties included.
static inline int64_t VDK_EW(fixed_point)(float x, double scale, double scale_over_2_32) {
  const double v = (double)x * scale, hi = trunc((double)x * scale_over_2_32), r = v - hi * 0x1p32;
  const vdk_bits h = {.d = hi + 0x1.8p52}, l = {.d = r + 0x1.8p52};
  return (int64_t)(((h.u - 0x4338000000000000ull) << 32) + (l.u - 0x4338000000000000ull));
}

// (double)x, rounded to nearest even: x's two halves, each exact, added with the one rounding.
static inline double VDK_EW(double_of_int64)(int64_t x) {
  const vdk_bits h = {.u = (unsigned long long)(x >> 32) + 0x4338000000000000ull};
  const vdk_bits l = {.u = ((unsigned long long)x & 0xffffffffu) + 0x4330000000000000ull};
  return (h.d - 0x1.8p52) * 0x1p32 + (l.d - 0x1p52);
}

static void VDK_EW(add_fixed_point)(const float *x, int64_t *sums, long count, double scale) {
  const double scale_over_2_32 = scale * 0x1p-32;
  for (long i = 0; i < count; i++) sums[i] += VDK_EW(fixed_point)(x[i], scale, scale_over_2_32);
}

static void VDK_EW(from_fixed_point)(const int64_t *sums, float *out, long count, double inverse_scale) {
  for (long i = 0; i < count; i++) out[i] = (float)(VDK_EW(double_of_int64)(sums[i]) * inverse_scale);
}

static void VDK_EW(adam)(float *parameters, const float *gradient_sum, float *m, float *v, long count, float divisor, float alpha,
              float beta1, float beta2, float epsilon) {
  const float one_minus_beta1 = 1 - beta1, one_minus_beta2 = 1 - beta2;
  for (long i = 0; i < count; i++) {
    const float g = gradient_sum[i] / divisor;
    const float mi = beta1 * m[i] + one_minus_beta1 * g;
    const float vi = beta2 * v[i] + one_minus_beta2 * g * g;
    m[i] = mi;
    v[i] = vi;
    // The builtin, unlike sqrtf, never sets errno, so the loop vectorizes (VSQRTPS is correctly
    // rounded, as SQRTSS is).
    parameters[i] -= alpha * mi / (__builtin_elementwise_sqrt(vi) + epsilon);
  }
}

static void VDK_EW(round_bf16)(const float *x, float *out, long count) {
  typedef unsigned vdk_bits __attribute__((may_alias));
  typedef unsigned vdk_bits16 __attribute__((ext_vector_type(16), aligned(4), may_alias));
  long i = 0;
  for (; i + 16 <= count; i += 16)
    *(vdk_bits16 *)(out + i) = VDK_BF16_ROUND(vdk_bits16, *(const vdk_bits16 *)(x + i));
  if (i < count) {  // the tail through a zero-padded vector: the same rule for every element
    vdk_bits16 u = 0;
    for (long k = i; k < count; k++) u[k - i] = ((const vdk_bits *)x)[k];
    u = VDK_BF16_ROUND(vdk_bits16, u);
    for (long k = i; k < count; k++) ((vdk_bits *)out)[k] = u[k - i];
  }
}
