#include "CMPIShim.h"
#include <mpi.h>
#include <string.h>

static MPI_Request in_flight = MPI_REQUEST_NULL;

static MPI_Datatype datatype_of(vmpi_datatype type) {
  switch (type) {
  case VMPI_FLOAT: return MPI_FLOAT;
  case VMPI_DOUBLE: return MPI_DOUBLE;
  case VMPI_INT64: return MPI_INT64_T;
  default: return MPI_BYTE;
  }
}

static MPI_Op op_of(vmpi_op op) {
  switch (op) {
  case VMPI_MAX: return MPI_MAX;
  case VMPI_MIN: return MPI_MIN;
  default: return MPI_SUM;
  }
}

int vmpi_init(int *rank, int *size, int *provided) {
  int level = 0;
  int rc = MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &level);
  if (rc != MPI_SUCCESS) return rc;
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  *provided = level >= MPI_THREAD_FUNNELED;
  rc = MPI_Comm_rank(MPI_COMM_WORLD, rank);
  if (rc != MPI_SUCCESS) return rc;
  return MPI_Comm_size(MPI_COMM_WORLD, size);
}

int vmpi_finalize(void) { return MPI_Finalize(); }

void vmpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }

int vmpi_iallreduce(void *buffer, int count, vmpi_datatype type, vmpi_op op) {
  return MPI_Iallreduce(MPI_IN_PLACE, buffer, count, datatype_of(type), op_of(op), MPI_COMM_WORLD,
                        &in_flight);
}

int vmpi_ibcast(void *buffer, int count, int root) {
  return MPI_Ibcast(buffer, count, MPI_BYTE, root, MPI_COMM_WORLD, &in_flight);
}

int vmpi_test(int *done) {
  if (in_flight == MPI_REQUEST_NULL) {
    *done = 1;
    return MPI_SUCCESS;
  }
  return MPI_Test(&in_flight, done, MPI_STATUS_IGNORE);
}

void vmpi_error_string(int code, char *buffer, int capacity) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS) length = 0;
  text[length] = 0;
  strncpy(buffer, text, (size_t)capacity - 1);
  buffer[capacity - 1] = 0;
}

void vmpi_processor_name(char *buffer, int capacity) {
  char name[MPI_MAX_PROCESSOR_NAME];
  int length = 0;
  if (MPI_Get_processor_name(name, &length) != MPI_SUCCESS) length = 0;
  name[length] = 0;
  strncpy(buffer, name, (size_t)capacity - 1);
  buffer[capacity - 1] = 0;
}
