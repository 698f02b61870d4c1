import Foundation
import VAECore
import VAEData
import VAETraining

/// What several test cases of this target share: a small image set and initialized parameters.
enum Fixtures {
  /// True in `launch/sanitize.sh --thread`'s run, where each step is about 8 times slower.
  static let underThreadSanitizer = ProcessInfo.processInfo.environment["VAE_DIST_SANITIZER"] == "thread"
  /// True in either sanitizer's run (launch/sanitize.sh). Tests that repeat one check over many
  /// layouts run a few of them there: every kind of sharing (threads of one rank, ranks of one
  /// process, both) and ranks past the first with empty micro-batches, the code paths a sanitizer
  /// watches, while the release suite runs every layout.
  static let underSanitizer = ProcessInfo.processInfo.environment["VAE_DIST_SANITIZER"] != nil

  /// Synthetic training images (512 unless told), batch 32 = 4 micro-batches (streams) of 8, one
  /// thread, seed 11: 16 steps an epoch at 512 images.
  static func smallRun(images: Int = 512) -> TrainingConfiguration {
    var c = TrainingConfiguration()
    c.syntheticData = true
    c.syntheticTrainImages = images
    c.batchSize = 32
    c.microBatchSize = 8
    c.threads = 1
    c.seed = 11
    return c
  }

  /// 96 synthetic images (or `count`): bright blobs at places that depend on the image.
  static func images(count: Int = 96) -> ImageStore {
    var pixels: [UInt8] = []
    for i in 0..<count {
      for row in 0..<28 {
        for column in 0..<28 {
          let d = (row - 8 - i % 12) * (row - 8 - i % 12) + (column - 6 - i % 16) * (column - 6 - i % 16)
          pixels.append(d < 30 ? 230 : UInt8((row * column + i) % 40))
        }
      }
    }
    return ImageStore(LabeledImages(side: 28, pixels: pixels, labels: (0..<count).map { UInt8($0 % 10) },
                                    fileIndices: Array(0..<count), fileCount: count))
  }

  /// Glorot-initialized parameters (latent size 2) with the named tensors set to zero.
  static func parameters(zeroing names: [String]) -> (ScalarBuffer<Float>, ParameterViews<Float>) {
    let layout = ParameterLayout(latentDim: 2)
    let parameters = ScalarBuffer<Float>(count: layout.totalCount)
    glorotUniformInitialize(parameters.pointer, layout: layout, seed: 4)
    for name in names {
      let spec = layout.spec(named: name)!
      parameters.pointer.advanced(by: spec.offset).update(repeating: 0, count: spec.count)
    }
    return (parameters, ParameterViews(layout: layout, base: parameters.pointer))
  }
}
