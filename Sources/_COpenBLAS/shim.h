// OpenBLAS's CBLAS interface plus its extensions (openblas_set_num_threads, openblas_get_corename).
// Debian's libopenblas-dev installs this header through the cblas.h alternative.
#include <cblas.h>
