#if canImport(Glibc)
  import Glibc
#endif

/// SIGINT, SIGTERM and SIGUSR1 ask the run to stop cleanly: the step in progress finishes, the ranks
/// agree on the stop through that step's reduction, rank zero writes a checkpoint, and the process
/// exits 0. A second signal ends the process at once.
///
/// SIGUSR1 is for mpirun: Open MPI forwards it to every rank and lets the job end normally (exit 0),
/// while a SIGINT or SIGTERM sent to mpirun itself reaches the ranks as SIGTERM (they still stop
/// cleanly and checkpoint) but makes mpirun report the job as aborted. launch/mpirun-local.sh turns
/// Ctrl-C and SIGTERM into SIGUSR1 for that reason.
public enum StopSignal {
  // Written from the signal handler: a plain word, no allocation, no locks (a handler may use none).
  // Unsafe but sound: an aligned 32-bit store and load are atomic on x86-64, the flag only ever goes
  // 0 → 1 while a run lasts, and a reader that sees the old value sees the new one a step later.
  nonisolated(unsafe) private static let flag: UnsafeMutablePointer<Int32> = {
    let pointer = UnsafeMutablePointer<Int32>.allocate(capacity: 1)
    pointer.initialize(to: 0)
    return pointer
  }()

  public static var requested: Bool { flag.pointee != 0 }

  /// What a signal does, without one: for in-process ranks (tests), where a signal would reach all.
  public static func request() { flag.pointee = 1 }
  public static func clear() { flag.pointee = 0 }

  public static func install() {
    _ = flag
    // A full disk or a file-size limit must surface as a failed write (and an error naming the
    // file), not as SIGXFSZ killing the process half-way through.
    signal(SIGXFSZ, SIG_IGN)
    for number in [SIGINT, SIGTERM, SIGUSR1] {
      signal(number) { _ in
        if StopSignal.flag.pointee != 0 {
          let message = "\nvae-dist: second signal, exiting at once\n"
          _ = message.withCString { write(STDERR_FILENO, $0, strlen($0)) }
          _exit(130)
        }
        StopSignal.flag.pointee = 1
      }
    }
  }
}
