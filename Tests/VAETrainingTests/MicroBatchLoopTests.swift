import Foundation
import VAECore
import VAEData
import VAETraining
import XCTest

/// The loop that hands micro-batches to the worker threads: each worker claims the next one from a
/// shared counter, so which worker runs micro-batch j depends on timing; what j's workspace holds
/// must not.
final class MicroBatchLoopTests: XCTestCase {
  /// Three workers, one of them slowed down, over 23 micro-batches of up to 5 images (the last three
  /// empty): every micro-batch runs exactly once, with its own images and noise in the workspace.
  func testEveryMicroBatchRunsOnceWithItsOwnImagesAndNoiseWhateverTheTiming() {
    let store = Fixtures.images(), latentDim = 2, size = 5, count = 23
    let workspaces = (0..<3).map { _ in VAEWorkspace<Float>(capacity: size, latentDim: latentDim) }
    let loop = MicroBatchLoop(workspaces: workspaces, images: store, latentDim: latentDim)
    let noise = MicroBatchLoop.Noise(seed: 7, purpose: .trainingNoise, step: 3)
    // Micro-batch j: images 4j ..< 4j + 5 (overlapping, so a mix-up shows), none for the last three.
    let batch = { (j: Int) -> ArraySlice<Int> in j >= count - 3 ? [] : Array(4 * j..<(4 * j + size))[...] }
    for round in 0..<4 {
      var runs = [Int](repeating: 0, count: count), byWorker = [Int](repeating: 0, count: 3)
      var wrong = [String](repeating: "", count: count)
      runs.withUnsafeMutableBufferPointer { runs in
        byWorker.withUnsafeMutableBufferPointer { byWorker in
          wrong.withUnsafeMutableBufferPointer { wrong in
            loop.run(count: count, batch: batch, noise: noise) { worker, j, indices, workspace in
              // Slow one worker (a different one each round), as a busy neighbour would.
              if worker == round % 3 { usleep(2_000) }
              runs[j] += 1
              byWorker[worker] += 1
              guard !indices.isEmpty else { return }
              var images = [Float](repeating: 0, count: indices.count * 784)
              store.fill(&images, fileIndices: indices)
              var epsilon = [Float](repeating: 0, count: indices.count * latentDim)
              epsilon.withUnsafeMutableBufferPointer {
                fillNoise(
                  $0.baseAddress!, latentDim: latentDim, seed: 7, purpose: .trainingNoise, step: 3, fileIndices: indices)
              }
              if Array(UnsafeBufferPointer(start: workspace.input.pointer, count: images.count)) != images {
                wrong[j] = "images"
              } else if Array(UnsafeBufferPointer(start: workspace.noise.pointer, count: epsilon.count)) != epsilon {
                wrong[j] = "noise"
              }
            }
          }
        }
      }
      XCTAssertEqual(runs, [Int](repeating: 1, count: count), "round \(round): how often each micro-batch ran")
      XCTAssertEqual(byWorker.reduce(0, +), count)
      for j in 0..<count where !wrong[j].isEmpty { XCTFail("round \(round), micro-batch \(j): wrong \(wrong[j])") }
      print("round \(round): micro-batches per worker \(byWorker) (worker \(round % 3) slowed)")
    }
  }
}
