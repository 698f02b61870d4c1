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

  let model: VAEModel<Float>
  let gradient, firstMoment, secondMoment: ScalarBuffer<Float>
  let trainImages: ImageStore
  let testImages: ImageStore?
  let workspaces: [VAEWorkspace<Float>]
  let microGradients: [ScalarBuffer<Float>]
  let microGradientPointers: [UnsafeMutablePointer<Float>]
  var microLosses: [LossSums]
  let reducer: GradientReducer
  let evaluator: Evaluator

  public var isRoot: Bool { communicator.rank == 0 }
  public var trainImageCount: Int { trainImages.count }
  public var workerThreads: Int { min(configuration.threads, max(1, localStreams.count)) }

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
    let trainCount = try FashionMNIST.imageCount(directory: c.dataDirectory, split: .train)
    guard trainCount >= microBatches else {
      throw TrainingError.configuration(
        "the training set has \(trainCount) images, fewer than the \(microBatches) micro-batches of one step")
    }
    schedule = BatchSchedule(
      examples: Array(0..<trainCount), batchSize: c.batchSize, microBatchSize: c.microBatchSize, seed: c.seed)
    localStreams = schedule.streamRange(rank: communicator.rank, of: communicator.size)
    let shard = schedule.examples(inStreams: localStreams)
    trainImages = ImageStore(try FashionMNIST.load(directory: c.dataDirectory, split: .train, keep: shard.contains))
    testImages =
      communicator.rank == 0 && c.evaluateEveryEpoch
      ? ImageStore(try FashionMNIST.load(directory: c.dataDirectory, split: .test)) : nil

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
    evaluator = Evaluator(latentDim: c.latentDim, seed: c.seed, threads: threads, workspaces: workspaces)
  }

  var totalSteps: Int {
    let all = configuration.epochs * schedule.stepsPerEpoch
    return configuration.maxSteps.map { min($0, all) } ?? all
  }

  public func run() throws -> TrainingSummary {
    let c = configuration
    let metricsPath = c.outputDirectory + "/metrics.jsonl"
    if isRoot {
      try prepareOutputDirectory()
      try? FileManager.default.removeItem(atPath: metricsPath)
    }
    let shards = try gatherPerRank(trainImageCount, phase: "the shard size report")
    console.line("  shards     \(shards.map { grouped($0) }.joined(separator: " · ")) images per rank")
    var last: EpochMetrics?
    for epoch in 0..<c.epochs where step < totalSteps {
      let orders = localStreams.map { schedule.order(stream: $0, epoch: epoch) }
      var losses = LossSums()
      let start = monotonicNow()
      var lastProgress = start
      for stepInEpoch in 0..<schedule.stepsPerEpoch where step < totalSteps {
        losses = losses + (try trainStep(stepInEpoch: stepInEpoch, orders: orders))
        if c.syncCheckEvery > 0 && step % c.syncCheckEvery == 0 { try checkParametersInSync() }
        let now = monotonicNow(), done = stepInEpoch + 1, quarter = max(1, schedule.stepsPerEpoch / 4)
        if console.style == .bar, now - lastProgress > 0.25 {
          lastProgress = now
          console.progress(progressText(epoch, done, losses, now - start))
        } else if console.style == .lines, done % quarter == 0, done < 4 * quarter {
          console.line(progressText(epoch, done, losses, now - start))
        }
      }
      let seconds = monotonicNow() - start
      let test = testImages.map { evaluator.loss(parameters: parameters.pointer, images: $0) }
      let metrics = EpochMetrics(
        epoch: epoch + 1, step: step, train: losses, test: test,
        imagesPerSecond: Double(losses.count) / seconds, seconds: seconds, beta: c.beta)
      last = metrics
      if isRoot {
        console.line(epochLine(metrics))
        try AtomicFile.appendLine(metrics.json, to: metricsPath)
      }
    }
    var modelPath: String?
    if isRoot {
      modelPath = c.outputDirectory + "/model.safetensors"
      try SafeTensors.write(parametersFile(), to: modelPath!)
      console.line("wrote \(modelPath!) (\(grouped(layout.totalCount)) parameters, step \(step))")
    }
    let memory = try gatherPerRank(peakResidentKilobytes(), phase: "the memory report")
    console.line("peak resident memory per rank: \(memory.map { "\(fixed(Double($0) / 1024, 1)) MiB" }.joined(separator: " · "))")
    return TrainingSummary(steps: step, lastEpoch: last, modelPath: modelPath)
  }

  // MARK: - One synchronized step

  /// Gradients of this rank's micro-batches on the worker threads, the reduction over all ranks,
  /// then the same Adam update on every rank.
  func trainStep(stepInEpoch: Int, orders: [[Int]]) throws -> LossSums {
    let c = configuration
    let threads = workspaces.count
    let views = ParameterViews(layout: layout, base: parameters.pointer)
    let globalStep = step
    microLosses.withUnsafeMutableBufferPointer { losses in
      DispatchQueue.concurrentPerform(iterations: threads) { worker in
        let workspace = workspaces[worker]
        for j in stride(from: worker, to: losses.count, by: threads) {
          let batch = schedule.microBatch(order: orders[j], step: stepInEpoch)
          guard !batch.isEmpty else {
            losses[j] = LossSums()
            microGradients[j].zero()
            continue
          }
          trainImages.fill(workspace.input.pointer, fileIndices: batch)
          fillNoise(
            workspace.noise.pointer, latentDim: c.latentDim, seed: c.seed, purpose: .trainingNoise,
            step: globalStep, fileIndices: batch)
          losses[j] = model.forward(views, batch: batch.count, workspace: workspace)
          model.backward(
            views, gradients: ParameterViews(layout: layout, base: microGradientPointers[j]),
            batch: batch.count, beta: Float(c.beta), workspace: workspace)
        }
      }
    }
    let reduced = try reducer.reduce(
      gradients: microGradientPointers, losses: microLosses, into: gradient.pointer,
      communicator: communicator, phase: "the gradient allreduce of step \(globalStep + 1)")
    guard reduced.isFinite else { throw TrainingError.nonFinite(step: globalStep + 1, what: "the loss or its gradient") }
    // The loss is the mean over the batch's images; the reduced gradient is of their sum.
    let count = Float(reduced.losses.count)
    for i in 0..<layout.totalCount { gradient.pointer[i] /= count }
    adamUpdate(
      parameters: parameters.pointer, gradients: gradient.pointer, firstMoment: firstMoment.pointer,
      secondMoment: secondMoment.pointer, count: layout.totalCount, step: globalStep + 1,
      configuration: c.adam)
    step += 1
    return reduced.losses
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
    if let test = m.test {
      text += "  test \(fixed(test.meanLoss(beta: m.beta), 2)) (recon \(fixed(test.meanReconstruction, 2)), kl \(fixed(test.meanKL, 2)))"
    }
    return text + "  \(grouped(Int(m.imagesPerSecond))) img/s  \(fixed(m.seconds, 1)) s"
  }
}

func monotonicNow() -> Double {
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
