// The convolution weight gradient of one variant (included by direct_body.h, whose macros it uses).

// acc[s][t] (16 lanes each, acc_s floats apart per s) += Σ over small rows i0 ≤ i < i1 and columns j of
// small[s][i, j] · large[stride·i + kh, stride·j + kw] (bordered coordinates; tap t = kh·3 + kw, taps
// t0 … t0 + T − 1 of one row kh), on the vector of lanes at small/large, for S × T chains.
VDK_INLINE void VDK_FN(wgrad_block)(const int S, const int T, const VDKWindow *g, long i0, long i1,
                                     const float *restrict small, long small_channel, const float *restrict large,
                                     int t0, float *restrict acc, long acc_s) {
  const long n = g->lanes, ss = g->small_side, ls = g->large_side, st = g->stride;
  VEC a[VDK_WGRAD_SMALL][VDK_WGRAD_TAPS];
#pragma clang loop unroll(full)
  for (int s = 0; s < S; s++)
#pragma clang loop unroll(full)
    for (int t = 0; t < T; t++) a[s][t] = vdk_load(VEC, acc + s * acc_s + t * 16);
  const float *restrict l0 = large + ((t0 / 3) * (ls + 2) + t0 % 3) * n;
  for (long i = i0; i < i1; i++) {
    const float *restrict sm = small + ((i + 1) * (ss + 2) + 1) * n;
    const float *restrict lg = l0 + st * i * (ls + 2) * n;
    for (long j = 0; j < ss; j++, sm += n, lg += st * n) {
      VEC x[VDK_WGRAD_SMALL];
#pragma clang loop unroll(full)
      for (int s = 0; s < S; s++) x[s] = vdk_load(VEC, sm + s * small_channel);
#pragma clang loop unroll(full)
      for (int t = 0; t < T; t++) {
        const VEC y = vdk_load(VEC, lg + t * n);
#pragma clang loop unroll(full)
        for (int s = 0; s < S; s++) a[s][t] = vdk_fma(x[s], y, a[s][t]);
      }
    }
  }
#pragma clang loop unroll(full)
  for (int s = 0; s < S; s++)
#pragma clang loop unroll(full)
    for (int t = 0; t < T; t++) vdk_store(VEC, acc + s * acc_s + t * 16, a[s][t]);
}

void VDK_FN(vdk_conv_weight_grad)(const VDKWindow *g, const float *small, const float *large, float *dweight) {
  const long small_channel = vdk_grid_channel(g->small_side, g->lanes);
  const long large_channel = vdk_grid_channel(g->large_side, g->lanes);
  enum { SB = VDK_WGRAD_SMALL, TB = VDK_WGRAD_TAPS, SO = 4 * VDK_WGRAD_SMALL };
  _Static_assert(9 % TB == 0 && (TB == 9 || 3 % TB == 0), "tap blocks within one row or all nine");
  // 16 lane accumulators for each of the SO × 9 weights of an outer block: SO small channels share
  // each pass over a large channel, which then comes from L2 rather than L3 (the grids are 0.3-1.8 MB).
  float acc[SO * 9 * 16] __attribute__((aligned(64)));
  // A small grid of side 7 is read whole (its rows fit L1 many times over); larger ones in blocks of rows.
  const long rows = g->small_side <= 7 ? g->small_side : VDK_WGRAD_ROWS;
  for (long so = 0; so < g->small_channels; so += SO) {
    const long nso = g->small_channels - so < SO ? g->small_channels - so : SO;
    for (long l = 0; l < g->large_channels; l++) {
      for (int i = 0; i < SO * 9 * 16; i++) acc[i] = 0;
      // Rows in blocks of `rows`, so the rows a block reads stay in L1 across the taps, lane vectors
      // and small channels; each chain still runs over the rows in order.
      for (long b = 0; b < g->lanes; b += 16)
        for (long i0 = 0; i0 < g->small_side; i0 += rows) {
          const long i1 = i0 + rows < g->small_side ? i0 + rows : g->small_side;
          for (long v = 0; v < 16; v += VDK_WIDTH) {
            const float *lg = large + l * large_channel + b + v;
            for (long s = 0; s < nso; s += SB) {
              const long ns = nso - s < SB ? nso - s : SB;
              const float *sm = small + (so + s) * small_channel + b + v;
              float *as = acc + s * 9 * 16 + v;
              for (int t = 0; t < 9; t += TB) {
                if (ns == SB)
                  VDK_FN(wgrad_block)(SB, TB, g, i0, i1, sm, small_channel, lg, t, as + t * 16, 9 * 16);
                else
                  for (long k = 0; k < ns; k++)
                    VDK_FN(wgrad_block)(1, TB, g, i0, i1, sm + k * small_channel, small_channel, lg, t,
                                        as + (k * 9 + t) * 16, 9 * 16);
              }
            }
          }
        }
      for (long k = 0; k < nso; k++)
        for (int t = 0; t < 9; t++)
          dweight[((so + k) * g->large_channels + l) * 9 + t] = vdk_lane_tree(acc + (k * 9 + t) * 16);
    }
  }
}
