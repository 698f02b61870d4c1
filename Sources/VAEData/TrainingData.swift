import CounterRNG

/// The images one rank trains on, and the sets rank zero evaluates on, from one description of the
/// data: the training file less a seeded validation hold-out, dealt into the batch schedule's
/// streams; this rank's block of streams is its shard, the only training images it loads.
public struct TrainingData: Sendable {
  public let schedule: BatchSchedule
  public let localStreams: Range<Int>
  /// This rank's shard of the training images.
  public let train: ImageStore
  /// The test set and the validation hold-out, where asked for (rank zero), else nil.
  public let test: ImageStore?
  public let validation: ImageStore?
  /// Images in the training file (before the hold-out).
  public let fileCount: Int

  /// Where the images come from.
  public enum Source: Sendable, Equatable {
    /// The IDX files of Fashion-MNIST in a directory.
    case files(directory: String)
    /// Seeded images of random speckle: `train` in the training "file", train/6 in the test set.
    case synthetic(train: Int)
  }

  /// - Parameters:
  ///   - validationSize: training images held out (chosen by the seed) for validation.
  ///   - evaluationSets: load the test set and the validation images (rank zero does).
  public init(
    source: Source, validationSize: Int, batchSize: Int, microBatchSize: Int, seed: UInt64, rank: Int, ranks: Int,
    evaluationSets: Bool
  ) throws {
    let microBatches = batchSize / microBatchSize
    let fileCount: Int
    switch source {
    case .files(let directory): fileCount = try FashionMNIST.imageCount(directory: directory, split: .train)
    case .synthetic(let train): fileCount = train
    }
    self.fileCount = fileCount
    try Self.requireTrainingImages(fileCount: fileCount, validationSize: validationSize)
    // The validation images are a seeded choice from the training file, held out of training.
    var pool = Array(0..<fileCount)
    var random = CounterRandomStream(seed: seed, purpose: .validationSplit)
    if validationSize > 0 { random.shuffle(&pool) }
    let validation = Set(pool.suffix(validationSize))
    let examples = validationSize > 0 ? pool.dropLast(validationSize).sorted() : pool
    guard examples.count >= microBatches else {
      throw DataError.setting(
        "the training set has \(examples.count) images, fewer than the \(microBatches) micro-batches of one step")
    }
    schedule = BatchSchedule(examples: examples, batchSize: batchSize, microBatchSize: microBatchSize, seed: seed)
    localStreams = schedule.streamRange(rank: rank, of: ranks)
    let shard = schedule.examples(inStreams: localStreams)
    switch source {
    case .files(let directory):
      train = ImageStore(try FashionMNIST.load(directory: directory, split: .train, keep: shard.contains))
      test = evaluationSets ? ImageStore(try FashionMNIST.load(directory: directory, split: .test)) : nil
      self.validation =
        evaluationSets && !validation.isEmpty
        ? ImageStore(try FashionMNIST.load(directory: directory, split: .train, keep: validation.contains)) : nil
    case .synthetic:
      train = ImageStore(syntheticImages(fileIndices: shard.sorted(), fileCount: fileCount, seed: seed))
      let testCount = max(1, fileCount / 6)
      test = evaluationSets ? ImageStore(syntheticImages(fileIndices: Array(0..<testCount), fileCount: testCount, seed: seed &+ 1)) : nil
      self.validation =
        evaluationSets && !validation.isEmpty
        ? ImageStore(syntheticImages(fileIndices: validation.sorted(), fileCount: fileCount, seed: seed)) : nil
    }
  }
}

extension TrainingData {
  /// Throws unless the validation hold-out leaves training images.
  public static func requireTrainingImages(fileCount: Int, validationSize: Int) throws {
    guard validationSize < fileCount else {
      throw DataError.setting(
        "--val-size \(validationSize) leaves no training images (the training file holds \(fileCount))")
    }
  }
}

/// Images of pseudo-random speckle (a third of the pixels lit at random grey levels), for benchmarks and tests without the data files.
public func syntheticImages(fileIndices: [Int], fileCount: Int, seed: UInt64) -> LabeledImages {
  var pixels = [UInt8](repeating: 0, count: fileIndices.count * 784)
  for (slot, index) in fileIndices.enumerated() {
    var random = CounterRandomStream(seed: seed, purpose: .pictureSelection, UInt64(index), 1)
    for p in 0..<784 { pixels[slot * 784 + p] = random.next32() % 3 == 0 ? UInt8(truncatingIfNeeded: random.next32()) : 0 }
  }
  return LabeledImages(
    side: 28, pixels: pixels, labels: fileIndices.map { UInt8($0 % 10) }, fileIndices: fileIndices, fileCount: fileCount)
}
