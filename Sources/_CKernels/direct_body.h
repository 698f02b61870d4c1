// The direct convolution and dense kernels of one variant. direct.c includes this file once per
// variant, with the variant's target attribute in force and:
//   VDK_SUFFIX       the names' suffix;
//   VDK_WIDTH        floats per vector (16, 8 or 4): a lane block of 16 images is 16 / VDK_WIDTH vectors;
//   VDK_GATHER_CO,   the register block of the window and dense kernels: output channels × positions;
//   VDK_GATHER_POS
//   VDK_WGRAD_SMALL, the register block of the weight gradient: small channels × taps.
//   VDK_WGRAD_TAPS
//
// The arithmetic is the same in every variant: every output lane is one chain of FMAs in the order
// CKernels.h documents, and lanes (images) never mix until the fixed lane tree. Blocking and vector
// width only decide which chains run side by side.

#define VDK_CAT2(a, b) a##_##b
#define VDK_CAT(a, b) VDK_CAT2(a, b)
#define VDK_FN(name) VDK_CAT(name, VDK_SUFFIX)
#define VDK_INLINE static inline __attribute__((always_inline))

typedef float VDK_FN(vec) __attribute__((ext_vector_type(VDK_WIDTH)));
#define VEC VDK_FN(vec)
#define VRELU(v) ({ const VEC r_ = (v); r_ > (VEC)0.0f ? r_ : (VEC)0.0f; })
/// ReLU's backward fused into a store: v where the forward output m > 0, else +0.
#define VMASK(v, m) ({ const VEC m_ = (m); m_ > (VEC)0.0f ? (v) : (VEC)0.0f; })
/// A block of nc output channels (1 … VDK_GATHER_CO, known at run time) as BLOCK(C, P) with C a
/// constant, so every block size is unrolled into registers.
#define VDK_CHANNELS(BLOCK, nc, P)                                               \
  switch (nc) {                                                                  \
  case 1: BLOCK(1, P); break;                                                    \
  case 2: if (VDK_GATHER_CO >= 2) BLOCK(2 % (VDK_GATHER_CO + 1), P); break;      \
  case 3: if (VDK_GATHER_CO >= 3) BLOCK(3 % (VDK_GATHER_CO + 1), P); break;      \
  case 4: if (VDK_GATHER_CO >= 4) BLOCK(4 % (VDK_GATHER_CO + 1), P); break;      \
  case 5: if (VDK_GATHER_CO >= 5) BLOCK(5 % (VDK_GATHER_CO + 1), P); break;      \
  default: BLOCK(VDK_GATHER_CO, P); break;                                       \
  }

// out[co][pos] = init + Σ_ci Σ_t w(co, ci, t) · in[ci][base[pos] + tap[t]] for CO channels × POS
// vectors: vector q is part q % H of position q / H's 16 lanes (H vectors per lane block), so a block
// uses whole cache lines. Packed weights: wp[(ci·ntaps + t)·nco + co].
VDK_INLINE void VDK_FN(window_block)(const int CO, const int POS, const float *restrict wp, long nco, long nci,
                                      long ntaps, const long *restrict tap, const float *restrict in,
                                      long in_channel, const long *restrict base, float *restrict out,
                                      long out_channel, const long *restrict at, const float *restrict bias,
                                      int relu, const float *restrict mask) {
  enum { H = 16 / VDK_WIDTH };
  VEC acc[VDK_GATHER_CO][VDK_GATHER_CO * VDK_GATHER_POS];
#pragma clang loop unroll(full)
  for (int c = 0; c < CO; c++)
#pragma clang loop unroll(full)
    for (int p = 0; p < POS; p++) acc[c][p] = (VEC)(bias ? bias[c] : 0.0f);
  for (long ci = 0; ci < nci; ci++) {
    const float *restrict channel = in + ci * in_channel;
    const float *restrict w = wp + ci * ntaps * nco;
    for (long t = 0; t < ntaps; t++, w += nco) {
      const float *restrict x = channel + tap[t];
      VEC xv[VDK_GATHER_CO * VDK_GATHER_POS];
#pragma clang loop unroll(full)
      for (int p = 0; p < POS; p++) xv[p] = vdk_load(VEC, x + base[p / H] + p % H * VDK_WIDTH);
#pragma clang loop unroll(full)
      for (int c = 0; c < CO; c++) {
        const VEC wc = (VEC)w[c];
#pragma clang loop unroll(full)
        for (int p = 0; p < POS; p++) acc[c][p] = vdk_fma(wc, xv[p], acc[c][p]);
      }
    }
  }
#pragma clang loop unroll(full)
  for (int c = 0; c < CO; c++)
#pragma clang loop unroll(full)
    for (int p = 0; p < POS; p++)
    {
      const long o = c * out_channel + at[p / H] + p % H * VDK_WIDTH;
      VEC v = relu ? VRELU(acc[c][p]) : acc[c][p];
      if (mask) v = VMASK(v, vdk_load(VEC, mask + o));
      vdk_store(VEC, out + o, v);
    }
}

// window_pass without a panel, for few input rows (conv1, convT3: one input channel) or one output
// channel: positions [0, npos), output channels [0, nco), all lanes; a block holds PB positions' lane blocks.
static void VDK_FN(window_direct)(const float *restrict wp, long nco, long nci, long ntaps, const long *restrict tap,
                                const float *restrict in, long in_channel, const long *restrict base, long npos,
                                float *restrict out, long out_channel, const long *restrict at,
                                const float *restrict bias, int relu, const float *restrict mask, long lanes) {
  enum { H = 16 / VDK_WIDTH, PB = VDK_GATHER_POS / H, WIDE = VDK_GATHER_CO * VDK_GATHER_POS };
  _Static_assert(PB >= 1 && PB * H == VDK_GATHER_POS, "a block holds whole lane blocks");
  for (long b = 0; b < lanes; b += 16) {
    const float *in_b = in + b;
    float *out_b = out + b;
    const float *mask_b = mask ? mask + b : 0;
    if (nco == 1) {
      // One output channel (ConvTranspose2d 32 → 1): the register block spans positions instead.
      long p = 0;
      for (; p + WIDE / H <= npos; p += WIDE / H)
        VDK_FN(window_block)(1, WIDE, wp, 1, nci, ntaps, tap, in_b, in_channel, base + p, out_b, out_channel, at + p,
                             bias, relu, mask_b);
      for (; p < npos; p++)
        VDK_FN(window_block)(1, H, wp, 1, nci, ntaps, tap, in_b, in_channel, base + p, out_b, out_channel, at + p,
                             bias, relu, mask_b);
      continue;
    }
    for (long p = 0; p < npos; p += PB) {
      const long np = npos - p < PB ? npos - p : PB;
      // The next block's inputs: one line per channel, tap and position, in so many planes that the
      // hardware prefetchers lose track (the grids of the larger layers live in L3).
      for (long q = p + PB; q < p + 2 * PB && q < npos; q++)
        for (long ci = 0; ci < nci; ci++)
          for (long t = 0; t < ntaps; t++) __builtin_prefetch(in_b + ci * in_channel + tap[t] + base[q]);
      for (long c = 0; c < nco; c += VDK_GATHER_CO) {
        const long nc = nco - c < VDK_GATHER_CO ? nco - c : VDK_GATHER_CO;
        const float *bc = bias ? bias + c : 0;
        // Constant block sizes, so each block is unrolled into registers; the last block of channels
        // or positions is a smaller constant block.
#define VDK_BLOCK(C, P)                                                                                      \
  VDK_FN(window_block)(C, (P) * H, wp + c, nco, nci, ntaps, tap, in_b, in_channel, base + p, out_b + c * out_channel, \
                       out_channel, at + p, bc, relu, mask_b ? mask_b + c * out_channel : 0)
        if (np == PB) {
          VDK_CHANNELS(VDK_BLOCK, nc, PB)
        } else {
          for (long pp = 0; pp < np; pp++, p++) VDK_CHANNELS(VDK_BLOCK, nc, 1)
          p -= np;
        }
#undef VDK_BLOCK
      }
    }
  }
}

// out[co][pos] for CO channels × PP positions (each H vectors of one lane block) over the panel's kc rows,
// continuing the chains: from the bias (first) or from what out holds (a later chunk of rows); the
// ReLU and the mask only after the last chunk. panel[pp][k][16]: row k of position pp; wq[k·CO + co].
VDK_INLINE void VDK_FN(panel_block)(const int CO, const int PP, const float *restrict wq, const float *restrict panel,
                                     long kc, float *restrict out, long out_channel, const long *restrict at,
                                     const float *restrict bias, int first, int last, int relu,
                                     const float *restrict mask) {
  enum { H = 16 / VDK_WIDTH };
  VEC acc[VDK_GATHER_CO][VDK_GATHER_POS];
#pragma clang loop unroll(full)
  for (int c = 0; c < CO; c++)
#pragma clang loop unroll(full)
    for (int q = 0; q < PP * H; q++)
      acc[c][q] = first ? (VEC)(bias ? bias[c] : 0.0f)
                        : vdk_load(VEC, out + c * out_channel + at[q / H] + q % H * VDK_WIDTH);
  for (long k = 0; k < kc; k++) {
    VEC x[VDK_GATHER_POS];
#pragma clang loop unroll(full)
    for (int q = 0; q < PP * H; q++) x[q] = vdk_load(VEC, panel + ((q / H) * kc + k) * 16 + q % H * VDK_WIDTH);
#pragma clang loop unroll(full)
    for (int c = 0; c < CO; c++) {
      const VEC wc = (VEC)wq[k * CO + c];
#pragma clang loop unroll(full)
      for (int q = 0; q < PP * H; q++) acc[c][q] = vdk_fma(wc, x[q], acc[c][q]);
    }
  }
#pragma clang loop unroll(full)
  for (int c = 0; c < CO; c++)
#pragma clang loop unroll(full)
    for (int q = 0; q < PP * H; q++) {
      const long o = c * out_channel + at[q / H] + q % H * VDK_WIDTH;
      VEC v = acc[c][q];
      if (last) {
        if (relu) v = VRELU(v);
        if (mask) v = VMASK(v, vdk_load(VEC, mask + o));
      }
      vdk_store(VEC, out + o, v);
    }
}

// Every block of one weight packing: positions [0, npos) with input bases and output offsets, output
// channels [0, nco), all lanes. Written as a GEMM (BLIS's loops): the nci · ntaps input rows a block of
// positions reads are copied into a contiguous panel, in chunks of at most VDK_PANEL_ROWS rows so a
// position's chunk stays in L1 while every block of output channels runs over it; each block of
// channels reads its weights contiguously. Every chain keeps its order (rows k = ci · ntaps + t in
// order, a chunk continuing from the stored partial sum), so the bits are those of the plain loops.
static void VDK_FN(window_pass)(const float *restrict wp, long nco, long nci, long ntaps, const long *restrict tap,
                                const float *restrict in, long in_channel, const long *restrict base, long npos,
                                float *restrict out, long out_channel, const long *restrict at,
                                const float *restrict bias, int relu, const float *restrict mask, long lanes) {
  enum { H = 16 / VDK_WIDTH, PB = VDK_GATHER_POS / H, CO = VDK_GATHER_CO };
  _Static_assert(PB >= 1 && PB * H == VDK_GATHER_POS, "a block holds whole lane blocks");
  if (nco == 1 || nci * ntaps < VDK_PANEL_MIN_ROWS) {
    VDK_FN(window_direct)(wp, nco, nci, ntaps, tap, in, in_channel, base, npos, out, out_channel, at, bias, relu, mask, lanes);
    return;
  }
  const long K = nci * ntaps;
  // A chunk of PB positions' rows fills about VDK_PANEL_ROWS rows' worth of L1.
  const long rows = VDK_PANEL_ROWS / PB, chunks = (K + rows - 1) / rows, kc = (K + chunks - 1) / chunks;
  float *wq = vdk_thread_scratch(K * nco + PB * kc * 16);
  float *panel = wq + (K * nco + 15) / 16 * 16;
  // wq: block c0's weights at wq + c0 · K, row k at + k · nc (nc: the block's channels).
  for (long c0 = 0; c0 < nco; c0 += CO) {
    const long nc = nco - c0 < CO ? nco - c0 : CO;
    for (long k = 0; k < K; k++)
      for (long c = 0; c < nc; c++) wq[c0 * K + k * nc + c] = wp[k * nco + c0 + c];
  }
  for (long b = 0; b < lanes; b += 16) {
    float *out_b = out + b;
    const float *mask_b = mask ? mask + b : 0;
    for (long p = 0; p < npos; p += PB) {
      const long np = npos - p < PB ? npos - p : PB;
      for (long k0 = 0; k0 < K; k0 += kc) {
        const long nk = K - k0 < kc ? K - k0 : kc;
        // The panel: rows k0 … k0 + nk − 1 of each of the block's positions.
        // The grids live in L2 or L3 and the rows lie in many planes, which the hardware prefetchers
        // do not follow: each row copied asks for the same row of the next block of positions.
        const long ahead = p + PB < npos ? base[p + PB] - base[p] : 0;
        for (long pp = 0; pp < np; pp++) {
          float *dst = panel + pp * nk * 16;
          for (long k = k0; k < k0 + nk; k++, dst += 16) {
            const float *src = in + b + (k / ntaps) * in_channel + tap[k % ntaps] + base[p + pp];
            __builtin_prefetch(src + ahead);
#pragma clang loop unroll(full)
            for (int h = 0; h < H; h++) vdk_store(VEC, dst + h * VDK_WIDTH, vdk_load(VEC, src + h * VDK_WIDTH));
          }
        }
        const int first = k0 == 0, last = k0 + nk == K;
        for (long c = 0; c < nco; c += CO) {
          const long nc = nco - c < CO ? nco - c : CO;
          const float *bc = bias ? bias + c : 0, *w = wq + c * K + k0 * nc;
          float *oc = out_b + c * out_channel;
          const float *mc = mask_b ? mask_b + c * out_channel : 0;
#define VDK_BLOCK(C, P) VDK_FN(panel_block)(C, P, w, panel, nk, oc, out_channel, at + p, bc, first, last, relu, mc)
          if (np == PB) {
            VDK_CHANNELS(VDK_BLOCK, nc, PB)
          } else {
            for (long pp = 0; pp < np; pp++) {
#undef VDK_BLOCK
#define VDK_BLOCK(C, P) \
  VDK_FN(panel_block)(C, P, w, panel + pp * nk * 16, nk, oc, out_channel, at + p + pp, bc, first, last, relu, mc)
              VDK_CHANNELS(VDK_BLOCK, nc, 1)
            }
          }
#undef VDK_BLOCK
        }
      }
    }
  }
}

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

void VDK_FN(vdk_conv_gather)(const VDKWindow *g, const float *weight, const float *bias, int relu, const float *mask,
                             const float *large, float *small, float *scratch) {
  long sp[VDK_MAX_POSITIONS], lp[VDK_MAX_POSITIONS], tap[9];
  const long npos = vdk_window_positions(g, sp, lp, tap);
  // Pack W[s][l][t] as wp[(l·9 + t)·S + s].
  const long S = g->small_channels, L = g->large_channels;
  for (long s = 0; s < S; s++)
    for (long l = 0; l < L; l++)
      for (long t = 0; t < 9; t++) scratch[(l * 9 + t) * S + s] = weight[(s * L + l) * 9 + t];
  VDK_FN(window_pass)(scratch, S, L, 9, tap, large, vdk_grid_channel(g->large_side, g->lanes), lp, npos, small,
                      vdk_grid_channel(g->small_side, g->lanes), sp, bias, relu, mask, g->lanes);
}

void VDK_FN(vdk_conv_scatter)(const VDKWindow *g, const float *weight, const float *bias, int relu, const float *mask,
                              const float *small, float *large, float *scratch) {
  VDKPhase phases[4];
  const int nphases = vdk_window_phases(g, phases);
  const long S = g->small_channels, L = g->large_channels;
  for (int f = 0; f < nphases; f++) {
    const VDKPhase *ph = &phases[f];
    // Pack W[s][l][k] for the phase's taps k as wp[(s·ntaps + t)·L + l].
    for (long s = 0; s < S; s++)
      for (long t = 0; t < ph->ntaps; t++)
        for (long l = 0; l < L; l++) scratch[(s * ph->ntaps + t) * L + l] = weight[(s * L + l) * 9 + ph->k[t]];
    VDK_FN(window_pass)(scratch, L, S, ph->ntaps, ph->tap, small, vdk_grid_channel(g->small_side, g->lanes), ph->base,
                        ph->npos, large, vdk_grid_channel(g->large_side, g->lanes), ph->at, bias, relu, mask, g->lanes);
  }
}

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
    float acc[16];
    for (long o = 0; o < nout; o++) {
      for (int l = 0; l < 16; l++) acc[l] = 0;
      for (long b = 0; b < lanes; b += 16)
        for (int l = 0; l < 16; l++) acc[l] += dy[dy_off[o] + b + l];
      dbias[o] = vdk_lane_tree(acc);
    }
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

#undef VRELU
#undef VDK_CHANNELS
#undef VMASK
#undef VEC
#undef VDK_FN
#undef VDK_CAT
#undef VDK_CAT2
#undef VDK_INLINE
// The variant's parameters, so the next variant defines its own.
#undef VDK_SUFFIX
#undef VDK_GATHER_CO
#undef VDK_GATHER_POS
#undef VDK_WGRAD_TAPS
#undef VDK_WIDTH
#undef VDK_WGRAD_SMALL
#undef VDK_WGRAD_ROWS
