// The portable variant's vectors and register blocks (2 channels × 4 positions; 2 vectors of channels
// × 6 weights), for both of its builds (direct_portable.c, direct_portable_bf16.c).
#define VDK_WIDTH 4
#define VDK_GATHER_CO 2
#define VDK_GATHER_POS 4
#define VDK_WGRAD_SMALL 2
#define VDK_WGRAD_TAPS 6
