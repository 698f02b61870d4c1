import VAEData
import VAEDistributed

/// What every rank must read alike: the training and test image files' counts and CRC-32s (of the
/// files as stored: the same files, gzip or plain alike, on every host; the test file only where
/// the run loads it). A host
/// whose copy under --data differs would train on other images without a word, or, with another
/// count, another number of steps, and the ranks would then call different collectives. So the
/// ranks compare them right after loading, and all refuse together.
struct SameData {
  /// The training file's images and CRC-32, then the test file's.
  let values: [Int64]
  let paths: (train: String, test: String)

  init(_ source: TrainingData.Source, data: TrainingData) throws {
    switch source {
    case .files(let directory):
      let train = try FashionMNIST.files(in: directory, split: .train).images
      let test = try data.test.map { [Int64($0.count), Int64(try fileCRC32(try FashionMNIST.files(in: directory, split: .test).images))] }
      values = [Int64(data.fileCount), Int64(try fileCRC32(train))] + (test ?? [0, 0])
      paths = (train, "the test images")
    case .synthetic(let train):
      values = [Int64(train), 0, 0, 0]
      paths = ("synthetic training images", "synthetic test images")
    }
  }

  /// Throws the same agreed failure (a data error) on every rank when any two ranks' values differ
  /// (one collective: every rank sees the same extremes, so none is left waiting).
  func requireSameOnEveryRank(_ communicator: Communicator) throws {
    let (low, high) = try communicator.extremes(of: values, phase: "comparing the ranks' data")
    for (index, what) in ["image count", "CRC-32", "image count", "CRC-32"].enumerated() where low[index] != high[index] {
      let path = index < 2 ? paths.train : paths.test
      let (a, b) = index % 2 == 0 ? ("\(low[index])", "\(high[index])") : (hex(low[index]), hex(high[index]))
      let error = DataError.mismatch(
        reason: "the ranks read different data: \(path) has \(what) \(a) on some ranks and \(b) on others. "
          + "Every host needs the same Fashion-MNIST files under --data, byte for byte (gzip or plain alike).")
      var failure = RunFailure(error, rank: 0)
      failure.agreed = true
      throw failure
    }
  }

  private func hex(_ value: Int64) -> String { "0x" + String(UInt32(truncatingIfNeeded: value), radix: 16) }
}
