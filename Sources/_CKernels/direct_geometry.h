// The geometry of the window kernels (included by direct_common.h): how a
// bordered grid is laid out, which positions a window pass visits, where each reads and writes, and
// which of its taps fall inside the input grid rather than on its zero border.

/// Floats between channels of a grid of side `side` with its one-pixel zero border, and one cache line
/// more: a bordered 14×14 map of 16 lanes is exactly 16 KiB, so without it every channel's pixel
/// (y, x) falls in the same L1 set (8 ways for the 32-64 channels a window reads).
static inline long vdk_grid_channel(long side, long lanes) { return (side + 2) * (side + 2) * lanes + 16; }

/// Every kernel function starts on a 64-byte line, so its loops lie the same way whatever changes
/// elsewhere in the file. Where the window kernels started modulo 64 moved their passes by up to 14%
/// on a Zen 3 (the same source: at 0 or 48 the fastest, at 16 or 32 the big window passes up to 1.14
/// the time; docs/kernels.md); the compiler's default of 16 left it to the linker.
#define VDK_KERNEL __attribute__((aligned(64)))

/// The window kernels copy a block of positions' input rows (channel × tap, 16 lanes each) into a
/// contiguous panel, at most VDK_PANEL_ROWS rows at a time (16 KiB: half of L1), when there are at
/// least VDK_PANEL_MIN_ROWS of them; below that (one input channel) the copy costs more than it saves.
enum { VDK_PANEL_ROWS = 256, VDK_PANEL_MIN_ROWS = 32 };

/// Whether a window pass of nco output and nci input channels over ntaps taps runs without a panel
/// (window_direct): one output channel, or too few rows. It holds for ntaps = 1 whenever it holds for
/// some ntaps ≥ 1, so vdk_window_direct(nco, nci, 1) says whether any class of a call may run direct.
static inline int vdk_window_direct(long nco, long nci, long ntaps) {
  return nco == 1 || nci * ntaps < VDK_PANEL_MIN_ROWS;
}

/// A window pass onto one output channel (convT3) takes its input channels this many at a time.
enum { VDK_DIRECT_CHUNK = 4 };

/// The start of part i when n things are cut into `parts` parts whose sizes differ by at most one.
static inline long vdk_part(long i, long n, long parts) { return i * n / parts; }

/// Whether interior position (y, x) lies inside a grid of side `side` (not on its zero border).
static inline int vdk_inside(long y, long x, long side) { return y >= 0 && y < side && x >= 0 && x < side; }

/// The small grid's interior positions (row-major), where each reads the large grid, which of the 9
/// taps read inside it (bit t of valid; the others read the zero border), and the 9 taps.
__attribute__((unused)) static long vdk_window_positions(const VDKWindow *g, long *sp, long *lp, unsigned short *valid, long *tap) {
  const long S = g->small_side, L = g->large_side, s = g->stride, n = g->lanes;
  for (long i = 0; i < S; i++)
    for (long j = 0; j < S; j++) {
      sp[i * S + j] = ((i + 1) * (S + 2) + j + 1) * n;
      lp[i * S + j] = (s * i * (L + 2) + s * j) * n;
      valid[i * S + j] = 0;
      for (long t = 0; t < 9; t++)
        if (vdk_inside(s * i - 1 + t / 3, s * j - 1 + t % 3, L)) valid[i * S + j] |= (unsigned short)(1 << t);
    }
  for (long kh = 0; kh < 3; kh++)
    for (long kw = 0; kw < 3; kw++) tap[kh * 3 + kw] = (kh * (L + 2) + kw) * n;
  return S * S;
}

/// One class of large-grid positions that the same taps reach (stride 2: the four parities of
/// (y, x), reached by 1, 2, 2 and 4 taps; stride 1: all positions, 9 taps), in increasing tap order.
typedef struct {
  long ntaps, npos;
  int k[9];
  long tap[9];
  long base[VDK_MAX_POSITIONS], at[VDK_MAX_POSITIONS];
  unsigned short valid[VDK_MAX_POSITIONS];  // bit t: tap t reads inside the small grid, not its border
} VDKPhase;

__attribute__((unused)) static int vdk_window_phases(const VDKWindow *g, VDKPhase *phases) {
  const long S = g->small_side, L = g->large_side, n = g->lanes;
  if (g->stride == 1) {
    VDKPhase *ph = &phases[0];
    ph->ntaps = 9;
    for (int k = 0; k < 9; k++) {
      const long kh = k / 3, kw = k % 3;
      ph->k[k] = k;
      ph->tap[k] = ((1 - kh) * (S + 2) + (1 - kw)) * n;
    }
    ph->npos = L * L;
    for (long y = 0; y < L; y++)
      for (long x = 0; x < L; x++) {
        ph->base[y * L + x] = ((y + 1) * (S + 2) + x + 1) * n;
        ph->at[y * L + x] = ((y + 1) * (L + 2) + x + 1) * n;
        ph->valid[y * L + x] = 0;
        for (int k = 0; k < 9; k++)
          if (vdk_inside(y + 1 - k / 3, x + 1 - k % 3, S)) ph->valid[y * L + x] |= (unsigned short)(1 << k);
      }
    return 1;
  }
  int f = 0;
  for (long py = 0; py < 2; py++)
    for (long px = 0; px < 2; px++, f++) {
      VDKPhase *ph = &phases[f];
      ph->ntaps = 0;
      for (long kh = 0; kh < 3; kh++) {
        if ((kh % 2 == 1) != (py == 0)) continue;  // y + 1 − kh must be even
        for (long kw = 0; kw < 3; kw++) {
          if ((kw % 2 == 1) != (px == 0)) continue;
          const long di = (py + 1 - kh) / 2, dj = (px + 1 - kw) / 2;
          ph->k[ph->ntaps] = (int)(kh * 3 + kw);
          ph->tap[ph->ntaps] = (di * (S + 2) + dj) * n;
          ph->ntaps++;
        }
      }
      ph->npos = S * S;
      for (long m = 0; m < S; m++)
        for (long q = 0; q < S; q++) {
          const long y = 2 * m + py, x = 2 * q + px;
          ph->base[m * S + q] = ((m + 1) * (S + 2) + q + 1) * n;
          ph->at[m * S + q] = ((y + 1) * (L + 2) + x + 1) * n;
          ph->valid[m * S + q] = 0;
          for (long t = 0; t < ph->ntaps; t++)
            if (vdk_inside(m + (py + 1 - ph->k[t] / 3) / 2, q + (px + 1 - ph->k[t] % 3) / 2, S))
              ph->valid[m * S + q] |= (unsigned short)(1 << t);
        }
    }
  return 4;
}
