import Dispatch

/// Runs `body(i)` for every `i` in `0..<count` on Dispatch's worker threads and returns when all
/// have ended: the one parallel loop of the project (the micro-batches of a step, the pieces of the
/// gradient reduction and of Adam, the benchmarks' threads).
///
/// The contract, which the type system cannot state for raw pointers: iteration `i` writes only
/// memory that no other iteration reads or writes (its own micro-batch's workspace and gradient, its
/// own piece of a buffer, its own slot of a result array). Under that contract the loop is free of
/// data races, and its result is the same for any number of threads.
@inlinable
public func concurrentForEach(_ count: Int, _ body: (Int) -> Void) {
  withoutActuallyEscaping(body) { body in
    // Unchecked: `body` is not Sendable (it captures pointers and non-Sendable owners), but it runs
    // only inside this call, which waits for every iteration, and the contract above keeps the
    // iterations' writes apart.
    let shared = UncheckedSendable(body)
    DispatchQueue.concurrentPerform(iterations: count) { shared.value($0) }
  }
}

/// A value handed to other threads where the compiler cannot prove it safe; every use says why it is.
public struct UncheckedSendable<Value>: @unchecked Sendable {
  public let value: Value
  @inlinable public init(_ value: Value) { self.value = value }
}
