import CounterRNG

/// Which training images form which micro-batch at every step, as a function of the seed, the batch
/// size and the micro-batch size alone — never of the number of ranks or threads.
///
/// The training images are dealt (by a seeded permutation) into M = batch/microBatch *streams* of
/// near-equal size. Each epoch shuffles every stream on its own (keyed by seed, epoch, stream), and
/// step s of an epoch takes micro-batch j from positions s·m ..< (s+1)·m of stream j. A rank owns a
/// contiguous block of streams, so it needs only their images in memory: its shard. The last step of
/// an epoch takes what is left of each stream (60,000 images at batch 128: 468 full steps and one of
/// 96), so every image is seen exactly once per epoch.
public struct BatchSchedule: Sendable {
  public let seed: UInt64
  public let batchSize: Int
  public let microBatchSize: Int
  /// Each stream's members as file indices, in the order they were dealt.
  public let streams: [[Int]]
  public let stepsPerEpoch: Int

  public var streamCount: Int { streams.count }
  public var exampleCount: Int { streams.reduce(0) { $0 + $1.count } }

  /// - Parameter examples: the file indices of the training images (the training file less any
  ///   validation hold-out).
  public init(examples: [Int], batchSize: Int, microBatchSize: Int, seed: UInt64) {
    precondition(batchSize >= 1 && microBatchSize >= 1 && batchSize % microBatchSize == 0)
    precondition(examples.count >= batchSize / microBatchSize)
    self.seed = seed
    self.batchSize = batchSize
    self.microBatchSize = microBatchSize
    let count = batchSize / microBatchSize
    var dealt = examples
    var random = CounterRandomStream(seed: seed, purpose: .trainingStreamAssignment)
    random.shuffle(&dealt)
    var streams = [[Int]](repeating: [], count: count)
    for (position, example) in dealt.enumerated() { streams[position % count].append(example) }
    self.streams = streams
    let longest = streams.map(\.count).max() ?? 0
    stepsPerEpoch = (longest + microBatchSize - 1) / microBatchSize
  }

  /// The streams rank `rank` of `ranks` works on: a contiguous, balanced block.
  public func streamRange(rank: Int, of ranks: Int) -> Range<Int> {
    precondition(ranks >= 1 && ranks <= streamCount && rank >= 0 && rank < ranks)
    return (rank * streamCount / ranks)..<((rank + 1) * streamCount / ranks)
  }

  /// The file indices of the images the given streams use: what a rank loads.
  public func examples(inStreams range: Range<Int>) -> Set<Int> {
    Set(range.flatMap { streams[$0] })
  }

  /// Stream `stream`'s order in epoch `epoch` (0-based).
  public func order(stream: Int, epoch: Int) -> [Int] {
    var members = streams[stream]
    var random = CounterRandomStream(
      seed: seed, purpose: .epochOrder, UInt64(epoch), UInt64(stream))
    random.shuffle(&members)
    return members
  }

  /// Micro-batch `stream` of step `step` (0-based within the epoch), from the epoch's `order` of that
  /// stream; empty when the stream has run out in the epoch's last step.
  public func microBatch(order: [Int], step: Int) -> ArraySlice<Int> {
    let start = min(step * microBatchSize, order.count)
    return order[start..<min(start + microBatchSize, order.count)]
  }

  /// Number of images in step `step` of every epoch.
  public func imagesInStep(_ step: Int) -> Int {
    streams.reduce(0) { total, stream in
      total + max(0, min(microBatchSize, stream.count - step * microBatchSize))
    }
  }
}
