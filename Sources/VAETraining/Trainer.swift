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

  public var isRoot: Bool { communicator.rank == 0 }
  public var trainImageCount: Int { trainImages.count }
  public var workerThreads: Int { min(configuration.threads, max(1, localStreams.count)) }

  public init(configuration: TrainingConfiguration, communicator: Communicator) throws {
    let c = configuration
    self.configuration = c
    self.communicator = communicator
    console = Console(enabled: communicator.rank == 0)
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
    var last: EpochMetrics?
    for epoch in 0..<c.epochs where step < totalSteps {
      let orders = localStreams.map { schedule.order(stream: $0, epoch: epoch) }
      var losses = LossSums()
      let start = monotonicNow()
      var lastProgress = start
      for stepInEpoch in 0..<schedule.stepsPerEpoch where step < totalSteps {
        losses = losses + (try trainStep(stepInEpoch: stepInEpoch, orders: orders))
        if c.syncCheckEvery > 0 && step % c.syncCheckEvery == 0 { try checkParametersInSync() }
        let now = monotonicNow()
        if console.isTerminal, now - lastProgress > 0.25 {
          lastProgress = now
          console.progress(progressText(epoch, stepInEpoch + 1, losses, now - start))
        } else if !console.isTerminal, (stepInEpoch + 1) % max(1, schedule.stepsPerEpoch / 4) == 0,
          stepInEpoch + 1 < schedule.stepsPerEpoch
        {
          console.line(progressText(epoch, stepInEpoch + 1, losses, now - start))
        }
      }
      let seconds = monotonicNow() - start
      let test = testImages.map { evaluate($0, purpose: .evaluationNoise) }
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
          fillNoise(workspace, fileIndices: batch, purpose: .trainingNoise, step: globalStep)
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

  /// ε for each image, keyed by (seed, step, image index): the same whichever rank or thread draws it.
  func fillNoise(
    _ workspace: VAEWorkspace<Float>, fileIndices: some Collection<Int>, purpose: RandomPurpose, step: Int
  ) {
    let d = configuration.latentDim
    for (row, index) in fileIndices.enumerated() {
      var random = CounterRandomStream(seed: configuration.seed, purpose: purpose, UInt64(step), UInt64(index))
      random.fillStandardNormal(UnsafeMutableBufferPointer(start: workspace.noise.pointer + row * d, count: d))
    }
  }

  // MARK: - Evaluation (rank zero)

  /// The loss parts over every image of `store`, z sampled as in training (noise keyed by the image,
  /// the same every epoch) or z = μ. Micro-batch sums are added in a fixed order.
  public func evaluate(_ store: ImageStore, purpose: RandomPurpose, useMean: Bool = false) -> LossSums {
    let indices = store.images.fileIndices
    let size = configuration.microBatchSize
    let chunks = (indices.count + size - 1) / size
    var sums = [LossSums](repeating: LossSums(), count: chunks)
    let views = ParameterViews(layout: layout, base: parameters.pointer)
    let threads = workspaces.count
    sums.withUnsafeMutableBufferPointer { sums in
      DispatchQueue.concurrentPerform(iterations: threads) { worker in
        let workspace = workspaces[worker]
        for chunk in stride(from: worker, to: chunks, by: threads) {
          let batch = indices[(chunk * size)..<min(indices.count, (chunk + 1) * size)]
          store.fill(workspace.input.pointer, fileIndices: batch)
          fillNoise(workspace, fileIndices: batch, purpose: purpose, step: 0)
          sums[chunk] = model.forward(views, batch: batch.count, workspace: workspace, useMean: useMean)
        }
      }
    }
    return sums.reduce(LossSums(), +)
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
    let tensors = layout.tensors.map { spec in
      SafeTensors.Tensor(
        name: spec.name, shape: spec.shape,
        values: Array(UnsafeBufferPointer(start: parameters.pointer + spec.offset, count: spec.count)))
    }
    return SafeTensors.File(
      metadata: [
        "format": "pt", "producer": "vae-dist", "latent_dim": "\(layout.latentDim)", "step": "\(step)",
        "seed": "\(configuration.seed)",
      ], tensors: tensors)
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
