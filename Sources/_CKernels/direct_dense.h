// The dense kernels of one variant (included by direct_body.h, whose macros they use).

// vdk_lane_tree on VDK_WIDTH sums at once: p[l] holds lane l of each.
VDK_INLINE VEC VDK_FN(lane_tree)(const VEC *p) {
  VEC h8[8], h4[4];
#pragma clang loop unroll(full)
  for (int k = 0; k < 8; k++) h8[k] = p[k] + p[k + 8];
#pragma clang loop unroll(full)
  for (int k = 0; k < 4; k++) h4[k] = h8[k] + h8[k + 4];
  return (h4[0] + h4[2]) + (h4[1] + h4[3]);
}

// The dense kernels: features are addressed through offset tables, so a grid's interior pixels and a
// plain [F, lanes] matrix are read alike.
void VDK_FN(vdk_dense)(const float *weight, long w_out, long w_in, const float *bias, int relu, const float *mask,
                       int accumulate, const float *in, const long *in_off, long nin, float *out, const long *out_off, long nout,
                       long lanes) {
  enum { OB = VDK_GATHER_CO * VDK_GATHER_POS };
  for (long v = 0; v < lanes; v += VDK_WIDTH) {
    const float *in_v = in + v;
    float *out_v = out + v;
    for (long o = 0; o < nout; o += OB) {
      const long no = nout - o < OB ? nout - o : OB;
      VEC acc[OB];
      for (long k = 0; k < no; k++)
        acc[k] = accumulate ? vdk_load(VEC, out_v + out_off[o + k]) : (VEC)(bias ? bias[o + k] : 0.0f);
      if (no == OB) {
        for (long i = 0; i < nin; i++) {
          const VEC x = vdk_load(VEC, in_v + in_off[i]);
          const float *w = weight + o * w_out + i * w_in;
#pragma clang loop unroll(full)
          for (int k = 0; k < OB; k++) acc[k] = vdk_fma((VEC)w[k * w_out], x, acc[k]);
        }
      } else {
        for (long i = 0; i < nin; i++) {
          const VEC x = vdk_load(VEC, in_v + in_off[i]);
          const float *w = weight + o * w_out + i * w_in;
          for (long k = 0; k < no; k++) acc[k] = vdk_fma((VEC)w[k * w_out], x, acc[k]);
        }
      }
      for (long k = 0; k < no; k++) {
        VEC r = relu ? VRELU(acc[k]) : acc[k];
        if (mask) r = VMASK(r, vdk_load(VEC, mask + v + out_off[o + k]));
        vdk_store(VEC, out_v + out_off[o + k], r);
      }
    }
  }
}

// The dense weight gradient, vectorized over the wider of its two feature sets (V) with the other
// (S) broadcast: V's lane-major runs are transposed once into lane rows, so a vector holds one lane of
// VDK_WIDTH features, and the lane tree becomes 15 vertical adds in vdk_lane_tree's order. Each
// element's sum is the one the scalar definition gives: per lane a chain of FMAs over the lane
// blocks from +0, then the tree; the product s · v equals v · s exactly.
void VDK_FN(vdk_dense_weight_grad)(float *dweight, long w_out, long w_in, float *dbias, const float *dy,
                                   const long *dy_off, long nout, const float *x, const long *x_off, long nin,
                                   long lanes) {
  const int by_in = nin >= nout;
  const float *vsrc = by_in ? x : dy, *ssrc = by_in ? dy : x;
  const long *voff = by_in ? x_off : dy_off, *soff = by_in ? dy_off : x_off;
  const long nv = by_in ? nin : nout, ns = by_in ? nout : nin;
  const long vstride = by_in ? w_in : w_out, sstride = by_in ? w_out : w_in;
  const long nvp = (nv + VDK_WIDTH - 1) / VDK_WIDTH * VDK_WIDTH;
  float *rows = vdk_thread_scratch(lanes * nvp);  // rows[lane · nvp + v]
  for (long v = 0; v < nvp; v++)
    for (long l = 0; l < lanes; l++) rows[l * nvp + v] = v < nv ? vsrc[voff[v] + l] : 0.0f;
  if (dbias && !by_in) {  // dy is V: its bias sums are vertical too
    for (long v = 0; v < nvp; v += VDK_WIDTH) {
      VEC p[16];
#pragma clang loop unroll(full)
      for (int l = 0; l < 16; l++) p[l] = (VEC)0.0f;
      for (long b = 0; b < lanes; b += 16)
#pragma clang loop unroll(full)
        for (int l = 0; l < 16; l++) p[l] += vdk_load(VEC, rows + (b + l) * nvp + v);
      const VEC r = VDK_FN(lane_tree)(p);
      for (long k = 0; k < VDK_WIDTH && v + k < nv; k++) dbias[v + k] = r[k];
    }
  } else if (dbias) {
    vdk_dense_bias_grad(dbias, dy, dy_off, nout, lanes);
  }
  for (long v = 0; v < nvp; v += VDK_WIDTH)
    for (long s = 0; s < ns; s++) {
      const float *sp = ssrc + soff[s];
      VEC p[16];
#pragma clang loop unroll(full)
      for (int l = 0; l < 16; l++) p[l] = (VEC)0.0f;
      for (long b = 0; b < lanes; b += 16)
#pragma clang loop unroll(full)
        for (int l = 0; l < 16; l++) p[l] = vdk_fma((VEC)sp[b + l], vdk_load(VEC, rows + (b + l) * nvp + v), p[l]);
      const VEC r = VDK_FN(lane_tree)(p);
      float *out = dweight + s * sstride + v * vstride;
      for (long k = 0; k < VDK_WIDTH && v + k < nv; k++) out[k * vstride] = r[k];
    }
}

