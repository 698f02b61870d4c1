// Writes TensorBoard event files: TFRecord-framed `tensorflow.Event` protocol buffers.
//
// One writer owns one file `events.out.tfevents.<unix seconds>.<hostname>.<pid>.<n>[.<suffix>]`
// in its directory, where n counts the writers this process has opened, so two writers opened in
// the same second never collide. The first record is `file_version: "brain.Event:2"`. Every call
// writes one record and flushes the FILE*, so a crash loses at most the call in progress and
// TensorBoard sees the data as soon as it is written. Not thread-safe: use one writer from one
// thread (in vae-dist, rank 0's training loop).

#if canImport(Glibc)
  import Glibc
#elseif canImport(Musl)
  import Musl
#elseif canImport(Darwin)
  import Darwin
#endif
import Foundation
import Synchronization

/// What went wrong, and with which file.
public struct EventWriterError: Error, CustomStringConvertible {
  /// The file or directory involved.
  public let path: String
  /// What was being done ("create directory", "open", "write", "flush", ...).
  public let operation: String
  /// Why it failed (strerror text, or a message of this library).
  public let reason: String

  public init(path: String, operation: String, reason: String) {
    self.path = path
    self.operation = operation
    self.reason = reason
  }

  init(path: String, operation: String, errno code: Int32) {
    self.init(path: path, operation: operation, reason: String(cString: strerror(code)))
  }

  public var description: String { "TensorBoard event file \(path): \(operation) failed: \(reason)" }
}

/// `close(2)`, out of reach of `EventWriter.close()` inside the class.
private func closeDescriptor(_ fd: Int32) { _ = close(fd) }

public final class EventWriter {
  /// Full path of the event file.
  public let path: String
  private var file: UnsafeMutablePointer<FILE>?

  /// The writers this process has opened (the n of the file name).
  private static let openedCount = Atomic<Int>(0)

  /// Creates `directory` (and its parents) if needed, and a new event file in it whose first
  /// record is `file_version: "brain.Event:2"`.
  public init(directory: String, fileSuffix: String = "") throws {
    try Self.makeDirectories(directory)
    var host = [CChar](repeating: 0, count: 256)
    var hostname = gethostname(&host, host.count - 1) == 0 ? host.withUnsafeBufferPointer { String(cString: $0.baseAddress!) } : "localhost"
    if hostname.isEmpty { hostname = "localhost" }
    let n = Self.openedCount.add(1, ordering: .relaxed).oldValue
    var name = "events.out.tfevents.\(time(nil)).\(hostname).\(getpid()).\(n)"
    if !fileSuffix.isEmpty { name += fileSuffix.hasPrefix(".") ? fileSuffix : "." + fileSuffix }
    path = directory.hasSuffix("/") ? directory + name : directory + "/" + name

    // O_EXCL: never append to or truncate someone else's file.
    let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
    if fd < 0 { throw EventWriterError(path: path, operation: "create", errno: errno) }
    guard let f = fdopen(fd, "wb") else {
      let code = errno
      closeDescriptor(fd)
      throw EventWriterError(path: path, operation: "fdopen", errno: code)
    }
    file = f

    try write(EventProto.event(wallTime: Self.now(), step: 0, .fileVersion("brain.Event:2")))
  }

  deinit { close() }

  /// Current time in seconds since the Unix epoch, with sub-second precision.
  public static func now() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_REALTIME, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
  }

  /// A scalar (`Summary.Value.simple_value`, a 32-bit float). Non-finite values are written as they
  /// are; TensorBoard shows NaN and infinities.
  public func scalar(_ tag: String, _ value: Double, step: Int, wallTime: Double? = nil) throws {
    try write(EventProto.scalar(tag, Float(value)), step: step, wallTime: wallTime)
  }

  /// A PNG image (`Summary.Value.image`). The colorspace is read from the PNG header when it has
  /// one (1 gray, 2 gray+alpha, 3 RGB, 4 RGBA); TensorBoard itself only uses the PNG bytes.
  public func image(_ tag: String, png: [UInt8], width: Int, height: Int, step: Int) throws {
    guard width > 0, height > 0, width <= Int(Int32.max), height <= Int(Int32.max) else {
      throw EventWriterError(path: path, operation: "image \"\(tag)\"", reason: "bad size \(width)x\(height)")
    }
    try write(
      EventProto.image(tag, png: png, width: width, height: height, colorspace: Self.pngColorspace(png)), step: step,
      wallTime: nil)
  }

  /// A Markdown text (text plugin: a scalar DT_STRING tensor with plugin_name "text").
  public func text(_ tag: String, _ markdown: String, step: Int) throws {
    try write(EventProto.text(tag, markdown), step: step, wallTime: nil)
  }

  /// A `SessionLog` START at `step`: TensorBoard's reader then drops every event of this run (in any
  /// of its files) at steps >= `step`, so a run resumed from a checkpoint at step − 1 supersedes what
  /// it logged after that checkpoint before it stopped.
  public func sessionStart(step: Int) throws {
    try write(EventProto.event(wallTime: Self.now(), step: step, .sessionStart))
  }

  /// Flushes the FILE* buffer to the file. Every write already does this.
  public func flush() throws {
    guard let f = file else { throw EventWriterError(path: path, operation: "flush", reason: "writer is closed") }
    if fflush(f) != 0 { throw EventWriterError(path: path, operation: "flush", errno: errno) }
  }

  /// Makes what was written durable: the file's data (fsync) and, the first time, its name in its
  /// folder. A checkpoint that survives a power cut must not outlive the events logged before it
  /// (the resumed run logs from the checkpoint's step on).
  public func sync() throws {
    try flush()
    guard let f = file else { return }
    if fsync(fileno(f)) != 0 { throw EventWriterError(path: path, operation: "fsync", errno: errno) }
    guard !nameSynced else { return }
    let folder = String(path[..<(path.lastIndex(of: "/") ?? path.startIndex)])
    let fd = open(folder.isEmpty ? "." : folder, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    if fd < 0 { throw EventWriterError(path: folder, operation: "open the folder to fsync", errno: errno) }
    defer { closeDescriptor(fd) }
    if fsync(fd) != 0 && errno != EINVAL { throw EventWriterError(path: folder, operation: "fsync", errno: errno) }
    nameSynced = true
  }
  private var nameSynced = false

  /// Flushes and closes the file. Later writes throw; closing twice is harmless.
  public func close() {
    guard let f = file else { return }
    file = nil
    fclose(f)
  }

  private func write(_ value: @escaping (inout ProtoWriter) -> Void, step: Int, wallTime: Double?) throws {
    try write(EventProto.event(wallTime: wallTime ?? Self.now(), step: step, .summary([value])))
  }

  private func write(_ data: [UInt8]) throws {
    guard let f = file else { throw EventWriterError(path: path, operation: "write", reason: "writer is closed") }
    let record = TFRecord.frame(data)
    let written = record.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, f) }
    if written != record.count {
      let code = ferror(f) != 0 ? errno : EIO
      throw EventWriterError(
        path: path, operation: "write",
        reason: "\(written) of \(record.count) bytes written: \(String(cString: strerror(code)))")
    }
    if fflush(f) != 0 { throw EventWriterError(path: path, operation: "flush", errno: errno) }
  }

  /// PNG color type → TensorBoard colorspace; 0 (unset) if this is not a PNG or the type is palette.
  static func pngColorspace(_ png: [UInt8]) -> Int32 {
    let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
    guard png.count >= 26, Array(png[0..<8]) == signature else { return 0 }
    switch png[25] {  // IHDR: 8 signature + 4 length + 4 type + 4 width + 4 height + 1 depth
    case 0: return 1
    case 4: return 2
    case 2: return 3
    case 6: return 4
    default: return 0
    }
  }

  /// mkdir -p.
  private static func makeDirectories(_ directory: String) throws {
    guard !directory.isEmpty else {
      throw EventWriterError(path: directory, operation: "create directory", reason: "empty path")
    }
    var prefix = directory.hasPrefix("/") ? "/" : ""
    for part in directory.split(separator: "/", omittingEmptySubsequences: true) {
      prefix += part
      if mkdir(prefix, 0o755) != 0 && errno != EEXIST {
        throw EventWriterError(path: prefix, operation: "create directory", errno: errno)
      }
      prefix += "/"
    }
    var st = stat()
    if stat(directory, &st) != 0 {
      throw EventWriterError(path: directory, operation: "create directory", errno: errno)
    }
    if (st.st_mode & S_IFMT) != S_IFDIR {
      throw EventWriterError(path: directory, operation: "create directory", reason: "exists and is not a directory")
    }
  }
}
