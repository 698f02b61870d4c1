// Open MPI's C interface (Debian's libopenmpi-dev). The include and library paths come from
// pkg-config (ompi-c.pc), so no target needs an unsafe flag; only _CMPIShim includes this.
#include <mpi.h>
