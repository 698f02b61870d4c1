import VAEFiles
import Foundation
import VAEData

#if canImport(Glibc)
  import Glibc
#endif

/// The --out directory and who owns it. A run records its identity — the settings that define its
/// trajectory and the fingerprint of its data — in DIR/run.json. Since the trajectory is a function
/// of exactly these (any rank count, any thread count), two runs with the same identity are the same
/// run, and a checkpoint of one resumes the other bit for bit.
///
/// - A new run (no --resume) into a directory that holds a model or checkpoints stops before
///   training, unless --overwrite: then the directory is renamed to DIR.previous-N (nothing deleted)
///   and the run starts in a new, empty DIR.
/// - --resume needs DIR's run to be this run (the same identity).
/// - Checkpoints of another identity are never pruned, and never resumed.
public struct RunDirectory {
  public let path: String
  public var recordPath: String { path + "/run.json" }

  public init(path: String) { self.path = path }

  /// --out as the run's folder, as the trainer and the supervisor both name it: without trailing
  /// slashes (DIR/ would be moved aside into itself, as DIR/.previous-1), and absolute where its
  /// last part is . or .. (the working directory cannot be moved aside from under the paths
  /// relative to it).
  public static func folder(_ out: String) -> String {
    var path = out
    while path.count > 1 && path.hasSuffix("/") { path.removeLast() }
    let last = path.split(separator: "/").last
    guard last == "." || last == "..", let absolute = realpath(path, nil) else { return path }
    defer { free(absolute) }
    return String(cString: absolute)
  }

  public struct Record: Codable, Equatable {
    public var format = "vae-dist-run/1"
    public var configuration: TrainingConfiguration
    public var data: DataFingerprint
  }

  /// Rank zero's claim before training: the lock first (before anything is written), then the
  /// identity check. Returns the lock, to hold until the run ends, and the directory the earlier run
  /// was moved to, if any.
  func claim(
    configuration: TrainingConfiguration, data: DataFingerprint, resume: Bool, overwrite: Bool
  ) throws -> (lock: RunLock, movedTo: String?) {
    // A misspelled --out would otherwise be made, given a run.json, and then refused for holding
    // no checkpoint.
    guard !resume || FileManager.default.fileExists(atPath: path) else {
      throw TrainingError.refused("--resume: --out \(path) does not exist, so there is no run to continue. Check the path, or drop --resume to start a run there.")
    }
    try create()
    var lock = try RunLock(directory: path)
    // What a run that died in a write left behind, first: a copy that a crash left moved aside goes
    // back under its name, so the checks below see it; a half-written model.safetensors.tmp-PID (or
    // picture) goes. Only the lock holder gets here, so no live run is writing them.
    CheckpointStore(outputDirectory: path, keep: 1).removeLeftovers()
    for folder in [path, path + "/images"] { AtomicFile.removeLeftovers(in: folder) }
    var movedTo: String?
    if resume {
      if let record = try? readRecord(), let refusal = record.refusal(of: configuration, data: data, holder: "the run in \(path)") {
        throw refusal
      }
    } else if let used = holdsResults(other: Record(configuration: configuration, data: data)) {
      guard overwrite else {
        throw TrainingError.refused(
          "--out \(path) already holds \(used) of an earlier run\(describe()). Pass --resume to continue that run, "
            + "a new --out, or --overwrite to move it aside (to \(nextAsideName())) and start afresh.")
      }
      let aside = nextAsideName()
      guard rename(path, aside) == 0 else {
        throw TrainingError.output("--overwrite: cannot move \(path) to \(aside): \(String(cString: strerror(errno)))")
      }
      movedTo = aside
      try create()
      lock = try RunLock(directory: path)  // the moved run's lock goes with it
    }
    // Where the run writes folders, a file (or a dangling link) in the way failed the run only at
    // its end (the pictures). After --overwrite's move: the earlier run's are no longer in the way.
    for folder in ["checkpoints", "images"] {
      var link = stat(), target = stat()
      let full = path + "/" + folder
      if lstat(full, &link) == 0, stat(full, &target) != 0 || target.st_mode & S_IFMT != S_IFDIR {
        throw TrainingError.output("--out \(path): \(full) is not a folder, and the run writes one there: move it away.")
      }
    }
    // A resume writes run.json once its checkpoint is accepted (Trainer.setUp): written here, a
    // resume refused by the checkpoint left its own settings in a run.json without one, which then
    // refused the right resume.
    if !resume { try writeRecord(configuration: configuration, data: data) }
    return (lock, movedTo)
  }

  /// Writes run.json for the run of `configuration` on `data`, unless it holds that already.
  func writeRecord(configuration: TrainingConfiguration, data: DataFingerprint) throws {
    let record = Record(configuration: configuration, data: data)
    guard (try? readRecord()) != record else { return }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
    try AtomicFile.write(Array(try encoder.encode(record)) + [10], to: recordPath)
  }

  func readRecord() throws -> Record {
    guard let data = FileManager.default.contents(atPath: recordPath) else { throw FileError.unreadable(path: recordPath) }
    return try JSONDecoder().decode(Record.self, from: data)
  }

  /// What of an earlier run the directory holds ("a model", "3 checkpoints"), nil if nothing. The
  /// best checkpoint and the logs count when run.json records no run or another one than `record`
  /// (by its identity: a supervisor restarting a run before its first step checkpoint starts again
  /// over its own, with its thread count, say, changed): a new run would delete its metrics.jsonl.
  func holdsResults(other record: Record) -> String? {
    let store = CheckpointStore(outputDirectory: path, keep: 1)
    let count = store.candidates().count
    if count > 0 { return "\(count) checkpoint\(count == 1 ? "" : "s")" }
    if FileManager.default.fileExists(atPath: path + "/model.safetensors") { return "a trained model" }
    let best = FileManager.default.fileExists(atPath: store.directory + "/best") ? ["checkpoints/best"] : []
    let logs = best + ["metrics.jsonl", "evaluation.json"].filter { FileManager.default.fileExists(atPath: path + "/" + $0) }
    guard !logs.isEmpty else { return nil }
    guard let earlier = try? readRecord(),
      earlier.refusal(of: record.configuration, data: record.data, holder: "") == nil
    else { return "the " + logs.joined(separator: " and ") }
    return nil
  }

  /// Whether DIR holds anything holdsResults can count (for some record): what a new run with
  /// --overwrite may move aside. The supervisor asks before the job starts, without its identity.
  public static func mayHoldResults(_ path: String) -> Bool {
    let store = CheckpointStore(outputDirectory: path, keep: 1)
    return !store.candidates().isEmpty || FileManager.default.fileExists(atPath: store.directory + "/best")
      || ["model.safetensors", "metrics.jsonl", "evaluation.json"].contains { FileManager.default.fileExists(atPath: path + "/" + $0) }
  }

  private func describe() -> String {
    guard let record = try? readRecord() else { return "" }
    let c = record.configuration
    return " (--seed \(c.seed), --batch-size \(c.batchSize), --lr \(c.adam.learningRate), --latent-dim \(c.latentDim))"
  }

  private func nextAsideName() -> String {
    var n = 1
    while FileManager.default.fileExists(atPath: "\(path).previous-\(n)") { n += 1 }
    return "\(path).previous-\(n)"
  }

  private func create() throws {
    if let problem = makeDirectories(path) {
      throw TrainingError.output("--out \(path): cannot create the output directory: \(problem). Pass a writable --out.")
    }
    guard access(path, W_OK) == 0 else {
      throw TrainingError.output("--out \(path): the output directory is not writable. Pass a writable --out.")
    }
  }
}

/// mkdir -p with the reason of a failure in words ("/a/file is a file, not a directory"), nil on success.
func makeDirectories(_ path: String) -> String? {
  var prefix = path.hasPrefix("/") ? "" : "."
  for component in path.split(separator: "/") {
    prefix += "/" + component
    var info = stat()
    if stat(prefix, &info) == 0 {
      if (info.st_mode & S_IFMT) != S_IFDIR { return "\(prefix) is a file, not a directory" }
      continue
    }
    if mkdir(prefix, 0o755) != 0 {
      if errno == EEXIST { continue }
      return "\(prefix): \(String(cString: strerror(errno)))"
    }
    // The new directory's name, durable before anything is written into it.
    do { try AtomicFile.syncDirectory(AtomicFile.parent(of: prefix), for: prefix) } catch { return "\(error)" }
  }
  return nil
}

extension RunDirectory.Record {
  /// The refusal of a --resume by a run of `configuration` on `data` when this record's run is
  /// another run (other identity settings, or other data); nil when it is the same run. `holder`
  /// names what holds the other run ("the run in DIR", a checkpoint's path).
  func refusal(of configuration: TrainingConfiguration, data: DataFingerprint, holder: String) -> TrainingError? {
    let conflicts = configuration.resumeConflicts(with: self.configuration)
    if !conflicts.isEmpty {
      return .refused(
        "--resume: \(holder) is a different run: this one asks for " + conflicts.joined(separator: ", ")
          + ". Use that run's settings, or a new --out.")
    }
    if self.data != data && !isEarlierForm(self.data, of: data, configuration) {
      return .refused(
        "--resume: \(holder) was trained on different data (\(self.data.trainImages) training images, "
          + "CRC-32 \(self.data.trainFileCRC32)) than --data \(configuration.dataDirectory) holds "
          + "(\(data.trainImages), CRC-32 \(data.trainFileCRC32)).")
    }
    return nil
  }
}
