import Dispatch
import VAECore
import VAEData
import VAEDistributed

#if canImport(Glibc)
  import Glibc
#endif

/// One synchronized optimizer step, shared by `train` and `bench`: the gradients of this rank's
/// micro-batches on the worker threads, their sum over every rank, and the same Adam update on every
/// rank. Owns the flat buffers of the run (llm.c style): parameters, the summed gradient, the two Adam
/// moments, one gradient buffer per local micro-batch, and one workspace per thread.
public final class StepEngine {
  public let configuration: TrainingConfiguration
  public let communicator: Communicator
  public let data: TrainingData
  public let model: VAEModel<Float>
  public var layout: ParameterLayout { model.layout }
  public let parameters, gradient, firstMoment, secondMoment: ScalarBuffer<Float>
  /// Where the steps' time went; the benchmark resets it after its warm-up.
  public var phases = PhaseTimes()

  package let workspaces: [VAEWorkspace<Float>]
  let microGradients: [ScalarBuffer<Float>]
  package let microGradientPointers: [UnsafeMutablePointer<Float>]
  var microLosses: [LossSums]
  let reducer: GradientReducer
  /// Per local micro-batch, its gradient's `pieceMaxima` (deterministic reduction only), found by the
  /// thread that computed the gradient.
  let microMaxima: [ScalarBuffer<Float>]
  let microMaximaPointers: [UnsafeMutablePointer<Float>]?
  /// Per worker thread: seconds in data, forward, backward and the reduction's scan of the gradients
  /// (`pieceMaxima`) during the current step.
  let dataSeconds, forwardSeconds, backwardSeconds, scanSeconds: UnsafeMutablePointer<Double>

  public var workerThreads: Int { workspaces.count }
  package var schedule: BatchSchedule { data.schedule }

  public init(configuration c: TrainingConfiguration, communicator: Communicator, data: TrainingData) {
    configuration = c
    self.communicator = communicator
    self.data = data
    (c.precision ?? .fp32).select()
    model = VAEModel(latentDim: c.latentDim)
    let count = model.layout.totalCount
    parameters = ScalarBuffer(count: count)
    gradient = ScalarBuffer(count: count)
    firstMoment = ScalarBuffer(count: count)
    secondMoment = ScalarBuffer(count: count)
    glorotUniformInitialize(parameters.pointer, layout: model.layout, seed: c.seed)
    let threads = min(c.threads, max(1, data.localStreams.count))
    workspaces = (0..<threads).map { _ in VAEWorkspace(capacity: c.microBatchSize, latentDim: c.latentDim) }
    microGradients = data.localStreams.map { _ in ScalarBuffer(count: count) }
    microGradientPointers = microGradients.map(\.pointer)
    microLosses = [LossSums](repeating: LossSums(), count: data.localStreams.count)
    reducer = GradientReducer(
      layout: model.layout, mode: c.reduction, totalMicroBatches: c.batchSize / c.microBatchSize)
    let pieces = reducer.pieceCount
    microMaxima = c.reduction == .deterministic ? data.localStreams.map { _ in ScalarBuffer(count: pieces) } : []
    microMaximaPointers = c.reduction == .deterministic ? microMaxima.map(\.pointer) : nil
    dataSeconds = .allocate(capacity: threads)
    forwardSeconds = .allocate(capacity: threads)
    backwardSeconds = .allocate(capacity: threads)
    scanSeconds = .allocate(capacity: threads)
  }

  /// Checks the settings and loads this rank's data (and, when `evaluationSets`, the test and
  /// validation sets, whose evaluation every rank shares); an error on any rank ends every rank alike.
  /// `loadDelay`: seconds the last rank's load takes longer (a test hook).
  public convenience init(
    configuration c: TrainingConfiguration, communicator: Communicator, evaluationSets: Bool = true, loadDelay: Double = 0
  ) throws {
    let (rank, ranks) = (communicator.rank, communicator.size)
    let (data, identity) = try communicator.together("loading the data") { () -> (TrainingData, SameData) in
      if loadDelay > 0 && rank == ranks - 1 { usleep(UInt32(min(loadDelay, 3600) * 1e6)) }
      try c.validate(ranks: ranks)
      let data = try TrainingData(
        source: c.dataSource, validationSize: c.validationSize, batchSize: c.batchSize, microBatchSize: c.microBatchSize,
        seed: c.seed, rank: rank, ranks: ranks,
        evaluationSets: evaluationSets)
      return (data, try SameData(c.dataSource, data: data))
    }
    try identity.requireSameOnEveryRank(communicator)
    self.init(configuration: c, communicator: communicator, data: data)
  }

  deinit {
    dataSeconds.deallocate()
    forwardSeconds.deallocate()
    backwardSeconds.deallocate()
    scanSeconds.deallocate()
  }

  /// What one step did.
  public struct Outcome {
    /// The loss parts summed over the step's images on every rank.
    public var losses: LossSums
    /// False when the loss or a gradient was NaN or infinite on any rank: nothing was applied.
    public var applied: Bool
    /// Some rank asked to stop (a signal): every rank learns it in the same step.
    public var stopRequested: Bool
  }

  /// Step `globalStep + 1` (the `stepInEpoch`-th of its epoch, whose stream orders are `orders`).
  /// Applies Adam only when everything was finite; every rank returns the same outcome. `stopFlag` is
  /// read as the reduction starts, so a stop asked for during the step's compute travels with it.
  public func step(globalStep: Int, stepInEpoch: Int, orders: [[Int]], stopFlag: @autoclosure () -> Bool) throws -> Outcome {
    // The phases' clocks run back to back from here to the end, so they add up to the step's time
    // (a preemption between two of them would otherwise fall in no phase).
    let regionStart = monotonicSeconds()
    let c = configuration
    let threads = workspaces.count
    let views = ParameterViews(layout: layout, base: parameters.pointer)
    for timer in [dataSeconds, forwardSeconds, backwardSeconds, scanSeconds] { timer.update(repeating: 0, count: threads) }
    let loop = MicroBatchLoop(workspaces: workspaces, images: data.train, latentDim: c.latentDim)
    let (forward, backward, scan) = (forwardSeconds, backwardSeconds, scanSeconds)
    let (reducer, maxima) = (reducer, microMaximaPointers)
    microLosses.withUnsafeMutableBufferPointer { losses in
      loop.run(
        count: losses.count, batch: { self.schedule.microBatch(order: orders[$0], step: stepInEpoch) },
        noise: .init(seed: c.seed, purpose: .trainingNoise, step: globalStep), fillSeconds: dataSeconds
      ) { worker, j, batch, workspace in
        if batch.isEmpty {
          losses[j] = LossSums()
          microGradients[j].zero()
        } else {
          let t1 = monotonicSeconds()
          losses[j] = model.forward(views, batch: batch.count, workspace: workspace)
          let t2 = monotonicSeconds()
          model.backward(
            views, gradients: ParameterViews(layout: layout, base: microGradientPointers[j]),
            batch: batch.count, beta: Float(c.beta), workspace: workspace)
          forward[worker] += t2 - t1
          backward[worker] += monotonicSeconds() - t2
        }
        if let maxima {
          let t3 = monotonicSeconds()
          reducer.pieceMaxima(of: microGradientPointers[j], into: maxima[j])
          scan[worker] += monotonicSeconds() - t3
        }
      }
    }
    let reductionStart = monotonicSeconds(), waitedBefore = communicator.waitingSeconds
    chargeComputePhases(regionSeconds: reductionStart - regionStart)

    let reduced = try reducer.reduce(
      gradients: microGradientPointers, maxima: microMaximaPointers, losses: microLosses, flag: stopFlag(),
      into: gradient.pointer, communicator: communicator, phase: "the gradient allreduce of step \(globalStep + 1)")
    let waited = communicator.waitingSeconds - waitedBefore
    let optimizerStart = monotonicSeconds()
    phases.waiting += waited
    phases.reduction += optimizerStart - reductionStart - waited
    phases.steps += 1
    phases.images += reduced.losses.count
    guard reduced.isFinite else {
      return Outcome(losses: reduced.losses, applied: false, stopRequested: reduced.anyFlag)
    }
    var adam = c.adam
    adam.learningRate = c.learningRate(step: globalStep + 1, stepsPerEpoch: schedule.stepsPerEpoch)
    adamUpdate(
      parameters: parameters.pointer, gradients: gradient.pointer, firstMoment: firstMoment.pointer,
      secondMoment: secondMoment.pointer, count: layout.totalCount, step: globalStep + 1, configuration: adam,
      // The loss is the mean over the batch's images; the reduced gradient is of their sum.
      gradientDivisor: Float(reduced.losses.count))
    phases.optimizer += monotonicSeconds() - optimizerStart
    return Outcome(losses: reduced.losses, applied: true, stopRequested: reduced.anyFlag)
  }

  /// The compute phases run on several threads at once: their wall-clock share is the parallel
  /// region's duration split in proportion to the threads' time in each phase.
  private func chargeComputePhases(regionSeconds: Double) {
    var total = (0.0, 0.0, 0.0, 0.0)
    for worker in 0..<workspaces.count {
      total.0 += dataSeconds[worker]
      total.1 += forwardSeconds[worker]
      total.2 += backwardSeconds[worker]
      total.3 += scanSeconds[worker]
    }
    let busy = max(total.0 + total.1 + total.2 + total.3, 1e-12)
    phases.data += regionSeconds * total.0 / busy
    phases.forward += regionSeconds * total.1 / busy
    phases.backward += regionSeconds * total.2 / busy
    phases.reduction += regionSeconds * total.3 / busy
    // (One thread has no one to wait for: what its timers leave out is the loop's own bookkeeping.)
    if workspaces.count > 1 { phases.threadsIdle += max(0, regionSeconds - busy / Double(workspaces.count)) }
  }

  /// The stream orders of every local stream in `epoch`.
  public func orders(epoch: Int) -> [[Int]] {
    data.localStreams.map { schedule.order(stream: $0, epoch: epoch) }
  }

  /// Rank zero's part of a resume: parameters and moments from `checkpoint` (then `broadcastState`).
  func load(_ checkpoint: Checkpoint) {
    let count = layout.totalCount
    parameters.pointer.update(from: checkpoint.parameters, count: count)
    firstMoment.pointer.update(from: checkpoint.firstMoment, count: count)
    secondMoment.pointer.update(from: checkpoint.secondMoment, count: count)
  }

  /// Replaces parameters and moments on every rank with rank zero's (after rank zero loaded them).
  func broadcastState(phase: String) throws {
    for buffer in [parameters, firstMoment, secondMoment] {
      try communicator.broadcast(
        UnsafeMutableRawBufferPointer(start: buffer.pointer, count: layout.totalCount * 4), root: 0, phase: phase)
    }
  }

  /// Fails loudly if any two ranks hold different parameters (a 64-bit FNV-1a hash, min vs max).
  func checkParametersInSync(step: Int) throws {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    UnsafeRawBufferPointer(start: parameters.pointer, count: layout.totalCount * 4).forEach {
      hash = (hash ^ UInt64($0)) &* 0x0000_0100_0000_01b3
    }
    let (low, high) = try communicator.extremes(of: [Int64(bitPattern: hash)], phase: "the parameter check at step \(step)")
    if low != high { throw TrainingError.parametersDiverged(step: step) }
  }
}
