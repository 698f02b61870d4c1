/// The collectives the trainer needs, implemented by MPI across processes or trivially for one.
///
/// Every call names the phase it belongs to, so a rank that waits too long can say where the job
/// stalled. All calls come from one thread.
public protocol Communicator: AnyObject {
  var rank: Int { get }
  var size: Int { get }
  /// How this process was started, for the banner.
  var modeDescription: String { get }
  var hostName: String { get }
  /// Seconds spent so far blocked in collectives (waiting for other ranks or the network).
  var waitingSeconds: Double { get }
  /// The longest rank zero's work alone in a `rootDecides` may take before it ends the job as a
  /// stall (a hung file system must not hang every rank behind its heartbeat).
  var rootWorkTimeout: Double { get }

  func allreduce(_ values: UnsafeMutableBufferPointer<Int64>, _ operation: ReduceOperation, phase: @autoclosure () -> String) throws
  func allreduce(_ values: UnsafeMutableBufferPointer<Double>, _ operation: ReduceOperation, phase: @autoclosure () -> String) throws
  func allreduce(_ values: UnsafeMutableBufferPointer<Float>, _ operation: ReduceOperation, phase: @autoclosure () -> String) throws
  func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int, phase: @autoclosure () -> String) throws
  /// Ends every process of the job with `code`.
  func abort(code: Int32) -> Never
  func finalize()
}

public enum ReduceOperation: Sendable {
  case sum, max, min
}

public struct CommunicationError: Error, CustomStringConvertible {
  public let rank: Int
  public let phase: String
  public let reason: String
  public var description: String { "rank \(rank): \(phase): \(reason)" }
}

/// One process, no MPI: every collective is the identity.
public final class SingleProcessCommunicator: Communicator {
  public init() {}
  public var rank: Int { 0 }
  public var size: Int { 1 }
  public var modeDescription: String { "single process (no MPI launcher found)" }
  public var hostName: String { localHostName() }
  public var waitingSeconds: Double { 0 }
  public var rootWorkTimeout: Double { .infinity }
  public func allreduce(_ values: UnsafeMutableBufferPointer<Int64>, _ operation: ReduceOperation, phase: @autoclosure () -> String) {}
  public func allreduce(_ values: UnsafeMutableBufferPointer<Double>, _ operation: ReduceOperation, phase: @autoclosure () -> String) {}
  public func allreduce(_ values: UnsafeMutableBufferPointer<Float>, _ operation: ReduceOperation, phase: @autoclosure () -> String) {}
  public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int, phase: @autoclosure () -> String) {}
  public func abort(code: Int32) -> Never { exit(code) }
  public func finalize() {}
}

#if canImport(Glibc)
  import Glibc
#endif

/// This machine's host name (gethostname).
public func localHostName() -> String {
  var buffer = [CChar](repeating: 0, count: 256)
  gethostname(&buffer, buffer.count - 1)
  return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}
