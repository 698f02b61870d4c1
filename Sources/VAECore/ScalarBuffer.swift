/// A fixed-size, 64-byte aligned, zero-initialized array of scalars that owns its memory.
///
/// Parameters, gradients, Adam moments and activations all live in these; the layers take raw
/// pointers into them, as llm.c does, so there is no copy-on-write or bounds check in the hot loops.
///
/// Unchecked Sendable: the class holds one allocation whose address never changes and no other
/// mutable state; what threads write through `pointer` follows concurrentForEach's contract (each
/// writes its own part), and the owner keeps the buffer alive across every parallel loop.
public final class ScalarBuffer<T: VAEScalar>: @unchecked Sendable {
  public let count: Int
  public let pointer: UnsafeMutablePointer<T>

  public init(count: Int) {
    precondition(count >= 0)
    self.count = count
    let raw = UnsafeMutableRawPointer.allocate(
      byteCount: max(count, 1) * MemoryLayout<T>.stride, alignment: 64)
    pointer = raw.bindMemory(to: T.self, capacity: max(count, 1))
    pointer.initialize(repeating: 0, count: max(count, 1))
  }

  public convenience init(_ values: [T]) {
    self.init(count: values.count)
    for (i, value) in values.enumerated() { pointer[i] = value }
  }

  deinit { UnsafeMutableRawPointer(pointer).deallocate() }

  public var buffer: UnsafeMutableBufferPointer<T> { UnsafeMutableBufferPointer(start: pointer, count: count) }
  public var array: [T] { Array(buffer) }

  public func zero() { pointer.update(repeating: 0, count: count) }
}
