import ArgumentParser
import VAECore
import VAEData
import VAEDistributed
import VAETraining

#if canImport(Glibc)
  import Glibc
#endif

/// Runs `body` on this rank with MPI when an MPI launcher started the process, alone otherwise.
func withCommunicator(_ parallel: ParallelOptions, _ body: (Communicator) throws -> Void) throws {
  configureBLASForWorkerThreads()
  let communicator: Communicator
  if MPICommunicator.launchedByMPI {
    do {
      communicator = try MPICommunicator(stallTimeout: parallel.stallTimeout, rootWorkTimeout: parallel.writeTimeout)
    } catch {
      printError("vae-dist: error: \(error)")
      throw ExitCode(FailureKind.internalError.exitStatus)
    }
  } else {
    communicator = SingleProcessCommunicator()
  }
  try reportingFailures(communicator) { try body(communicator) }
  communicator.finalize()
}

/// The one path from an error to a message and an exit status (FailureKind's), for every command:
/// - a failure every rank agreed on: rank zero prints it once (naming the rank that found it when
///   that is another), every rank leaves MPI_Finalize behind it and exits with the same status;
/// - any other failure on a rank of a multi-rank job: that rank prints it, naming itself, and
///   MPI_Abort ends the others at once;
/// - alone: printed, exit with its kind's status.
func reportingFailures(_ communicator: Communicator? = nil, _ body: () throws -> Void) throws {
  do {
    try body()
  } catch let error as ExitCode {
    throw error
  } catch {
    let rank = communicator?.rank ?? 0, size = communicator?.size ?? 1
    var failure = RunFailure(error, rank: rank)
    if let validation = error as? ValidationError { failure = RunFailure(kind: .configuration, message: validation.message, rank: rank, agreed: true) }
    let status = failure.kind.exitStatus
    if failure.agreed || size == 1 {
      if rank == 0 {
        let origin = failure.rank > 0 ? "rank \(failure.rank): " : ""
        printError("vae-dist: error: \(origin)\(failure.message)")
      }
      communicator?.finalize()
      throw ExitCode(status)
    }
    printError("vae-dist: rank \(rank) on \(communicator?.hostName ?? "?"): error: \(failure.message)")
    communicator?.abort(code: status)
    throw ExitCode(status)
  }
}

func printError(_ message: String) {
  let line = message + "\n"
  _ = line.withCString { write(STDERR_FILENO, $0, strlen($0)) }
}
