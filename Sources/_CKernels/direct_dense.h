// The dense kernels of one variant (included by direct_body.h, whose macros they use).

// vdk_lane_tree on VDK_WIDTH sums at once: p[l] holds lane l of each; the sums go to *r. (Through a
// pointer: a vector wider than the variant's registers may not be returned, as in avx512_on_avx2.)
VDK_INLINE void VDK_FN(lane_tree)(const VEC *p, VEC *r) {
  VEC h8[8], h4[4];
#pragma clang loop unroll(full)
  for (int k = 0; k < 8; k++) h8[k] = p[k] + p[k + 8];
#pragma clang loop unroll(full)
  for (int k = 0; k < 4; k++) h4[k] = h8[k] + h8[k + 4];
  *r = (h4[0] + h4[2]) + (h4[1] + h4[3]);
}

// NO outputs o … o + NO − 1 of lanes v … v + VDK_WIDTH − 1, each one chain over the inputs in order.
VDK_INLINE void VDK_FN(dense_block)(const int NO, const float *weight, long w_out, long w_in, const float *bias,
                                    int relu, const float *mask, int accumulate, const float *in_v,
                                    const long *in_off, long nin, float *out_v, const long *out_off, long o, long v) {
  VEC acc[VDK_DENSE_OUT];
#pragma clang loop unroll(full)
  for (int k = 0; k < NO; k++) acc[k] = accumulate ? vdk_load(VEC, out_v + out_off[o + k]) : (VEC)(bias ? bias[o + k] : 0.0f);
  for (long i = 0; i < nin; i++) {
    const VEC x = vdk_load(VEC, in_v + in_off[i]);
    const float *w = weight + o * w_out + i * w_in;
#pragma clang loop unroll(full)
    for (int k = 0; k < NO; k++) acc[k] = vdk_fma((VEC)w[k * w_out], x, acc[k]);
  }
#pragma clang loop unroll(full)
  for (int k = 0; k < NO; k++) {
    VEC r = relu ? VRELU(acc[k]) : acc[k];
    if (mask) r = VMASK(r, vdk_load(VEC, mask + v + out_off[o + k]));
    vdk_store(VEC, out_v + out_off[o + k], r);
  }
}

// The dense kernels: features are addressed through offset tables, so a grid's interior pixels and a
// plain [F, lanes] matrix are read alike. The outputs go in blocks of at most VDK_DENSE_OUT whose
// sizes differ by at most one (16 = 8 + 8, not 12 + 4: a block needs 8 chains to hide the FMA latency).
VDK_KERNEL
void VDK_FN(vdk_dense)(const float *weight, long w_out, long w_in, const float *bias, int relu, const float *mask,
                       int accumulate, const float *in, const long *in_off, long nin, float *out, const long *out_off, long nout,
                       long lanes) {
  const long nb = (nout + VDK_DENSE_OUT - 1) / VDK_DENSE_OUT;
  for (long v = 0; v < lanes; v += VDK_WIDTH)
    for (long i = 0; i < nb; i++) {
      const long o = vdk_part(i, nout, nb), no = vdk_part(i + 1, nout, nb) - o;
#define VDK_BLOCK(NO) \
  VDK_FN(dense_block)(NO, weight, w_out, w_in, bias, relu, mask, accumulate, in + v, in_off, nin, out + v, out_off, o, v)
      VDK_CONSTANT(VDK_BLOCK, no, VDK_DENSE_OUT)
#undef VDK_BLOCK
    }
}

// The dense weight gradient, vectorized over the wider of its two feature sets (V) with the other
// (S) broadcast: V's lane-major runs are transposed once into lane rows, so a vector holds one lane of
// VDK_WIDTH features, and the lane tree becomes 15 vertical adds in vdk_lane_tree's order. Each
// element's sum is the one the scalar definition gives: per lane a chain of FMAs over the lane
// blocks from +0, then the tree; the product s · v equals v · s exactly.
VDK_KERNEL
void VDK_FN(vdk_dense_weight_grad)(float *dweight, long w_out, long w_in, float *dbias, const float *dy,
                                   const long *dy_off, long nout, const float *x, const long *x_off, long nin,
                                   long lanes) {
  const int by_in = nin >= nout;
  const float *vsrc = by_in ? x : dy, *ssrc = by_in ? dy : x;
  const long *voff = by_in ? x_off : dy_off, *soff = by_in ? dy_off : x_off;
  const long nv = by_in ? nin : nout, ns = by_in ? nout : nin;
  const long vstride = by_in ? w_in : w_out, sstride = by_in ? w_out : w_in;
  const long nvp = (nv + 15) / 16 * 16;  // whole 8 × 8 blocks and whole vectors
  // rows: the V features in blocks of RW, each block lane-major: feature v of lane l at
  // rows[(v / RW) · lanes · RW + l · RW + v % RW], so one block's lanes are a fixed offset apart.
  enum { RW = VDK_WIDTH > 8 ? VDK_WIDTH : 8 };
  float *rows = vdk_thread_scratch(lanes * nvp);
#define VDK_ROWS(v, l) (rows + (v) / RW * lanes * RW + (l) * RW + (v) % RW)
  for (long v = 0; v < nvp; v += 8)
    for (long l = 0; l < lanes; l += 8) {
      vdk_v8 r[8];
      for (int c = 0; c < 8; c++) r[c] = v + c < nv ? vdk_load(vdk_v8, vsrc + voff[v + c] + l) : (vdk_v8)0.0f;
      vdk_transpose8(r, VDK_ROWS(v, l), RW);
    }
  if (dbias && !by_in) {  // dy is V: its bias sums are vertical too
    for (long v = 0; v < nvp; v += VDK_WIDTH) {
      VEC p[16];
#pragma clang loop unroll(full)
      for (int l = 0; l < 16; l++) p[l] = (VEC)0.0f;
      for (long b = 0; b < lanes; b += 16)
#pragma clang loop unroll(full)
        for (int l = 0; l < 16; l++) p[l] += vdk_load(VEC, VDK_ROWS(v, b + l));
      VEC r;
      VDK_FN(lane_tree)(p, &r);
      for (long k = 0; k < VDK_WIDTH && v + k < nv; k++) dbias[v + k] = r[k];
    }
  } else if (dbias) {
    vdk_dense_bias_grad(dbias, dy, dy_off, nout, lanes);
  }
  for (long v = 0; v < nvp; v += VDK_WIDTH)
    for (long s = 0; s < ns; s++) {
      const float *sp = ssrc + soff[s], *row = VDK_ROWS(v, 0);
      VEC r;
      if (lanes == 16) {
        // One lane block (a micro-batch of at most 16): each lane's chain is one FMA from +0, and the
        // tree's first level pairs lanes l and l + 8 as they come, which keeps the registers few.
        VEC h8[8], h4[4];
#pragma clang loop unroll(full)
        for (int l = 0; l < 8; l++)
          h8[l] = vdk_fma((VEC)sp[l], vdk_load(VEC, row + l * RW), (VEC)0.0f) +
                  vdk_fma((VEC)sp[l + 8], vdk_load(VEC, row + (l + 8) * RW), (VEC)0.0f);
#pragma clang loop unroll(full)
        for (int k = 0; k < 4; k++) h4[k] = h8[k] + h8[k + 4];
        r = (h4[0] + h4[2]) + (h4[1] + h4[3]);
      } else {
        VEC p[16];
#pragma clang loop unroll(full)
        for (int l = 0; l < 16; l++) p[l] = (VEC)0.0f;
        for (long b = 0; b < lanes; b += 16)
#pragma clang loop unroll(full)
          for (int l = 0; l < 16; l++) p[l] = vdk_fma((VEC)sp[b + l], vdk_load(VEC, row + (b + l) * RW), p[l]);
        VDK_FN(lane_tree)(p, &r);
      }
      float *out = dweight + s * sstride + v * vstride;
      if (vstride == 1 && v + VDK_WIDTH <= nv)
        vdk_store(VEC, out, r);
      else
        for (long k = 0; k < VDK_WIDTH && v + k < nv; k++) out[k * vstride] = r[k];
    }
}
#undef VDK_ROWS

