// The window kernels of one variant (included by direct_body.h, whose macros they use): Conv2d
// forward and ConvTranspose2d backward-data gather, ConvTranspose2d forward and Conv2d backward-data
// scatter by phases, both through window_pass.

// out[co][pos] = init + Σ_ci Σ_t w(co, ci, t) · in[ci][base[pos] + tap[t]] for CO channels × POS
// vectors: vector q is part q % H of position q / H's 16 lanes (H vectors per lane block), so a block
// uses whole cache lines. Packed weights: wp[(ci·ntaps + t)·nco + co].
VDK_INLINE void VDK_FN(window_block)(const int CO, const int POS, const float *restrict wp, long nco, long nci,
                                      long ntaps, const long *restrict tap, const float *restrict in,
                                      long in_channel, const long *restrict base, float *restrict out,
                                      long out_channel, const long *restrict at, const float *restrict bias,
                                      int first, int last, int relu, const float *restrict mask) {
  enum { H = 16 / VDK_WIDTH };
  VEC acc[VDK_GATHER_CO][VDK_GATHER_CO * VDK_GATHER_POS];
#pragma clang loop unroll(full)
  for (int c = 0; c < CO; c++)
#pragma clang loop unroll(full)
    for (int p = 0; p < POS; p++)
      acc[c][p] = first ? (VEC)(bias ? bias[c] : 0.0f)
                        : vdk_load(VEC, out + c * out_channel + at[p / H] + p % H * VDK_WIDTH);
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
      VEC v = acc[c][p];
      if (last) {
        if (relu) v = VRELU(v);
        if (mask) v = VMASK(v, vdk_load(VEC, mask + o));
      }
      vdk_store(VEC, out + o, v);
    }
}

// window_pass without a panel, for few input rows (conv1, convT3: one input channel) or one output
// channel: positions [0, npos), output channels [0, nco), all lanes; a block holds PB positions' lane blocks.
VDK_KERNEL
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
      // One output channel (ConvTranspose2d 32 → 1): the register block spans positions instead, and
      // the input channels go in chunks of VDK_DIRECT_CHUNK, each over every position, so the rows
      // that neighbouring blocks share stay in L1 (all 32 channels' rows do not: 49 KB a block).
      // A chunk continues the stored partial sums, so each chain keeps its order.
      for (long c0 = 0; c0 < nci; c0 += VDK_DIRECT_CHUNK) {
        const long nc = nci - c0 < VDK_DIRECT_CHUNK ? nci - c0 : VDK_DIRECT_CHUNK;
        const int first = c0 == 0, last = c0 + nc == nci;
        const float *w = wp + c0 * ntaps, *x = in_b + c0 * in_channel;
        long p = 0;
        for (; p + WIDE / H <= npos; p += WIDE / H)
          VDK_FN(window_block)(1, WIDE, w, 1, nc, ntaps, tap, x, in_channel, base + p, out_b, out_channel, at + p,
                               bias, first, last, relu, mask_b);
        for (; p < npos; p++)
          VDK_FN(window_block)(1, H, w, 1, nc, ntaps, tap, x, in_channel, base + p, out_b, out_channel, at + p,
                               bias, first, last, relu, mask_b);
      }
      continue;
    }
    // Output channels outer, positions inner: a block of channels writes (and masks) its planes in
    // order, a few streams the prefetchers follow, while the few input rows stay in L1 or L2.
    const long nb = (nco + VDK_GATHER_CO - 1) / VDK_GATHER_CO;
    for (long i = 0; i < nb; i++) {
      const long c = vdk_part(i, nco, nb), nc = vdk_part(i + 1, nco, nb) - c;
      const float *bc = bias ? bias + c : 0;
      for (long p = 0; p < npos; p += PB) {
        const long np = npos - p < PB ? npos - p : PB;
        // Constant block sizes, so each block is unrolled into registers; the last block of channels
        // or positions is a smaller constant block.
#define VDK_BLOCK(C, P)                                                                                      \
  VDK_FN(window_block)(C, (P) * H, wp + c, nco, nci, ntaps, tap, in_b, in_channel, base + p, out_b + c * out_channel, \
                       out_channel, at + p, bc, 1, 1, relu, mask_b ? mask_b + c * out_channel : 0)
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
// ReLU and the mask only after the last chunk. panel[pp][k][16]: row k of position pp; wq[k·CO + co]
// (rows of PER chain elements each: under VDK_PAIRS a row is a pair of the chain's rows).
VDK_INLINE void VDK_FN(panel_block)(const int CO, const int PP, const ELEM *restrict wq, const ELEM *restrict panel,
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
    XVEC x[VDK_GATHER_POS];
#pragma clang loop unroll(full)
    for (int q = 0; q < PP * H; q++) x[q] = vdk_load(XVEC, panel + ((q / H) * kc + k) * 16 + q % H * VDK_WIDTH);
#pragma clang loop unroll(full)
    for (int c = 0; c < CO; c++) {
      const XVEC wc = (XVEC)wq[k * CO + c];
#pragma clang loop unroll(full)
      for (int q = 0; q < PP * H; q++) acc[c][q] = MAC(acc[c][q], x[q], wc);
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

// Every block of one class of positions: positions [0, npos) with input bases and output offsets,
// output channels [0, nco), all lanes, over taps t < ntaps (input offset tap[t]; W(co, ci, t) =
// weight[co · wco + ci · wci + wk[t]]). Written as a GEMM (BLIS's loops): the nci · ntaps input rows a
// block of positions reads are copied into a contiguous panel, in chunks of at most VDK_PANEL_ROWS rows
// so a position's chunk stays in L1 while every block of output channels runs over it; each block of
// channels reads its weights, packed from `weight` here, contiguously. Every chain keeps its order
// (rows k = ci · ntaps + t in order, a chunk continuing from the stored partial sum), so the bits are
// those of the plain loops. scratch: nco · nci · ntaps floats, for window_direct's packing.
VDK_KERNEL
static void VDK_FN(window_pass)(const float *restrict weight, long wco, long wci, const int *restrict wk, long nco,
                                long nci, long ntaps, const long *restrict tap, const float *restrict in,
                                long in_channel, const long *restrict base, long npos, float *restrict out,
                                long out_channel, const long *restrict at, const float *restrict bias, int relu,
                                const float *restrict mask, long lanes, float *restrict scratch) {
  enum { H = 16 / VDK_WIDTH, PB = VDK_GATHER_POS / H, CO = VDK_GATHER_CO };
  _Static_assert(PB >= 1 && PB * H == VDK_GATHER_POS, "a block holds whole lane blocks");
  if (vdk_window_direct(nco, nci, ntaps)) {
    // window_direct's packing: wp[(ci·ntaps + t)·nco + co].
    for (long ci = 0; ci < nci; ci++)
      for (long t = 0; t < ntaps; t++)
        for (long co = 0; co < nco; co++) scratch[(ci * ntaps + t) * nco + co] = weight[co * wco + ci * wci + wk[t]];
    VDK_FN(window_direct)(scratch, nco, nci, ntaps, tap, in, in_channel, base, npos, out, out_channel, at, bias, relu,
                          mask, lanes);
    return;
  }
  const long K = nci * ntaps;
  // A chunk of PB positions' rows fills about VDK_PANEL_ROWS rows' worth of L1; under VDK_PAIRS a chunk
  // starts on a pair (kc even), and a chain of odd length ends on a pair with a padding element.
  const long rows = VDK_PANEL_ROWS / PB, chunks = (K + rows - 1) / rows;
  const long kc = ((K + chunks - 1) / chunks + PER - 1) / PER * PER, KR = (K + PER - 1) / PER;
  // wq, the panel (from a 64-byte boundary), then the row tables: 2 · K longs.
  const long tables = 2 * K * (long)(sizeof(long) / sizeof(float));
  ELEM *wq = (ELEM *)vdk_thread_scratch(KR * nco + PB * kc / PER * 16 + 16 + tables);
  ELEM *panel = wq + (KR * nco + 15) / 16 * 16;
  // Chain row k (input channel k / ntaps, tap k % ntaps) lies at in_row[k] from a position's base, and
  // its weights at w_row[k] from an output channel's: computed once, so the panel copy does one load
  // and one add per row.
  long *in_row = (long *)(panel + PB * kc / PER * 16), *w_row = in_row + K;
  for (long k = 0; k < K; k++) {
    in_row[k] = k / ntaps * in_channel + tap[k % ntaps];
    w_row[k] = k / ntaps * wci + wk[k % ntaps];
  }
  // The output channels in nb blocks of at most CO, sizes differing by at most one (32 = 6,6,5,5,5,5,
  // not 6,6,6,6,6,2: a block of 2 has too few chains to hide the FMA latency).
  const long nb = (nco + CO - 1) / CO;
  // wq: block c0's weights at wq + c0 · KR, row r at + r · nc (nc: the block's channels).
  for (long i = 0; i < nb; i++) {
    const long c0 = vdk_part(i, nco, nb), nc = vdk_part(i + 1, nco, nb) - c0;
    for (long r = 0; r < KR; r++)
      for (long c = 0; c < nc; c++)
        wq[c0 * KR + r * nc + c] = VDK_FN(weight_element)(weight + (c0 + c) * wco, w_row + r * PER, K - r * PER);
  }
  for (long b = 0; b < lanes; b += 16) {
    float *out_b = out + b;
    const float *mask_b = mask ? mask + b : 0;
    for (long p = 0; p < npos; p += PB) {
      const long np = npos - p < PB ? npos - p : PB;
      for (long k0 = 0; k0 < K; k0 += kc) {
        const long nk = K - k0 < kc ? K - k0 : kc, nr = (nk + PER - 1) / PER;
        // The panel: rows k0 … k0 + nk − 1 of each of the block's positions.
        // The grids live in L2 or L3 and the rows lie in many planes, which the hardware prefetchers
        // do not follow: each row copied asks for the same row of the next block of positions.
        const long ahead = p + PB < npos ? base[p + PB] - base[p] : 0;
        for (long pp = 0; pp < np; pp++) {
          ELEM *dst = panel + pp * nr * 16;
          const float *position = in + b + base[p + pp];
          for (long k = k0; k < k0 + nk; k += PER, dst += 16) {
            const float *src[PER];  // the row's chain elements; past the chunk's end, none (padding)
#pragma clang loop unroll(full)
            for (int e = 0; e < PER; e++) {
              const int inside = k + e < k0 + nk;
              src[e] = inside ? position + in_row[k + e] : 0;
              if (inside) __builtin_prefetch(src[e] + ahead);
            }
            VDK_FN(panel_row)(dst, src);
          }
        }
        const int first = k0 == 0, last = k0 + nk == K;
        for (long i = 0; i < nb; i++) {
          const long c = vdk_part(i, nco, nb), nc = vdk_part(i + 1, nco, nb) - c;
          const float *bc = bias ? bias + c : 0;
          const ELEM *w = wq + c * KR + k0 / PER * nc;
          float *oc = out_b + c * out_channel;
          const float *mc = mask_b ? mask_b + c * out_channel : 0;
          // The next block of positions' output (and mask) lines, which nothing has read yet.
          if (p + PB < npos)
            for (long pp = 0; pp < PB && p + PB + pp < npos; pp++)
              for (long cc = 0; cc < nc; cc++) {
                __builtin_prefetch(oc + cc * out_channel + at[p + PB + pp], 1, 3);
                if (mc) __builtin_prefetch(mc + cc * out_channel + at[p + PB + pp], 0, 3);
              }
#define VDK_BLOCK(C, P) VDK_FN(panel_block)(C, P, w, panel, nr, oc, out_channel, at + p, bc, first, last, relu, mc)
          if (np == PB) {
            VDK_CHANNELS(VDK_BLOCK, nc, PB)
          } else {
            for (long pp = 0; pp < np; pp++) {
#undef VDK_BLOCK
#define VDK_BLOCK(C, P) \
  VDK_FN(panel_block)(C, P, w, panel + pp * nr * 16, nr, oc, out_channel, at + p + pp, bc, first, last, relu, mc)
              VDK_CHANNELS(VDK_BLOCK, nc, 1)
            }
          }
#undef VDK_BLOCK
        }
      }
    }
  }
}
// window_pass class by class, a class being the positions whose taps inside the input grid are the
// same (bit t of valid[pos] for tap t): each class runs with its inside taps only, so no FMA multiplies
// the zero border (2/(3·side) of a stride-2 window's taps). A chain then lacks only terms w · 0, and
// every class keeps the tap order, so each value is the one the full window gives (up to the sign of
// a zero sum) in every variant. W(co, ci, tap t) = weight[co · wco + ci · wci + k[t]]. The passes that
// go to window_direct (one input or output channel) keep all their taps.
VDK_KERNEL
static void VDK_FN(window_classes)(const float *weight, long wco, long wci, const int *k, long nco, long nci,
                                   long ntaps, const long *tap, const unsigned short *valid, const float *in,
                                   long in_channel, const long *base, long npos, float *out, long out_channel,
                                   const long *at, const float *bias, int relu, const float *mask, long lanes,
                                   float *scratch) {
  const unsigned short all = (unsigned short)((1 << ntaps) - 1);
  unsigned short classes[16];
  int nclasses = 0, every = vdk_window_direct(nco, nci, ntaps);  // every: one class, all taps
  for (long p = 0; p < npos && !every; p++) {
    int seen = 0;
    for (int c = 0; c < nclasses; c++) seen |= classes[c] == valid[p];
    if (!seen && nclasses == 16) every = 1;
    else if (!seen) classes[nclasses++] = valid[p];
  }
  if (every) classes[0] = all, nclasses = 1;
  long cbase[VDK_MAX_POSITIONS], cat[VDK_MAX_POSITIONS], ctap[9];
  for (int c = 0; c < nclasses; c++) {
    const unsigned short m = classes[c];
    int ck[9];
    long nt = 0, np = 0;
    for (long t = 0; t < ntaps; t++)
      if (m >> t & 1) ck[nt] = k[t], ctap[nt++] = tap[t];
    for (long p = 0; p < npos; p++)
      if (every || valid[p] == m) cbase[np] = base[p], cat[np++] = at[p];
    VDK_FN(window_pass)(weight, wco, wci, ck, nco, nci, nt, ctap, in, in_channel, cbase, np, out, out_channel, cat, bias,
                        relu, mask, lanes, scratch);
  }
}

VDK_KERNEL
void VDK_FN(vdk_conv_gather)(const VDKWindow *g, const float *weight, const float *bias, int relu, const float *mask,
                             const float *large, float *small, float *scratch) {
  long sp[VDK_MAX_POSITIONS], lp[VDK_MAX_POSITIONS], tap[9];
  unsigned short valid[VDK_MAX_POSITIONS];
  const long npos = vdk_window_positions(g, sp, lp, valid, tap);
  static const int k[9] = {0, 1, 2, 3, 4, 5, 6, 7, 8};
  // W[s][l][t]: output channel s, input channel l.
  const long L = g->large_channels;
  VDK_FN(window_classes)(weight, L * 9, 9, k, g->small_channels, L, 9, tap, valid, large,
                         vdk_grid_channel(g->large_side, g->lanes), lp, npos, small,
                         vdk_grid_channel(g->small_side, g->lanes), sp, bias, relu, mask, g->lanes, scratch);
}

VDK_KERNEL
void VDK_FN(vdk_conv_scatter)(const VDKWindow *g, const float *weight, const float *bias, int relu, const float *mask,
                              const float *small, float *large, float *scratch) {
  VDKPhase phases[4];
  const int nphases = vdk_window_phases(g, phases);
  const long L = g->large_channels;
  for (int f = 0; f < nphases; f++) {
    const VDKPhase *ph = &phases[f];
    // W[s][l][k]: output channel l, input channel s, the phase's taps k.
    VDK_FN(window_classes)(weight, 9, L * 9, ph->k, L, g->small_channels, ph->ntaps, ph->tap, ph->valid, small,
                           vdk_grid_channel(g->small_side, g->lanes), ph->base, ph->npos, large,
                           vdk_grid_channel(g->large_side, g->lanes), ph->at, bias, relu, mask, g->lanes, scratch);
  }
}
