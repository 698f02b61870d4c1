import Foundation
import VAECore
import VAEData
import VAEDistributed

/// The evaluation every rank shares (Evaluator.swift and LikelihoodEstimate.swift split the test and
/// validation images over the ranks): the epoch's passes and, after the last step, the likelihood
/// estimate.
extension Trainer {
  /// Every rank's share of the epoch's evaluation passes (test, test with z = μ, validation).
  func evaluate(_ metrics: inout EpochMetrics) throws {
    let data = engine.data, p = engine.parameters
    if let test = data.test {
      let sampled = try evaluator.evaluate(parameters: p, images: test, over: communicator, phase: "the test evaluation")
      metrics.test = sampled.loss
      metrics.deadHiddenUnits = sampled.deadHiddenUnits
      metrics.testMeanZ = try evaluator.evaluate(parameters: p, images: test, useMean: true, over: communicator, phase: "the test evaluation").loss
    }
    if let validation = data.validation {
      metrics.validation = try evaluator.evaluate(parameters: p, images: validation, over: communicator, phase: "the validation evaluation").loss
    }
  }

  /// Every rank's share of the importance-weighted estimate (nil when skipped or stopped by a signal).
  func estimateLikelihood() throws -> (estimate: LikelihoodEstimate?, seconds: Double)? {
    let k = configuration.iwSamples
    guard k > 0, let test = engine.data.test else { return nil }
    let started = monotonicSeconds()
    var lastReport = started
    var quarters = QuarterMarks()
    // Said before it starts: it can take as long as several epochs, with nothing else on the console.
    console.line(
      "importance-weighted log-likelihood: k = \(k) samples for each of \(grouped(test.count)) test images, "
        + "shared by the ranks (--iw-samples 0 skips it)")
    let estimate = try evaluator.importanceWeighted(
      parameters: engine.parameters, images: test, samples: k, over: communicator,
      progress: { done, total in
        let now = monotonicSeconds()
        let what = "\(done)/\(total) test images of rank 0's share"
        if self.console.style == .bar, now - lastReport > 0.5 {
          lastReport = now
          self.console.progress("importance-weighted log-likelihood, k = \(k): " + what)
        } else if self.console.style == .lines, let percent = quarters.crossed(done, of: total) {
          self.console.line("  estimate \(percent)%: \(what), \(fixed(now - started, 0)) s")  // as an epoch's lines
        }
      }, shouldStop: { StopSignal.requested })
    return (estimate, monotonicSeconds() - started)
  }
}
