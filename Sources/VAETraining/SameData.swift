import VAEData
import VAEDistributed

// Which data a run trains on: its fingerprint in the run's records and checkpoints, and the check
// that every rank read the same.

/// What every rank must read alike: the training and test sets' image counts and the CRC-32s of their
/// images and labels files as they read uncompressed (`IDXFile.contentCRC32`: a gzip copy on one host
/// and a plain one on another agree; the test set only where the run loads it). A host whose copy
/// under --data differs would train on other images without a word, or, with another count, another
/// number of steps, and the ranks would then call different collectives. So the ranks compare them
/// right after loading, and all refuse together.
struct SameData {
  /// The training set's image count and its two CRC-32s, then the test set's.
  let values: [Int64]
  let names: (train: String, test: String)
  private static let kinds = ["image count", "images' CRC-32", "labels' CRC-32"]

  init(_ source: TrainingData.Source, data: TrainingData) throws {
    switch source {
    case .files(let directory):
      func described(_ count: Int, _ split: FashionMNIST.Split) throws -> [Int64] {
        let crc = try FashionMNIST.contentCRC32s(directory: directory, split: split)
        return [Int64(count), Int64(crc.images), Int64(crc.labels)]
      }
      values = try described(data.fileCount, .train) + (data.test.map { try described($0.count, .test) } ?? [0, 0, 0])
      names = ("the training set in \(directory)", "the test set in \(directory)")
    case .synthetic(let train):
      values = [Int64(train), 0, 0, 0, 0, 0]
      names = ("the synthetic training set", "the synthetic test set")
    }
  }

  /// Throws the same agreed failure (a data error) on every rank when any two ranks' values differ
  /// (one collective: every rank sees the same extremes, so none is left waiting).
  func requireSameOnEveryRank(_ communicator: Communicator) throws {
    let (low, high) = try communicator.extremes(of: values, phase: "comparing the ranks' data")
    for index in values.indices where low[index] != high[index] {
      let what = Self.kinds[index % 3], name = index < 3 ? names.train : names.test
      let (a, b) = index % 3 == 0 ? ("\(low[index])", "\(high[index])") : (hex(low[index]), hex(high[index]))
      let error = DataError.mismatch(
        reason: "the ranks read different data: \(name) has \(what) \(a) on some ranks and \(b) on others. "
          + "Every host needs the same Fashion-MNIST files under --data (gzip or plain: their contents are compared).")
      var failure = RunFailure(error, rank: 0)
      failure.agreed = true
      throw failure
    }
  }

  private func hex(_ value: Int64) -> String { "0x" + String(UInt32(truncatingIfNeeded: value), radix: 16) }
}

/// What identifies the data of a run (the training images after the hold-out, and the CRC-32 of the
/// training images file as it reads uncompressed), from the file's header and, for gzip, its
/// trailer: rank zero computes it before loading anything.
func dataFingerprint(_ c: TrainingConfiguration) throws -> DataFingerprint {
  let count = c.syntheticData ? c.syntheticTrainImages : try FashionMNIST.imageCount(directory: c.dataDirectory, split: .train)
  // Before the claim of --out (an --overwrite moves the earlier run aside): a hold-out that leaves
  // nothing to train on must not cost that.
  try TrainingData.requireTrainingImages(fileCount: count, validationSize: c.validationSize)
  if c.syntheticData { return DataFingerprint(trainImages: count - c.validationSize, trainFileCRC32: 0) }
  let path = try FashionMNIST.files(in: c.dataDirectory, split: .train).images
  return DataFingerprint(trainImages: count - c.validationSize, trainFileCRC32: try IDXFile.contentCRC32(path: path, rank: 3))
}

/// Whether `recorded`, which differs from `current`, is of the same data in its earlier form: runs
/// and checkpoints written before 2026-12-03 hold the CRC-32 of the training images file as stored
/// (gzip or not), and still resume.
func isEarlierForm(_ recorded: DataFingerprint, of current: DataFingerprint, _ c: TrainingConfiguration) -> Bool {
  guard !c.syntheticData, recorded.trainImages == current.trainImages,
    let path = try? FashionMNIST.files(in: c.dataDirectory, split: .train).images
  else { return false }
  return (try? IDXFile.storedCRC32(path: path)) == recorded.trainFileCRC32
}
