#ifndef VAE_CMPI_SHIM_H
#define VAE_CMPI_SHIM_H

// A small C face on Open MPI for Swift. Open MPI's MPI_COMM_WORLD, MPI_FLOAT, MPI_SUM, MPI_IN_PLACE
// and friends are macros over internal globals that Swift cannot import, so this header exposes plain
// C functions and enums only; <mpi.h> is included by shim.c alone.
//
// All calls are meant for one thread (MPI_THREAD_FUNNELED). Collectives are non-blocking with one
// request in flight, so the caller can poll it and enforce its own stall timeout instead of hanging
// in MPI.

#ifdef __cplusplus
extern "C" {
#endif

typedef enum { VMPI_FLOAT = 0, VMPI_DOUBLE = 1, VMPI_INT64 = 2 } vmpi_datatype;
typedef enum { VMPI_SUM = 0, VMPI_MAX = 1, VMPI_MIN = 2 } vmpi_op;

/// MPI_Init_thread(FUNNELED) on MPI_COMM_WORLD with errors returned, not fatal. Returns an MPI error
/// code (0 on success) and fills rank, size and the thread level granted (0 single .. 3 multiple).
int vmpi_init(int *rank, int *size, int *provided_funneled_or_better);
int vmpi_finalize(void);
/// MPI_Abort(MPI_COMM_WORLD, code): ends every rank of the job.
void vmpi_abort(int code);

/// In-place MPI_Iallreduce of `count` elements; completes through vmpi_test.
int vmpi_iallreduce(void *buffer, int count, vmpi_datatype type, vmpi_op op);
/// MPI_Ibcast of `count` bytes from `root`; completes through vmpi_test.
int vmpi_ibcast(void *buffer, int count, int root);
/// MPI_Test on the request in flight: sets *done to 1 once it has completed. Returns an MPI error code.
int vmpi_test(int *done);

/// MPI_Error_string into `buffer` (NUL-terminated).
void vmpi_error_string(int code, char *buffer, int capacity);
/// MPI_Get_processor_name into `buffer` (NUL-terminated).
void vmpi_processor_name(char *buffer, int capacity);

#ifdef __cplusplus
}
#endif
#endif
