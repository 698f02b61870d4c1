// The check run before the native bf16 kernels' first use, and its test hook (included by
// direct_avx512_bf16.c after direct_avx512_pairs.h, whose model and native operations it compares):
// whether this CPU's instructions give the bits of their definitions, written out, which the
// modelled kernels run and the tests check. On any difference bf16 stays emulated, with the same bits.

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

/// The first difference the last comparison found, in words ("" if it found none): the instruction,
/// its operands, what the implementation gave and what the definition gives.
static char vdk_check_difference[200];
const char *vdk_bf16_check_difference(void) { return vdk_check_difference; }

/// Whether two implementations of the step give the same bits on 65,536 lanes of operands spread over
/// the exponents where sums cancel, products underflow into denormals or overflow, accumulators are
/// denormal, zeros of both signs and infinities (a NaN matches any NaN). Sets DAZ and FTZ for the call.
static int vdk_dot_steps_match(vdk_dot_step a, vdk_dot_step b) {
  vdk_check_difference[0] = 0;
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
      if (ma[l] != mb[l] && !nan && same) {
        same = 0;
        snprintf(vdk_check_difference, sizeof vdk_check_difference,
                 "VDPBF16PS: accumulator %08x, pairs %08x and %08x gave %08x; its definition gives %08x", as[l], xs[l],
                 ws[l], mb[l], ma[l]);
      }
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

// The roundings into pairs (vdk_pair_rows, vdk_pair_lanes): one implementation's results for 16
// floats hi and 16 lo: rows = the 16 pairs (hi, lo), lanes = the 8 pairs of hi's neighbouring lanes.
typedef void (*vdk_pair_step)(const float *hi, const float *lo, unsigned *rows, unsigned *lanes);

/// The model (VDK_BF16_ROUND, what the modelled kernels run).
__attribute__((target("avx2,fma"))) static void vdk_pairs_model(const float *hi, const float *lo, unsigned *rows,
                                                                   unsigned *lanes) {
  vdk_store(vdk_u16, rows, vdk_pair_rows_model(vdk_load(vdk_v16, hi), vdk_load(vdk_v16, lo)));
  vdk_store(vdk_u8, lanes, vdk_pair_lanes_model(vdk_load(vdk_v16, hi)));
}

/// VCVTNE2PS2BF16 and VCVTNEPS2BF16, as the native kernels use them.
__attribute__((target("avx512f,avx512vl,avx512bw,avx512bf16,avx2,fma"))) static void vdk_pairs_native(
    const float *hi, const float *lo, unsigned *rows, unsigned *lanes) {
  vdk_store(vdk_u16, rows, vdk_pair_rows_native(vdk_load(vdk_v16, hi), vdk_load(vdk_v16, lo)));
  vdk_store(vdk_u8, lanes, vdk_pair_lanes_native(vdk_load(vdk_v16, hi)));
}

/// The rounding one float at a time as VCVTNEPS2BF16's definition reads (fault 0), or as another
/// implementation might: 5 truncating, 6 rounding denormals as numbers, 7 ties away from zero; and
/// the pairs' halves swapped: 8 in rows, 9 in lanes.
static unsigned vdk_bf16_scalar(unsigned u, int fault) {
  const unsigned e = u & 0x7f800000u;
  if (e == 0 && fault != 6) return u >> 16 & 0x8000u;
  if (e == 0x7f800000u) return u >> 16 | ((u & 0x7fffffu) ? 0x40u : 0);
  if (fault == 5) return u >> 16;
  if (fault == 7) return (u + 0x8000u) >> 16;
  return (u + 0x7fffu + (u >> 16 & 1u)) >> 16;
}
static void vdk_pairs_scalar(const float *hi, const float *lo, unsigned *rows, unsigned *lanes, int fault) {
  unsigned h[16], l[16];
  memcpy(h, hi, sizeof h), memcpy(l, lo, sizeof l);
  for (int k = 0; k < 16; k++) h[k] = vdk_bf16_scalar(h[k], fault), l[k] = vdk_bf16_scalar(l[k], fault);
  for (int k = 0; k < 16; k++) rows[k] = fault == 8 ? l[k] << 16 | h[k] : h[k] << 16 | l[k];
  for (int k = 0; k < 8; k++) lanes[k] = fault == 9 ? h[2 * k + 1] << 16 | h[2 * k] : h[2 * k] << 16 | h[2 * k + 1];
}
#define VDK_PAIRS_FAULT(f)                                                                                   \
  static void vdk_pairs_fault_##f(const float *hi, const float *lo, unsigned *rows, unsigned *lanes) {        \
    vdk_pairs_scalar(hi, lo, rows, lanes, f);                                                                \
  }
VDK_PAIRS_FAULT(0)
VDK_PAIRS_FAULT(5)
VDK_PAIRS_FAULT(6)
VDK_PAIRS_FAULT(7)
VDK_PAIRS_FAULT(8)
VDK_PAIRS_FAULT(9)
#undef VDK_PAIRS_FAULT

/// Whether two implementations of the roundings into pairs give the same bits for 65,536 floats of
/// each operand: random, ties and their neighbours, denormals, infinities and NaNs (a NaN matches any
/// NaN), the largest finite values (whose rounding may carry to infinity), zeros and the smallest
/// normals, values near 1.
static int vdk_pair_steps_match(vdk_pair_step a, vdk_pair_step b) {
  vdk_check_difference[0] = 0;
  unsigned state = 88675123u;
  int same = 1;
  for (int round = 0; round < 4096 && same; round++) {
    unsigned in[2][16], ra[16], rb[16], la[8], lb[8];
    for (int k = 0; k < 32; k++) {
      state ^= state << 13, state ^= state >> 17, state ^= state << 5;
      const unsigned r = state, sign = r & 0x80000000u;
      static const unsigned tails[] = {0x7fffu, 0x8000u, 0x8001u};
      unsigned u = r;  // round % 8 == 0: any bits
      switch (round % 8) {
        case 1: u = (r & 0xffff0000u) | tails[r % 3]; break;                       // ties and neighbours
        case 2: u = r & 0x807fffffu; break;                                        // denormals
        case 3: u = sign | 0x7f800000u | (r & 1 ? 0 : r >> 9 & 0x7fffffu); break;  // infinities, NaNs
        case 4: u = sign | 0x7f7f0000u | (r & 0xffffu); break;                     // the largest finite
        case 5: u = r & 1 ? sign : sign | 0x00800000u | (r >> 9 & 0xffffu); break; // zeros, small normals
        case 6: u = (r & 0x807fffffu) | 0x3f800000u; break;                        // near 1
        case 7: u = (r & 0x8007ffffu) | 0x3f800000u; break;                        // near 1, short fractions
      }
      in[k / 16][k % 16] = u;
    }
    float hi[16], lo[16];
    memcpy(hi, in[0], sizeof hi), memcpy(lo, in[1], sizeof lo);
    a(hi, lo, ra, la);
    b(hi, lo, rb, lb);
    // Compared by halves: a bf16 NaN (exponent all ones, fraction not zero) matches any NaN.
#define VDK_HALF_NAN(h) (((h) & 0x7f80u) == 0x7f80u && ((h) & 0x7fu) != 0)
#define VDK_HALVES_MATCH(x, y)                                                                        \
  (((x) >> 16 == (y) >> 16 || (VDK_HALF_NAN((x) >> 16) && VDK_HALF_NAN((y) >> 16))) &&                \
   (((x) & 0xffffu) == ((y) & 0xffffu) || (VDK_HALF_NAN((x) & 0xffffu) && VDK_HALF_NAN((y) & 0xffffu))))
    for (int k = 0; k < 16 && same; k++)
      if (!VDK_HALVES_MATCH(ra[k], rb[k])) {
        same = 0;
        snprintf(vdk_check_difference, sizeof vdk_check_difference,
                 "VCVTNE2PS2BF16: floats %08x and %08x gave the pair %08x; its definition gives %08x", in[0][k], in[1][k],
                 rb[k], ra[k]);
      }
    for (int k = 0; k < 8 && same; k++)
      if (!VDK_HALVES_MATCH(la[k], lb[k])) {
        same = 0;
        snprintf(vdk_check_difference, sizeof vdk_check_difference,
                 "VCVTNEPS2BF16: floats %08x and %08x gave the pair %08x; its definition gives %08x", in[0][2 * k],
                 in[0][2 * k + 1], lb[k], la[k]);
      }
#undef VDK_HALVES_MATCH
#undef VDK_HALF_NAN
  }
  return same;
}

int vdk_bf16_check_detects(int fault) {
  static const vdk_dot_step dots[] = {vdk_dot_model, vdk_dot_low_first, vdk_dot_no_ftz, vdk_dot_no_daz,
                                      vdk_dot_one_rounding};
  static const vdk_pair_step pairs[] = {vdk_pairs_fault_0, 0, 0, 0, 0, vdk_pairs_fault_5,
                                        vdk_pairs_fault_6, vdk_pairs_fault_7, vdk_pairs_fault_8, vdk_pairs_fault_9};
  if (fault < 0 || fault >= (int)(sizeof pairs / sizeof pairs[0])) return -1;
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) return -1;
  // Fault 0: the model against itself, and the rounding vectors against the definition one at a time.
  if (fault == 0) return !vdk_dot_steps_match(vdk_dot_model, vdk_dot_model) || !vdk_pair_steps_match(vdk_pairs_model, pairs[0]);
  if (fault < 5) return !vdk_dot_steps_match(vdk_dot_model, dots[fault]);
  return !vdk_pair_steps_match(vdk_pairs_model, pairs[fault]);
}

/// Whether this CPU's VDPBF16PS, VCVTNE2PS2BF16 and VCVTNEPS2BF16 give the models' bits.
VDK_INTERNAL int vdk_bf16_native_matches(void) {
  return vdk_dot_steps_match(vdk_dot_model, vdk_dot_native) && vdk_pair_steps_match(vdk_pairs_model, vdk_pairs_native);
}
