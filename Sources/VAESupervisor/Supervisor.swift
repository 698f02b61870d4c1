import VAETraining
import VAEFiles
import Foundation
import Synchronization
import VAEDistributed

#if canImport(Glibc)
  import Glibc
#endif

/// Runs a training job (a launcher command line) and starts it again with --resume when it ends by
/// a fault a restart can fix — a killed or stalled rank, a lost host, a killed mpirun — up to
/// `maxRestarts` times. Errors no restart fixes (settings, data, output, non-finite loss, a refused
/// --out or resume) end it at once with the job's status; SIGINT/SIGTERM/SIGUSR1 to the supervisor is passed
/// to the job as a clean stop (a checkpoint) and never restarts it. Since any rank count resumes to
/// the same bits, the job may come back smaller: hosts that fail a reachability check are left out
/// of the hostfile, and with `minRanks` a job that failed before getting anywhere comes back with one
/// rank fewer. Every restart is a console line and a record in DIR/restarts.jsonl.
public final class Supervisor {
  public struct Settings {
    public var command: [String]
    public var maxRestarts = 3
    public var backoff = 2.0
    /// The job's ranks may drop to this many (the command's `-n`); nil: never fewer.
    public var minRanks: Int?
    /// The job's full hostfile, and how to reach a host (ssh, or launch/netns-agent.sh in tests).
    public var hostfile: String?
    public var rshAgent = "ssh"
    /// Seconds the launcher may outlive the job's last rank before it is killed (watchLauncher).
    public var launcherGrace = 30.0
    public init(command: [String]) { self.command = command }
  }

  /// One restart, as DIR/restarts.jsonl records it.
  struct Restart: Codable {
    var restart: Int
    var status: Int32
    var cause: String
    var failed_step: Int?
    var resumed_from: String?
    var resume_step: Int?
    var steps_redone: Int?
    var ranks: Int?
    var hosts: [String]?
  }

  let settings: Settings
  let output: String
  /// The checkpoints --out held before the job first started, unless its command resumes them: an
  /// earlier run's, which no restart may take for the job's own. (An --overwrite whose first attempt
  /// failed before moving that run aside would otherwise come back resuming it.)
  let inherited: Set<FileIdentity>
  /// --out as it was when the job first started, where the command's --overwrite is to move an
  /// earlier run aside (it holds a model, checkpoints or logs): restart records wait in
  /// `pendingRecords` while --out is still that folder, so they do not leave with the earlier run
  /// for DIR.previous-N when a later attempt moves it.
  let earlierRun: FileIdentity?
  var pendingRecords: [String] = []
  let token = UUID().uuidString
  /// Set by the signal handler (on a Dispatch queue), read by the restart loop: atomics, so the two
  /// threads never race. The child is kept as its pid (0: none) for the same reason. Each side
  /// stores one and then loads the other (sequentially consistent), so a stop that comes while a
  /// job starts is seen by one of them at least: the handler signals the new child, or the loop
  /// signals it.
  let stopRequested = Atomic<Bool>(false)
  let childPID = Atomic<Int32>(0)
  /// The hosts of the hostfile that answered at the last start.
  var activeHosts: [String] = []
  var signalSources: [DispatchSourceSignal] = []

  /// What asks the launcher to stop cleanly: SIGUSR1 for mpirun itself (Open MPI forwards it to the
  /// ranks and lets the job end normally; a SIGTERM it would pass on, then kill the ranks a second
  /// later, checkpoint or not), SIGTERM for a launch script or vae-dist itself.
  let stopSignal: Int32

  public init(settings: Settings) {
    self.settings = settings
    output = RunDirectory.folder(Self.value(of: "--out", in: settings.command) ?? TrainingConfiguration().outputDirectory)
    inherited =
      settings.command.contains("--resume")  // the command itself resumes what --out holds
      ? [] : Set(CheckpointStore(outputDirectory: output, keep: 1).candidates().compactMap { FileIdentity(path: $0.path) })
    let overwrites = settings.command.contains("--overwrite") && !settings.command.contains("--resume")
    earlierRun = overwrites && RunDirectory.mayHoldResults(output) ? FileIdentity(path: output) : nil
    let launcher = settings.command.first.map { URL(fileURLWithPath: $0).lastPathComponent } ?? ""
    stopSignal = ["mpirun", "mpiexec", "orterun", "prterun"].contains(launcher) ? SIGUSR1 : SIGTERM
  }

  /// Runs the job to its end; returns the exit status to leave with.
  public func run() -> Int32 {
    let status = supervise()
    // An --overwrite whose every attempt failed before moving the earlier run aside: the records go
    // where the job ran, the earlier run's folder (which a later --overwrite moves with it).
    writeRecords(evenIntoTheEarlierRun: true)
    return status
  }

  /// Appends DIR/restarts.jsonl's pending records, unless --out is still the earlier run's folder.
  private func writeRecords(evenIntoTheEarlierRun: Bool = false) {
    guard evenIntoTheEarlierRun || earlierRun == nil || FileIdentity(path: output) != earlierRun else { return }
    for line in pendingRecords { try? AtomicFile.appendLine(line, to: output + "/restarts.jsonl") }
    pendingRecords = []
  }

  private func supervise() -> Int32 {
    installSignalForwarding()
    var command = settings.command
    var restarts = 0, redone = 0
    var previousFailure: (status: Int32, cause: String, step: Int?)?
    // The ranks the job asks for (its -n), fewer after --min-ranks steps; the hosts that answer may
    // hold fewer still.
    var ranks = Self.value(of: "-n", in: command).flatMap(Int.init)
    while true {
      // A stop during a back-off or a host check: no (re)start follows.
      if stopRequested.load(ordering: .sequentiallyConsistent) {
        say("stopped on request before " + (previousFailure == nil ? "the job started" : "restart \(restarts + 1)")
          + (previousFailure.map { "; the last attempt ended with status \($0.status)" } ?? ""))
        return previousFailure?.status ?? 0
      }
      let before = activeHosts
      if let hostfile = settings.hostfile {
        let answering: [String]?
        do {
          answering = try withReachableHosts(hostfile, ranks: ranks, command)
        } catch {
          say("\(error) Not starting the job.")  // the error says what to check
          return FailureKind.output.exitStatus
        }
        guard let reachable = answering else {
          let status = FailureKind.peerLost.exitStatus
          guard previousFailure != nil, restarts < settings.maxRestarts else {
            say("no host of \(hostfile) answers through \(settings.rshAgent) (`\(settings.rshAgent) HOST true` fails for each); giving up")
            return previousFailure?.status ?? status
          }
          restarts += 1
          say("restart \(restarts)/\(settings.maxRestarts): no host of \(hostfile) answers; trying again")
          backOff(restarts: restarts, after: "no host answers")
          continue
        }
        command = reachable
      } else if let ranks {
        command = Self.replacing("-n", with: "\(ranks)", in: command)
      }
      // A host of the failed job that no longer answers is the likely lost peer: say so first.
      let lost = before.enumerated().filter { !activeHosts.contains($0.element) }
        .map { "rank \($0.offset) on \($0.element)" }
      if !lost.isEmpty, let failure = previousFailure {
        previousFailure?.cause = "\(lost.joined(separator: ", ")) lost: its host does not answer over the network; \(failure.cause)"
      }
      let resumeStep = previousFailure == nil ? nil : newestCheckpoint()
      if let failure = previousFailure {
        // Waits for an answering host above count as restarts too.
        guard restarts < settings.maxRestarts else {
          sayRestartsUsedUp(status: failure.status, restarts: restarts)
          return failure.status
        }
        restarts += 1
        let steps = failure.step.flatMap { step in resumeStep.map { max(0, step - $0.step) } }
        redone += steps ?? 0
        let record = Restart(
          restart: restarts, status: failure.status, cause: failure.cause, failed_step: failure.step,
          resumed_from: resumeStep?.path, resume_step: resumeStep?.step, steps_redone: steps,
          ranks: Self.value(of: "-n", in: command).flatMap(Int.init), hosts: settings.hostfile.map { _ in activeHosts })
        say(
          "restart \(restarts)/\(settings.maxRestarts): \(failure.cause)\(failure.step.map { " at step \($0)" } ?? ""); "
            + (resumeStep.map { "resuming from \($0.path) (step \($0.step)\(steps.map { ", \($0) steps redone" } ?? ""))" } ?? "starting again")
            + (record.ranks.map { " on \($0) ranks" } ?? ""))
        if let line = try? JSONEncoder().encode(record) { pendingRecords.append(String(decoding: line, as: UTF8.self)) }
        writeRecords()
        // From the job's newest checkpoint: --resume, without an --overwrite, which would move the
        // run aside (the trainer refuses the two together). Without one the attempt left no model or
        // checkpoint, and the same command starts afresh in the same folder.
        if resumeStep != nil {
          command.removeAll { $0 == "--overwrite" }
          if !command.contains("--resume") { command.append("--resume") }
        }
      }
      if let failure = previousFailure {
        waitForTheOutputLock(command, restart: restarts)
        if stopRequested.load(ordering: .sequentiallyConsistent) {
          say("stopped on request before restart \(restarts); the last attempt ended with status \(failure.status)")
          return failure.status
        }
      }
      let started = monotonicSeconds(), attempt = Date()
      let (status, transcript) = runOnce(command)
      writeRecords()  // this attempt may have moved the earlier run aside
      let stopped = stopRequested.load(ordering: .sequentiallyConsistent)
      if status == 0 || stopped {
        say("finished\(stopped ? " (stopped on request)" : "") with status \(status) after \(restarts) restart\(restarts == 1 ? "" : "s"); \(redone) step\(redone == 1 ? "" : "s") recomputed")
        return status
      }
      if status == 126 || status == 127 {
        say("the command could not be run (status \(status): not found, or not executable); not restarting: check the command after --")
        return status
      }
      if let kind = FailureKind(rawValue: status), !kind.restartable {
        say("the job ended with status \(status) (\(kind)): a restart would not fix it; not restarting")
        return status
      }
      guard restarts < settings.maxRestarts else {
        sayRestartsUsedUp(status: status, restarts: restarts)
        return status
      }
      let attemptStep = progressStep(since: attempt)
      let progressed = (attemptStep ?? 0) > (resumeStep?.step ?? 0)
      if let minRanks = settings.minRanks, !progressed, monotonicSeconds() - started < 60,
        let n = Self.value(of: "-n", in: command).flatMap(Int.init), n > minRanks
      {
        ranks = n - 1
        say("the job failed before its first step: trying \(n - 1) ranks (--min-ranks \(minRanks))")
      }
      let reached = max(attemptStep ?? 0, newestCheckpoint()?.step ?? 0)
      previousFailure = (status, Self.cause(status: status, transcript: transcript), reached)
      backOff(restarts: restarts)
    }
  }

  /// Waits before restart `restarts + 1` (--backoff seconds times the restart number, at most 5
  /// times), in tenths of a second, until a stop is requested.
  private func backOff(restarts: Int, after what: String = "the job failed") {
    let seconds = settings.backoff * Double(min(restarts + 1, 5))
    // Said first: the failed job's output ends, and a long back-off would otherwise look like a hang.
    if seconds >= 1 { say("\(what): waiting \(Int(seconds)) s (--backoff) before the next attempt") }
    let end = monotonicSeconds() + seconds
    while monotonicSeconds() < end && !stopRequested.load(ordering: .sequentiallyConsistent) {
      usleep(UInt32(min(0.1, max(0, end - monotonicSeconds())) * 1e6))
    }
  }

  /// Waits, before restart `restart`, until no live process holds --out's lock. Rank zero of the
  /// failed attempt on another machine, out of killLeftovers' reach, holds it until its collectives
  /// fail: --stall-timeout at most, or --write-timeout and then that when it was writing alone (a
  /// checkpoint, the final files); a restart that came first was refused (exit 7), which ended the
  /// job. After both and 30 s more the restart goes ahead, and is refused naming the holder if it is
  /// still there.
  private func waitForTheOutputLock(_ command: [String], restart: Int) {
    guard let holder = RunLock.liveHolder(of: output) else { return }
    // The job's own checks are ≥ 2 (≥ 1) and finite; a day bounds a value past that (1e300 trapped in Int()).
    func seconds(_ flag: String, _ default: Double) -> Double {
      min(86_400, max(1, Self.value(of: flag, in: command).flatMap(Double.init) ?? `default`))
    }
    let limit = seconds("--stall-timeout", 60) + seconds("--write-timeout", 600) + 30
    let end = monotonicSeconds() + limit
    say("before restart \(restart), waiting for the lock on \(output) (held by \(holder.isEmpty ? "a process that wrote no name" : holder); "
      + "a rank of the failed attempt on another machine?), \(Int(limit)) s at most")
    let waited = monotonicSeconds()
    while RunLock.liveHolder(of: output) != nil, monotonicSeconds() < end, !stopRequested.load(ordering: .sequentiallyConsistent) {
      usleep(250_000)
    }
    if RunLock.liveHolder(of: output) == nil { say("the lock on \(output) was let go after \(Int(monotonicSeconds() - waited)) s") }
  }

  private func sayRestartsUsedUp(status: Int32, restarts: Int) {
    say("the job failed (status \(status)) and \(restarts) restarts are used up (--max-restarts \(settings.maxRestarts)); giving up")
  }
}
