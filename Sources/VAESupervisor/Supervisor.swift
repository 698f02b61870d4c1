import VAETraining
import VAEFiles
import Foundation
import VAEDistributed

#if canImport(Glibc)
  import Glibc
#endif

/// Runs a training job (a launcher command line) and starts it again with --resume when it ends by
/// a fault a restart can fix — a killed or stalled rank, a lost host, a killed mpirun — up to
/// `maxRestarts` times. Errors no restart fixes (settings, data, output, non-finite loss, a refused
/// --out or resume) end it at once with the job's status; SIGINT/SIGTERM to the supervisor is passed
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
  let token = UUID().uuidString
  private var stopRequested = false
  private var child: Process?

  public init(settings: Settings) {
    self.settings = settings
    output = Self.value(of: "--out", in: settings.command) ?? "vae-dist-run"
  }

  /// Runs the job to its end; returns the exit status to leave with.
  public func run() -> Int32 {
    installSignalForwarding()
    var command = settings.command
    var restarts = 0, redone = 0
    var previousFailure: (status: Int32, cause: String, step: Int?)?
    while true {
      if let hostfile = settings.hostfile { command = withReachableHosts(hostfile, command) }
      let resumeStep = previousFailure == nil ? nil : newestCheckpoint()
      if let failure = previousFailure {
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
        if let line = try? JSONEncoder().encode(record) {
          try? AtomicFile.appendLine(String(decoding: line, as: UTF8.self), to: output + "/restarts.jsonl")
        }
        if !command.contains("--resume") { command.append("--resume") }
      }
      let started = monotonicSeconds()
      let (status, transcript) = runOnce(command)
      killLeftovers()
      if status == 0 || stopRequested {
        say("finished\(stopRequested ? " (stopped on request)" : "") with status \(status) after \(restarts) restart\(restarts == 1 ? "" : "s"); \(redone) step\(redone == 1 ? "" : "s") recomputed")
        return status
      }
      if let kind = FailureKind(rawValue: status), !kind.restartable {
        say("the job ended with status \(status) (\(kind)): a restart would not fix it; not restarting")
        return status
      }
      if status == 64 {
        say("the job's command line was refused (status 64); not restarting")
        return status
      }
      guard restarts < settings.maxRestarts else {
        say("the job failed (status \(status)) and \(restarts) restarts are used up (--max-restarts \(settings.maxRestarts)); giving up")
        return status
      }
      let progressed = (progressStep() ?? 0) > (resumeStep?.step ?? 0)
      if let minRanks = settings.minRanks, !progressed, monotonicSeconds() - started < 60,
        let n = Self.value(of: "-n", in: command).flatMap(Int.init), n > minRanks
      {
        command = Self.replacing("-n", with: "\(n - 1)", in: command)
        say("the job failed before its first step: trying \(n - 1) ranks (--min-ranks \(minRanks))")
      }
      let reached = max(progressStep() ?? 0, newestCheckpoint()?.step ?? 0)
      previousFailure = (status, Self.cause(status: status, transcript: transcript), reached)
      usleep(UInt32(settings.backoff * Double(min(restarts + 1, 5)) * 1e6))
    }
  }

  // MARK: - The job

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
    child = process
    let hung = watchLauncher(process)
    process.waitUntilExit()
    child = nil
    out.fileHandleForReading.readabilityHandler = nil
    err.fileHandleForReading.readabilityHandler = nil
    tail.append(out.fileHandleForReading.readDataToEndOfFile())
    tail.append(err.fileHandleForReading.readDataToEndOfFile())
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
  /// `launcherGrace` seconds (30; VAE_DIST_TEST_LAUNCHER_GRACE in tests) to exit, and is then killed
  /// with everything it left. Returns true when it had to be killed. Ranks only on other machines
  /// are not visible here: then this is a plain wait.
  func watchLauncher(_ process: Process) -> Bool {
    let grace = ProcessInfo.processInfo.environment["VAE_DIST_TEST_LAUNCHER_GRACE"].flatMap(Double.init) ?? 30
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

  func installSignalForwarding() {
    for number in [SIGINT, SIGTERM] {
      signal(number, SIG_IGN)
      let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
      source.setEventHandler { [weak self] in
        guard let self else { return }
        self.stopRequested = true
        self.say("stopping the job cleanly (a checkpoint); no restart follows")
        if let child = self.child { kill(child.processIdentifier, SIGTERM) }
      }
      source.resume()
      signalSources.append(source)
    }
  }
  private var signalSources: [DispatchSourceSignal] = []

  // MARK: - What the run left in --out

  func progressStep() -> Int? {
    guard let data = FileManager.default.contents(atPath: output + "/progress.json"),
      let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    else { return nil }
    return object["step"] as? Int
  }

  /// The newest checkpoint directory with both files (what --resume will take).
  func newestCheckpoint() -> (path: String, step: Int)? {
    let store = CheckpointStore(outputDirectory: output, keep: 1)
    return store.candidates().first { candidate in
      ["model.safetensors", "optimizer.safetensors"].allSatisfy { FileManager.default.fileExists(atPath: candidate.path + "/" + $0) }
    }.map { ($0.path, $0.step) }
  }

  // MARK: - Hosts

  private(set) var activeHosts: [String] = []

  /// The command with --hostfile pointing at the hosts of `hostfile` that answer now.
  func withReachableHosts(_ hostfile: String, _ command: [String]) -> [String] {
    let lines = ((try? String(contentsOfFile: hostfile, encoding: .utf8)) ?? "").split(separator: "\n")
      .filter { !$0.trimmingCharacters(in: .whitespaces).isEmpty && !$0.hasPrefix("#") }
    let reachable = lines.filter { line in
      let host = String(line.split(separator: " ").first ?? "")
      let probe = Process()
      probe.executableURL = URL(fileURLWithPath: "/usr/bin/env")
      probe.arguments = ["timeout", "10", settings.rshAgent, host, "true"]
      probe.standardOutput = FileHandle.nullDevice
      probe.standardError = FileHandle.nullDevice
      guard (try? probe.run()) != nil else { return false }
      probe.waitUntilExit()
      return probe.terminationStatus == 0
    }
    let hosts = reachable.map { String($0.split(separator: " ").first ?? "") }
    if hosts != activeHosts, !activeHosts.isEmpty || hosts.count != lines.count {
      let left = lines.map { String($0.split(separator: " ").first ?? "") }.filter { !hosts.contains($0) }
      say("hosts: \(hosts.joined(separator: ", "))\(left.isEmpty ? "" : "; left out (unreachable): \(left.joined(separator: ", "))")")
    }
    activeHosts = hosts
    let path = output + "/hosts.active"
    try? FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
    try? (reachable.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
    var command = Self.replacing("--hostfile", with: path, in: command)
    if Self.value(of: "-n", in: command) != nil { command = Self.replacing("-n", with: "\(hosts.count)", in: command) }
    return command
  }

  // MARK: - Pieces

  /// Which rank or host failed and how, from the job's last output (our own messages and mpirun's).
  static func cause(status: Int32, transcript: String) -> String {
    let lines = transcript.split(separator: "\n").map(String.init)
    if let stall = lines.last(where: { $0.contains("waited") && $0.contains("vae-dist: rank") }),
      let range = stall.range(of: "vae-dist: ")
    {
      return "a peer stalled or died (\(stall[range.upperBound...].prefix(60))…)"
    }
    // mpirun: "mpirun noticed that process rank 1 with PID 0 on node vm exited on signal 9 (Killed)."
    if let noticed = lines.last(where: { $0.contains("noticed that process rank") }) {
      let words = noticed.split(separator: " ").map(String.init)
      let rank = words.firstIndex(of: "rank").map { words[$0 + 1] } ?? "?"
      let node = words.firstIndex(of: "node").map { words[$0 + 1] }
      let how = noticed.range(of: "exited on ").map { String(noticed[$0.upperBound...]).trimmingCharacters(in: CharacterSet(charactersIn: ". ")) }
      return "rank \(rank)\(node.map { " on \($0)" } ?? "") ended (\(how ?? "status \(status)"))"
    }
    if let index = lines.lastIndex(where: { $0.contains("Process name: [[") }) {
      let name = lines[index]
      let rank = name.split(separator: ",").last.map { $0.filter(\.isNumber) } ?? "?"
      let detail = lines[(index + 1)...].prefix(3).first { $0.contains("signal") || $0.contains("Exit code") }
        .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
      let host = lines[(index)...].prefix(3).first { $0.contains("Node:") }?.split(separator: ":").last
        .map { $0.trimmingCharacters(in: .whitespaces) }
      return "rank \(rank)\(host.map { " on \($0)" } ?? "") ended (\(detail ?? "status \(status)"))"
    }
    if status > 128 { return "mpirun or its launcher ended by signal \(status - 128)" }
    return "the job ended with status \(status)"
  }

  static func value(of flag: String, in command: [String]) -> String? {
    guard let index = command.lastIndex(of: flag), index + 1 < command.count else { return nil }
    return command[index + 1]
  }

  static func replacing(_ flag: String, with value: String, in command: [String]) -> [String] {
    var command = command
    if let index = command.firstIndex(of: flag), index + 1 < command.count { command[index + 1] = value }
    return command
  }

  func say(_ text: String) {
    FileHandle.standardError.write(Data("vae-dist supervise: \(text)\n".utf8))
  }
}

/// The last 64 KiB of a job's output, for telling what failed.
final class TranscriptTail: @unchecked Sendable {
  private var data = Data()
  private let lock = NSLock()
  func append(_ more: Data) {
    lock.withLock {
      data.append(more)
      if data.count > 1 << 16 { data = data.suffix(1 << 16) }
    }
  }
  var text: String { lock.withLock { String(decoding: data, as: UTF8.self) } }
}
