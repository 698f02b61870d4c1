import Foundation
import VAEDistributed
import VAEFiles

#if canImport(Glibc)
  import Glibc
#endif

// One attempt of the job: the launcher started with the supervisor's token, its output passed
// through and its tail kept, a launcher that hangs after its ranks killed, and what it left killed.
extension Supervisor {
  /// Runs the command with its output passed through; returns its status and the tail of its output.
  func runOnce(_ command: [String]) -> (Int32, String) {
    var environment = ProcessInfo.processInfo.environment
    environment["VAE_DIST_SUPERVISOR_TOKEN"] = token
    var job: SpawnedProcess
    do {
      job = try SpawnedProcess(command, environment: environment, defaultSignals: Self.handledSignals, capture: true)
    } catch {
      say("cannot start \(command.joined(separator: " ")): \(error)")
      return (FailureKind.configuration.exitStatus, "")
    }
    childPID.store(job.pid, ordering: .sequentiallyConsistent)
    // A stop that came before the pid was published: the handler saw no child, so signal it here.
    if stopRequested.load(ordering: .sequentiallyConsistent) { kill(job.pid, stopSignal) }
    var tail = TranscriptTail()
    var watch = LauncherWatch(grace: settings.launcherGrace)
    var hung = false
    while job.reap(blocking: false) == nil {
      if !job.relay(waiting: 0.25, into: &tail) { usleep(250_000) }  // its output closed, the launcher not
      if watch.launcherOutlivedItsRanks(alive: { jobRanksAlive() }) {
        say("the launcher (pid \(job.pid)) is still running \(Int(watch.grace)) s after the job's last rank ended: killing it and what it left")
        kill(job.pid, SIGKILL)
        killLeftovers()
        job.reap(blocking: true)
        hung = true
      }
    }
    childPID.store(0, ordering: .sequentiallyConsistent)
    // What the launcher left (orphaned ranks, its ssh to a lost host) may hold the pipes open: it
    // goes first. Then what is still in the pipes goes through, for 5 s at most: a process that
    // escaped killLeftovers (one that dropped the token from its environment) must not hold up
    // the restart.
    killLeftovers()
    let end = monotonicSeconds() + 5
    while monotonicSeconds() < end, job.relay(waiting: end - monotonicSeconds(), into: &tail) {}
    job.closePipes()
    if hung {
      // A lost peer, as far as the run is concerned: its checkpoints resume it.
      return (FailureKind.peerLost.exitStatus, tail.text + "\nvae-dist supervise: the launcher hung after its ranks ended\n")
    }
    return (job.status ?? FailureKind.peerLost.exitStatus, tail.text)
  }

  /// Whether the launcher has outlived the job's ranks too long. mpirun can hang in its own teardown
  /// after a host vanished (seen in MultiHostTests: "ORTE has lost communication with a remote
  /// daemon", then no exit). Once the job's vae-dist ranks on this machine have been seen and are
  /// all gone, the launcher gets `grace` seconds (30; the tests set less) to exit. Ranks only on
  /// other machines are not visible here: then it never has.
  struct LauncherWatch {
    let grace: Double
    private var seen = false
    private var goneSince: Double?
    private var nextLook = 0.0

    init(grace: Double) { self.grace = grace }

    /// Looks (4 times a second at most, `alive` reads /proc) and says whether it is time to kill it.
    mutating func launcherOutlivedItsRanks(alive: () -> Bool) -> Bool {
      let now = monotonicSeconds()
      guard now >= nextLook else { return false }
      nextLook = now + 0.25
      let alive = alive()
      seen = seen || alive
      guard seen, !alive else {
        goneSince = nil
        return false
      }
      if now - (goneSince ?? now) > grace { return true }
      goneSince = goneSince ?? now
      return false
    }
  }

  /// True while a vae-dist process (not this supervisor) carrying our token runs on this machine.
  func jobRanksAlive() -> Bool {
    !jobProcesses().filter { pid in
      (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/exe"))?.hasSuffix("/vae-dist") ?? false
    }.isEmpty
  }

  /// The processes on this machine (but this supervisor) with the supervisor's token in their
  /// environment: everything the job started, wherever mpirun put it on this machine.
  func jobProcesses() -> [pid_t] {
    let marker = Array("VAE_DIST_SUPERVISOR_TOKEN=\(token)".utf8)
    return ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { entry in
      guard let pid = pid_t(entry), pid != getpid(),
        let environment = FileManager.default.contents(atPath: "/proc/\(entry)/environ"),
        environment.split(separator: 0).contains(where: { Array($0) == marker })
      else { return nil }
      return pid
    }
  }

  /// Every process the job left behind (orphaned ranks of a killed mpirun, a stopped rank) carries
  /// the supervisor's token in its environment: SIGKILL them before the next attempt.
  func killLeftovers() {
    for _ in 0..<50 {
      let left = jobProcesses()
      if left.isEmpty { return }
      for pid in left {
        kill(pid, SIGCONT)
        kill(pid, SIGKILL)
      }
      usleep(100_000)
    }
  }

  /// The signals the supervisor handles or ignores, back at their default action in what it starts.
  static let handledSignals = [SIGINT, SIGTERM, SIGUSR1, SIGPIPE]

  /// SIGINT, SIGTERM and SIGUSR1 (Slurm's warning before a time limit, `--signal=B:USR1@120`, reaches
  /// this process when a batch script runs under it) stop the job cleanly: `stopSignal` to the
  /// launcher, which asks its ranks to checkpoint and exit. Unhandled, SIGUSR1 would end the supervisor and the
  /// job with it, without a checkpoint.
  func installSignalForwarding() {
    // A console that went away (a `| tee` ended) must not kill the supervisor in the middle of a
    // job: its writes fail instead (EPIPE), and the job's output still reaches the tail. A SIGCHLD
    // ignored by whoever started it would have the kernel reap the launcher before waitpid could.
    signal(SIGPIPE, SIG_IGN)
    signal(SIGCHLD, SIG_DFL)
    for number in [SIGINT, SIGTERM, SIGUSR1] {
      signal(number, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler { [weak self] in
        guard let self else { return }
        self.stopRequested.store(true, ordering: .sequentiallyConsistent)
        self.say("stopping the job cleanly (a checkpoint); no restart follows")
        let child = self.childPID.load(ordering: .sequentiallyConsistent)
        if child != 0 { kill(child, self.stopSignal) }
      }
      source.resume()
      signalSources.append(source)
    }
  }
}

/// The last 64 KiB of a job's output, for telling what failed.
struct TranscriptTail {
  private var data = Data()
  mutating func append(_ more: Data) {
    data.append(more)
    if data.count > 1 << 16 { data = data.suffix(1 << 16) }
  }
  var text: String { String(decoding: data, as: UTF8.self) }
}
