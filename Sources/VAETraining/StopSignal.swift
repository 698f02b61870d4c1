import Synchronization

#if canImport(Glibc)
  import Glibc
#endif

/// SIGINT, SIGTERM and SIGUSR1 ask the run to stop cleanly: the step in progress finishes, the ranks
/// agree on the stop through that step's reduction, rank zero writes a checkpoint, and the process
/// exits 0. A second signal ends the process at once. SIGPIPE (standard output closed) stops it the
/// same way.
///
/// SIGUSR1 is for mpirun: Open MPI forwards it to every rank and lets the job end normally (exit 0),
/// while a SIGINT or SIGTERM sent to mpirun itself reaches the ranks as SIGTERM (they still stop
/// cleanly and checkpoint) but makes mpirun report the job as aborted. launch/mpirun-local.sh turns
/// Ctrl-C and SIGTERM into SIGUSR1 for that reason.
public enum StopSignal {
  // Written from the signal handler: a lock-free atomic word (no allocation, no locks: a handler may
  // use none), created by install() before any handler can run. It only goes 0 → 1 while a run lasts.
  private static let signalled = Atomic<Int32>(0)
  // A stop the run asks for itself (the ranks agreed on one, a log write failed): kept apart, so that
  // a user's first signal after it is still a first signal (a clean stop), not the second (exit 130).
  private static let internalRequest = Atomic<Int32>(0)

  public static var requested: Bool {
    signalled.load(ordering: .relaxed) != 0 || internalRequest.load(ordering: .relaxed) != 0
  }

  /// A stop without a signal: the run's own (an agreed stop, a failed log write), and for in-process
  /// ranks (tests), where a signal would reach all.
  public static func request() { internalRequest.store(1, ordering: .relaxed) }
  public static func clear() {
    signalled.store(0, ordering: .relaxed)
    internalRequest.store(0, ordering: .relaxed)
  }

  public static func install() {
    _ = requested  // creates the flag here, not in a handler
    // A full disk or a file-size limit must surface as a failed write (and an error naming the
    // file), not as SIGXFSZ killing the process half-way through.
    signal(SIGXFSZ, SIG_IGN)
    // Standard output closed under the run (`train | head`, a killed `tee`): a clean stop with a
    // checkpoint, not SIGPIPE's silent death. The run's own request, so a user's signal after it is
    // still a first one; the writes that follow fail (EPIPE) and are dropped. Only where SIGPIPE
    // would kill: a disposition someone chose (MPI's, a parent's SIG_IGN) stays.
    var current = sigaction()
    if sigaction(SIGPIPE, nil, &current) == 0 && current.__sigaction_handler.sa_handler == nil {  // SIG_DFL: a null handler
      signal(SIGPIPE) { _ in
        if StopSignal.internalRequest.exchange(1, ordering: .relaxed) == 0 {
          let message = "vae-dist: an output pipe was closed; stopping after this step (a checkpoint follows)\n"
          _ = message.withCString { write(STDERR_FILENO, $0, strlen($0)) }
        }
      }
    }
    for number in [SIGINT, SIGTERM, SIGUSR1] {
      signal(number) { _ in
        if StopSignal.signalled.exchange(1, ordering: .relaxed) != 0 {
          let message = "\nvae-dist: second signal, exiting at once\n"
          _ = message.withCString { write(STDERR_FILENO, $0, strlen($0)) }
          _exit(130)
        }
      }
    }
  }
}
