import CounterRNG
import Foundation
import VAECore
import VAEDistributed
import XCTest

/// Runs `body(rank)` on `count` threads at once (Dispatch's pool may run fewer at a time, and
/// simulated ranks must all be running to meet in a collective).
func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
  let group = DispatchGroup()
  for rank in 0..<count {
    group.enter()
    Thread { body(rank); group.leave() }.start()
  }
  group.wait()
}

/// Per-rank results written from the rank threads.
final class PerRank<T>: @unchecked Sendable {
  private let lock = NSLock()
  private var storage: [T]
  init(_ count: Int, _ initial: T) { storage = Array(repeating: initial, count: count) }
  subscript(rank: Int) -> T {
    get { lock.withLock { storage[rank] } }
    set { lock.withLock { storage[rank] = newValue } }
  }
  var all: [T] { lock.withLock { storage } }
}

extension GradientReducer {
  /// `reduce` after each gradient's `pieceMaxima`, as the step's worker threads find them.
  func reduceScanning(
    gradients: [UnsafeMutablePointer<Float>], losses: [LossSums], into result: UnsafeMutablePointer<Float>,
    communicator: Communicator
  ) throws -> ReducedStep {
    let maxima = gradients.map { gradient in
      let pieces = UnsafeMutablePointer<Float>.allocate(capacity: pieceCount)
      pieceMaxima(of: gradient, into: pieces)
      return pieces
    }
    defer { maxima.forEach { $0.deallocate() } }
    return try reduce(
      gradients: gradients, maxima: maxima, losses: losses, into: result, communicator: communicator, phase: "test")
  }
}

final class GradientReducerTests: XCTestCase {
  let layout = ParameterLayout(latentDim: 2)
  static let microBatches = 8
  let microBatches = GradientReducerTests.microBatches

  /// Gradients with magnitudes spread over many orders, as real ones are. Made once: every reduction
  /// of these tests starts from them.
  static let gradients: [[Float]] = {
    let layout = ParameterLayout(latentDim: 2)
    return (0..<microBatches).map { j in
      var random = CounterRandomStream(seed: 17, purpose: .priorSamples, UInt64(j), 0)
      return (0..<layout.totalCount).map { _ in
        Float((2 * random.nextOpenUnit() - 1) * pow(10, 6 * random.nextOpenUnit() - 4))
      }
    }
  }()
  func microBatchGradients() -> [[Float]] { Self.gradients }

  func losses() -> [LossSums] {
    (0..<microBatches).map { LossSums(reconstruction: 4000 + Double($0) * 1.37, kl: 50 + Double($0) / 3, count: 16) }
  }

  /// Runs the reduction with the micro-batches dealt over `ranks` simulated ranks.
  func reduce(ranks: Int, mode: ReductionMode) -> (gradient: [Float], losses: LossSums) {
    let all = microBatchGradients(), allLosses = losses()
    let group = InProcessGroup(size: ranks)
    let results = PerRank<[Float]>(ranks, []), sums = PerRank(ranks, LossSums())
    let layout = layout, microBatches = microBatches  // the ranks' threads get values, not the test case
    onThreads(ranks) { rank in
      let mine = (rank * microBatches / ranks)..<((rank + 1) * microBatches / ranks)
      let buffers = mine.map { ScalarBuffer<Float>(all[$0]) }
      let output = ScalarBuffer<Float>(count: layout.totalCount)
      let reducer = GradientReducer(layout: layout, mode: mode, totalMicroBatches: microBatches)
      // The buffers must outlive the raw pointers the reducer reads.
      let step = withExtendedLifetime(buffers) {
        try! reducer.reduceScanning(
          gradients: buffers.map(\.pointer), losses: Array(allLosses[mine]), into: output.pointer,
          communicator: InProcessCommunicator(group: group, rank: rank))
      }
      XCTAssertTrue(step.isFinite)
      results[rank] = output.array
      sums[rank] = step.losses
    }
    for rank in 1..<ranks { XCTAssertEqual(results[rank], results[0], "ranks disagree") }
    return (results[0], sums[0])
  }

  func testDeterministicReductionIsBitIdenticalForAnyRankCount() {
    let reference = reduce(ranks: 1, mode: .deterministic)
    // Under ThreadSanitizer (launch/sanitize.sh --thread), where this took 31 s: an uneven and an
    // even split, every kind of sharing.
    let underThreadSanitizer = ProcessInfo.processInfo.environment["VAE_DIST_SANITIZER"] == "thread"
    for ranks in underThreadSanitizer ? [3, 4] : [2, 3, 4, 8] {
      let other = reduce(ranks: ranks, mode: .deterministic)
      XCTAssertEqual(other.gradient.map(\.bitPattern), reference.gradient.map(\.bitPattern), "\(ranks) ranks")
      XCTAssertEqual(other.losses, reference.losses)
    }
    XCTAssertEqual(reference.losses.count, 128)
  }

  func testDeterministicSumIsTheCorrectlyRoundedSum() {
    let all = microBatchGradients()
    let reduced = reduce(ranks: 3, mode: .deterministic).gradient
    var worst = 0.0, wrong = 0
    for i in 0..<layout.totalCount {
      // The entries lie within 2^-14 … 2^7 and have 24 bits each, so their Double sum is exact, and
      // every bit of them is a whole fixed-point unit (the unit is ~2^-60 of a tensor's largest):
      // the reduction's one rounding, to Float at the end, must give Float(exact) bit for bit.
      let exact = all.reduce(0.0) { $0 + Double($1[i]) }
      if reduced[i].bitPattern != Float(exact).bitPattern { wrong += 1 }
      worst = max(worst, abs(Double(reduced[i]) - exact) / max(abs(exact), 1e-30))
    }
    print("deterministic reduction: \(wrong) of \(layout.totalCount) entries not the correctly rounded sum; max relative error \(worst)")
    XCTAssertEqual(wrong, 0)
  }

  /// Entries far below a tensor's largest (under 2⁻³⁴ of it) are not whole fixed-point units: each
  /// rounds to the nearest unit, ties to even, before the integer sum (truncating would pass the test
  /// above, whose entries span six orders of magnitude).
  func testEntriesBelowTheFixedPointUnitRoundToNearestEven() {
    // One micro-batch: the headroom is 1 bit, so a tensor whose largest entry is 1 has the unit 2⁻⁶⁰.
    let unit = Float(sign: .plus, exponent: -60, significand: 1)
    let entries: [Float] = [1, 1.75 * unit, -1.75 * unit, 2.5 * unit, 3.5 * unit, 0.25 * unit, -0.5 * unit]
    let expected: [Float] = [1, 2 * unit, -2 * unit, 2 * unit, 4 * unit, 0, 0]
    let gradient = ScalarBuffer<Float>(count: layout.totalCount), output = ScalarBuffer<Float>(count: layout.totalCount)
    gradient.pointer.update(repeating: 0, count: layout.totalCount)
    for (i, value) in entries.enumerated() { gradient.pointer[layout.tensors[0].offset + i] = value }
    let reducer = GradientReducer(layout: layout, mode: .deterministic, totalMicroBatches: 1)
    let step = try! reducer.reduceScanning(
      gradients: [gradient.pointer], losses: [LossSums(reconstruction: 1, kl: 1, count: 1)], into: output.pointer,
      communicator: InProcessCommunicator(group: InProcessGroup(size: 1), rank: 0))
    XCTAssertTrue(step.isFinite)
    let got = (0..<entries.count).map { output.pointer[layout.tensors[0].offset + $0] }
    XCTAssertEqual(got.map(\.bitPattern), expected.map(\.bitPattern), "\(got) against \(expected)")
  }

  func testFastReductionDependsOnTheRankCount() {
    // The reason for the deterministic mode: plain float sums change with the grouping.
    let one = reduce(ranks: 1, mode: .fast).gradient
    let four = reduce(ranks: 4, mode: .fast).gradient
    XCTAssertNotEqual(one.map(\.bitPattern), four.map(\.bitPattern))
  }

  func testNonFiniteGradientIsReportedOnEveryRank() {
    let group = InProcessGroup(size: 2)
    let flags = PerRank(2, true)
    let layout = layout
    onThreads(2) { rank in
      let buffer = ScalarBuffer<Float>(count: layout.totalCount)
      if rank == 1 { buffer.pointer[1234] = .nan }
      let reducer = GradientReducer(layout: layout, mode: .deterministic, totalMicroBatches: 2)
      let output = ScalarBuffer<Float>(count: layout.totalCount)
      let step = withExtendedLifetime((buffer, output)) {
        try! reducer.reduceScanning(
          gradients: [buffer.pointer], losses: [LossSums(reconstruction: 1, kl: 1, count: 1)],
          into: output.pointer, communicator: InProcessCommunicator(group: group, rank: rank))
      }
      flags[rank] = step.isFinite
    }
    XCTAssertEqual(flags.all, [false, false])
  }
}
