import VAEFiles
import Foundation
import VAECore
import _CZlib

/// What identifies the data a run trained on: resuming against other data is refused.
public struct DataFingerprint: Codable, Sendable, Equatable {
  /// The training images after the hold-out.
  public var trainImages: Int
  /// The CRC-32 of the training images file as it reads uncompressed (`IDXFile.contentCRC32`); before
  /// 2026-12-03, of the file as stored (`isEarlierForm`).
  public var trainFileCRC32: UInt32

  public init(trainImages: Int, trainFileCRC32: UInt32) {
    self.trainImages = trainImages
    self.trainFileCRC32 = trainFileCRC32
  }
}

/// A loaded, verified checkpoint.
public struct Checkpoint {
  public var path: String
  public var layout: ParameterLayout
  public var parameters: [Float]
  public var firstMoment: [Float]
  public var secondMoment: [Float]
  public var state: TrainingState
  public var configuration: TrainingConfiguration
  public var data: DataFingerprint
}

/// DIR/checkpoints: one directory per checkpoint, `step-00000469/`, holding
/// - `model.safetensors`: the 18 parameter tensors with PyTorch's names, nothing else, so
///   `load_state_dict(load_file(...), strict=True)` takes it as it is;
/// - `optimizer.safetensors`: `adam.m.<name>` and `adam.v.<name>` for each parameter tensor, and in
///   `__metadata__` the format, the training state, the configuration, the data fingerprint and the
///   CRC-32 of both files' contents.
/// A checkpoint is written into a temporary directory, each file flushed to disk, then renamed into
/// place in one step, so a crash or a full disk at any moment leaves the earlier checkpoints as they
/// were; a directory that fails verification is skipped on resume with a warning.
public final class CheckpointStore {
  public static let format = "vae-dist-checkpoint/1"
  public let directory: String
  public let keep: Int
  /// The run whose checkpoints these are: only its own are pruned (nil: all are).
  public var owner: RunDirectory.Record?

  public init(outputDirectory: String, keep: Int, owner: RunDirectory.Record? = nil) {
    directory = outputDirectory + "/checkpoints"
    self.keep = keep
    self.owner = owner
  }

  static func name(step: Int) -> String {
    let digits = String(step)
    return "step-" + String(repeating: "0", count: max(0, 8 - digits.count)) + digits
  }

  /// Writes a checkpoint and prunes all but the newest `keep`. Returns its directory,
  /// `step-NNNNNNNN` unless `name` is given (`best` for early stopping's best epoch, never pruned).
  @discardableResult
  public func write(
    parameters: UnsafePointer<Float>, firstMoment: UnsafePointer<Float>, secondMoment: UnsafePointer<Float>,
    layout: ParameterLayout, state: TrainingState, configuration: TrainingConfiguration, data: DataFingerprint,
    name: String? = nil
  ) throws -> String {
    for (name, buffer) in [("parameters", parameters), ("first moment", firstMoment), ("second moment", secondMoment)] {
      for i in 0..<layout.totalCount where !buffer[i].isFinite {
        throw TrainingError.nonFiniteState(step: state.step, what: name)
      }
    }
    try createDirectory(directory)
    let final = directory + "/" + (name ?? Self.name(step: state.step))
    let temporary = directory + "/.tmp-" + (name ?? Self.name(step: state.step)) + "-\(getpid())"
    try? FileManager.default.removeItem(atPath: temporary)
    try createDirectory(temporary)

    let model = SafeTensors.encode(
      SafeTensors.File(
        // The seed and step as the final model.safetensors records them: the commands on a saved model read them.
        metadata: ["format": "pt", "seed": "\(configuration.seed)", "step": "\(state.step)"],
        tensors: ModelFile.tensors(parameters, layout: layout)))
    var moments: [SafeTensors.Tensor] = []
    for (prefix, buffer) in [("adam.m.", firstMoment), ("adam.v.", secondMoment)] {
      moments += ModelFile.tensors(buffer, layout: layout).map {
        SafeTensors.Tensor(name: prefix + $0.name, shape: $0.shape, values: $0.values)
      }
    }
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys]
    var metadata = [
      "format": Self.format,
      "state": String(decoding: try encoder.encode(state), as: UTF8.self),
      "configuration": String(decoding: try encoder.encode(configuration), as: UTF8.self),
      "data": String(decoding: try encoder.encode(data), as: UTF8.self),
      "model_crc32": String(crc32(model)),
    ]
    metadata["moments_crc32"] = String(crc32(momentBytes(moments)))
    metadata["metadata_crc32"] = String(crc32(Self.describedBytes(metadata)))
    let optimizer = SafeTensors.encode(SafeTensors.File(metadata: metadata, tensors: moments))

    do {
      try AtomicFile.write(model, to: temporary + "/model.safetensors")
      try AtomicFile.write(optimizer, to: temporary + "/optimizer.safetensors")
    } catch {
      try? FileManager.default.removeItem(atPath: temporary)  // a full disk leaves no half checkpoint
      throw error
    }
    // A name written again (`best`, or a step a resume stops at at once) is replaced whole.
    try AtomicFile.replace(final, with: temporary)
    prune()
    return final
  }

  /// Checkpoint directories by step, newest first (complete or not).
  public func candidates() -> [(step: Int, path: String)] {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    return names.compactMap { name -> (Int, String)? in
      guard name.hasPrefix("step-"), let step = Int(name.dropFirst(5)) else { return nil }
      return (step, directory + "/" + name)
    }.sorted { $0.0 > $1.0 }
  }

  /// The newest checkpoint that loads and verifies. Damaged ones (truncated, failing their CRC,
  /// half-written) are reported through `warn` and skipped for the one before; one this version
  /// cannot use (another format, another model) is refused with the error, never half-loaded.
  /// With an owner, checkpoints of other runs are passed over; the newest of them is returned as
  /// `foreign` when none of the owner's is found, to say why.
  public func newestComplete(warn: (String) -> Void) throws -> Checkpoint? {
    try newestOwn(warn: warn).own
  }

  public func newestOwn(warn: (String) -> Void) throws -> (own: Checkpoint?, foreign: Checkpoint?) {
    var foreign: Checkpoint?
    for candidate in candidates() {
      do {
        let checkpoint = try load(candidate.path)
        if isOwn(checkpoint) { return (checkpoint, nil) }
        if foreign == nil { foreign = checkpoint }
      } catch FileError.incompatible(let path, let reason) {
        throw FileError.incompatible(path: path, reason: reason)
      } catch {
        warn("skipping damaged checkpoint: \(error)")
      }
    }
    return (nil, foreign)
  }

  /// True when the checkpoint at `path` loads and was written by a run of the owner's identity.
  func belongsToOwner(_ path: String) -> Bool {
    guard let checkpoint = try? load(path) else { return false }
    return isOwn(checkpoint)
  }

  func isOwn(_ checkpoint: Checkpoint) -> Bool {
    guard let owner else { return true }
    return RunDirectory.Record(configuration: checkpoint.configuration, data: checkpoint.data)
      .refusal(of: owner.configuration, data: owner.data, holder: checkpoint.path) == nil
  }

  /// Loads and verifies one checkpoint directory.
  public func load(_ path: String) throws -> Checkpoint {
    let modelPath = path + "/model.safetensors", optimizerPath = path + "/optimizer.safetensors"
    let modelData = try SafeTensors.readBytes(path: modelPath)
    let optimizer = try SafeTensors.read(path: optimizerPath)
    let metadata = optimizer.metadata
    guard metadata["format"] == Self.format else {
      throw FileError.incompatible(
        path: optimizerPath,
        reason: "has format \(metadata["format"] ?? "none"); this vae-dist reads \(Self.format)")
    }
    guard let modelCRC = metadata["model_crc32"].flatMap(UInt32.init), modelCRC == crc32(modelData) else {
      throw FileError.invalid(path: modelPath, reason: "its CRC-32 does not match the one recorded when it was written")
    }
    guard let momentsCRC = metadata["moments_crc32"].flatMap(UInt32.init),
      momentsCRC == crc32(momentBytes(optimizer.tensors))
    else {
      throw FileError.invalid(path: optimizerPath, reason: "its CRC-32 does not match the one recorded when it was written")
    }
    // Checkpoints from before 2026-12-03 have no metadata_crc32: their JSON is checked only as below.
    if let recorded = metadata["metadata_crc32"] {
      guard UInt32(recorded) == crc32(Self.describedBytes(metadata)) else {
        throw FileError.invalid(path: optimizerPath, reason: "its metadata's CRC-32 does not match the one recorded when it was written")
      }
    }
    // Keys a later version adds take their defaults, so older checkpoints stay readable.
    func decode<T: Codable>(_ type: T.Type, _ key: String, defaults: T) throws -> T {
      guard let text = metadata[key],
        let stored = try? JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any],
        let base = try? JSONSerialization.jsonObject(with: JSONEncoder().encode(defaults)) as? [String: Any],
        let merged = try? JSONSerialization.data(withJSONObject: base.merging(stored) { $1 }),
        let value = try? JSONDecoder().decode(T.self, from: merged)
      else {
        throw FileError.invalid(path: optimizerPath, reason: "its metadata lacks a readable \(key)")
      }
      return value
    }
    let model = try SafeTensors.decode(modelData, path: modelPath)
    let (layout, parameters) = try ModelFile.parameters(from: model, path: modelPath)
    func moments(_ prefix: String) throws -> [Float] {
      var values = [Float](repeating: 0, count: layout.totalCount)
      for spec in layout.tensors {
        guard let tensor = optimizer.tensor(named: prefix + spec.name), tensor.shape == spec.shape else {
          throw FileError.incompatible(path: optimizerPath, reason: "lacks \(prefix + spec.name) of shape \(spec.shape)")
        }
        guard tensor.values.allSatisfy({ $0.isFinite }) else {
          throw FileError.incompatible(path: optimizerPath, reason: "\(prefix + spec.name) holds NaN or infinite values")
        }
        values.replaceSubrange(spec.offset..<(spec.offset + spec.count), with: tensor.values)
      }
      return values
    }
    let state = try decode(TrainingState.self, "state", defaults: TrainingState())
    if let problem = state.problem { throw FileError.invalid(path: optimizerPath, reason: "its training state is impossible: \(problem)") }
    let configuration = try decode(TrainingConfiguration.self, "configuration", defaults: TrainingConfiguration())
    guard configuration.latentDim == layout.latentDim else {
      throw FileError.invalid(
        path: modelPath, reason: "holds a model of latent size \(layout.latentDim), but its run's settings say \(configuration.latentDim)")
    }
    return Checkpoint(
      path: path, layout: layout, parameters: parameters.array, firstMoment: try moments("adam.m."),
      secondMoment: try moments("adam.v."), state: state, configuration: configuration,
      data: try decode(DataFingerprint.self, "data", defaults: DataFingerprint(trainImages: -1, trainFileCRC32: 0)))
  }

  /// The metadata's JSON entries (state, configuration, data), each key with its text, in one byte string.
  private static func describedBytes(_ metadata: [String: String]) -> [UInt8] {
    ["state", "configuration", "data"].flatMap { Array("\($0)=\(metadata[$0] ?? "")\n".utf8) }
  }

  /// Keeps the newest `keep` checkpoints of the owner's run and removes leftovers of interrupted
  /// writes; another run's checkpoints (and any whose run cannot be read) are left alone.
  func prune() {
    let own = candidates().filter { owner == nil || belongsToOwner($0.path) }
    for old in own.dropFirst(keep) {
      // Renamed first: a crash in the middle of the delete leaves a leftover (which removeLeftovers
      // finishes), never a half-emptied step-N that fails its check at every resume.
      let doomed = directory + "/.tmp-\(URL(fileURLWithPath: old.path).lastPathComponent)-pruned-\(getpid())"
      let target = rename(old.path, doomed) == 0 ? doomed : old.path
      try? FileManager.default.removeItem(atPath: target)
    }
    removeLeftovers(sparing: getpid())
  }

  /// Removes what interrupted writes left in the checkpoints directory (`.tmp-NAME-PID`), except the
  /// writes of process `sparing`. An earlier copy that `AtomicFile.replace` had moved aside
  /// (`.tmp-NAME-PID.old`, where the file system cannot swap) while NAME is missing goes back to NAME:
  /// a crash between its two renames loses neither copy.
  public func removeLeftovers(sparing pid: Int32? = nil) {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    for name in names where name.hasPrefix(".tmp-") {
      let write = name.hasSuffix(AtomicFile.asideSuffix) ? String(name.dropLast(AtomicFile.asideSuffix.count)) : name
      if let pid, write.hasSuffix("-\(pid)") { continue }
      let nameStart = write.index(write.startIndex, offsetBy: 5)  // after ".tmp-"
      if write != name, let dash = write.lastIndex(of: "-"), dash > nameStart {
        let target = String(write[nameStart..<dash])
        if AtomicFile.restoreAside(directory + "/" + name, to: directory + "/" + target) { continue }
      }
      try? FileManager.default.removeItem(atPath: directory + "/" + name)
    }
  }

  /// Creates `path` (and its parents) if missing, its name made durable in its parent.
  private func createDirectory(_ path: String) throws {
    if let problem = makeDirectories(path) {
      throw FileError.writeFailed(path: path, reason: "cannot create the directory: \(problem)")
    }
  }
}

/// The moments' values in file order (the order they were written, which decode returns).
private func momentBytes(_ tensors: [SafeTensors.Tensor]) -> [UInt8] {
  var bytes: [UInt8] = []
  for tensor in tensors {
    tensor.values.withUnsafeBytes { bytes.append(contentsOf: $0) }
  }
  return bytes
}

func crc32(_ bytes: [UInt8]) -> UInt32 {
  bytes.withUnsafeBufferPointer { UInt32(_CZlib.crc32(0, $0.baseAddress, UInt32($0.count))) }
}
