import CounterRNG
import Foundation
import VAECore
import VAEDistributed
import XCTest

/// `size` ranks as threads of one process. Allreduce combines contributions in rank order, like an
/// MPI implementation whose association depends on the number of ranks.
final class InProcessGroup: @unchecked Sendable {
  let size: Int
  private let condition = NSCondition()
  private var arrived = 0
  private var generation = 0
  private var contributions: [[Double]] = []
  private var result: [Double] = []

  init(size: Int) {
    self.size = size
    contributions = Array(repeating: [], count: size)
  }

  func allreduce(rank: Int, _ values: [Double], _ combine: (Double, Double) -> Double) -> [Double] {
    condition.lock()
    defer { condition.unlock() }
    let myGeneration = generation
    contributions[rank] = values
    arrived += 1
    if arrived == size {
      result = contributions.dropFirst().reduce(contributions[0]) { zip($0, $1).map(combine) }
      arrived = 0
      generation += 1
      condition.broadcast()
    } else {
      while generation == myGeneration { condition.wait() }
    }
    return result
  }
}

final class InProcessCommunicator: Communicator {
  let group: InProcessGroup
  let rank: Int
  var size: Int { group.size }
  var modeDescription: String { "in-process test group" }
  var hostName: String { "test" }
  var waitingSeconds: Double { 0 }

  init(group: InProcessGroup, rank: Int) {
    self.group = group
    self.rank = rank
  }

  private func combine(_ operation: ReduceOperation) -> (Double, Double) -> Double {
    switch operation {
    case .sum: return (+)
    case .max: return { max($0, $1) }
    case .min: return { min($0, $1) }
    }
  }

  func allreduce(_ values: UnsafeMutableBufferPointer<Int64>, _ operation: ReduceOperation, phase: @autoclosure () -> String) {
    // Int64 travels as two exact 32-bit halves so the Double transport loses nothing.
    let high = group.allreduce(rank: rank, values.map { Double($0 >> 32) }, combine(operation))
    let low = group.allreduce(rank: rank, values.map { Double($0 & 0xffff_ffff) }, combine(operation))
    precondition(operation == .sum)
    for i in 0..<values.count { values[i] = Int64(high[i]) &* (1 << 32) &+ Int64(low[i]) }
  }

  func allreduce(_ values: UnsafeMutableBufferPointer<Double>, _ operation: ReduceOperation, phase: @autoclosure () -> String) {
    let out = group.allreduce(rank: rank, Array(values), combine(operation))
    for i in 0..<values.count { values[i] = out[i] }
  }

  func allreduce(_ values: UnsafeMutableBufferPointer<Float>, _ operation: ReduceOperation, phase: @autoclosure () -> String) {
    // Float sums in Float arithmetic, rank by rank, as MPI would.
    let out = group.allreduce(rank: rank, values.map { Double($0.bitPattern) }) { a, b in
      Double((Float(bitPattern: UInt32(a)) + Float(bitPattern: UInt32(b))).bitPattern)
    }
    for i in 0..<values.count { values[i] = Float(bitPattern: UInt32(out[i])) }
  }

  func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int, phase: @autoclosure () -> String) {}
  func abort(code: Int32) -> Never { fatalError("abort \(code)") }
  func finalize() {}
}

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

final class GradientReducerTests: XCTestCase {
  let layout = ParameterLayout(latentDim: 2)
  let microBatches = 8

  /// Gradients with magnitudes spread over many orders, as real ones are.
  func microBatchGradients() -> [[Float]] {
    (0..<microBatches).map { j in
      var random = CounterRandomStream(seed: 17, purpose: .priorSamples, UInt64(j), 0)
      return (0..<layout.totalCount).map { _ in
        Float((2 * random.nextOpenUnit() - 1) * pow(10, 6 * random.nextOpenUnit() - 4))
      }
    }
  }

  func losses() -> [LossSums] {
    (0..<microBatches).map { LossSums(reconstruction: 4000 + Double($0) * 1.37, kl: 50 + Double($0) / 3, count: 16) }
  }

  /// Runs the reduction with the micro-batches dealt over `ranks` simulated ranks.
  func reduce(ranks: Int, mode: ReductionMode) -> (gradient: [Float], losses: LossSums) {
    let all = microBatchGradients(), allLosses = losses()
    let group = InProcessGroup(size: ranks)
    let results = PerRank<[Float]>(ranks, []), sums = PerRank(ranks, LossSums())
    onThreads(ranks) { [self] rank in
      let mine = (rank * microBatches / ranks)..<((rank + 1) * microBatches / ranks)
      let buffers = mine.map { ScalarBuffer<Float>(all[$0]) }
      let output = ScalarBuffer<Float>(count: layout.totalCount)
      let reducer = GradientReducer(layout: layout, mode: mode, totalMicroBatches: microBatches)
      // The buffers must outlive the raw pointers the reducer reads.
      let step = withExtendedLifetime(buffers) {
        try! reducer.reduce(
          gradients: buffers.map(\.pointer), losses: Array(allLosses[mine]), into: output.pointer,
          communicator: InProcessCommunicator(group: group, rank: rank), phase: "test")
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
    for ranks in [2, 3, 4, 8] {
      let other = reduce(ranks: ranks, mode: .deterministic)
      XCTAssertEqual(other.gradient.map(\.bitPattern), reference.gradient.map(\.bitPattern), "\(ranks) ranks")
      XCTAssertEqual(other.losses, reference.losses)
    }
    XCTAssertEqual(reference.losses.count, 128)
  }

  func testDeterministicSumIsTheCorrectlyRoundedSum() {
    let all = microBatchGradients()
    let reduced = reduce(ranks: 3, mode: .deterministic).gradient
    var worst = 0.0
    for i in 0..<layout.totalCount {
      let exact = all.reduce(0.0) { $0 + Double($1[i]) }  // Double is exact enough here to judge
      let error = abs(Double(reduced[i]) - exact) / max(abs(exact), 1e-30)
      worst = max(worst, error)
    }
    print("deterministic reduction: max relative error against the Double sum \(worst)")
    XCTAssertLessThan(worst, 1.2e-7)  // at most about half a Float ulp (2^-24 ≈ 6e-8), plus the tiny-entry cut
  }

  func testFastReductionDependsOnTheRankCount() {
    // The reason for the deterministic mode: plain float sums change with the grouping.
    let one = reduce(ranks: 1, mode: .fast).gradient
    let four = reduce(ranks: 4, mode: .fast).gradient
    XCTAssertNotEqual(one.map(\.bitPattern), four.map(\.bitPattern))
    XCTAssertEqual(one.count, four.count)
  }

  func testNonFiniteGradientIsReportedOnEveryRank() {
    let group = InProcessGroup(size: 2)
    let flags = PerRank(2, true)
    onThreads(2) { [self] rank in
      let buffer = ScalarBuffer<Float>(count: layout.totalCount)
      if rank == 1 { buffer.pointer[1234] = .nan }
      let reducer = GradientReducer(layout: layout, mode: .deterministic, totalMicroBatches: 2)
      let output = ScalarBuffer<Float>(count: layout.totalCount)
      let step = withExtendedLifetime((buffer, output)) {
        try! reducer.reduce(
          gradients: [buffer.pointer], losses: [LossSums(reconstruction: 1, kl: 1, count: 1)],
          into: output.pointer, communicator: InProcessCommunicator(group: group, rank: rank), phase: "test")
      }
      flags[rank] = step.isFinite
    }
    XCTAssertEqual(flags.all, [false, false])
  }
}
