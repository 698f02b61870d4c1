import VAECore
import VAEData
import VAEDistributed
import VAETraining
import XCTest

/// One step of the engine, looked at from inside: what the micro-batches left and what was summed.
final class StepEngineTests: XCTestCase {
  /// The epoch's last step of 514 images in 4 streams holds 1, 1, 0 and 0 images. The empty
  /// micro-batches must contribute nothing: their gradient buffers (which the step before filled)
  /// are zeroed, and the summed gradient is that of the two images alone.
  func testEmptyMicroBatchesAddNothing() throws {
    for reduction in ReductionMode.allCases {
      var c = TrainingConfiguration()
      c.syntheticData = true
      c.syntheticTrainImages = 514
      c.batchSize = 32
      c.microBatchSize = 8
      c.threads = 2
      c.seed = 11
      c.reduction = reduction
      let configuration = c
      let failures = InProcessGroup(size: 1).run { communicator -> String? in
        do {
          let engine = try StepEngine(configuration: configuration, communicator: communicator, evaluationSets: false)
          let orders = engine.orders(epoch: 0), count = engine.layout.totalCount
          _ = try engine.step(globalStep: 15, stepInEpoch: 15, orders: orders, stopFlag: false)
          let full = engine.microGradientPointers.map { UnsafeBufferPointer(start: $0, count: count).contains { $0 != 0 } }
          guard full == [true, true, true, true] else { return "step 16: gradients nonzero \(full)" }
          let outcome = try engine.step(globalStep: 16, stepInEpoch: 16, orders: orders, stopFlag: false)
          guard outcome.losses.count == 2 else { return "step 17 counted \(outcome.losses.count) images, not 2" }
          let g = engine.microGradientPointers
          for j in 2..<4 where UnsafeBufferPointer(start: g[j], count: count).contains(where: { $0 != 0 }) {
            return "step 17: the empty micro-batch \(j) kept a gradient"
          }
          // The engine's parameters moved with Adam since, so compare the sum with its parts.
          var largest: Float = 0
          for i in 0..<count {
            let expected = g[0][i] + g[1][i]
            largest = max(largest, abs(engine.gradient.pointer[i] - expected) / max(abs(expected), 1e-30))
          }
          print("\(reduction): largest relative difference of the summed gradient from g0 + g1: \(largest)")
          return largest <= 1e-6 ? nil : "the summed gradient differs from g0 + g1 by up to \(largest) of it"
        } catch {
          return "\(error)"
        }
      }
      XCTAssertNil(failures[0], "\(reduction)")
    }
  }
}
