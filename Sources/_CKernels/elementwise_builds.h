// Shared by direct.c and kernels.c (not part of the public header): the builds of the elementwise
// kernels, one per instruction set of the convolutions' variants, so each variant's check of the CPU
// (vdk_cpu_has) also covers the elementwise build that runs with it.
#ifndef VDK_ELEMENTWISE_BUILDS_H
#define VDK_ELEMENTWISE_BUILDS_H

/// Indices into kernels.c's table of builds.
enum { VDK_ELEMENTWISE_BASELINE, VDK_ELEMENTWISE_AVX2, VDK_ELEMENTWISE_AVX512 };

/// The build that goes with the active variant (direct.c).
int vdk_elementwise_build(void);

#endif
