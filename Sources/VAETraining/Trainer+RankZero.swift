import Foundation
import VAECore
import VAEData
import VAEDistributed

/// Rank zero's work on its files inside `atRoot` (the epoch end, the final files, the last good
/// state before a non-finite step, the resume), whose result or error reaches every rank.
extension Trainer {
  struct EpochDecision: Codable {
    var state: TrainingState
    var stopEarly: Bool
  }

  /// Rank zero's work at an epoch end: log, checkpoint, draw, and decide on early stopping.
  func endEpoch(_ metrics: inout EpochMetrics, output: RunOutput) throws -> EpochDecision {
    let c = configuration, data = engine.data
    if hooks.rootEpochEndDelay > 0 { usleep(UInt32(min(hooks.rootEpochEndDelay, 3600) * 1e6)) }
    // Early stopping counts whole epochs: a run that --max-steps ends inside one records nothing
    // (a resume with a larger --max-steps records that epoch when it is whole).
    if let validation = metrics.validation, step % schedule.stepsPerEpoch == 0 {
      metrics.isBest = state.recordValidation(validation.meanLoss(beta: c.beta), step: step, minDelta: c.earlyStoppingMinDelta)
    }
    console.line(epochLine(metrics))
    try output.append(metrics)
    // `best` before the step checkpoint whose state names it: a crash between the two leaves the
    // epoch to be done again, never a state that points at an older `best`.
    if metrics.isBest == true { try output.writeCheckpoint(engine, state: state, name: "best") }
    try output.writeCheckpoint(engine, state: state)
    // A failed log write since the last exchange (TensorBoard's step scalars), after the checkpoint.
    try output.throwDeferredError()
    if c.plotEvery > 0, metrics.epoch % c.plotEvery == 0, step < totalSteps, let test = data.test {
      try output.writePictures(parameters: engine.parameters, test: test, step: step)
    }
    return EpochDecision(state: state, stopEarly: state.shouldStopEarly(patience: c.earlyStoppingPatience))
  }

  /// Rank zero's work after the last step: the model file and the pictures. A stop signal here
  /// skips the pictures left (the model is written first).
  func writeFinalFiles(_ output: RunOutput, memory: [Int]) throws -> String {
    let path = try output.writeModel(engine, step: step)
    console.line("wrote \(path) (\(grouped(engine.layout.totalCount)) parameters, step \(step))")
    console.line("peak resident memory per rank during training: \(memory.map { "\(fixed(Double($0) / 1024, 1)) MiB" }.joined(separator: " · "))")
    if let test = engine.data.test {
      try output.writePictures(parameters: engine.parameters, test: test, step: step)
    }
    return path
  }

  /// Every rank sees the same non-finite verdict. With --skip-nonfinite the step is counted and
  /// skipped; otherwise rank zero keeps the last good state as a checkpoint and every rank ends with
  /// the same status.
  func nonFiniteStep(_ outcome: StepEngine.Outcome) throws {
    let failing = step + 1
    let what =
      !outcome.losses.reconstruction.isFinite ? "the reconstruction loss (binary cross-entropy)"
      : !outcome.losses.kl.isFinite ? "the KL term" : "the gradient"
    if configuration.skipNonFinite {
      state.skippedSteps += 1
      console.line("step \(failing): \(what) is not finite; step skipped (\(state.skippedSteps) so far)")
      return
    }
    _ = try atRoot("keeping the last good state before step \(failing)") { output -> Bool in
      let path = try? output.writeCheckpoint(self.engine, state: self.state)
      throw TrainingError.nonFinite(step: failing, what: what, checkpoint: path)
    }
  }

  /// Rank zero finds the newest complete checkpoint of this run; every rank takes its state.
  func restoreNewestCheckpoint() throws {
    struct Restored: Codable {
      var state: TrainingState
      var path: String
    }
    let restored = try atRoot("the resume checkpoint") { output -> Restored in
      let checkpoint = try output.resumableCheckpoint()
      self.engine.load(checkpoint)
      try output.trimMetrics(
        afterStep: checkpoint.state.step, stepsPerEpoch: self.schedule.stepsPerEpoch,
        runEndsThere: checkpoint.state.step >= self.totalSteps)
      return Restored(state: checkpoint.state, path: checkpoint.path)
    }
    try engine.broadcastState(phase: "the resume broadcast of the checkpoint")
    state = restored.state
    console.line("  resumed    \(restored.path) at step \(step) (epoch \(step / schedule.stepsPerEpoch + 1))")
  }
}
