import CounterRNG
import Dispatch
import Foundation
import VAECore
import VAEData
import VAEDistributed

public enum TrainingError: Error, CustomStringConvertible {
  /// A setting that cannot work; every rank finds the same, so only rank zero reports it.
  case configuration(String)
  case nonFinite(step: Int, what: String)
  case parametersDiverged(step: Int)

  public var description: String {
    switch self {
    case .configuration(let message): return message
    case .nonFinite(let step, let what):
      return "\(what) became NaN or infinite at step \(step); the step was not applied. "
        + "Lower --lr or check the input data."
    case .parametersDiverged(let step):
      return "ranks hold different parameters at step \(step): the synchronized step is broken. "
        + "This is a bug in vae-dist; please report it with the command line."
    }
  }
}

public struct TrainingSummary: Sendable {
  public var steps: Int
  public var lastEpoch: EpochMetrics?
  public var modelPath: String?
  /// True when a signal stopped the run (a checkpoint was written; --resume continues it).
  public var stopped: Bool
}

/// Data-parallel training of the VAE: every rank computes the gradients of its micro-batches on
/// worker threads, the gradients are summed over all ranks, and every rank applies the same Adam
/// step, so all ranks hold identical parameters. Rank zero alone prints, evaluates and writes files.
public final class Trainer {
  public let configuration: TrainingConfiguration
  public let communicator: Communicator
  public let console: Console
  public let layout: ParameterLayout
  public let schedule: BatchSchedule
  public let localStreams: Range<Int>
  public let parameters: ScalarBuffer<Float>
  public private(set) var step = 0
  /// Where the steps' time went (see PhaseTimes); the benchmark resets it after its warm-up.
  public var phases = PhaseTimes()
  /// Per worker thread: seconds in data, forward, backward during the current step.
  let workerSeconds: UnsafeMutablePointer<Double>
  var state = TrainingState()
  let checkpoints: CheckpointStore
  var cachedFingerprint: DataFingerprint?

  let model: VAEModel<Float>
  let gradient, firstMoment, secondMoment: ScalarBuffer<Float>
  let trainImages: ImageStore
  let testImages: ImageStore?
  let validationImages: ImageStore?
  let workspaces: [VAEWorkspace<Float>]
  let microGradients: [ScalarBuffer<Float>]
  let microGradientPointers: [UnsafeMutablePointer<Float>]
  var microLosses: [LossSums]
  let reducer: GradientReducer
  let evaluator: Evaluator

  public var isRoot: Bool { communicator.rank == 0 }
  public var trainImageCount: Int { trainImages.count }
  public var workerThreads: Int { min(configuration.threads, max(1, localStreams.count)) }

  deinit { workerSeconds.deallocate() }

  public init(configuration: TrainingConfiguration, communicator: Communicator) throws {
    let c = configuration
    self.configuration = c
    self.communicator = communicator
    console = Console(enabled: communicator.rank == 0, style: c.progress)
    guard c.batchSize % c.microBatchSize == 0 else {
      throw TrainingError.configuration(
        "--batch-size \(c.batchSize) is not a multiple of --micro-batch \(c.microBatchSize)")
    }
    let microBatches = c.batchSize / c.microBatchSize
    guard microBatches >= communicator.size else {
      throw TrainingError.configuration(
        "--batch-size \(c.batchSize) makes \(microBatches) micro-batches of \(c.microBatchSize), fewer than the "
          + "\(communicator.size) ranks: every rank needs at least one. Use a larger --batch-size, a smaller "
          + "--micro-batch, or fewer ranks.")
    }
    let fileCount = c.syntheticData ? 60_000 : try FashionMNIST.imageCount(directory: c.dataDirectory, split: .train)
    guard c.validationSize < fileCount else {
      throw TrainingError.configuration(
        "--val-size \(c.validationSize) leaves no training images (the training file holds \(fileCount))")
    }
    // The validation images are a seeded choice from the training file, held out of training.
    var pool = Array(0..<fileCount)
    var random = CounterRandomStream(seed: c.seed, purpose: .validationSplit)
    if c.validationSize > 0 { random.shuffle(&pool) }
    let validation = Set(pool.suffix(c.validationSize))
    let examples = c.validationSize > 0 ? pool.dropLast(c.validationSize).sorted() : pool
    guard examples.count >= microBatches else {
      throw TrainingError.configuration(
        "the training set has \(examples.count) images, fewer than the \(microBatches) micro-batches of one step")
    }
    schedule = BatchSchedule(
      examples: examples, batchSize: c.batchSize, microBatchSize: c.microBatchSize, seed: c.seed)
    localStreams = schedule.streamRange(rank: communicator.rank, of: communicator.size)
    let shard = schedule.examples(inStreams: localStreams)
    trainImages = ImageStore(
      c.syntheticData
        ? syntheticImages(fileIndices: shard.sorted(), fileCount: fileCount, seed: c.seed)
        : try FashionMNIST.load(directory: c.dataDirectory, split: .train, keep: shard.contains))
    testImages =
      communicator.rank == 0 && !c.syntheticData
      ? ImageStore(try FashionMNIST.load(directory: c.dataDirectory, split: .test)) : nil
    validationImages =
      communicator.rank == 0 && !validation.isEmpty && !c.syntheticData
      ? ImageStore(try FashionMNIST.load(directory: c.dataDirectory, split: .train, keep: validation.contains)) : nil

    model = VAEModel(latentDim: c.latentDim)
    layout = model.layout
    parameters = ScalarBuffer(count: layout.totalCount)
    gradient = ScalarBuffer(count: layout.totalCount)
    firstMoment = ScalarBuffer(count: layout.totalCount)
    secondMoment = ScalarBuffer(count: layout.totalCount)
    glorotUniformInitialize(parameters.pointer, layout: layout, seed: c.seed)
    let threads = min(c.threads, max(1, localStreams.count))
    workspaces = (0..<threads).map { _ in VAEWorkspace(capacity: c.microBatchSize, latentDim: c.latentDim) }
    let parameterCount = layout.totalCount
    microGradients = localStreams.map { _ in ScalarBuffer(count: parameterCount) }
    microGradientPointers = microGradients.map(\.pointer)
    microLosses = [LossSums](repeating: LossSums(), count: localStreams.count)
    reducer = GradientReducer(layout: layout, mode: c.reduction, totalMicroBatches: microBatches)
    checkpoints = CheckpointStore(outputDirectory: c.outputDirectory, keep: c.keepCheckpoints)
    workerSeconds = .allocate(capacity: threads * 3)
    workerSeconds.initialize(repeating: 0, count: threads * 3)
    evaluator = Evaluator(latentDim: c.latentDim, seed: c.seed, threads: threads, workspaces: workspaces)
  }

  var totalSteps: Int {
    let all = configuration.epochs * schedule.stepsPerEpoch
    return configuration.maxSteps.map { min($0, all) } ?? all
  }

  /// Trains to the end (or to --max-steps, or until a stop signal), checkpointing on the way.
  /// With `resume`, continues from the newest complete checkpoint in the output directory.
  public func run(resume: Bool = false) throws -> TrainingSummary {
    let c = configuration
    if isRoot { try prepareOutputDirectory() }
    let shards = try gatherPerRank(trainImageCount, phase: "the shard size report")
    console.line("  shards     \(shards.map { grouped($0) }.joined(separator: " · ")) images per rank")
    if communicator.size > 1 {
      let hosts = try gatherTextPerRank("\(communicator.hostName) (\(primaryIPv4Address() ?? "no IPv4"))", phase: "the host report")
      console.line("  hosts      " + hosts.enumerated().map { "rank \($0.offset) \($0.element)" }.joined(separator: " · "))
    }
    if resume {
      try restoreNewestCheckpoint()
    } else if isRoot {
      try? FileManager.default.removeItem(atPath: metricsPath)
    }

    var last: EpochMetrics?
    while step < totalSteps {
      let epoch = step / schedule.stepsPerEpoch
      let orders = localStreams.map { schedule.order(stream: $0, epoch: epoch) }
      var losses = LossSums(reconstruction: state.epochReconstruction, kl: state.epochKL, count: state.epochImages)
      let start = monotonicNow() - state.epochSeconds
      var lastProgress = start
      var stopRequested = false
      for stepInEpoch in (step % schedule.stepsPerEpoch)..<schedule.stepsPerEpoch where step < totalSteps {
        let result = try trainStep(stepInEpoch: stepInEpoch, orders: orders)
        losses = losses + result.losses
        state.epochReconstruction = losses.reconstruction
        state.epochKL = losses.kl
        state.epochImages = losses.count
        state.epochSeconds = monotonicNow() - start
        if c.syncCheckEvery > 0 && step % c.syncCheckEvery == 0 { try checkParametersInSync() }
        if result.stopRequested {
          stopRequested = true
          break
        }
        let epochEnds = stepInEpoch + 1 == schedule.stepsPerEpoch
        if c.checkpointEvery > 0, step % c.checkpointEvery == 0, !epochEnds, step < totalSteps {
          try writeCheckpoint()
        }
        reportProgress(epoch: epoch, done: stepInEpoch + 1, losses: losses, start: start, last: &lastProgress)
      }
      if stopRequested {
        let path = try writeCheckpoint()
        console.line(
          "stopped by a signal after step \(step) (epoch \(epoch + 1), \(step % schedule.stepsPerEpoch) of its steps); "
            + "checkpoint \(path ?? "")\ncontinue with the same command and --resume (same --out)")
        return TrainingSummary(steps: step, lastEpoch: last, modelPath: nil, stopped: true)
      }
      // The epoch is over (or --max-steps was reached inside it). Rank zero evaluates.
      let seconds = monotonicNow() - start
      var metrics = EpochMetrics(
        epoch: epoch + 1, step: step, train: losses, test: nil,
        imagesPerSecond: Double(losses.count) / seconds, seconds: seconds, beta: c.beta,
        skippedSteps: state.skippedSteps)
      if let testImages {
        metrics.test = evaluator.loss(parameters: parameters, images: testImages)
        metrics.testMeanZ = evaluator.loss(parameters: parameters, images: testImages, useMean: true)
      }
      if let validationImages {
        let validation = evaluator.loss(parameters: parameters, images: validationImages)
        metrics.validation = validation
        metrics.isBest = state.recordValidation(validation.meanLoss(beta: c.beta), step: step, minDelta: c.earlyStoppingMinDelta)
      }
      last = metrics
      if isRoot {
        console.line(epochLine(metrics))
        try AtomicFile.appendLine(metrics.json, to: metricsPath)
      }
      if step % schedule.stepsPerEpoch == 0 {
        state.epochReconstruction = 0
        state.epochKL = 0
        state.epochImages = 0
        state.epochSeconds = 0
      }
      try writeCheckpoint()
      if metrics.isBest == true { try writeCheckpoint(name: "best") }
      if c.plotEvery > 0, (epoch + 1) % c.plotEvery == 0, step < totalSteps { try writePictures() }
      if try earlyStoppingSaysStop() {
        console.line(
          "early stopping after epoch \(epoch + 1): the validation loss has not improved by more than "
            + "\(c.earlyStoppingMinDelta) for \(state.epochsWithoutImprovement) epochs; best "
            + "\(fixed(state.bestValidationLoss ?? .nan, 3)) at step \(state.bestStep ?? 0), kept in "
            + "\(checkpoints.directory)/best")
        break
      }
    }
    // The last collective of the run. What follows is rank zero's alone and may take minutes (the
    // likelihood estimate): no rank may be left waiting for it in a collective, where the stall
    // timeout would end the job; the others go on to MPI_Finalize.
    let memory = try gatherPerRank(peakResidentKilobytes(), phase: "the memory report")
    var modelPath: String?
    if isRoot {
      modelPath = c.outputDirectory + "/model.safetensors"
      try SafeTensors.write(parametersFile(), to: modelPath!)
      console.line("wrote \(modelPath!) (\(grouped(layout.totalCount)) parameters, step \(step))")
      console.line("peak resident memory per rank during training: \(memory.map { "\(fixed(Double($0) / 1024, 1)) MiB" }.joined(separator: " · "))")
      try writePictures()
      try estimateLikelihood()
    }
    return TrainingSummary(steps: step, lastEpoch: last, modelPath: modelPath, stopped: false)
  }

  var metricsPath: String { configuration.outputDirectory + "/metrics.jsonl" }

  func reportProgress(epoch: Int, done: Int, losses: LossSums, start: Double, last: inout Double) {
    let now = monotonicNow(), quarter = max(1, schedule.stepsPerEpoch / 4)
    if console.style == .bar, now - last > 0.25 {
      last = now
      console.progress(progressText(epoch, done, losses, now - start))
    } else if console.style == .lines, done % quarter == 0, done < 4 * quarter {
      console.line(progressText(epoch, done, losses, now - start))
    }
  }

  // MARK: - One synchronized step

  struct StepResult {
    var losses: LossSums
    var stopRequested: Bool
  }

  /// Gradients of this rank's micro-batches on the worker threads, the reduction over all ranks,
  /// then the same Adam update on every rank. A stop signal on any rank is agreed on in the same
  /// reduction, so every rank finishes this step and stops after it.
  func trainStep(stepInEpoch: Int, orders: [[Int]]) throws -> StepResult {
    let c = configuration
    let threads = workspaces.count
    let views = ParameterViews(layout: layout, base: parameters.pointer)
    let globalStep = step
    let seconds = workerSeconds
    seconds.update(repeating: 0, count: threads * 3)
    let regionStart = monotonicNow()
    microLosses.withUnsafeMutableBufferPointer { losses in
      DispatchQueue.concurrentPerform(iterations: threads) { worker in
        let workspace = workspaces[worker]
        let times = seconds + worker * 3
        for j in stride(from: worker, to: losses.count, by: threads) {
          let batch = schedule.microBatch(order: orders[j], step: stepInEpoch)
          guard !batch.isEmpty else {
            losses[j] = LossSums()
            microGradients[j].zero()
            continue
          }
          let t0 = monotonicNow()
          trainImages.fill(workspace.input.pointer, fileIndices: batch)
          fillNoise(
            workspace.noise.pointer, latentDim: c.latentDim, seed: c.seed, purpose: .trainingNoise,
            step: globalStep, fileIndices: batch)
          let t1 = monotonicNow()
          losses[j] = model.forward(views, batch: batch.count, workspace: workspace)
          let t2 = monotonicNow()
          model.backward(
            views, gradients: ParameterViews(layout: layout, base: microGradientPointers[j]),
            batch: batch.count, beta: Float(c.beta), workspace: workspace)
          let t3 = monotonicNow()
          times[0] += t1 - t0
          times[1] += t2 - t1
          times[2] += t3 - t2
        }
      }
    }
    let regionSeconds = monotonicNow() - regionStart
    var threadSeconds = (0.0, 0.0, 0.0)
    for worker in 0..<threads {
      threadSeconds.0 += seconds[worker * 3]
      threadSeconds.1 += seconds[worker * 3 + 1]
      threadSeconds.2 += seconds[worker * 3 + 2]
    }
    let busy = max(threadSeconds.0 + threadSeconds.1 + threadSeconds.2, 1e-12)
    phases.data += regionSeconds * threadSeconds.0 / busy
    phases.forward += regionSeconds * threadSeconds.1 / busy
    phases.backward += regionSeconds * threadSeconds.2 / busy

    let reductionStart = monotonicNow(), waitedBefore = communicator.waitingSeconds
    let reduced = try reducer.reduce(
      gradients: microGradientPointers, losses: microLosses, flag: StopSignal.requested, into: gradient.pointer,
      communicator: communicator, phase: "the gradient allreduce of step \(globalStep + 1)")
    let waited = communicator.waitingSeconds - waitedBefore
    phases.waiting += waited
    phases.reduction += monotonicNow() - reductionStart - waited
    phases.steps += 1
    phases.images += reduced.losses.count
    step += 1
    state.step = step
    guard reduced.isFinite else {
      // Every rank sees the same verdict, so every rank skips or stops alike.
      guard c.skipNonFinite else {
        throw TrainingError.nonFinite(step: globalStep + 1, what: "the loss or its gradient")
      }
      state.skippedSteps += 1
      console.line("step \(globalStep + 1): the loss or its gradient is not finite; step skipped (\(state.skippedSteps) so far)")
      return StepResult(losses: LossSums(), stopRequested: reduced.anyFlag)
    }
    // The loss is the mean over the batch's images; the reduced gradient is of their sum.
    let optimizerStart = monotonicNow()
    let count = Float(reduced.losses.count)
    for i in 0..<layout.totalCount { gradient.pointer[i] /= count }
    adamUpdate(
      parameters: parameters.pointer, gradients: gradient.pointer, firstMoment: firstMoment.pointer,
      secondMoment: secondMoment.pointer, count: layout.totalCount, step: globalStep + 1,
      configuration: c.adam)
    phases.optimizer += monotonicNow() - optimizerStart
    return StepResult(losses: reduced.losses, stopRequested: reduced.anyFlag)
  }

  // MARK: - Early stopping, pictures and the final estimate (rank zero)

  /// Rank zero decides; every rank learns the decision from it.
  func earlyStoppingSaysStop() throws -> Bool {
    guard configuration.earlyStoppingPatience != nil else { return false }
    var decision: [Int64] = [isRoot && state.shouldStopEarly(patience: configuration.earlyStoppingPatience) ? 1 : 0]
    try decision.withUnsafeMutableBytes { try communicator.broadcast($0, root: 0, phase: "the early-stopping decision") }
    return decision[0] == 1
  }

  func writePictures() throws {
    guard isRoot, let testImages else { return }
    let pictures = Pictures(parameters: parameters, latentDim: configuration.latentDim, seed: configuration.seed)
    let directory = configuration.outputDirectory + "/images"
    let paths = try pictures.writeAll(into: directory, test: testImages, metricsPath: metricsPath)
    console.line("wrote \(paths.count) pictures into \(directory)/ at step \(step)")
  }

  /// The importance-weighted test log-likelihood beside the ELBO, printed and kept in
  /// DIR/evaluation.json.
  func estimateLikelihood() throws {
    let k = configuration.iwSamples
    guard isRoot, k > 0, let testImages else { return }
    let started = monotonicNow()
    var lastReport = started
    let estimate = evaluator.importanceWeighted(parameters: parameters, images: testImages, samples: k) { done, total in
      let now = monotonicNow()
      guard self.console.style == .bar, now - lastReport > 0.5 else { return }
      lastReport = now
      self.console.progress("importance-weighted log-likelihood, k = \(k): \(done)/\(total) test images")
    }
    console.line(
      "test set: ELBO \(fixed(estimate.elbo, 3)), importance-weighted log-likelihood (k = \(k)) "
        + "\(fixed(estimate.logLikelihood, 3)) nats per image (\(fixed(monotonicNow() - started, 1)) s)")
    func number(_ value: Double) -> String { value.isFinite ? "\(value)" : "null" }
    let json = "{\"step\":\(step),\"images\":\(estimate.images),\"iw_samples\":\(k),\"test_elbo\":\(number(estimate.elbo)),"
      + "\"test_log_likelihood_iw\":\(number(estimate.logLikelihood))}\n"
    try AtomicFile.write(Array(json.utf8), to: configuration.outputDirectory + "/evaluation.json")
  }

  // MARK: - Checkpoints

  /// Rank zero writes a checkpoint of the current state; returns its path there.
  @discardableResult
  func writeCheckpoint(name: String? = nil) throws -> String? {
    guard isRoot else { return nil }
    return try checkpoints.write(
      parameters: parameters.pointer, firstMoment: firstMoment.pointer, secondMoment: secondMoment.pointer,
      layout: layout, state: state, configuration: configuration, data: try dataFingerprint(), name: name)
  }

  /// Rank zero finds the newest complete checkpoint, checks that it belongs to this run, and sends
  /// its state to every rank; a refusal is reported by rank zero and ends every rank alike.
  func restoreNewestCheckpoint() throws {
    var header = [Int64](repeating: 0, count: 2)  // [0 ok / 1 refused, length of the text]
    var text: [UInt8] = []
    var checkpoint: Checkpoint?
    if isRoot {
      do {
        checkpoint = try findResumableCheckpoint()
        text = Array(String(decoding: try JSONEncoder().encode(checkpoint!.state), as: UTF8.self).utf8)
      } catch {
        header[0] = 1
        text = Array("\(error)".utf8)
      }
      header[1] = Int64(text.count)
    }
    try header.withUnsafeMutableBytes { try communicator.broadcast($0, root: 0, phase: "the resume decision") }
    if !isRoot { text = [UInt8](repeating: 0, count: Int(header[1])) }
    try text.withUnsafeMutableBytes { try communicator.broadcast($0, root: 0, phase: "the resume decision") }
    guard header[0] == 0 else { throw TrainingError.configuration(String(decoding: text, as: UTF8.self)) }
    state = try JSONDecoder().decode(TrainingState.self, from: Data(text))
    step = state.step
    if let checkpoint {
      parameters.pointer.update(from: checkpoint.parameters, count: layout.totalCount)
      firstMoment.pointer.update(from: checkpoint.firstMoment, count: layout.totalCount)
      secondMoment.pointer.update(from: checkpoint.secondMoment, count: layout.totalCount)
    }
    for buffer in [parameters, firstMoment, secondMoment] {
      try communicator.broadcast(
        UnsafeMutableRawBufferPointer(start: buffer.pointer, count: layout.totalCount * 4), root: 0,
        phase: "the resume broadcast of the checkpoint")
    }
    if isRoot {
      console.line("  resumed    \(checkpoint!.path) at step \(step) (epoch \(step / schedule.stepsPerEpoch + 1))")
      try trimMetrics(afterStep: step)
    }
  }

  func findResumableCheckpoint() throws -> Checkpoint {
    guard
      let checkpoint = try checkpoints.newestComplete(warn: { self.console.line("warning: \($0)") })
    else {
      throw TrainingError.configuration(
        "--resume: no complete checkpoint in \(checkpoints.directory); run without --resume to start afresh")
    }
    let conflicts = configuration.resumeConflicts(with: checkpoint.configuration)
    guard conflicts.isEmpty else {
      throw TrainingError.configuration(
        "--resume: \(checkpoint.path) belongs to a different run: this one asks for "
          + conflicts.joined(separator: ", ") + ". Use the checkpoint's settings or a new --out.")
    }
    let data = try dataFingerprint()
    guard checkpoint.data == data else {
      throw TrainingError.configuration(
        "--resume: \(checkpoint.path) was trained on different data (\(checkpoint.data.trainImages) training images, "
          + "CRC-32 \(checkpoint.data.trainFileCRC32)) than --data \(configuration.dataDirectory) holds "
          + "(\(data.trainImages), CRC-32 \(data.trainFileCRC32)).")
    }
    return checkpoint
  }

  /// Keeps the lines of metrics.jsonl for the epochs the checkpoint completed: the resumed run logs
  /// the epoch in progress (and any logged after the checkpoint, before a crash) again.
  func trimMetrics(afterStep step: Int) throws {
    guard let text = try? String(contentsOfFile: metricsPath, encoding: .utf8) else { return }
    let completedEpochs = step / schedule.stepsPerEpoch
    let kept = text.split(separator: "\n").filter { line in
      guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
        let epoch = object["epoch"] as? Int, let lineStep = object["step"] as? Int
      else { return false }
      return epoch <= completedEpochs && lineStep <= step
    }
    try AtomicFile.write(Array(kept.map { $0 + "\n" }.joined().utf8), to: metricsPath)
  }

  func dataFingerprint() throws -> DataFingerprint {
    if let cachedFingerprint { return cachedFingerprint }
    let path = try FashionMNIST.files(in: configuration.dataDirectory, split: .train).images
    let fingerprint = DataFingerprint(trainImages: schedule.exampleCount, trainFileCRC32: try fileCRC32(path))
    cachedFingerprint = fingerprint
    return fingerprint
  }

  // MARK: - Consistency

  /// Fails loudly if any two ranks hold different parameters (a 64-bit FNV-1a hash, min vs max).
  func checkParametersInSync() throws {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    UnsafeRawBufferPointer(start: parameters.pointer, count: layout.totalCount * 4).forEach {
      hash = (hash ^ UInt64($0)) &* 0x0000_0100_0000_01b3
    }
    var range = [Int64(bitPattern: hash), -Int64(bitPattern: hash)]
    try range.withUnsafeMutableBufferPointer {
      try communicator.allreduce($0, .max, phase: "the parameter check at step \(step)")
    }
    if range[0] != -range[1] { throw TrainingError.parametersDiverged(step: step) }
  }

  /// Every rank's value of `value`, in rank order, on every rank.
  func gatherPerRank(_ value: Int, phase: String) throws -> [Int] {
    var values = [Int64](repeating: 0, count: communicator.size)
    values[communicator.rank] = Int64(value)
    try values.withUnsafeMutableBufferPointer { try communicator.allreduce($0, .sum, phase: phase) }
    return values.map(Int.init)
  }

  /// Every rank's short text (up to 63 bytes), in rank order, on every rank.
  func gatherTextPerRank(_ text: String, phase: String) throws -> [String] {
    let width = 64
    var bytes = [Int64](repeating: 0, count: communicator.size * width)
    for (i, byte) in text.utf8.prefix(width - 1).enumerated() { bytes[communicator.rank * width + i] = Int64(byte) }
    try bytes.withUnsafeMutableBufferPointer { try communicator.allreduce($0, .sum, phase: phase) }
    return (0..<communicator.size).map { rank in
      String(decoding: bytes[(rank * width)..<((rank + 1) * width)].prefix { $0 != 0 }.map { UInt8($0) }, as: UTF8.self)
    }
  }

  // MARK: - Files and text

  func prepareOutputDirectory() throws {
    let path = configuration.outputDirectory
    do {
      try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    } catch {
      throw TrainingError.configuration("--out \(path): cannot create the output directory (\(error.localizedDescription))")
    }
    guard access(path, W_OK) == 0 else {
      throw TrainingError.configuration("--out \(path): the output directory is not writable")
    }
  }

  public func parametersFile() -> SafeTensors.File {
    return SafeTensors.File(
      metadata: [
        "format": "pt", "producer": "vae-dist", "latent_dim": "\(layout.latentDim)", "step": "\(step)",
        "seed": "\(configuration.seed)",
      ], tensors: ModelFile.tensors(parameters.pointer, layout: layout))
  }

  func progressText(_ epoch: Int, _ stepInEpoch: Int, _ losses: LossSums, _ seconds: Double) -> String {
    let width = 24
    let filled = width * stepInEpoch / schedule.stepsPerEpoch
    let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
    return "epoch \(epoch + 1)/\(configuration.epochs) [\(bar)] \(stepInEpoch)/\(schedule.stepsPerEpoch)"
      + "  loss \(fixed(losses.meanLoss(beta: configuration.beta), 2))"
      + "  \(grouped(Int(Double(losses.count) / max(seconds, 1e-9)))) img/s"
  }

  func epochLine(_ m: EpochMetrics) -> String {
    var text = "epoch \(m.epoch)/\(configuration.epochs)  step \(m.step)  train \(fixed(m.train.meanLoss(beta: m.beta), 2))"
      + " (recon \(fixed(m.train.meanReconstruction, 2)), kl \(fixed(m.train.meanKL, 2)))"
    if let validation = m.validation {
      text += "  val \(fixed(validation.meanLoss(beta: m.beta), 2))\(m.isBest == true ? "*" : "")"
    }
    if let test = m.test {
      text += "  test \(fixed(test.meanLoss(beta: m.beta), 2)) (recon \(fixed(test.meanReconstruction, 2)), kl \(fixed(test.meanKL, 2)))"
    }
    if let meanZ = m.testMeanZ { text += " z=μ \(fixed(meanZ.meanLoss(beta: m.beta), 2))" }
    return text + "  \(grouped(Int(m.imagesPerSecond))) img/s  \(fixed(m.seconds, 1)) s"
  }
}

public func monotonicNow() -> Double {
  var now = timespec()
  clock_gettime(CLOCK_MONOTONIC, &now)
  return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
}

extension Trainer {
  /// The configuration banner rank zero prints before training.
  public func printBanner() {
    let c = configuration
    let microBatches = schedule.streamCount
    console.line("vae-dist: convolutional VAE on Fashion-MNIST")
    console.line("  mode       \(communicator.modeDescription), \(workerThreads) worker thread\(workerThreads == 1 ? "" : "s") per rank, BLAS OpenBLAS (\(blasCoreName()))")
    console.line("  data       \(c.dataDirectory): \(grouped(schedule.exampleCount)) training images; this rank holds \(grouped(trainImageCount)) (streams \(localStreams.lowerBound)..<\(localStreams.upperBound) of \(microBatches))")
    console.line("  model      latent size \(c.latentDim), \(grouped(layout.totalCount)) parameters, β \(c.beta)")
    console.line("  training   \(c.epochs) epochs × \(schedule.stepsPerEpoch) steps\(c.maxSteps.map { " (stopping after \($0) steps)" } ?? ""), batch \(c.batchSize) = \(microBatches) micro-batches of \(c.microBatchSize), Adam lr \(c.adam.learningRate), seed \(c.seed)")
    console.line("  reduction  \(c.reduction.rawValue)")
    console.line("  output     \(c.outputDirectory)/")
  }
}

/// The process's peak resident set size (VmHWM) in KiB, or 0 where /proc is not available.
public func peakResidentKilobytes() -> Int {
  guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
  for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
    return Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") ?? 0
  }
  return 0
}

/// The first IPv4 address of this host that is not loopback (what other hosts reach it by).
public func primaryIPv4Address() -> String? {
  var list: UnsafeMutablePointer<ifaddrs>?
  guard getifaddrs(&list) == 0, let first = list else { return nil }
  defer { freeifaddrs(list) }
  var entry: UnsafeMutablePointer<ifaddrs>? = first
  while let current = entry {
    defer { entry = current.pointee.ifa_next }
    guard let address = current.pointee.ifa_addr, address.pointee.sa_family == UInt16(AF_INET) else { continue }
    var buffer = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
    let text: String? = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { ipv4 in
      var raw = ipv4.pointee.sin_addr
      guard inet_ntop(AF_INET, &raw, &buffer, socklen_t(buffer.count)) != nil else { return nil }
      return String(cString: buffer)
    }
    if let text, !text.hasPrefix("127.") { return text }
  }
  return nil
}
