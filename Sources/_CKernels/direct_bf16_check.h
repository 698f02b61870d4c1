// The check run before the native bf16 kernels' first use, and its test hook (included by direct.c
// after direct_avx512_builds.h, whose model and native operations it compares): whether this CPU's
// instructions give the bits of their definitions, written out, which the modelled kernels run and
// the tests check. On any difference bf16 stays emulated, with the same bits.

/// A dot-product step on 16 lanes of arrays: out = acc + x.hi · w.hi + x.lo · w.lo, as one
/// implementation computes it (the check compares two).
typedef void (*vdk_dot_step)(const unsigned *x, const unsigned *w, const unsigned *acc, unsigned *out);

/// The model (the instruction's definition); the caller sets DAZ and FTZ.
__attribute__((target("avx2,fma"))) static void vdk_dot_model(const unsigned *x, const unsigned *w,
                                                                const unsigned *acc, unsigned *out) {
  const vdk_v16 a = (vdk_v16)vdk_load(vdk_u16, acc);
  vdk_store(vdk_u16, out, (vdk_u16)vdk_dpbf16_model(a, vdk_load(vdk_u16, x), vdk_load(vdk_u16, w)));
}

/// VDPBF16PS itself.
__attribute__((target("avx512f,avx512bf16,avx2,fma"))) static void vdk_dot_native(const unsigned *x, const unsigned *w,
                                                                                     const unsigned *acc, unsigned *out) {
  const vdk_v16 a = (vdk_v16)vdk_load(vdk_u16, acc);
  vdk_store(vdk_u16, out, (vdk_u16)vdk_dpbf16_native(a, vdk_load(vdk_u16, x), vdk_load(vdk_u16, w)));
}

/// Whether two implementations of the step give the same bits on 65,536 lanes of operands spread over
/// the exponents where sums cancel, products underflow into denormals or overflow, accumulators are
/// denormal, zeros of both signs and infinities (a NaN matches any NaN). Sets DAZ and FTZ for the call.
static int vdk_dot_steps_match(vdk_dot_step a, vdk_dot_step b) {
  const unsigned csr = vdk_flush_begin();
  unsigned state = 2463534242u;
  int same = 1;
#define VDK_NEXT() (state ^= state << 13, state ^= state >> 17, state ^= state << 5, state)
  // A bf16 with a random sign and mantissa and an exponent near `e` (clamped to [0, 255]).
#define VDK_BF16_NEAR(e)                                                                          \
  ({                                                                                              \
    const unsigned r_ = VDK_NEXT();                                                               \
    long x_ = (long)(e) + (long)(r_ >> 8 & 15) - 8;                                               \
    x_ = x_ < 0 ? 0 : x_ > 255 ? 255 : x_;                                                        \
    (unsigned)((r_ & 0x8000u) | (unsigned)x_ << 7 | (r_ & 0x7fu));                               \
  })
  for (int round = 0; round < 4096 && same; round++) {
    // The exponents of this round: around 1, the smallest normals, the largest, or far apart.
    static const int centres[][3] = {{127, 127, 127}, {63, 63, 0}, {190, 190, 254}, {127, 127, 140},
                                     {66, 66, 10}, {127, 127, 100}, {200, 190, 255}, {20, 120, 0}};
    const int *c = centres[round % 8];
    unsigned xs[16], ws[16], as[16], ma[16], mb[16];
    for (int l = 0; l < 16; l++) {
      xs[l] = VDK_BF16_NEAR(c[0]) << 16 | VDK_BF16_NEAR(c[0]);
      ws[l] = VDK_BF16_NEAR(c[1]) << 16 | VDK_BF16_NEAR(c[1]);
      as[l] = VDK_BF16_NEAR(c[2]) << 16 | (VDK_NEXT() & 0xffffu);
    }
    a(xs, ws, as, ma);
    b(xs, ws, as, mb);
    for (int l = 0; l < 16; l++) {
      const int nan = (ma[l] & 0x7fffffffu) > 0x7f800000u && (mb[l] & 0x7fffffffu) > 0x7f800000u;
      if (ma[l] != mb[l] && !nan) same = 0;
    }
  }
#undef VDK_BF16_NEAR
#undef VDK_NEXT
  vdk_flush_end(csr);
  return same;
}

// Steps that differ from the model as another implementation might, for vdk_bf16_check_detects.
/// The low pair first.
static void vdk_dot_low_first(const unsigned *x, const unsigned *w, const unsigned *acc, unsigned *out) {
  unsigned xr[16], wr[16];
  for (int l = 0; l < 16; l++) xr[l] = x[l] << 16 | x[l] >> 16, wr[l] = w[l] << 16 | w[l] >> 16;
  vdk_dot_model(xr, wr, acc, out);
}
/// The model under the MXCSR bits `csr` (DAZ 0x40, FTZ 0x8000) instead of both.
static void vdk_dot_model_csr(unsigned csr, const unsigned *x, const unsigned *w, const unsigned *acc, unsigned *out) {
  const unsigned saved = _mm_getcsr();
  _mm_setcsr((saved & ~0x8040u) | csr);
  vdk_dot_model(x, w, acc, out);
  _mm_setcsr(saved);
}
static void vdk_dot_no_ftz(const unsigned *x, const unsigned *w, const unsigned *acc, unsigned *out) {
  vdk_dot_model_csr(0x40, x, w, acc, out);
}
static void vdk_dot_no_daz(const unsigned *x, const unsigned *w, const unsigned *acc, unsigned *out) {
  vdk_dot_model_csr(0x8000, x, w, acc, out);
}
/// One rounding for both products: the exact sum in double (denormal inputs and result flushed),
/// rounded once to float.
static void vdk_dot_one_rounding(const unsigned *x, const unsigned *w, const unsigned *acc, unsigned *out) {
  for (int l = 0; l < 16; l++) {
    float f[5];
    const unsigned u[5] = {x[l] & 0xffff0000u, x[l] << 16, w[l] & 0xffff0000u, w[l] << 16, acc[l]};
    for (int k = 0; k < 5; k++) {
      memcpy(&f[k], &u[k], 4);
      if ((u[k] & 0x7f800000u) == 0) f[k] = 0.0f * f[k];  // a denormal counts as a zero of its sign
    }
    float r = (float)((double)f[4] + (double)f[0] * f[2] + (double)f[1] * f[3]);
    unsigned v;
    memcpy(&v, &r, 4);
    if ((v & 0x7f800000u) == 0) v &= 0x80000000u;
    out[l] = v;
  }
}

int vdk_bf16_check_detects(int fault) {
  static const vdk_dot_step faults[] = {vdk_dot_model, vdk_dot_low_first, vdk_dot_no_ftz, vdk_dot_no_daz,
                                        vdk_dot_one_rounding};
  if (fault < 0 || fault >= (int)(sizeof faults / sizeof faults[0])) return -1;
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return -1;
  return !vdk_dot_steps_match(vdk_dot_model, faults[fault]);
}

/// Whether this CPU's VDPBF16PS gives the model's bits (vdk_dot_steps_match).
static int vdk_bf16_native_matches(void) { return vdk_dot_steps_match(vdk_dot_model, vdk_dot_native); }
