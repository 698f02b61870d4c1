import Foundation
import VAECore
import VAEData
import VAEDistributed
import VAEFiles
import VAETraining
import XCTest

/// Whole trainers, two to four at once on the in-process communicator (each rank a thread), on
/// small synthetic data: the protocol between ranks, stops, resumes, early stopping and failures,
/// in seconds and without the binary.
final class TrainerTests: XCTestCase {
  /// `Fixtures.smallRun` for 3 epochs (or `steps`), writing into `out`.
  func configuration(_ out: String, steps: Int? = nil) -> TrainingConfiguration {
    var c = Fixtures.smallRun()
    c.epochs = 3
    c.maxSteps = steps
    c.outputDirectory = out
    c.progress = .none
    c.checkpointEvery = 5
    c.iwSamples = 0
    return c
  }

  /// A new directory for this test's files, removed when the test ends if it passed, with the
  /// `.previous-N` copies a run without --resume moves an earlier run's files to.
  func temporaryDirectory() -> String {
    let name = "vae-dist-trainer-" + UUID().uuidString, path = NSTemporaryDirectory() + name
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    addTeardownBlock { [unowned self] in
      guard self.testRun?.totalFailureCount == 0 else { return }
      for entry in (try? FileManager.default.contentsOfDirectory(atPath: NSTemporaryDirectory())) ?? []
      where entry == name || entry.hasPrefix(name + ".previous-") {
        try? FileManager.default.removeItem(atPath: NSTemporaryDirectory() + entry)
      }
    }
    return path
  }

  struct RankResult {
    var parameters: [Float]?
    var summary: TrainingSummary?
    var failure: RunFailure?
    var seconds: Double
  }

  /// Trains on `ranks` in-process ranks; every rank's outcome.
  func train(_ c: TrainingConfiguration, ranks: Int, start: RunStart = .fresh, onStep: (() -> Void)? = nil) -> [RankResult] {
    InProcessGroup(size: ranks).run { communicator in
      let began = monotonicSeconds()
      do {
        let trainer = try Trainer(configuration: c, communicator: communicator, start: start)
        let summary = try trainer.run()
        let p = trainer.engine.parameters
        return RankResult(
          parameters: Array(UnsafeBufferPointer(start: p.pointer, count: p.count)), summary: summary, failure: nil,
          seconds: monotonicSeconds() - began)
      } catch {
        return RankResult(parameters: nil, summary: nil, failure: error as? RunFailure, seconds: monotonicSeconds() - began)
      }
    }
  }

  func bits(_ values: [Float]?) -> [UInt32] { (values ?? []).map(\.bitPattern) }

  /// Every layout of ranks × threads ends on the bits of one rank with one thread, also where the
  /// streams do not split evenly over ranks or threads and where a step has empty micro-batches: 514
  /// images make streams of 129, 129, 128 and 128, so step 17, the epoch's last, holds 1, 1, 0 and 0
  /// images (ranks 2 and 3 of 4 have nothing to do in it). Which thread runs which micro-batch must
  /// not change the bits. Under a sanitizer, 66 images: streams of 17, 17, 16 and 16, so step 3, the
  /// epoch's last, holds 1, 1, 0 and 0 images, and 6 steps (under a third of the work) reach
  /// the same uneven step and go on into the next epoch.
  func testEveryLayoutEndsOnTheSameBits() throws {
    let (images, epochSteps) = Fixtures.underSanitizer ? (66, 3) : (514, 17)
    func uneven(_ out: String) -> TrainingConfiguration {
      var c = configuration(out, steps: epochSteps + 3)
      c.syntheticTrainImages = images
      return c
    }
    let c = uneven("")
    let schedule = BatchSchedule(examples: Array(0..<images), batchSize: c.batchSize, microBatchSize: c.microBatchSize, seed: c.seed)
    XCTAssertEqual(schedule.stepsPerEpoch, epochSteps)
    XCTAssertEqual(
      (0..<4).map { schedule.microBatch(order: schedule.order(stream: $0, epoch: 0), step: epochSteps - 1).count }, [1, 1, 0, 0])
    let reference = train(uneven(temporaryDirectory()), ranks: 1)
    XCTAssertNotNil(reference[0].parameters)
    let layouts = [(1, 2), (1, 3), (1, 4), (2, 1), (2, 2), (3, 1), (3, 2), (4, 1)]
    for (ranks, threads) in Fixtures.underSanitizer ? [(1, 3), (2, 2), (4, 1)] : layouts {
      var c = uneven(temporaryDirectory())
      c.threads = threads
      for (rank, result) in train(c, ranks: ranks).enumerated() {
        let layout = "rank \(rank) of \(ranks) × \(threads) threads"
        XCTAssertNil(result.failure, "\(layout): \(result.failure?.message ?? "")")
        XCTAssertEqual(bits(result.parameters), bits(reference[0].parameters), layout)
      }
    }
  }

  /// --reduction fast sums floats in the order of the rank's micro-batches, then in MPI's: the same
  /// bits for any thread count on one rank count, the same parameters on every rank, and close to
  /// the deterministic reduction's (exact sums rounded once) after 20 steps. (5 under a sanitizer,
  /// where a step is 2 to 8 times slower: a race or a bad index shows in any step.)
  func testFastReductionAgreesAcrossThreadsAndRanks() throws {
    let steps = Fixtures.underSanitizer ? 5 : 20
    func fast(threads: Int) -> TrainingConfiguration {
      var c = configuration(temporaryDirectory(), steps: steps)
      c.reduction = .fast
      c.threads = threads
      return c
    }
    let reference = try XCTUnwrap(train(fast(threads: 1), ranks: 1)[0].parameters)
    XCTAssertEqual(bits(train(fast(threads: 3), ranks: 1)[0].parameters), bits(reference), "1 rank × 3 threads")
    for ranks in Fixtures.underThreadSanitizer ? [2] : [2, 4] {
      let results = train(fast(threads: 1), ranks: ranks)
      for (rank, result) in results.enumerated() {
        XCTAssertNil(result.failure, "rank \(rank) of \(ranks): \(result.failure?.message ?? "")")
        XCTAssertEqual(bits(result.parameters), bits(results[0].parameters), "rank \(rank) of \(ranks) agrees with rank 0")
      }
      // Threads do not change a rank's float sums: it adds its micro-batches in their order.
      if ranks == 2 {
        for (rank, result) in train(fast(threads: 2), ranks: 2).enumerated() {
          XCTAssertEqual(bits(result.parameters), bits(results[0].parameters), "rank \(rank) of 2 × 2 threads against 2 × 1")
        }
      }
    }
    // Observed 1.8e-7 (a float's rounding, carried by 20 Adam steps); a lost or doubled micro-batch
    // moves parameters by about the learning rate, 1e-3.
    if Fixtures.underThreadSanitizer { return }  // one rank, one thread: nothing shared to check
    let exact = try XCTUnwrap(train(configuration(temporaryDirectory(), steps: steps), ranks: 1)[0].parameters)
    let difference = zip(reference, exact).map { abs($0 - $1) }.max()!
    print("fast against deterministic after \(steps) steps: largest difference \(difference)")
    XCTAssertLessThan(difference, 1e-5)
  }

  /// Stopped by a signal after a few steps on 2 ranks, resumed on 4: the bits of an uninterrupted run.
  func testStopThenResumeOnOtherRankCountLosesNothing() throws {
    let expected = train(configuration(temporaryDirectory(), steps: 24), ranks: 1)[0].parameters
    let out = temporaryDirectory()
    StopSignal.request()
    let stopped = train(configuration(out, steps: 24), ranks: 2)
    StopSignal.clear()
    for result in stopped {
      XCTAssertEqual(result.summary?.stopped, true)
      XCTAssertEqual(result.summary?.steps, 1, "every rank stops after the step in which the stop was asked for")
    }
    XCTAssertTrue(FileManager.default.fileExists(atPath: out + "/checkpoints/step-00000001/model.safetensors"))
    let resumed = train(configuration(out, steps: 24), ranks: 4, start: .resume)
    for result in resumed {
      XCTAssertNil(result.failure, result.failure?.message ?? "")
      XCTAssertEqual(bits(result.parameters), bits(expected))
    }
    let lines = try String(contentsOfFile: out + "/metrics.jsonl", encoding: .utf8).split(separator: "\n")
    XCTAssertEqual(lines.count, 2, "epochs 1 and 2 (of 16 and 8 steps), each logged once")
  }

  /// A stop at an epoch's last step: the epoch is logged and closed first, so the resumed run's
  /// metrics.jsonl is the uninterrupted run's (found by launch/chaos.sh: the epoch's line was lost
  /// and its sums carried into the next epoch).
  func testStopAtAnEpochsLastStepLogsThatEpoch() throws {
    func oneStepEpochs(_ out: String) -> TrainingConfiguration {
      var c = configuration(out, steps: 3)
      c.syntheticTrainImages = 32  // one step an epoch
      return c
    }
    let reference = temporaryDirectory()
    XCTAssertNil(train(oneStepEpochs(reference), ranks: 1)[0].failure)
    let out = temporaryDirectory()
    StopSignal.request()
    let stopped = train(oneStepEpochs(out), ranks: 2)
    StopSignal.clear()
    XCTAssertEqual(stopped[0].summary?.stopped, true)
    XCTAssertNil(train(oneStepEpochs(out), ranks: 2, start: .resume)[0].failure)
    func lines(_ directory: String) throws -> [String] {
      try String(contentsOfFile: directory + "/metrics.jsonl", encoding: .utf8).split(separator: "\n").map {
        $0.replacingOccurrences(of: #""(images_per_sec|seconds)":[0-9.e+-]+,"#, with: "", options: .regularExpression)
      }
    }
    XCTAssertEqual(try lines(out), try lines(reference))
    XCTAssertEqual(try lines(out).count, 3)
  }

  /// A run that early stopping ends after its second epoch: nothing counts as an improvement after
  /// the first. Epochs of 14 steps (448 training images), 4 (128) under a sanitizer.
  let stoppingEpochSteps = Fixtures.underSanitizer ? 4 : 14
  func earlyStopping(_ out: String) -> TrainingConfiguration {
    var c = configuration(out)
    c.syntheticTrainImages = 64 + 32 * stoppingEpochSteps
    c.validationSize = 64
    c.earlyStoppingPatience = 1
    c.earlyStoppingMinDelta = 1e9
    return c
  }

  func testEarlyStoppingEndsEveryRankAtTheSameEpoch() throws {
    let c = earlyStopping(temporaryDirectory())
    let results = train(c, ranks: 3)
    for result in results {
      XCTAssertNil(result.failure, result.failure?.message ?? "")
      XCTAssertEqual(result.summary?.steps, 2 * stoppingEpochSteps, "two epochs at batch 32")
    }
    XCTAssertEqual(bits(results[1].parameters), bits(results[0].parameters))
    XCTAssertTrue(FileManager.default.fileExists(atPath: c.outputDirectory + "/checkpoints/best/model.safetensors"))
  }

  /// A run that early stopping ended and that died before its final files (here: the model file
  /// removed) finishes on --resume without training another epoch: the same step and bits.
  func testAnEarlyStoppedRunResumesToItsEndNotAnotherEpoch() throws {
    let c = earlyStopping(temporaryDirectory())
    let first = train(c, ranks: 2)
    XCTAssertEqual(first[0].summary?.steps, 2 * stoppingEpochSteps)
    try FileManager.default.removeItem(atPath: c.outputDirectory + "/model.safetensors")
    let resumed = train(c, ranks: 2, start: .resume)
    XCTAssertNil(resumed[0].failure, resumed[0].failure?.message ?? "")
    XCTAssertEqual(resumed[0].summary?.steps, 2 * stoppingEpochSteps, "the resume trained on after early stopping")
    XCTAssertEqual(bits(resumed[0].parameters), bits(first[0].parameters))
    XCTAssertTrue(FileManager.default.fileExists(atPath: c.outputDirectory + "/model.safetensors"))
  }

  /// Early stopping counts whole epochs: a run that --max-steps ends half-way through epoch 2 records
  /// no validation for it, so the resumed run's early stopping (and its bits) are the uninterrupted
  /// run's.
  func testARunEndedInsideAnEpochRecordsNoValidation() throws {
    let c = earlyStopping(temporaryDirectory())
    let whole = train(c, ranks: 1)
    XCTAssertEqual(whole[0].summary?.steps, 2 * stoppingEpochSteps)
    var cut = c
    cut.outputDirectory = temporaryDirectory()
    cut.maxSteps = stoppingEpochSteps + stoppingEpochSteps / 2
    XCTAssertEqual(train(cut, ranks: 1)[0].summary?.steps, cut.maxSteps)
    let state = try XCTUnwrap(try CheckpointStore(outputDirectory: cut.outputDirectory, keep: 1).newestComplete { _ in }).state
    XCTAssertEqual(state.step, cut.maxSteps)
    XCTAssertEqual(state.bestStep, stoppingEpochSteps)
    XCTAssertEqual(state.epochsWithoutImprovement, 0, "half an epoch was counted as one without improvement")
    cut.maxSteps = nil
    let resumed = train(cut, ranks: 1, start: .resume)
    XCTAssertEqual(resumed[0].summary?.steps, 2 * stoppingEpochSteps)
    XCTAssertEqual(bits(resumed[0].parameters), bits(whole[0].parameters))
  }

  /// The gradient buffers' bound, either side of it: 512 micro-batches of 134,165 floats on one rank
  /// are 275 MB, refused with 512 MB of memory and accepted with 600 MB; two ranks on two hosts halve
  /// it, two ranks on one host do not.
  func testABatchWhoseGradientBuffersCannotFitIsRefused() throws {
    var c = Fixtures.smallRun()
    c.batchSize = 512
    c.microBatchSize = 1
    let megabyte = 1_000_000.0
    XCTAssertThrowsError(try c.validate(ranks: 1, physicalMemory: 512 * megabyte, ranksOnHost: 1)) { error in
      XCTAssertTrue("\(error)".contains("puts 512 micro-batches on each of 1 rank,"), "\(error)")
    }
    XCTAssertNoThrow(try c.validate(ranks: 1, physicalMemory: 600 * megabyte, ranksOnHost: 1))
    XCTAssertNoThrow(try c.validate(ranks: 2, physicalMemory: 300 * megabyte, ranksOnHost: 1))
    XCTAssertThrowsError(try c.validate(ranks: 2, physicalMemory: 300 * megabyte, ranksOnHost: 2))
  }

  /// The workspaces count too: one micro-batch of 65,536 images is about 35 GB of activations for
  /// one worker thread (a few hundred KB of gradients), refused instead of killed at start-up.
  func testAMicroBatchWhoseActivationsCannotFitIsRefused() throws {
    var c = Fixtures.smallRun()
    c.batchSize = 65536
    c.microBatchSize = 65536
    c.threads = 1
    let perImage = VAEWorkspace<Float>.bytes(capacity: 16, latentDim: c.latentDim) / 16
    print("workspace bytes per image: \(perImage)")
    XCTAssertThrowsError(try c.validate(ranks: 1, physicalMemory: 24 * 1_073_741_824, ranksOnHost: 1)) { error in
      XCTAssertTrue("\(error)".contains("1 worker thread's activations (3"), "\(error)")
      XCTAssertTrue("\(error)".contains("Use a smaller --micro-batch or fewer --threads"), "\(error)")
    }
    c.microBatchSize = 256
    XCTAssertNoThrow(try c.validate(ranks: 1, physicalMemory: 24 * 1_073_741_824, ranksOnHost: 1))
    c.threads = 256  // 256 workspaces of 256 images
    XCTAssertThrowsError(try c.validate(ranks: 1, physicalMemory: 24 * 1_073_741_824, ranksOnHost: 1))
  }

  /// `VAEWorkspace.bytes` (what the memory check counts) is what a workspace holds: every buffer it
  /// has, found by reflection, so a buffer added to the workspace and not to the count fails here.
  func testTheWorkspaceByteCountIsItsBuffers() {
    for capacity in [1, 16, 17] {
      let workspace = VAEWorkspace<Float>(capacity: capacity, latentDim: 2)
      var bytes = 2 * capacity * MemoryLayout<Double>.stride  // the per-image loss parts
      for child in Mirror(reflecting: workspace).children {
        if let buffer = child.value as? ScalarBuffer<Float> { bytes += buffer.count * MemoryLayout<Float>.stride }
      }
      XCTAssertEqual(VAEWorkspace<Float>.bytes(capacity: capacity, latentDim: 2), bytes, "capacity \(capacity)")
    }
  }

  /// The run's own stop (an agreed one, a failed log write) leaves a user's first signal a first
  /// one, a clean stop: it used to set the signal's flag, so that signal exited the process at once
  /// (status 130), half-way through the stop's checkpoint.
  func testTheRunsOwnStopLeavesTheFirstSignalAFirstSignal() {
    StopSignal.install()
    defer {
      for number in [SIGINT, SIGTERM, SIGUSR1, SIGXFSZ] { signal(number, SIG_DFL) }
      StopSignal.clear()
    }
    StopSignal.request()
    raise(SIGUSR1)  // exits this process with 130 if the run's stop counted as a signal
    XCTAssertTrue(StopSignal.requested)
  }

  /// --check-sync: ranks whose parameters differ (rank 1's perturbed here before the first step) end
  /// together at the first check, with the internal-error kind and the step in the message. Without
  /// this test, a check that never fires would pass every other one: healthy ranks never differ.
  func testCheckSyncEndsEveryRankWhenTheirParametersDiffer() {
    var checked = configuration(temporaryDirectory(), steps: 6)
    checked.syncCheckEvery = 2
    let c = checked
    let failures = InProcessGroup(size: 2).run { communicator -> (kind: FailureKind, message: String)? in
      do {
        let trainer = try Trainer(configuration: c, communicator: communicator)
        if communicator.rank == 1 { trainer.engine.parameters.pointer[7] += 1e-3 }
        _ = try trainer.run()
        return nil
      } catch {
        return ((error as? ClassifiedError)?.failureKind ?? .internalError, "\(error)")
      }
    }
    for (rank, failure) in failures.enumerated() {
      XCTAssertEqual(failure?.kind, .internalError, "rank \(rank): \(failure?.message ?? "no failure")")
      XCTAssertTrue(failure?.message.contains("different parameters at step 2") ?? false, failure?.message ?? "")
    }
  }

  /// An error only rank zero can see (--out under a regular file) ends every rank at once, with the
  /// same agreed failure: no rank waits for a stall timeout.
  func testRankZeroOnlyErrorEndsEveryRankPromptly() throws {
    let file = temporaryDirectory() + "/a-file"
    _ = FileManager.default.createFile(atPath: file, contents: Data("x".utf8))
    let results = train(configuration(file + "/run", steps: 5), ranks: 4)
    for (rank, result) in results.enumerated() {
      XCTAssertEqual(result.failure?.kind, .output, "rank \(rank)")
      XCTAssertEqual(result.failure?.agreed, true)
      XCTAssertTrue(result.failure?.message.contains("is a file, not a directory") ?? false, result.failure?.message ?? "")
      XCTAssertLessThan(result.seconds, 2)
    }
  }

  /// Ranks that read different data (here: one rank's training file holds 16 more images) all refuse
  /// together, with one message and the data error's status, instead of training apart or calling
  /// different collectives.
  func testRanksWithDifferentDataRefuseTogether() throws {
    let c = configuration(temporaryDirectory() + "/run", steps: 2)
    let results = InProcessGroup(size: 3).run { communicator -> RunFailure? in
      var c = c
      if communicator.rank == 1 { c.syntheticTrainImages += 16 }
      do {
        _ = try Trainer(configuration: c, communicator: communicator).run()
        return nil
      } catch {
        return error as? RunFailure
      }
    }
    for (rank, failure) in results.enumerated() {
      XCTAssertEqual(failure?.kind, .data, "rank \(rank)")
      XCTAssertEqual(failure?.agreed, true, "rank \(rank)")
      XCTAssertTrue(
        failure?.message.contains("the synthetic training set has image count 512 on some ranks and 528 on others") ?? false,
        failure?.message ?? "rank \(rank) trained")
    }
  }

  /// A non-finite step: every rank ends with the same failure; the last good state is a checkpoint
  /// that resumes.
  func testNonFiniteStepEndsEveryRankAndKeepsTheLastGoodState() throws {
    let out = temporaryDirectory()
    var c = configuration(out, steps: 10)
    c.adam.learningRate = 1e9
    let results = train(c, ranks: 2)
    let failures = results.compactMap(\.failure)
    XCTAssertEqual(failures.count, 2)
    XCTAssertEqual(Set(failures.map(\.kind)), [.nonFinite])
    XCTAssertEqual(Set(failures.map(\.message)).count, 1)
    let message = failures[0].message
    let step = Int(message.components(separatedBy: "at step ")[1].prefix { $0.isNumber })!
    print("non-finite: \(message)")
    let kept = out + "/checkpoints/" + "step-" + String(repeating: "0", count: 8 - String(step - 1).count) + String(step - 1)
    XCTAssertTrue(message.contains(kept), message)
    XCTAssertTrue(FileManager.default.fileExists(atPath: kept + "/optimizer.safetensors"))
    let resumed = train(c, ranks: 1, start: .resume)
    XCTAssertEqual(resumed[0].failure?.kind, .nonFinite, "the same settings diverge at the same step again")
    XCTAssertTrue(resumed[0].failure?.message.contains("at step \(step)") ?? false)
  }

  /// A second run into a used --out is refused; --overwrite moves the first aside; each resumes its own.
  func testUsedOutputIsRefusedOverwrittenOrResumedByItsOwnRunOnly() throws {
    let out = temporaryDirectory() + "/run"
    var first = configuration(out, steps: 12)
    first.seed = 1
    XCTAssertNil(train(first, ranks: 2)[0].failure)
    var second = configuration(out, steps: 7)
    second.seed = 2
    let refused = train(second, ranks: 2)
    XCTAssertEqual(refused.map { $0.failure?.kind }, [.refused, .refused])
    XCTAssertTrue(refused[0].failure?.message.contains("--overwrite") ?? false)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out + "/checkpoints").sorted(),
                   ["step-00000005", "step-00000010", "step-00000012"], "the first run's checkpoints are untouched")
    XCTAssertNil(train(second, ranks: 2, start: .overwrite)[0].failure)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out + ".previous-1/checkpoints").count, 3)
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: out + "/checkpoints").sorted(), ["step-00000005", "step-00000007"])
    // Each run resumes its own checkpoints, and only its own.
    second.maxSteps = 9
    XCTAssertNil(train(second, ranks: 1, start: .resume)[0].failure)
    first.maxSteps = 14
    first.outputDirectory = out + ".previous-1"
    XCTAssertNil(train(first, ranks: 1, start: .resume)[0].failure)
    first.outputDirectory = out
    XCTAssertEqual(train(first, ranks: 1, start: .resume)[0].failure?.kind, .refused)
  }

  /// A resume that the checkpoint refuses (run.json lost, another seed) leaves no run.json behind:
  /// it wrote its own, and the right resume was then refused as "a different run".
  func testARefusedResumeDoesNotRewriteRunJSON() throws {
    let out = temporaryDirectory()
    var right = configuration(out, steps: 5)
    right.seed = 1
    XCTAssertNil(train(right, ranks: 1)[0].failure)
    try FileManager.default.removeItem(atPath: out + "/run.json")
    var wrong = right
    wrong.seed = 7
    wrong.maxSteps = 7
    XCTAssertEqual(train(wrong, ranks: 1, start: .resume)[0].failure?.kind, .refused)
    XCTAssertFalse(FileManager.default.fileExists(atPath: out + "/run.json"), "the refused resume wrote run.json")
    right.maxSteps = 7
    let resumed = train(right, ranks: 1, start: .resume)
    XCTAssertNil(resumed[0].failure, resumed[0].failure?.message ?? "")
    let record = try String(contentsOfFile: out + "/run.json", encoding: .utf8)
    XCTAssertTrue(record.contains("\"seed\" : 1"), record)
  }

  /// Checkpoints another run left in the directory are neither pruned nor resumed.
  func testForeignCheckpointsAreNeverPruned() throws {
    let out = temporaryDirectory()
    var other = configuration(out, steps: 5)
    other.seed = 99
    XCTAssertNil(train(other, ranks: 1)[0].failure)
    try FileManager.default.moveItem(atPath: out + "/checkpoints/step-00000005", toPath: out + "/checkpoints/step-00000900")
    try FileManager.default.removeItem(atPath: out + "/model.safetensors")
    try FileManager.default.removeItem(atPath: out + "/run.json")
    // The directory holds checkpoints: a new run is refused, so use resume's path by hand: a run that
    // owns the directory but finds a foreign checkpoint newest.
    var mine = configuration(out, steps: 20)
    mine.keepCheckpoints = 1
    XCTAssertEqual(train(mine, ranks: 1)[0].failure?.kind, .refused)
    XCTAssertNil(train(mine, ranks: 1, start: .overwrite)[0].failure)
    try FileManager.default.moveItem(
      atPath: out + ".previous-1/checkpoints/step-00000900", toPath: out + "/checkpoints/step-00000900")
    mine.maxSteps = 30
    let resumed = train(mine, ranks: 2, start: .resume)
    XCTAssertNil(resumed[0].failure, resumed[0].failure?.message ?? "")
    let names = try FileManager.default.contentsOfDirectory(atPath: out + "/checkpoints").sorted()
    XCTAssertTrue(names.contains("step-00000900"), "\(names)")
    XCTAssertTrue(names.contains("step-00000030"), "\(names)")
  }
}

final class JSONRecordTests: XCTestCase {
  /// A diverged run's figures are null in JSON, never `nan`, and every line parses.
  func testNonFiniteNumbersAreNull() throws {
    var metrics = EpochMetrics(
      epoch: 1, step: 3, train: LossSums(reconstruction: .nan, kl: .infinity, count: 4), test: nil,
      imagesPerSecond: 10, seconds: 1, beta: 1)
    metrics.validation = LossSums(reconstruction: 1, kl: 2, count: 1)
    let object = try JSONSerialization.jsonObject(with: Data(metrics.json.utf8)) as! [String: Any]
    XCTAssertTrue(object["train_loss"] is NSNull)
    XCTAssertTrue(object["test_loss"] is NSNull)
    XCTAssertEqual(object["val_loss"] as? Double, 3)
    let report = EvaluationReport(
      sampled: LossSums(reconstruction: .nan, kl: 1, count: 2), mean: LossSums(reconstruction: 2, kl: 2, count: 2), estimate: nil)
    let line = JSONLine.encode(report)
    XCTAssertFalse(line.contains("nan"), line)
    let parsed = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
    XCTAssertTrue(parsed["test_loss"] is NSNull)
    XCTAssertEqual(parsed["test_loss_mean_z"] as? Double, 2)
  }
}
