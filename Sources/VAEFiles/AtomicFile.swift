#if canImport(Glibc)
  import Glibc
#endif

/// Whole-file writes that either complete or leave the old file untouched.
public enum AtomicFile {
  public static func write(_ bytes: [UInt8], to path: String) throws {
    let temporary = "\(path).tmp-\(getpid())"
    func failure(_ what: String) -> FileError {
      let reason = "\(what): \(String(cString: strerror(errno)))"
      unlink(temporary)
      return .writeFailed(path: path, reason: reason)
    }
    let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
    guard fd >= 0 else { throw failure("cannot create \(temporary)") }
    var written = 0
    while written < bytes.count {
      let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
      if n < 0 && errno == EINTR { continue }
      guard n > 0 else {
        close(fd)
        throw failure("write failed after \(written) of \(bytes.count) bytes")
      }
      written += n
    }
    guard fsync(fd) == 0 else {
      close(fd)
      throw failure("fsync failed")
    }
    close(fd)
    guard rename(temporary, path) == 0 else { throw failure("rename failed") }
    let directory = path.contains("/") ? String(path[..<path.lastIndex(of: "/")!]) : "."
    syncDirectory(directory.isEmpty ? "/" : directory)
  }

  /// Makes renames and creations inside `directory` durable.
  public static func syncDirectory(_ directory: String) {
    let fd = open(directory, O_RDONLY | O_DIRECTORY)
    guard fd >= 0 else { return }
    fsync(fd)
    close(fd)
  }

  /// Appends one line to a text file (metrics.jsonl): a single write of the whole line.
  public static func appendLine(_ line: String, to path: String) throws {
    let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
      throw FileError.writeFailed(path: path, reason: String(cString: strerror(errno)))
    }
    defer { close(fd) }
    let bytes = Array((line + "\n").utf8)
    let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress!, $0.count) }
    guard n == bytes.count else {
      throw FileError.writeFailed(path: path, reason: n < 0 ? String(cString: strerror(errno)) : "short write")
    }
  }
}
