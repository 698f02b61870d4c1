import Foundation

/// `size` ranks as threads of one process, for tests of everything above the communicator (the
/// reduction, the protocol, whole trainers) without mpirun. Each collective is an all-gather of the
/// ranks' contributions under one condition variable; allreduce then combines them in rank order,
/// like an MPI implementation whose association depends on the number of ranks.
/// Unchecked Sendable: its mutable state is read and written only while holding `condition`.
public final class InProcessGroup: @unchecked Sendable {
  public let size: Int
  private let condition = NSCondition()
  private var arrived = 0
  private var generation = 0
  private var contributions: [Any] = []
  private var result: [Any] = []

  public init(size: Int) {
    self.size = size
    contributions = Array(repeating: 0, count: size)
  }

  /// Every rank's contribution, in rank order, once all have arrived.
  func exchange(rank: Int, _ value: Any) -> [Any] {
    condition.lock()
    defer { condition.unlock() }
    let myGeneration = generation
    contributions[rank] = value
    arrived += 1
    if arrived == size {
      result = contributions
      arrived = 0
      generation += 1
      condition.broadcast()
    } else {
      while generation == myGeneration { condition.wait() }
    }
    return result
  }
}

public final class InProcessCommunicator: Communicator {
  public let group: InProcessGroup
  public let rank: Int
  public var size: Int { group.size }
  public var modeDescription: String { "in-process group of \(size) ranks" }
  public var hostName: String { "in-process" }
  public var waitingSeconds: Double { 0 }
  /// None: a test's rank zero that sleeps must not end the group (MPICommunicator's has one).
  public var rootWorkTimeout: Double { .infinity }

  public init(group: InProcessGroup, rank: Int) {
    self.group = group
    self.rank = rank
  }

  private func reduce<T: Comparable>(
    _ values: UnsafeMutableBufferPointer<T>, _ operation: ReduceOperation, phase: () -> String, sum: (T, T) -> T
  ) {
    let all = group.exchange(rank: rank, Array(values)).map { $0 as! [T] }
    // Ranks out of step (one in another collective): what MPI would truncate, hang on or misread.
    for (other, contribution) in all.enumerated() where contribution.count != values.count {
      preconditionFailure("rank \(rank)'s allreduce of \(values.count) values in \(phase()) met rank \(other)'s of \(contribution.count)")
    }
    for i in 0..<values.count {
      var value = all[0][i]
      for other in all.dropFirst() {
        switch operation {
        case .sum: value = sum(value, other[i])
        case .max: value = Swift.max(value, other[i])
        case .min: value = Swift.min(value, other[i])
        }
      }
      values[i] = value
    }
  }

  public func allreduce(_ values: UnsafeMutableBufferPointer<Int64>, _ operation: ReduceOperation, phase: @autoclosure () -> String) {
    reduce(values, operation, phase: phase, sum: &+)
  }

  public func allreduce(_ values: UnsafeMutableBufferPointer<Double>, _ operation: ReduceOperation, phase: @autoclosure () -> String) {
    reduce(values, operation, phase: phase, sum: +)
  }

  public func allreduce(_ values: UnsafeMutableBufferPointer<Float>, _ operation: ReduceOperation, phase: @autoclosure () -> String) {
    reduce(values, operation, phase: phase, sum: +)
  }

  public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int, phase: @autoclosure () -> String) {
    let all = group.exchange(rank: rank, rank == root ? [UInt8](bytes) : [UInt8]())
    let sent = all[root] as! [UInt8]
    precondition(sent.count == bytes.count, "broadcast of \(sent.count) bytes received into \(bytes.count) in \(phase())")
    if rank != root { sent.withUnsafeBytes { bytes.copyMemory(from: $0) } }
  }

  public func abort(code: Int32) -> Never { fatalError("in-process rank \(rank) aborted the group with status \(code)") }
  public func finalize() {}
}

extension InProcessGroup {
  /// Runs `body` once per rank, each on a thread of its own (all must be running to meet in a
  /// collective) with that rank's communicator; returns the results in rank order.
  public func run<T>(_ body: @escaping @Sendable (InProcessCommunicator) -> T) -> [T] {
    let results = ResultSlots<T>(size)
    let done = DispatchGroup()
    for rank in 0..<size {
      done.enter()
      let thread = Thread {
        results.set(rank, body(InProcessCommunicator(group: self, rank: rank)))
        done.leave()
      }
      thread.stackSize = 16 << 20
      thread.start()
    }
    done.wait()
    return results.values
  }
}

// Unchecked Sendable: every access holds `lock`.
private final class ResultSlots<T>: @unchecked Sendable {
  private let lock = NSLock()
  private var slots: [T?]
  init(_ count: Int) { slots = Array(repeating: nil, count: count) }
  func set(_ index: Int, _ value: T) { lock.withLock { slots[index] = value } }
  var values: [T] { lock.withLock { slots.map { $0! } } }
}
