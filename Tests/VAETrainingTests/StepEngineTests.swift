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
      var c = Fixtures.smallRun(images: 514)
      c.threads = 2
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
          // The sum of the two gradients: float additions in micro-batch order give g0 + g1 rounded
          // once (fast); the exact sum rounded once gives it too, but for entries so far below their
          // tensor's largest that the fixed point (about 2^-58 of it) cuts their bits (deterministic).
          var worst = 0.0
          for tensor in engine.layout.tensors {
            let range = tensor.offset..<(tensor.offset + tensor.count)
            let largest = range.map { abs(Double(g[0][$0] + g[1][$0])) }.max()!
            for i in range {
              let error = abs(Double(engine.gradient.pointer[i]) - Double(g[0][i] + g[1][i]))
              worst = max(worst, largest > 0 ? error / largest : error)
            }
          }
          print("\(reduction): largest difference of the summed gradient from g0 + g1, over its tensor's largest: \(worst)")
          let bound = reduction == .fast ? 0 : 0x1p-50
          return worst <= bound ? nil : "the summed gradient differs from g0 + g1 by \(worst) of its tensor's largest"
        } catch {
          return "\(error)"
        }
      }
      XCTAssertNil(failures[0], "\(reduction)")
    }
  }
}
