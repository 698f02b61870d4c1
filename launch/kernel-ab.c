// launch/kernel-ab.sh's timing program: every window and weight-gradient pass of the model on one
// micro-batch of 16 images, in two builds of the kernels linked side by side (A: vdk_*, the working
// tree's; B: B_vdk_*, the base revision's), called alternately (A B, then B A, ...) so both see the
// same moments of a noisy host. Before each call the caches are flushed down to L3 (a write over
// `evict` bytes), as a pass in the step finds its inputs. Per pass: each build's mean GFLOP/s (nominal:
// padded taps counted), the median and quartiles of the per-round time ratios A/B, and whether the two
// builds wrote the same bits.
//
//   kernel-ab ROUNDS EVICT_BYTES KERNELS|default fp32|bf16
#include "CKernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int B_vdk_select_kernels(const char *name);
void B_vdk_set_bf16(int on);
void B_vdk_conv_gather(const VDKWindow *g, const float *weight, const float *bias, int relu, const float *mask,
                       const float *large, float *small, float *scratch);
void B_vdk_conv_scatter(const VDKWindow *g, const float *weight, const float *bias, int relu, const float *mask,
                        const float *small, float *large, float *scratch);
void B_vdk_conv_weight_grad(const VDKWindow *g, const float *small, const float *large, float *dweight);

typedef void Gather(const VDKWindow *, const float *, const float *, int, const float *, const float *, float *, float *);
typedef void WeightGrad(const VDKWindow *, const float *, const float *, float *);

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec + 1e-9 * t.tv_nsec;
}

/// A bordered grid [channels, side + 2, side + 2, 16] (and the kernels' cache-line pad per channel):
/// values in [−0.3, 0.7) inside, zeros on the border.
static float *grid(long channels, long side) {
  const long row = (side + 2) * 16, channel = (side + 2) * row + 16;
  float *g = aligned_alloc(64, (size_t)(channels * channel * 4 + 63) / 64 * 64);
  for (long i = 0; i < channels * channel; i++) g[i] = (float)((unsigned)(i * 2654435761u) % 1000) / 1000.0f - 0.3f;
  for (long c = 0; c < channels; c++)
    for (long y = 0; y < side + 2; y++)
      for (long x = 0; x < side + 2; x++)
        if (y == 0 || x == 0 || y == side + 1 || x == side + 1) memset(g + c * channel + y * row + x * 16, 0, 64);
  return g;
}

static long grid_floats(long channels, long side) { return channels * ((side + 2) * (side + 2) * 16 + 16); }

static int by_value(const void *a, const void *b) {
  const double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

enum { GATHER, SCATTER, WGRAD };
typedef struct {
  const char *layer, *pass;
  int kind, bias, relu, mask;
  long small_channels, large_channels, small_side, large_side, stride;
} Pass;

int main(int argc, char **argv) {
  if (argc != 5) {
    fprintf(stderr, "usage: kernel-ab ROUNDS EVICT_BYTES KERNELS PRECISION\n");
    return 2;
  }
  const int rounds = atoi(argv[1]);
  const long evict_floats = atol(argv[2]) / 4;
  // "default": the variant each build picks for this CPU (the widest it has).
  if (strcmp(argv[3], "default") != 0 && (vdk_select_kernels(argv[3]) != 0 || B_vdk_select_kernels(argv[3]) != 0)) {
    fprintf(stderr, "kernel-ab: no kernels '%s' for this CPU (avx512, avx2, avx512_on_avx2, portable)\n", argv[3]);
    return 2;
  }
  vdk_set_bf16(strcmp(argv[4], "bf16") == 0);
  B_vdk_set_bf16(strcmp(argv[4], "bf16") == 0);
  printf("kernels %s, %s\n", vdk_kernels_name(), argv[4]);
  // The model's passes (docs/model.md): a Conv2d's forward gathers, its backward-data scatters; a
  // ConvTranspose2d the reverse. The weight gradient is the same kernel for both.
  static const Pass passes[] = {
      {"conv1 1→32 s2", "forward", GATHER, 1, 1, 0, 32, 1, 14, 28, 2},
      {"conv1 1→32 s2", "backward-weights", WGRAD, 0, 0, 0, 32, 1, 14, 28, 2},
      {"conv2 32→64 s2", "forward", GATHER, 1, 1, 0, 64, 32, 7, 14, 2},
      {"conv2 32→64 s2", "backward-weights", WGRAD, 0, 0, 0, 64, 32, 7, 14, 2},
      {"conv2 32→64 s2", "backward-data", SCATTER, 0, 0, 1, 64, 32, 7, 14, 2},
      {"convT1 64→64 s2", "forward", SCATTER, 1, 1, 0, 64, 64, 7, 14, 2},
      {"convT1 64→64 s2", "backward-weights", WGRAD, 0, 0, 0, 64, 64, 7, 14, 2},
      {"convT1 64→64 s2", "backward-data", GATHER, 0, 0, 1, 64, 64, 7, 14, 2},
      {"convT2 64→32 s2", "forward", SCATTER, 1, 1, 0, 64, 32, 14, 28, 2},
      {"convT2 64→32 s2", "backward-weights", WGRAD, 0, 0, 0, 64, 32, 14, 28, 2},
      {"convT2 64→32 s2", "backward-data", GATHER, 0, 0, 1, 64, 32, 14, 28, 2},
      {"convT3 32→1", "forward", SCATTER, 1, 0, 0, 32, 1, 28, 28, 1},
      {"convT3 32→1", "backward-weights", WGRAD, 0, 0, 0, 32, 1, 28, 28, 1},
      {"convT3 32→1", "backward-data", GATHER, 0, 0, 1, 32, 1, 28, 28, 1},
  };
  const int npasses = sizeof passes / sizeof passes[0];
  float *evict = calloc((size_t)evict_floats + 16, 4);
  double *ratios = malloc(sizeof(double) * (size_t)rounds), total[2] = {0, 0};
  int differ = 0;
  printf("%-34s %10s %10s   %-33s %s\n", "pass", "A GFLOP/s", "B GFLOP/s", "A/B time: median [quartiles]", "bits");
  for (int i = 0; i < npasses; i++) {
    const Pass *p = &passes[i];
    const VDKWindow g = {p->small_channels, p->large_channels, p->small_side, p->large_side, p->stride, 16};
    const long weights = 9 * p->small_channels * p->large_channels;
    float *small = grid(p->small_channels, p->small_side), *large = grid(p->large_channels, p->large_side);
    // What each build writes: the small grid (gather), the large grid (scatter) or the weight gradient.
    const long outputs = p->kind == GATHER    ? grid_floats(p->small_channels, p->small_side)
                         : p->kind == SCATTER ? grid_floats(p->large_channels, p->large_side)
                                              : weights;
    float *out[2];
    for (int b = 0; b < 2; b++)
      out[b] = p->kind == GATHER    ? grid(p->small_channels, p->small_side)
               : p->kind == SCATTER ? grid(p->large_channels, p->large_side)
                                    : calloc((size_t)weights, 4);
    // A ReLU mask laid out as the output: the forward output the backward-data pass masks with.
    float *mask = p->mask ? (p->kind == GATHER ? grid(p->small_channels, p->small_side) : grid(p->large_channels, p->large_side)) : 0;
    float *weight = malloc(4 * weights), *scratch = malloc(4 * weights);
    float *bias = calloc((size_t)(p->kind == GATHER ? p->small_channels : p->large_channels), 4);
    for (long w = 0; w < weights; w++) weight[w] = (float)(w % 17) / 17.0f - 0.5f;
    const double flops = 2.0 * 16 * p->small_side * p->small_side * 9 * p->small_channels * p->large_channels;
    double seconds[2] = {0, 0};
    for (int r = 0; r < rounds; r++) {
      double t[2];
      for (int k = 0; k < 2; k++) {
        const int b = r & 1 ? 1 - k : k;  // A B, then B A: neither always runs second
        for (long e = 0; e < evict_floats; e += 16) evict[e] += 1.0f;
        const double start = now();
        if (p->kind == WGRAD) (b ? B_vdk_conv_weight_grad : vdk_conv_weight_grad)(&g, small, large, out[b]);
        else {
          Gather *call = p->kind == GATHER ? (b ? B_vdk_conv_gather : vdk_conv_gather)
                                           : (Gather *)(b ? B_vdk_conv_scatter : vdk_conv_scatter);
          call(&g, weight, p->bias ? bias : 0, p->relu, mask, p->kind == GATHER ? large : small, out[b], scratch);
        }
        t[b] = now() - start;
        seconds[b] += t[b];
      }
      ratios[r] = t[0] / t[1];
    }
    qsort(ratios, (size_t)rounds, sizeof(double), by_value);
    const int same = memcmp(out[0], out[1], 4 * (size_t)outputs) == 0;
    differ |= !same;
    char name[64];
    snprintf(name, sizeof name, "%s %s", p->layer, p->pass);
    printf("%-34s %10.1f %10.1f   %.3f [%.3f %.3f]            %s\n", name, flops * rounds / seconds[0] / 1e9,
           flops * rounds / seconds[1] / 1e9, ratios[rounds / 2], ratios[rounds / 4], ratios[3 * rounds / 4],
           same ? "same" : "DIFFERENT");
    total[0] += seconds[0], total[1] += seconds[1];
    free(small), free(large), free(out[0]), free(out[1]), free(mask), free(weight), free(scratch), free(bias);
  }
  printf("all passes, one micro-batch each (the step's mix of window and weight passes): A/B time %.3f\n",
         total[0] / total[1]);
  return differ ? 1 : 0;
}
