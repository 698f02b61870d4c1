import Foundation
import Synchronization
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
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = command
    var environment = ProcessInfo.processInfo.environment
    environment["VAE_DIST_SUPERVISOR_TOKEN"] = token
    process.environment = environment
    let tail = TranscriptTail()
    let out = Pipe(), err = Pipe()
    process.standardOutput = out
    process.standardError = err
    out.fileHandleForReading.readabilityHandler = { handle in
      let data = handle.availableData
      FileHandle.standardOutput.write(data)
      tail.append(data)
    }
    err.fileHandleForReading.readabilityHandler = { handle in
      let data = handle.availableData
      FileHandle.standardError.write(data)
      tail.append(data)
    }
    do {
      try process.run()
    } catch {
      say("cannot start \(command.joined(separator: " ")): \(error)")
      return (FailureKind.configuration.exitStatus, "")
    }
    childPID.store(process.processIdentifier, ordering: .sequentiallyConsistent)
    // A stop that came before the pid was published: the handler saw no child, so signal it here.
    if stopRequested.load(ordering: .sequentiallyConsistent) { kill(process.processIdentifier, stopSignal) }
    let hung = watchLauncher(process)
    process.waitUntilExit()
    childPID.store(0, ordering: .sequentiallyConsistent)
    // What the handlers had not read yet goes through too (only into the tail, it would be lost).
    for (pipe, console) in [(out, FileHandle.standardOutput), (err, FileHandle.standardError)] {
      pipe.fileHandleForReading.readabilityHandler = nil
      let rest = pipe.fileHandleForReading.readDataToEndOfFile()
      console.write(rest)
      tail.append(rest)
    }
    if hung {
      // A lost peer, as far as the run is concerned: its checkpoints resume it.
      return (FailureKind.peerLost.exitStatus, tail.text + "\nvae-dist supervise: the launcher hung after its ranks ended\n")
    }
    let status = process.terminationReason == .uncaughtSignal ? 128 + process.terminationStatus : process.terminationStatus
    return (status, tail.text)
  }

  /// Waits while the launcher runs. mpirun can hang in its own teardown after a host vanished (seen
  /// in MultiHostTests: "ORTE has lost communication with a remote daemon", then no exit). Once the
  /// job's vae-dist ranks on this machine have been seen and are all gone, the launcher gets
  /// `settings.launcherGrace` seconds (30; the tests set less) to exit, and is then killed
  /// with everything it left. Returns true when it had to be killed. Ranks only on other machines
  /// are not visible here: then this is a plain wait.
  func watchLauncher(_ process: Process) -> Bool {
    let grace = settings.launcherGrace
    var seen = false
    var goneSince: Double?
    while process.isRunning {
      usleep(250_000)
      let alive = jobRanksAlive()
      seen = seen || alive
      guard seen, !alive else {
        goneSince = nil
        continue
      }
      let now = monotonicSeconds()
      if now - (goneSince ?? now) > grace {
        say("the launcher (pid \(process.processIdentifier)) is still running \(Int(grace)) s after the job's last rank ended: killing it and what it left")
        kill(process.processIdentifier, SIGKILL)
        killLeftovers()
        return true
      }
      goneSince = goneSince ?? now
    }
    return false
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

  /// SIGINT, SIGTERM and SIGUSR1 (Slurm's warning before a time limit, `--signal=B:USR1@120`, reaches
  /// this process when a batch script runs under it) stop the job cleanly: `stopSignal` to the
  /// launcher, which asks its ranks to checkpoint and exit. Unhandled, SIGUSR1 would end the supervisor and the
  /// job with it, without a checkpoint.
  func installSignalForwarding() {
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

/// The last 64 KiB of a job's output, for telling what failed (the pipes' handlers append on
/// Dispatch's threads).
final class TranscriptTail: Sendable {
  private let data = Mutex(Data())
  func append(_ more: Data) {
    data.withLock { data in
      data.append(more)
      if data.count > 1 << 16 { data = data.suffix(1 << 16) }
    }
  }
  var text: String { data.withLock { String(decoding: $0, as: UTF8.self) } }
}
