import VAEFiles
import Foundation
import VAECore
import VAETraining
import XCTest

final class CheckpointStoreTests: XCTestCase {
  var directory = ""
  let layout = ParameterLayout(latentDim: 2)

  override func setUp() {
    directory = NSTemporaryDirectory() + "ckpt-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
  }
  override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

  func values(_ seed: Float) -> [Float] { (0..<layout.totalCount).map { Float($0 % 97) * seed - 1 } }

  @discardableResult
  func write(_ store: CheckpointStore, step: Int, configuration: TrainingConfiguration = TrainingConfiguration()) throws -> String {
    var state = TrainingState()
    state.step = step
    state.epochLosses = LossSums(reconstruction: 1234.5 + Double(step), kl: 0, count: 640)
    let (p, m, v) = (values(0.5), values(0.25), values(0.125).map(abs))
    return try store.write(
      parameters: p, firstMoment: m, secondMoment: v, layout: layout, state: state,
      configuration: configuration, data: DataFingerprint(trainImages: 60_000, trainFileCRC32: 42))
  }

  func testRoundTripKeepsEverything() throws {
    let store = CheckpointStore(outputDirectory: directory, keep: 3)
    var configuration = TrainingConfiguration()
    configuration.seed = 9
    let path = try write(store, step: 77, configuration: configuration)
    XCTAssertTrue(path.hasSuffix("checkpoints/step-00000077"))
    let loaded = try store.load(path)
    XCTAssertEqual(loaded.parameters, values(0.5))
    XCTAssertEqual(loaded.firstMoment, values(0.25))
    XCTAssertEqual(loaded.secondMoment, values(0.125).map(abs))
    XCTAssertEqual(loaded.state.step, 77)
    XCTAssertEqual(loaded.state.epochLosses.reconstruction, 1234.5 + 77)
    XCTAssertEqual(loaded.configuration, configuration)
    XCTAssertEqual(loaded.data, DataFingerprint(trainImages: 60_000, trainFileCRC32: 42))
    // The model file alone is a plain PyTorch state_dict: the 18 parameter tensors and nothing else.
    let model = try SafeTensors.read(path: path + "/model.safetensors")
    XCTAssertEqual(model.tensors.map(\.name).sorted(), layout.tensors.map(\.name).sorted())
  }

  func testKeepsTheNewestAndIgnoresInterruptedWrites() throws {
    let store = CheckpointStore(outputDirectory: directory, keep: 2)
    try FileManager.default.createDirectory(atPath: store.directory + "/.tmp-step-00000005-999999", withIntermediateDirectories: true)
    for step in [10, 20, 30] { try write(store, step: step) }
    XCTAssertEqual(store.candidates().map(\.step), [30, 20])
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: store.directory).sorted(), ["step-00000020", "step-00000030"])
  }

  /// Where the file system cannot swap, `AtomicFile.replace` moves the earlier copy aside
  /// (`.tmp-NAME-PID.old`) before renaming the new one in. A crash between the two leaves NAME
  /// missing: the next run's clean-up puts the earlier copy back instead of deleting both; after the
  /// second rename the aside copy is only a leftover.
  func testACopyMovedAsideByACrashedReplaceGoesBack() throws {
    let store = CheckpointStore(outputDirectory: directory, keep: 2)
    let fm = FileManager.default
    try write(store, step: 10)
    let kept = try Data(contentsOf: URL(fileURLWithPath: store.directory + "/step-00000010/model.safetensors"))
    try fm.moveItem(atPath: store.directory + "/step-00000010", toPath: store.directory + "/.tmp-step-00000010-999999.old")
    try fm.createDirectory(atPath: store.directory + "/.tmp-step-00000010-999999", withIntermediateDirectories: true)
    store.removeLeftovers()
    XCTAssertEqual(try fm.contentsOfDirectory(atPath: store.directory), ["step-00000010"])
    XCTAssertEqual(try Data(contentsOf: URL(fileURLWithPath: store.directory + "/step-00000010/model.safetensors")), kept)
    try fm.createDirectory(atPath: store.directory + "/.tmp-step-00000010-999999.old", withIntermediateDirectories: true)
    try fm.createDirectory(atPath: store.directory + "/.tmp-x.old", withIntermediateDirectories: true)  // no name, no pid
    store.removeLeftovers()
    XCTAssertEqual(try fm.contentsOfDirectory(atPath: store.directory), ["step-00000010"])
    XCTAssertEqual(store.candidates().map(\.step), [10])
  }

  /// Each way a checkpoint can be damaged: the newest is skipped with a warning naming the problem,
  /// and the one before it is used.
  func testDamagedNewestFallsBackToThePreviousOne() throws {
    let damages: [(String, (String) throws -> Void)] = [
      ("truncated model", { path in
        let file = path + "/model.safetensors"
        let data = try Data(contentsOf: URL(fileURLWithPath: file))
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: file))
      }),
      ("flipped byte in the model", { path in
        let file = path + "/model.safetensors"
        var data = try Data(contentsOf: URL(fileURLWithPath: file))
        data[data.count - 100] ^= 0x40
        try data.write(to: URL(fileURLWithPath: file))
      }),
      ("flipped byte in the moments", { path in
        let file = path + "/optimizer.safetensors"
        var data = try Data(contentsOf: URL(fileURLWithPath: file))
        data[data.count - 100] ^= 0x40
        try data.write(to: URL(fileURLWithPath: file))
      }),
      ("a digit of the step changed in the metadata", { path in
        let file = path + "/optimizer.safetensors"
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: file)))
        let from = Array(#"step\":20"#.utf8), to = Array(#"step\":29"#.utf8)
        let at = try XCTUnwrap((0...(bytes.count - from.count)).first { Array(bytes[$0..<($0 + from.count)]) == from })
        bytes.replaceSubrange(at..<(at + to.count), with: to)
        try Data(bytes).write(to: URL(fileURLWithPath: file))
      }),
      ("missing optimizer file", { path in try FileManager.default.removeItem(atPath: path + "/optimizer.safetensors") }),
      ("empty directory", { path in
        try FileManager.default.removeItem(atPath: path + "/optimizer.safetensors")
        try FileManager.default.removeItem(atPath: path + "/model.safetensors")
      }),
    ]
    let expectations = ["model.safetensors", "CRC-32", "CRC-32", "metadata's CRC-32", "optimizer.safetensors", "model.safetensors"]
    for ((name, damage), expected) in zip(damages, expectations) {
      tearDown()  // each damage in a directory of its own; none left behind
      setUp()
      let store = CheckpointStore(outputDirectory: directory, keep: 5)
      try write(store, step: 10)
      let newest = try write(store, step: 20)
      try damage(newest)
      var warnings: [String] = []
      let found = try store.newestComplete { warnings.append($0) }
      XCTAssertEqual(found?.state.step, 10, name)
      XCTAssertEqual(warnings.count, 1, name)
      XCTAssertTrue(warnings.first?.contains(expected) ?? false, "\(name): \(warnings)")
      XCTAssertTrue(warnings.first?.contains("step-00000020") ?? false, "\(name): \(warnings)")
    }
  }

  /// A checkpoint whose settings disagree with its own model (another latent size) is damaged, not
  /// loaded: a resume would copy the model into buffers of the settings' size.
  func testModelOfAnotherLatentSizeThanItsSettingsIsDamaged() throws {
    let store = CheckpointStore(outputDirectory: directory, keep: 5)
    try write(store, step: 10)
    var configuration = TrainingConfiguration()
    configuration.latentDim = 3
    try write(store, step: 20, configuration: configuration)
    var warnings: [String] = []
    XCTAssertEqual(try store.newestComplete { warnings.append($0) }?.state.step, 10)
    XCTAssertTrue(warnings.first?.contains("latent size 2, but its run's settings say 3") ?? false, "\(warnings)")
  }

  /// States no run can reach are named.
  func testImpossibleStatesAreNamed() {
    var state = TrainingState()
    XCTAssertNil(state.problem)
    state.step = -1
    XCTAssertEqual(state.problem, "step -1 is negative")
    state.step = 5
    state.bestStep = 6
    XCTAssertEqual(state.problem, "the best step 6 is not in 0…5")
    state.bestStep = 5
    state.epochSeconds = -.infinity
    XCTAssertNotNil(state.problem)
    state.epochSeconds = 1
    XCTAssertNil(state.problem)
    // Counts beyond any run (an edited state): they would overflow the epoch's sums on resume.
    state.step = Int.max
    XCTAssertEqual(state.problem, "a count is beyond any run (2^40 or more)")
    state.step = 5
    state.epochLosses = LossSums(reconstruction: 1, kl: 0, count: Int.max)
    XCTAssertEqual(state.problem, "a count is beyond any run (2^40 or more)")
    state.epochLosses = LossSums(reconstruction: .nan, kl: 0, count: 3)
    XCTAssertEqual(state.problem, "the epoch's loss sums are not finite")
  }

  /// Writing a name again (`best`) swaps the new copy in whole, and leaves nothing beside it.
  func testWritingANameAgainReplacesItWhole() throws {
    let store = CheckpointStore(outputDirectory: directory, keep: 5)
    var state = TrainingState()
    for step in [10, 20] {
      state.step = step
      try store.write(
        parameters: values(Float(step)), firstMoment: values(0.25), secondMoment: values(0.125).map(abs), layout: layout,
        state: state, configuration: TrainingConfiguration(), data: DataFingerprint(trainImages: 60_000, trainFileCRC32: 42),
        name: "best")
    }
    let best = try store.load(store.directory + "/best")
    XCTAssertEqual(best.state.step, 20)
    XCTAssertEqual(best.parameters, values(20))
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: store.directory), ["best"])
  }

  func testIncompatibleFormatIsRefusedNotSkipped() throws {
    let store = CheckpointStore(outputDirectory: directory, keep: 5)
    try write(store, step: 10)
    let newest = try write(store, step: 20)
    let path = newest + "/optimizer.safetensors"
    var file = try SafeTensors.read(path: path)
    file.metadata["format"] = "vae-dist-checkpoint/99"
    try SafeTensors.write(file, to: path)
    XCTAssertThrowsError(try store.newestComplete { _ in }) { error in
      XCTAssertTrue("\(error)".contains("vae-dist-checkpoint/99"), "\(error)")
      XCTAssertTrue("\(error)".contains("this vae-dist reads vae-dist-checkpoint/1"), "\(error)")
    }
  }

  func testNonFiniteValuesNeverReachACheckpoint() throws {
    let store = CheckpointStore(outputDirectory: directory, keep: 5)
    var p = values(0.5)
    p[77] = .nan
    XCTAssertThrowsError(
      try store.write(
        parameters: p, firstMoment: values(1), secondMoment: values(1), layout: layout, state: TrainingState(),
        configuration: TrainingConfiguration(), data: DataFingerprint(trainImages: 1, trainFileCRC32: 1))
    ) { XCTAssertTrue("\($0)".contains("NaN"), "\($0)") }
    XCTAssertEqual(store.candidates().count, 0)
  }

  /// --out as the trainer and the supervisor name it: DIR/ is DIR, and a last part . or .. is
  /// resolved (the folder may be moved aside, which the working directory cannot be).
  func testOutIsNamedWithoutTrailingSlashesAndWithDotsResolved() {
    func real(_ path: String) -> String {
      let resolved = realpath(path, nil)!
      defer { free(resolved) }
      return String(cString: resolved)
    }
    XCTAssertEqual(RunDirectory.folder("/tmp/run/"), "/tmp/run")
    XCTAssertEqual(RunDirectory.folder("run//"), "run")
    XCTAssertEqual(RunDirectory.folder("/"), "/")
    XCTAssertEqual(RunDirectory.folder("run"), "run")
    XCTAssertEqual(RunDirectory.folder("."), real("."))
    XCTAssertEqual(RunDirectory.folder("/tmp/./"), real("/tmp"))
    XCTAssertEqual(RunDirectory.folder("/tmp/.."), "/")
  }

  func testResumeConflictsNameTheFlags() {
    let saved = TrainingConfiguration()
    var asked = saved
    asked.epochs = 50
    asked.threads = 7
    XCTAssertEqual(asked.resumeConflicts(with: saved), [], "epochs and threads may change")
    asked.latentDim = 3
    asked.batchSize = 256
    let conflicts = asked.resumeConflicts(with: saved)
    XCTAssertEqual(conflicts, ["--latent-dim 3 (the checkpoint has 2)", "--batch-size 256 (the checkpoint has 128)"])
    // Each setting docs/checkpoints.md lists, one at a time.
    let one: [(String, (inout TrainingConfiguration) -> Void)] = [
      ("--micro-batch 8 (the checkpoint has 16)", { $0.microBatchSize = 8 }),
      ("--seed 9 (the checkpoint has 0)", { $0.seed = 9 }),
      ("--beta 0.5 (the checkpoint has 1.0)", { $0.beta = 0.5 }),
      ("--precision bf16 (the checkpoint has fp32)", { $0.precision = .bf16 }),
      ("--reduction fast (the checkpoint has deterministic)", { $0.reduction = .fast }),
      ("--lr 0.002 (the checkpoint has 0.001)", { $0.adam.learningRate = 0.002 }),
      ("--val-size 100 (the checkpoint has 0)", { $0.validationSize = 100 }),
      ("the learning-rate schedule", { $0.learningRateSchedule = { var s = LearningRateSchedule(); s.warmupSteps = 10; return s }() }),
    ]
    for (expected, change) in one {
      var asked = saved
      change(&asked)
      let found = asked.resumeConflicts(with: saved)
      XCTAssertEqual(found.count, 1, "\(expected): \(found)")
      XCTAssertTrue(found.first?.hasPrefix(expected) ?? false, "\(expected): \(found)")
    }
    // --epochs matters only to a cosine decay over the whole run (--lr-decay-steps 0).
    var cosine = saved
    cosine.learningRateSchedule = { var s = LearningRateSchedule(); s.shape = .cosine; return s }()
    var longer = cosine
    longer.epochs = 50
    XCTAssertEqual(longer.resumeConflicts(with: cosine), ["--epochs 50 (the checkpoint has 30)"])
    cosine.learningRateSchedule?.decaySteps = 20
    longer.learningRateSchedule?.decaySteps = 20
    XCTAssertEqual(longer.resumeConflicts(with: cosine), [])
    // A setting the schedule does not read (--lr-gamma of a constant rate: refused since, but a
    // checkpoint may have it) is no conflict; a setting it does read is.
    var gamma = saved
    gamma.learningRateSchedule = { var s = LearningRateSchedule(); s.gamma = 0.5; return s }()
    XCTAssertEqual(saved.resumeConflicts(with: gamma), [])
    XCTAssertEqual(gamma.problems(), ["--lr-gamma is read by --lr-schedule step only, and this run's is constant: drop it, or pass --lr-schedule step."])
    gamma.learningRateSchedule?.shape = .step
    gamma.learningRateSchedule?.stepEvery = 5
    var other = gamma
    other.learningRateSchedule?.gamma = 0.25
    XCTAssertEqual(other.resumeConflicts(with: gamma).count, 1)
  }
}

extension CheckpointStoreTests {
  /// A checkpoint whose configuration lacks settings added later still loads, with their defaults.
  func testOlderConfigurationWithoutNewerKeysLoads() throws {
    let store = CheckpointStore(outputDirectory: directory, keep: 5)
    var configuration = TrainingConfiguration()
    configuration.seed = 31
    let path = try write(store, step: 10, configuration: configuration)
    let optimizerPath = path + "/optimizer.safetensors"
    var file = try SafeTensors.read(path: optimizerPath)
    var stored = try JSONSerialization.jsonObject(with: Data(file.metadata["configuration"]!.utf8)) as! [String: Any]
    stored.removeValue(forKey: "iwSamples")
    stored.removeValue(forKey: "earlyStoppingMinDelta")
    file.metadata["configuration"] = String(decoding: try JSONSerialization.data(withJSONObject: stored), as: UTF8.self)
    file.metadata.removeValue(forKey: "metadata_crc32")  // nor had the checkpoints of those versions this
    try SafeTensors.write(file, to: optimizerPath)
    let loaded = try store.load(path)
    XCTAssertEqual(loaded.configuration.seed, 31)
    XCTAssertEqual(loaded.configuration.iwSamples, TrainingConfiguration().iwSamples)
  }
}
