// bf16 operands for the public entry points of direct.c (included there, after the variant table):
// the switch, the choice of kernels, the CPU check and the rounded copies of a call's operands (see
// include/CKernels.h). Every bf16 call runs with MXCSR's DAZ and FTZ set by vdk_flush_begin, as
// VDPBF16PS flushes regardless of MXCSR, and restored after the call. Its kernels are either the active
// variant's fp32 kernels on operands rounded into this thread's buffers at the same offsets (a
// product of two bf16 values is exact in fp32, so each step of a chain is the instruction's: one
// rounding of sum + product), or the avx512 pair kernels, native or modelled (direct_avx512_pairs.h),
// which round the grids they pack themselves.
//
// The switch and the choice are set before any worker runs a kernel, by every rank alike; the tests'
// ranks are threads of one process, which set them together (to the same values): so they are read
// and written atomically.
static int vdk_bf16_on;
#define VDK_BF16_ON() __atomic_load_n(&vdk_bf16_on, __ATOMIC_ACQUIRE)

int vdk_cpu_has_bf16(void) {
#if defined(__x86_64__) && defined(__clang__)
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512bf16");
#else
  return 0;
#endif
}

// The bf16 kernels of the active variant and how they compute (vdk_bf16_mode), chosen by vdk_set_bf16
// and vdk_select_kernels, before any worker runs a kernel. Published as one word, so no reader pairs
// one choice's kernels with another's mode: the kernels' address with the mode in its low bits (0: not
// chosen yet).
static uintptr_t vdk_bf16_choice;
_Static_assert(_Alignof(VDKVariant) >= 4 && VDK_BF16_EMULATED_DIFFERS < 4, "the mode fits below the address");
static const VDKVariant *vdk_bf16_choice_kernels(uintptr_t choice) { return (const VDKVariant *)(choice & ~(uintptr_t)3); }
static int vdk_bf16_choice_how(uintptr_t choice) { return (int)(choice & 3); }

#if defined(__x86_64__) && defined(__clang__)
// Whether the CPU's instructions give the models' bits: checked once per process, whichever rank (or
// test thread) asks first; the check writes vdk_check_difference, so it must not run twice at once.
static int vdk_native_matches;
static pthread_once_t vdk_native_once = PTHREAD_ONCE_INIT;
static void vdk_native_check(void) { vdk_native_matches = vdk_bf16_native_matches(); }
#endif

static void vdk_bf16_choose(void) {
  const VDKVariant *v = vdk_kernels(), *variant = v;
  int how = VDK_BF16_EMULATED;
  if (!strcmp(v->name, "portable")) variant = &vdk_portable_bf16;
#if defined(__x86_64__) && defined(__clang__)
  if (!strcmp(v->name, "avx512_on_avx2")) {
    variant = &vdk_avx512_on_avx2_bf16, how = VDK_BF16_MODELLED;
  } else if (!strcmp(v->name, "avx512") && vdk_cpu_has_bf16()) {
    pthread_once(&vdk_native_once, vdk_native_check);
    if (vdk_native_matches) variant = &vdk_avx512_bf16, how = VDK_BF16_NATIVE;
    else how = VDK_BF16_EMULATED_DIFFERS;
  }
#endif
  __atomic_store_n(&vdk_bf16_choice, (uintptr_t)variant | (uintptr_t)how, __ATOMIC_RELEASE);
}

void vdk_set_bf16(int on) {
  if (on) vdk_bf16_choose();
  __atomic_store_n(&vdk_bf16_on, on != 0, __ATOMIC_RELEASE);
}
int vdk_bf16(void) { return VDK_BF16_ON(); }

/// The active variant's bf16 choice: its kernels and their mode.
static uintptr_t vdk_bf16_chosen(void) {
  const uintptr_t choice = __atomic_load_n(&vdk_bf16_choice, __ATOMIC_ACQUIRE);
  if (choice) return choice;
  vdk_bf16_choose();
  return __atomic_load_n(&vdk_bf16_choice, __ATOMIC_ACQUIRE);
}

/// The active variant's kernels for bf16 operands.
static const VDKVariant *vdk_bf16_kernels(void) { return vdk_bf16_choice_kernels(vdk_bf16_chosen()); }

int vdk_bf16_mode(void) { return vdk_bf16_choice_how(vdk_bf16_chosen()); }

/// `src`'s first `count` floats rounded to bf16 in this thread's buffer `slot`.
static const float *vdk_rounded(int slot, const float *src, long count) {
  float *copy = vdk_thread_buffer(slot, count);
  vdk_round_bf16(src, copy, count);
  return copy;
}

/// The window's weight rounded, in this thread's first operand buffer (a grid goes in the second).
static const float *vdk_rounded_weight(const VDKWindow *g, const float *weight) {
  return vdk_rounded(VDK_BUFFER_OPERAND_A, weight, 9 * g->small_channels * g->large_channels);
}

/// The floats of the window's large (or small) grid, whole (GridShape.count).
static long vdk_grid_floats(const VDKWindow *g, int large) {
  const long channels = large ? g->large_channels : g->small_channels, side = large ? g->large_side : g->small_side;
  return channels * vdk_grid_channel(side, g->lanes);
}

/// The window's large (or small) grid rounded, whole, in this thread's buffer `slot`.
static const float *vdk_rounded_grid(const VDKWindow *g, const float *grid, int large, int slot) {
  return vdk_rounded(slot, grid, vdk_grid_floats(g, large));
}

/// The exponent fields of the least and the greatest nonzero magnitude among `x`'s first `count`
/// floats: 1 to 254, or 255 for an infinity or a NaN; 255 and 0 where every value is a zero.
static void vdk_exponent_range(const float *x, long count, int *least, int *greatest) {
  int lo = 255, hi = 0;
  for (long i = 0; i < count; i++) {
    unsigned u;
    memcpy(&u, x + i, sizeof u);
    const int e = (int)(u >> 23 & 0xff), nonzero = e ? e : 255;
    lo = nonzero < lo ? nonzero : lo;
    hi = e > hi ? e : hi;
  }
  *least = lo, *greatest = hi;
}

// A nonzero normal float with exponent field e lies in [2^(e-127), 2^(e-126)): a product of two, in
// [2^(ea+eb-254), 2^(ea+eb-252)). It is a normal float if ea + eb ≥ 128 (at least 2^-126) and
// ea + eb ≤ 380 (below 2^128; exact, with at most 16 significant bits for bf16 operands, so at most
// the largest float). Denormal operands are zeros here (rounded to bf16, they are).
int vdk_bf16_products_in_range(const float *a, long na, const float *b, long nb) {
  int a_lo, a_hi, b_lo, b_hi;
  vdk_exponent_range(a, na, &a_lo, &a_hi);
  vdk_exponent_range(b, nb, &b_lo, &b_hi);
  return a_hi < 255 && b_hi < 255 && a_lo + b_lo >= 128 && a_hi + b_hi <= 380;
}

/// The build for a call of `v`'s kernels whose products are of a value of `a` (`na` floats, rounded to
/// bf16) and one of `b`: `v`, or where `v` is the portable bf16 build and no product can leave float's
/// normal range, its build without the check per product (a third of the time: docs/kernels.md).
static const VDKVariant *vdk_bf16_build(const VDKVariant *v, const float *a, long na, const float *b, long nb) {
  return v == &vdk_portable_bf16 && vdk_bf16_products_in_range(a, na, b, nb) ? &vdk_portable_bf16_in_range : v;
}

/// Floats from `base` a set of runs of `lanes` floats at `offsets` spans.
static long vdk_runs_floats(const long *offsets, long count, long lanes) {
  long end = 0;
  for (long i = 0; i < count; i++)
    if (offsets[i] + lanes > end) end = offsets[i] + lanes;
  return end;
}

