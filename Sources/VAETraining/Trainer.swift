import Foundation
import VAECore
import VAEData
import VAEDistributed

public struct TrainingSummary: Sendable {
  public var steps: Int
  /// Rank zero's figures of the last epoch (nil on the other ranks).
  public var lastEpoch: EpochMetrics?
  public var modelPath: String?
  /// True when a signal stopped the run (a checkpoint was written; --resume continues it).
  public var stopped: Bool
}

/// How a run treats what --out already holds.
public enum RunStart: Sendable {
  /// A new run: refused if --out holds another run's results.
  case fresh
  /// A new run; an earlier run in --out is moved aside first.
  case overwrite
  /// Continue this run from its newest checkpoint in --out.
  case resume
}

/// Debug and test hooks. The library never reads the environment for them: the command line sets
/// them (Sources/vae-dist/Hooks.swift), and the tests pass their own.
public struct TrainerHooks: Sendable {
  /// Extra seconds in rank zero's epoch-end work (the stall-timeout tests: a root that is slow but alive).
  public var rootEpochEndDelay = 0.0
  /// Extra seconds in the last rank's data load (a rank on a slow file system: the others wait
  /// through it with the heartbeat, not into the stall timeout).
  public var lastRankLoadDelay = 0.0
  /// Where rank zero writes the step trace of the differential test (StepTrace.swift); nil: nowhere.
  public var traceDirectory: String?
  /// The steps after which the trace holds the whole state (0: the initial one).
  public var traceStates: Set<Int> = [0, 1, 9, 10]
  public init() {}
}

/// Data-parallel training of the VAE: the epoch loop around the step engine. Every rank runs the
/// same loop and reaches the same collectives (listed in VAEDistributed/Agreement.swift); rank zero
/// alone prints and writes files, inside `atRoot` (a `rootDecides`), so that whatever it decides or
/// fails at reaches every rank. Every rank shares the evaluation.
///
///   run = setUp → runEpoch … runEpoch → finish   (or a stop: a checkpoint, resumable)
public final class Trainer {
  public let configuration: TrainingConfiguration
  public let communicator: Communicator
  public let console: Console
  public let engine: StepEngine
  public let start: RunStart
  let hooks: TrainerHooks
  /// When the trainer was made (the data loaded, --out claimed): the closing line's clock.
  let createdAt = monotonicSeconds()
  var state = TrainingState()
  /// Rank zero's files; nil on the other ranks. Reached through `atRoot`, or `?.` for what rank
  /// zero writes between exchanges (the step log).
  let rootOutput: RunOutput?
  /// Rank zero's lock on --out, held while the trainer lives (RunLock.swift).
  let outputLock: RunLock?
  /// Every rank's: the evaluation passes are shared out over the ranks.
  let evaluator: Evaluator
  /// Rank zero's, when `hooks.traceDirectory` is set (StepTrace.swift).
  var trace: StepTrace?

  public var isRoot: Bool { communicator.rank == 0 }
  public var step: Int { state.step }
  var schedule: BatchSchedule { engine.data.schedule }

  /// Sets the run up on every rank: rank zero claims --out (or refuses), then every rank loads its
  /// shard of the data. An error on any rank ends every rank alike.
  public init(
    configuration c: TrainingConfiguration, communicator: Communicator, start: RunStart = .fresh, hooks: TrainerHooks = TrainerHooks()
  ) throws {
    configuration = c
    self.communicator = communicator
    self.start = start
    self.hooks = hooks
    console = Console(enabled: communicator.rank == 0, style: c.progress)
    var lock: RunLock?
    let fingerprint = try communicator.rootDecides("the output directory") { () -> DataFingerprint in
      try c.validate(ranks: communicator.size)
      let fingerprint = try dataFingerprint(c)
      let claim = try RunDirectory(path: c.outputDirectory).claim(
        configuration: c, data: fingerprint, resume: start == .resume, overwrite: start == .overwrite)
      lock = claim.lock
      if let moved = claim.movedTo { Console(enabled: true, style: .lines).line("--overwrite: moved the earlier run to \(moved)") }
      return fingerprint
    }
    outputLock = lock
    engine = try StepEngine(configuration: c, communicator: communicator, loadDelay: hooks.lastRankLoadDelay)
    rootOutput = communicator.rank == 0 ? RunOutput(configuration: c, console: console, data: fingerprint) : nil
    evaluator = Evaluator(latentDim: c.latentDim, seed: c.seed, threads: engine.workerThreads, workspaces: engine.workspaces)
  }

  /// The rate update `step` took (1: the first).
  func learningRate(ofStep step: Int) -> Double {
    configuration.learningRate(step: step, stepsPerEpoch: schedule.stepsPerEpoch)
  }

  var totalSteps: Int {
    let all = configuration.epochs * schedule.stepsPerEpoch
    return configuration.maxSteps.map { min($0, all) } ?? all
  }

  /// Rank zero's work on its files, in a `rootDecides`: every rank learns its result or its error.
  func atRoot<T: Codable>(_ phase: String, _ body: @escaping (RunOutput) throws -> T) throws -> T {
    try communicator.rootDecides(phase) { () -> T in
      guard let output = self.rootOutput else { preconditionFailure("rootDecides runs its body on rank zero only") }
      return try body(output)
    }
  }

  /// Trains to the end (or to --max-steps, early stopping, or a stop signal), checkpointing on the way.
  public func run() throws -> TrainingSummary {
    defer { outputLock?.release() }  // the run has ended, however it ended
    try setUp()
    var last: EpochMetrics?
    // A run resumed at an epoch's end after which early stopping stops (it had, and died in its
    // final work; or a patience given now that the epochs since the best exceed) finishes there.
    if step % schedule.stepsPerEpoch == 0, state.shouldStopEarly(patience: configuration.earlyStoppingPatience) {
      console.line(
        "early stopping at the checkpoint's step \(step): \(state.epochsWithoutImprovement) epochs without a validation "
          + "improvement; writing the final files")
      return try finish(last: nil)
    }
    while step < totalSteps {
      let (end, metrics) = try runEpoch()
      last = metrics ?? last
      switch end {
      case .next: continue
      case .stopEarly: return try finish(last: last)
      case .stopSignal(let epoch): return try stopOnSignal(epoch: epoch, last: last)
      }
    }
    return try finish(last: last)
  }

  /// The reports every rank gives, the resume, and rank zero's logs.
  func setUp() throws {
    let shards = try communicator.gather(engine.data.train.count, phase: "the shard size report")
    console.line("  shards     \(shards.map { grouped($0) }.joined(separator: " · ")) images per rank")
    if communicator.size > 1 {
      let hosts = try communicator.gather("\(communicator.hostName) (\(primaryIPv4Address() ?? "no IPv4"))", phase: "the host report")
      console.line("  hosts      " + hosts.enumerated().map { "rank \($0.offset) \($0.element)" }.joined(separator: " · "))
    }
    if start == .resume { try restoreNewestCheckpoint() }
    let resumedAt = start == .resume ? step : nil
    _ = try atRoot("opening the logs") { output -> Bool in
      // The checkpoint was accepted: now run.json may say whose run --out holds (RunDirectory.claim).
      if resumedAt != nil { try RunDirectory(path: self.configuration.outputDirectory).writeRecord(configuration: self.configuration, data: output.data) }
      try output.openLogs(resumedAt: resumedAt)
      if let directory = self.hooks.traceDirectory {
        self.trace = try StepTrace(
          directory: URL(fileURLWithPath: directory), states: self.hooks.traceStates, configuration: self.configuration,
          schedule: self.schedule, layout: self.engine.layout)
        if resumedAt == nil { self.trace?.recordState(after: 0, engine: self.engine) }
      }
      return true
    }
  }

  /// How an epoch ended: go on, stop early (the validation loss), or stop on a signal after the
  /// checkpoint of `epoch` epochs and `step` steps.
  enum EpochEnd {
    case next, stopEarly
    case stopSignal(epoch: Int)
  }

  /// The steps of the current epoch from where the run is, then its end (evaluation, rank zero's
  /// line, checkpoint and pictures). Returns rank zero's figures of the epoch (nil elsewhere, and
  /// when a signal stopped it half-way).
  func runEpoch() throws -> (EpochEnd, EpochMetrics?) {
    let c = configuration
    let epoch = step / schedule.stepsPerEpoch
    let orders = engine.orders(epoch: epoch)
    let started = monotonicSeconds() - state.epochSeconds
    var lastProgress = started
    var stopAtEpochEnd = false
    for stepInEpoch in (step % schedule.stepsPerEpoch)..<schedule.stepsPerEpoch where step < totalSteps {
      let stopRequested = try trainStep(epoch: epoch, stepInEpoch: stepInEpoch, orders: orders, epochStarted: started)
      let epochEnds = stepInEpoch + 1 == schedule.stepsPerEpoch
      if stopRequested {
        // At an epoch's last step the epoch is finished first (its line, its checkpoint), so a
        // resume starts the next epoch afresh; the run's last step goes on to the final work.
        guard epochEnds || step == totalSteps else { return (.stopSignal(epoch: epoch), nil) }
        stopAtEpochEnd = step < totalSteps
      }
      if c.checkpointEvery > 0, step % c.checkpointEvery == 0, !epochEnds, step < totalSteps {
        _ = try atRoot("the checkpoint at step \(step)") { try $0.writeCheckpoint(self.engine, state: self.state) }
      }
      reportProgress(epoch: epoch, done: stepInEpoch + 1, losses: state.epochLosses, start: started, last: &lastProgress)
    }
    // The epoch is over (or --max-steps was reached inside it).
    let seconds = monotonicSeconds() - started
    var metrics = EpochMetrics(
      epoch: epoch + 1, step: step, train: state.epochLosses, test: nil,
      imagesPerSecond: Double(state.epochLosses.count) / seconds, seconds: seconds, beta: c.beta, skippedSteps: state.skippedSteps)
    metrics.learningRate = learningRate(ofStep: step)
    if step % schedule.stepsPerEpoch == 0 { state.startEpoch() }
    try evaluate(&metrics)
    let decision = try atRoot("the end of epoch \(epoch + 1)") { output -> EpochDecision in
      try self.endEpoch(&metrics, output: output)
    }
    state = decision.state
    let figures = isRoot ? metrics : nil
    if decision.stopEarly {
      console.line(
        "early stopping after epoch \(epoch + 1): the validation loss has not improved by more than "
          + "\(shortNumber(c.earlyStoppingMinDelta)) for \(state.epochsWithoutImprovement) epochs; best "
          + "\(fixed(state.bestValidationLoss ?? .nan, 3)) at step \(state.bestStep ?? 0), kept in "
          + "\(c.outputDirectory)/checkpoints/best")
      return (.stopEarly, figures)
    }
    return (stopAtEpochEnd ? .stopSignal(epoch: epoch + 1) : .next, figures)
  }

  /// One synchronized step and its bookkeeping; returns whether some rank asked to stop in it.
  func trainStep(epoch: Int, stepInEpoch: Int, orders: [[Int]], epochStarted: Double) throws -> Bool {
    let stepStart = monotonicSeconds()
    let outcome = try engine.step(globalStep: step, stepInEpoch: stepInEpoch, orders: orders, stopFlag: StopSignal.requested)
    if !outcome.applied { try nonFiniteStep(outcome) }
    // The stop the ranks agreed on in this reduction is every rank's from here: the final work asks
    // the local flag, and a rank that never got the signal must skip what the others skip.
    if outcome.stopRequested { StopSignal.request() }
    state.step += 1
    trace?.recordStep(
      step, epoch: epoch, stepInEpoch: stepInEpoch, losses: outcome.losses, learningRate: learningRate(ofStep: step), engine: engine)
    let counted = outcome.applied ? outcome.losses : LossSums()
    state.epochLosses = state.epochLosses + counted
    state.epochSeconds = monotonicSeconds() - epochStarted
    rootOutput?.logStep(step, losses: counted, seconds: monotonicSeconds() - stepStart, learningRate: learningRate(ofStep: step))
    if configuration.syncCheckEvery > 0 && step % configuration.syncCheckEvery == 0 {
      try engine.checkParametersInSync(step: step)
    }
    return outcome.stopRequested
  }

  /// After the last step (or early stopping): the model file and pictures, the memory report, and the
  /// likelihood estimate, which every rank shares.
  func finish(last: EpochMetrics?) throws -> TrainingSummary {
    let memory = try communicator.gather(peakResidentKilobytes(), phase: "the memory report")
    let modelPath = try atRoot("the final files") { output -> String in
      try self.writeFinalFiles(output, memory: memory)
    }
    if let estimate = try estimateLikelihood() {
      _ = try atRoot("the estimate's record") { output -> Bool in
        try output.record(estimate.estimate, seconds: estimate.seconds, step: self.step)
        return true
      }
    }
    if !StopSignal.requested {  // a stop in the final work said what it skipped, and how to finish
      console.line(
      "done: step \(step) in \(grouped(Int(monotonicSeconds() - createdAt))) s; the run is in \(configuration.outputDirectory)/"
        + (configuration.tensorboardDirectory.map { " (curves: tensorboard --logdir \($0))" } ?? ""))
    }
    return TrainingSummary(steps: step, lastEpoch: last, modelPath: modelPath, stopped: false)
  }

  func stopOnSignal(epoch: Int, last: EpochMetrics?) throws -> TrainingSummary {
    let path = try atRoot("the checkpoint on a stop") { output -> String in
      let path = try output.writeCheckpoint(self.engine, state: self.state)
      try output.throwDeferredError()  // a failed log write since the last epoch end, after the checkpoint
      return path
    }
    console.line(
      "stopped by a signal after step \(step) (epoch \(epoch + 1), \(step % schedule.stepsPerEpoch) of its steps); "
        + "checkpoint \(path)\ncontinue with the same command and --resume (same --out)")
    return TrainingSummary(steps: step, lastEpoch: last, modelPath: nil, stopped: true)
  }
}
