import Foundation
import VAETraining
import VAEFiles

#if canImport(Glibc)
  import Glibc
#endif

/// A file or directory as the file system knows it: the same one under any name, a new one under
/// an old name told apart.
struct FileIdentity: Hashable {
  var device: UInt64
  var inode: UInt64

  init?(path: String) {
    var info = stat()
    guard stat(path, &info) == 0 else { return nil }
    device = UInt64(info.st_dev)
    inode = UInt64(info.st_ino)
  }
}

// What the supervisor reads of the job: how far it got and what failed, from --out and from the
// job's output, and which hosts of the hostfile answer.
extension Supervisor {
  /// The last step the attempt that began at `attempt` did, from DIR/progress.json; nil before it
  /// wrote one (a file older than the attempt is an earlier attempt's, or an earlier run's).
  func progressStep(since attempt: Date) -> Int? {
    let path = output + "/progress.json"
    let written = (try? FileManager.default.attributesOfItem(atPath: path))?[.modificationDate] as? Date
    if let written, written < attempt { return nil }
    guard let data = FileManager.default.contents(atPath: path),
      let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any]
    else { return nil }
    return object["step"] as? Int
  }

  /// The job's newest checkpoint directory with both files (what --resume will take); none that
  /// --out held before the job started, unless the command resumes them.
  func newestCheckpoint() -> (path: String, step: Int)? {
    let store = CheckpointStore(outputDirectory: output, keep: 1)
    return store.candidates().first { candidate in
      ["model.safetensors", "optimizer.safetensors"].allSatisfy { FileManager.default.fileExists(atPath: candidate.path + "/" + $0) }
        && FileIdentity(path: candidate.path).map { !inherited.contains($0) } ?? false
    }.map { ($0.path, $0.step) }
  }

  // MARK: - Hosts

  /// The hostfile's host lines as Open MPI reads them: a comment (from `#`, indented or after a host)
  /// and the blanks around fields dropped, blank lines left out; or the error naming it (a regular
  /// file of at most 1 MiB: a fifo would block the supervisor).
  public static func hostLines(_ hostfile: String) throws -> [Substring] {
    let text = try RegularFile.text(hostfile, kind: "an Open MPI hostfile", limit: 1 << 20)
    return text.split(whereSeparator: \.isNewline).compactMap { line in
      let fields = line.prefix { $0 != "#" }.split(whereSeparator: \.isWhitespace)
      return fields.isEmpty ? nil : Substring(fields.joined(separator: " "))
    }
  }

  /// The host a hostfile line names: its first field.
  package static func host(_ line: Substring) -> String { String(line.split(whereSeparator: \.isWhitespace).first ?? "") }

  /// The most slots a hostfile line may give (far beyond any node's cores).
  package static let maximumSlots = 1 << 16

  /// The ranks a hostfile line holds: its `slots=N`, else 1; nil when N is not a number from 1 to
  /// `maximumSlots`.
  package static func slots(_ line: Substring) -> Int? {
    guard let field = line.split(whereSeparator: \.isWhitespace).first(where: { $0.hasPrefix("slots=") }) else { return 1 }
    return Int(field.dropFirst(6)).flatMap { (1...maximumSlots).contains($0) ? $0 : nil }
  }

  /// The command with --hostfile pointing at the hosts of `hostfile` that answer now, and -n at most
  /// `ranks` and at most their slots; nil when none answers.
  func withReachableHosts(_ hostfile: String, ranks: Int?, _ command: [String]) throws -> [String]? {
    let lines = (try? Self.hostLines(hostfile)) ?? []
    let reachable = lines.filter { line in
      let host = Self.host(line)
      // An ssh that leaves a connection master behind must not keep the check waiting for it.
      var probe = try? SpawnedProcess(
        ["timeout", "10", settings.rshAgent, host, "true"], environment: ProcessInfo.processInfo.environment,
        defaultSignals: Self.handledSignals, capture: false)
      return probe?.reap(blocking: true) == 0
    }
    let hosts = reachable.map(Self.host)
    if hosts != activeHosts, !activeHosts.isEmpty || hosts.count != lines.count {
      let left = lines.map(Self.host).filter { !hosts.contains($0) }
      say("hosts: \(hosts.isEmpty ? "none" : hosts.joined(separator: ", "))\(left.isEmpty ? "" : "; left out (unreachable): \(left.joined(separator: ", "))")")
    }
    guard !hosts.isEmpty else { return nil }  // activeHosts stay those of the last start, to name the lost
    activeHosts = hosts
    let path = output + "/hosts.active"
    // Checked: mpirun is pointed at this file, and an old one would still name the lost host.
    do {
      try FileManager.default.createDirectory(atPath: output, withIntermediateDirectories: true)
      try AtomicFile.write(Array((reachable.joined(separator: "\n") + "\n").utf8), to: path)
    } catch let error as FileError {
      throw error
    } catch {
      throw FileError.writeFailed(path: path, reason: "\(error)")
    }
    var command = Self.replacing("--hostfile", with: path, in: command)
    let capacity = reachable.map { Self.slots($0) ?? 1 }.reduce(0, +)  // checked up front
    if Self.value(of: "-n", in: command) != nil { command = Self.replacing("-n", with: "\(min(ranks ?? capacity, capacity))", in: command) }
    return command
  }

  // MARK: - Pieces

  /// Which rank or host failed and how, from the job's last output (our own messages and mpirun's).
  package static func cause(status: Int32, transcript: String) -> String {
    let lines = transcript.split(separator: "\n").map(String.init)
    if let stall = lines.last(where: { $0.contains("waited") && $0.contains("vae-dist: rank") }),
      let range = stall.range(of: "vae-dist: ")
    {
      return "a peer stalled or died (\(stall[range.upperBound...].prefix(60))…)"
    }
    // mpirun: "mpirun noticed that process rank 1 with PID 0 on node vm exited on signal 9 (Killed)."
    if let noticed = lines.last(where: { $0.contains("noticed that process rank") }) {
      let words = noticed.split(separator: " ").map(String.init)
      let after = { (word: String) in words.firstIndex(of: word).flatMap { $0 + 1 < words.count ? words[$0 + 1] : nil } }
      let rank = after("rank") ?? "?"
      let node = after("node")
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

  /// The value of the command's last `flag value` or `flag=value`.
  package static func value(of flag: String, in command: [String]) -> String? {
    guard let index = command.lastIndex(where: { $0 == flag || $0.hasPrefix(flag + "=") }) else { return nil }
    if command[index] != flag { return String(command[index].dropFirst(flag.count + 1)) }
    return index + 1 < command.count ? command[index + 1] : nil
  }

  /// The command with every `flag value` or `flag=value` set to `value`.
  package static func replacing(_ flag: String, with value: String, in command: [String]) -> [String] {
    var command = command
    for index in command.indices where command[index].hasPrefix(flag + "=") { command[index] = flag + "=" + value }
    for index in command.indices.dropLast() where command[index] == flag { command[index + 1] = value }
    return command
  }

  /// A line on stderr (write(2): a console that went away is no reason to stop).
  func say(_ text: String) {
    let line = Array("vae-dist supervise: \(text)\n".utf8)
    _ = line.withUnsafeBytes { write(STDERR_FILENO, $0.baseAddress, $0.count) }
  }
}
