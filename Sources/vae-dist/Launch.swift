import ArgumentParser
import VAECore
import VAEData
import VAEDistributed
import VAETraining

#if canImport(Glibc)
  import Glibc
#endif

/// Runs `body` on this rank with MPI when an MPI launcher started the process, alone otherwise, and
/// turns failures into a message and an exit status that end the whole job:
/// - a setting every rank rejects alike is reported once, by rank zero, and all ranks exit with 2;
/// - any other failure is reported by the rank that hit it, naming the rank, and MPI_Abort ends the
///   other ranks, so none waits forever in a collective.
func withCommunicator(stallTimeout: Double, _ body: (Communicator) throws -> Void) throws {
  configureBLASForWorkerThreads()
  let communicator: Communicator
  if MPICommunicator.launchedByMPI {
    do {
      communicator = try MPICommunicator(stallTimeout: stallTimeout)
    } catch {
      printError("vae-dist: error: \(error)")
      throw ExitCode(1)
    }
  } else {
    communicator = SingleProcessCommunicator()
  }
  do {
    try body(communicator)
  } catch TrainingError.configuration(let message) {
    if communicator.rank == 0 { fputs("vae-dist: error: \(message)\n", stderr) }
    communicator.finalize()
    throw ExitCode(2)
  } catch {
    if communicator.size > 1 {
      fputs("vae-dist: rank \(communicator.rank) on \(communicator.hostName): error: \(error)\n", stderr)
      communicator.abort(code: 1)
    }
    fputs("vae-dist: error: \(error)\n", stderr)
    throw ExitCode(1)
  }
  communicator.finalize()
}

func printError(_ message: String) {
  fputs(message + "\n", stderr)
}
