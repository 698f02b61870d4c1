import VAEFiles
import Foundation
import VAECore
import VAEData

/// Debug hook for the differential test against PyTorch (Tests/pytorch/differential.py): when
/// `TrainerHooks.traceDirectory` is set (the command line sets it from `VAE_DIST_TRACE_DIR=DIR`),
/// rank zero writes what each step was fed and what it did, so an independent implementation can
/// replay the run. Unset in normal runs; nothing is written then.
///
///   DIR/layout.json        the 18 tensors (name, shape, offset) and the optimizer settings
///   DIR/steps.jsonl        per step: step, images, summed reconstruction and KL, the learning rate
///   DIR/batches.i32        per step, its images' indices in the training file, micro-batch order
///   DIR/noise.f32          per step, ε [images, latent] in the same order
///   DIR/state-K.f32        parameters, first moment, second moment after step K (K = 0: initial),
///                          for each K in `TrainerHooks.traceStates` (VAE_DIST_TRACE_STATES, default 0,1,9,10)
///
/// The batches and ε come from the schedule and the counter-based stream, which are functions of the
/// seed alone, so rank zero writes the whole batch, whatever the layout.
final class StepTrace {
  let directory: URL
  let states: Set<Int>
  let schedule: BatchSchedule
  let configuration: TrainingConfiguration
  private var ordersEpoch = -1
  private var orders: [[Int]] = []
  private let batches, noise, steps: FileHandle
  /// The trace is a debug aid: a failed write is reported once and the run goes on.
  private var failed = false

  init(directory: URL, states: Set<Int>, configuration c: TrainingConfiguration, schedule: BatchSchedule, layout: ParameterLayout) throws {
    self.directory = directory
    self.states = states
    self.schedule = schedule
    configuration = c
    let manager = FileManager.default
    do {
      try manager.createDirectory(at: directory, withIntermediateDirectories: true)
      let description: [String: Any] = [
        "tensors": layout.tensors.map { ["name": $0.name, "shape": $0.shape, "offset": $0.offset] },
        "totalCount": layout.totalCount, "latentDim": layout.latentDim, "learningRate": c.adam.learningRate,
        "beta1": c.adam.beta1, "beta2": c.adam.beta2, "epsilon": c.adam.epsilon, "beta": c.beta,
        "batchSize": c.batchSize, "microBatchSize": c.microBatchSize, "seed": c.seed,
      ]
      try JSONSerialization.data(withJSONObject: description, options: [.sortedKeys, .prettyPrinted])
        .write(to: directory.appendingPathComponent("layout.json"))
      func create(_ name: String) throws -> FileHandle {
        let url = directory.appendingPathComponent(name)
        _ = manager.createFile(atPath: url.path, contents: nil)
        return try FileHandle(forWritingTo: url)
      }
      (batches, noise, steps) = (try create("batches.i32"), try create("noise.f32"), try create("steps.jsonl"))
    } catch {
      throw FileError.writeFailed(path: directory.path, reason: "the step trace asked for (VAE_DIST_TRACE_DIR) (\(error.localizedDescription)); point the variable at a writable directory or unset it")
    }
  }

  /// The state after step `step` (0: before any), when asked for.
  func recordState(after step: Int, engine: StepEngine) {
    guard states.contains(step) else { return }
    var data = Data()
    for buffer in [engine.parameters, engine.firstMoment, engine.secondMoment] {
      data.append(UnsafeBufferPointer(start: buffer.pointer, count: engine.layout.totalCount))
    }
    write { try data.write(to: directory.appendingPathComponent("state-\(step).f32")) }
  }

  private func write(_ body: () throws -> Void) {
    do {
      try body()
    } catch where !failed {
      failed = true
      FileHandle.standardError.write(Data(
        "vae-dist: the trace in \(directory.path) (VAE_DIST_TRACE_DIR) is incomplete: \(error.localizedDescription); training goes on. Free space there or unset the variable.\n".utf8))
    } catch {}
  }

  /// Step `step` (1-based) of the run, the `stepInEpoch`-th of epoch `epoch`, applied with `losses`.
  func recordStep(_ step: Int, epoch: Int, stepInEpoch: Int, losses: LossSums, learningRate: Double, engine: StepEngine) {
    if epoch != ordersEpoch {
      orders = (0..<schedule.streamCount).map { schedule.order(stream: $0, epoch: epoch) }
      ordersEpoch = epoch
    }
    let indices = orders.flatMap { Array(schedule.microBatch(order: $0, step: stepInEpoch)) }
    let d = configuration.latentDim
    var epsilon = [Float](repeating: 0, count: indices.count * d)
    epsilon.withUnsafeMutableBufferPointer {
      fillNoise($0.baseAddress!, latentDim: d, seed: configuration.seed, purpose: .trainingNoise, step: step - 1, fileIndices: indices)
    }
    let line =
      "{\"step\":\(step),\"images\":\(losses.count),\"reconstruction\":\(losses.reconstruction),\"kl\":\(losses.kl),\"lr\":\(learningRate)}\n"
    write {
      try batches.write(contentsOf: indices.map { Int32($0) }.withUnsafeBufferPointer { Data(buffer: $0) })
      try noise.write(contentsOf: epsilon.withUnsafeBufferPointer { Data(buffer: $0) })
      try steps.write(contentsOf: Data(line.utf8))
    }
    recordState(after: step, engine: engine)
  }
}
