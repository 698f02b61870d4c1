// The convolution weight gradient of one variant (included by direct_body.h, whose macros it uses).
//
// dW[s][l][t] = Σ over lane blocks b, rows i of small positions, columns j and lanes n of
// small[s][i, j][n] · large[l][stride·i + kh, stride·j + kw][n] (bordered coordinates, t = kh·3 + kw),
// in one order whatever the variant: per (b, i), one chain of FMAs from zero over (j, n) in order,
// whose sum is then added to the weight's running total, (b, i) in order. (A row's chain has
// 16·side terms, at most 448: its rounding error stays that of a short sum.)
//
// The variant vectorizes over small channels, as an sgemm micro-kernel with the (position, lane)
// pairs as its reduction: a row of the small grid is first transposed into a panel with the channels
// innermost, panel[(j·16 + n)·sp + s] (sp = small channels rounded up to a register block, the rest
// zero), and a register block of VDK_WGRAD_SMALL vectors of channels × VDK_WGRAD_TAPS weights (l, t)
// multiplies each panel row by one broadcast large value per weight. The running totals live in
// acc[(l·9 + t)·sp + s].

/// Transposes row i of the small grid's lane block at `small` (channels small_channel floats apart)
/// into panel[(j·16 + n)·sp + s], channels s ≥ small_channels zero: 8 × 8 blocks of (channels, lanes).
VDK_INLINE void VDK_FN(wgrad_panel)(const VDKWindow *g, long i, const float *restrict small, long small_channel,
                                    float *restrict panel, long sp) {
  const long ss = g->small_side, n = g->lanes, sc = g->small_channels;
  const float *restrict row = small + ((i + 1) * (ss + 2) + 1) * n;
  for (long s = 0; s < sp; s += 8)
    for (long j = 0; j < ss; j++)
      for (long l = 0; l < 16; l += 8) {
        vdk_v8 r[8];
        for (int c = 0; c < 8; c++)
          r[c] = s + c < sc ? vdk_load(vdk_v8, row + (s + c) * small_channel + j * n + l) : (vdk_v8)0.0f;
        vdk_transpose8(r, panel + (j * 16 + l) * sp + s, sp);
      }
}

#if VDK_PAIRS
/// The `count` floats of the grid at x (count a multiple of 16) rounded to bf16 and paired with their
/// neighbours (lanes 2i and 2i + 1), in this thread's buffer: count / 2 words.
static const unsigned *VDK_FN(paired)(const float *restrict x, long count) {
  _Static_assert(VDK_WIDTH == 16, "the pair kernels use vectors of 16 floats");
  unsigned *restrict out = (unsigned *)vdk_thread_buffer(VDK_BUFFER_PAIRS, count / 2);
  for (long i = 0; i < count; i += 16) vdk_store(vdk_u8, out + i / 2, vdk_pair_lanes(vdk_load(VEC, x + i)));
  return out;
}

/// The transposed panel's rows in pairs (lanes n and n + 1 of one position, n even): the row of
/// (j, n/2) at pairs[(j·8 + n/2)·sp …]. `panel` stays as it is; both live in L1.
VDK_INLINE void VDK_FN(wgrad_pairs)(long ss, const float *restrict panel, long sp, unsigned *restrict pairs) {
  for (long r = 0; r < ss * 8; r++)
    for (long s = 0; s < sp; s += VDK_WIDTH)
      vdk_store(UVEC, pairs + r * sp + s,
                VPAIR(vdk_load(VEC, panel + 2 * r * sp + s), vdk_load(VEC, panel + (2 * r + 1) * sp + s)));
}
#endif

/// acc[q·sp + v·W …] (SV vectors of channels for each of the Q weights q) += the row's chain: from
/// zero, over its ss positions j and 16 lanes, of panel[(j·16 + lane)·sp …] · at[q][j·step + lane]
/// (under VDK_PAIRS the panel and the large rows hold pairs of lanes: 8 per position, step / 2 apart).
VDK_INLINE void VDK_FN(wgrad_tile)(const int SV, const int Q, long ss, const ELEM *restrict panel, long sp,
                                   const ELEM *const *at, long step, float *restrict acc) {
  enum { R = 16 / PER };  // rows of the panel per position
  VEC a[VDK_WGRAD_SMALL][VDK_WGRAD_TAPS];
  const ELEM *restrict p[VDK_WGRAD_TAPS];
#pragma clang loop unroll(full)
  for (int q = 0; q < Q; q++) {
    p[q] = at[q];
#pragma clang loop unroll(full)
    for (int v = 0; v < SV; v++) a[v][q] = (VEC)0.0f;
  }
  for (long j = 0; j < ss; j++, panel += R * sp) {
// By 8: unrolled 16 times, clang hoists the broadcasts and spills the chains (measured in the C harness).
#pragma clang loop unroll_count(8)
    for (int l = 0; l < R; l++) {
      XVEC x[VDK_WGRAD_SMALL];
#pragma clang loop unroll(full)
      for (int v = 0; v < SV; v++) x[v] = vdk_load(XVEC, panel + l * sp + v * VDK_WIDTH);
#pragma clang loop unroll(full)
      for (int q = 0; q < Q; q++) {
        const XVEC y = (XVEC)(p[q][j * step + l]);
#pragma clang loop unroll(full)
        for (int v = 0; v < SV; v++) a[v][q] = MAC(a[v][q], x[v], y);
      }
    }
  }
#pragma clang loop unroll(full)
  for (int q = 0; q < Q; q++)
#pragma clang loop unroll(full)
    for (int v = 0; v < SV; v++) {
      float *at_q = acc + q * sp + v * VDK_WIDTH;
      vdk_store(VEC, at_q, vdk_load(VEC, at_q) + a[v][q]);
    }
}

VDK_KERNEL
void VDK_FN(vdk_conv_weight_grad)(const VDKWindow *g, const float *small, const float *large, float *dweight) {
  enum { SB = VDK_WGRAD_SMALL * VDK_WIDTH, QB = VDK_WGRAD_TAPS };
  _Static_assert(QB <= 12, "tiles of at most 12 weights (VDK_CONSTANT)");
  _Static_assert(SB % 8 == 0, "the panel is transposed in 8 × 8 blocks");
  const long small_channel = vdk_grid_channel(g->small_side, g->lanes);
  const long large_channel = vdk_grid_channel(g->large_side, g->lanes);
  const long ss = g->small_side, lw = g->large_side + 2, n = g->lanes, st = g->stride;
  const long sp = (g->small_channels + SB - 1) / SB * SB, weights = 9 * g->large_channels;
  float *acc = vdk_thread_scratch(weights * sp + ss * 16 * sp + (PER - 1) * ss * 8 * sp);
  float *panel = acc + weights * sp;
#if VDK_PAIRS
  // The large grid in pairs of neighbouring lanes (every offset in it is even: lanes come in 16s).
  const ELEM *grid = VDK_FN(paired)(large, g->large_channels * large_channel);
  ELEM *rows = (ELEM *)(panel + ss * 16 * sp);
#else
  const ELEM *grid = large;
  const ELEM *rows = panel;
#endif
  for (long k = 0; k < weights * sp; k++) acc[k] = 0;
  for (long b = 0; b < n; b += 16)
    for (long i = 0; i < ss; i++) {
      VDK_FN(wgrad_panel)(g, i, small + b, small_channel, panel, sp);
#if VDK_PAIRS
      VDK_FN(wgrad_pairs)(ss, panel, sp, rows);
#endif
      // Weight w = l·9 + t reads large[l] from row stride·i + kh, column kw, then stride·j on.
      const ELEM *row = grid + (b + st * i * lw * n) / PER;
      // Tiles of weights of near-equal sizes (9 = 4 + 5, not 6 + 3: a tile needs its chains to hide
      // the FMA latency).
      const long tiles = (weights + QB - 1) / QB;
      for (long s0 = 0; s0 < sp; s0 += SB)
        for (long tile = 0; tile < tiles; tile++) {
          const long w0 = vdk_part(tile, weights, tiles), nq = vdk_part(tile + 1, weights, tiles) - w0;
          const ELEM *at[QB];
          for (long q = 0; q < nq; q++) {
            const long l = (w0 + q) / 9, t = (w0 + q) % 9;
            at[q] = row + (l * large_channel + ((t / 3) * lw + t % 3) * n) / PER;
          }
          float *a = acc + w0 * sp + s0;
#define VDK_WGRAD_TILE(Q) VDK_FN(wgrad_tile)(VDK_WGRAD_SMALL, Q, ss, rows + s0, sp, at, st * n / PER, a)
          VDK_CONSTANT(VDK_WGRAD_TILE, nq, QB)
#undef VDK_WGRAD_TILE
        }
    }
  for (long s = 0; s < g->small_channels; s++)
    for (long w = 0; w < weights; w++) dweight[s * weights + w] = acc[w * sp + s];
}
