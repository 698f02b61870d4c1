// The avx512 variant's vectors and register blocks (4 channels × 6 positions; 2 vectors of channels ×
// 12 weights), for each of its builds (direct_avx512.c, direct_avx512_on_avx2.c and the two bf16 builds): they run the same chains side
// by side, so a build checked on one CPU checks the code the others run.
#define VDK_WIDTH 16
#define VDK_GATHER_CO 4
#define VDK_GATHER_POS 6
#define VDK_WGRAD_SMALL 2
#define VDK_WGRAD_TAPS 12
