import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Whole-file writes that either complete or leave the old file untouched.
public enum AtomicFile {
  /// Writes `bytes` to `path` whole: a temporary file beside it, synced, renamed over it. A `path`
  /// that exists as anything but a regular file (a device such as /dev/null, a fifo, a directory) is
  /// refused: the rename would replace it.
  public static func write(_ bytes: [UInt8], to path: String) throws {
    try requireRegularOrAbsent(path)
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
    try syncDirectory(parent(of: path), for: path)
  }

  /// Removes the temporaries (`NAME.tmp-PID`, regular files) that writes killed before their rename
  /// left in `directory`: those of no live process on this host (a picture command writing into
  /// the run's images/ meanwhile keeps its own). For the run folder, by the holder of its lock.
  public static func removeLeftovers(in directory: String) {
    let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
    for name in names {
      guard let mark = name.range(of: ".tmp-", options: .backwards), mark.lowerBound > name.startIndex,
        let writer = Int32(name[mark.upperBound...]), writer > 0, kill(writer, 0) != 0, errno == ESRCH
      else { continue }
      var info = stat()
      let path = directory + "/" + name
      guard lstat(path, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { continue }
      unlink(path)
    }
  }

  /// Throws unless `path` is absent or (behind any links) a regular file.
  public static func requireRegularOrAbsent(_ path: String) throws {
    var info = stat()
    guard stat(path, &info) == 0 else { return }
    guard info.st_mode & S_IFMT == S_IFREG else {
      throw FileError.invalid(path: path, reason: "exists and is not a regular file (a device, a fifo or a directory): it cannot be written in place; give the path of a file")
    }
  }

  /// The directory `path` lies in.
  public static func parent(of path: String) -> String {
    guard let slash = path.lastIndex(of: "/") else { return "." }
    return slash == path.startIndex ? "/" : String(path[..<slash])
  }

  /// Puts `replacement` (a file or a directory, complete) at `path`, whose old copy, if any, goes.
  /// An existing `path` is swapped with `replacement` in one step (Linux's renameat2 with
  /// RENAME_EXCHANGE), so a crash leaves the old copy or the new one there, never neither; the old
  /// one, now at `replacement`, is then removed. A file system that cannot swap gets the old copy
  /// moved aside first (to `replacement` + `asideSuffix`): a short window in which `path` is missing,
  /// after which a failed second rename puts it back, and after a crash `restoreAside` does (the
  /// checkpoint clean-up). A failed fsync of the parent directory throws.
  public static func replace(_ path: String, with replacement: String) throws {
    func failure(_ what: String) -> FileError {
      .writeFailed(path: path, reason: "\(what): \(String(cString: strerror(errno)))")
    }
    var old = replacement
    if access(path, F_OK) == 0 {
      if exchange(replacement, path) != 0 {
        old = replacement + Self.asideSuffix
        guard rename(path, old) == 0 else { throw failure("cannot move the earlier copy aside") }
        guard rename(replacement, path) == 0 else {
          let error = failure("rename failed")
          rename(old, path)  // the earlier copy goes back
          throw error
        }
      }
      try? FileManager.default.removeItem(atPath: old)
    } else {
      guard rename(replacement, path) == 0 else { throw failure("rename failed") }
    }
    try syncDirectory(parent(of: path), for: path)
  }

  /// The name `replace` gives the earlier copy it moves aside (`replacement` + this) where it cannot
  /// swap: after a crash in that window the earlier copy is there, complete, and `path` is missing
  /// (`restoreAside` puts it back).
  public static let asideSuffix = ".old"

  /// After a crash inside `replace` on a file system that cannot swap: puts the earlier copy that
  /// was moved aside to `aside` back at `path`, if `path` is missing. True when it did.
  @discardableResult
  public static func restoreAside(_ aside: String, to path: String) -> Bool {
    guard access(path, F_OK) != 0, access(aside, F_OK) == 0 else { return false }
    return rename(aside, path) == 0
  }

  /// renameat2(AT_FDCWD, a, AT_FDCWD, b, RENAME_EXCHANGE): 0 when `a` and `b` swapped, else −1
  /// (errno says why; EINVAL where the file system cannot). Looked up at run time: Swift's Glibc
  /// module does not declare it (glibc 2.28 and later export it).
  public static func exchange(_ a: String, _ b: String) -> Int32 {
    typealias RenameAt2 = @convention(c) (Int32, UnsafePointer<CChar>, Int32, UnsafePointer<CChar>, UInt32) -> Int32
    guard let symbol = dlsym(nil, "renameat2") else {
      errno = ENOSYS
      return -1
    }
    let renameat2 = unsafeBitCast(symbol, to: RenameAt2.self)
    let renameExchange: UInt32 = 2  // <linux/fs.h>
    return renameat2(AT_FDCWD, a, AT_FDCWD, b, renameExchange)
  }

  /// Makes renames and creations inside `directory` durable. A failed fsync (EIO: the disk lost the
  /// write) is an error naming `path`, the file whose name was to be made durable; a file system that
  /// cannot sync a directory (EINVAL) is taken at its word.
  public static func syncDirectory(_ directory: String, for path: String) throws {
    let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
    guard fd >= 0 else {
      throw FileError.writeFailed(path: path, reason: "cannot open its directory to sync it: \(String(cString: strerror(errno)))")
    }
    defer { close(fd) }
    guard fsync(fd) == 0 || errno == EINVAL else {
      throw FileError.writeFailed(path: path, reason: "written, but its directory's fsync failed: \(String(cString: strerror(errno)))")
    }
  }

  /// Appends one line to a text file (metrics.jsonl, restarts.jsonl): a single write of the whole
  /// line, flushed to the disk before it returns, so a line is never lost behind a later checkpoint
  /// that survives a power cut (a resume does not write that line again); one line an epoch.
  public static func appendLine(_ line: String, to path: String) throws {
    let created = access(path, F_OK) != 0
    let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
    guard fd >= 0 else {
      throw FileError.writeFailed(path: path, reason: String(cString: strerror(errno)))
    }
    defer { close(fd) }
    var before = stat()
    let size = fstat(fd, &before) == 0 ? before.st_size : -1
    let bytes = Array((line + "\n").utf8)
    let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress!, $0.count) }
    guard n == bytes.count else {
      let reason = n < 0 ? String(cString: strerror(errno)) : "short write"
      // A torn line would swallow the next one appended (a full disk, freed later): cut it off.
      if n > 0 && size >= 0 { _ = ftruncate(fd, size) }
      throw FileError.writeFailed(path: path, reason: reason)
    }
    guard fdatasync(fd) == 0 else { throw FileError.writeFailed(path: path, reason: "fdatasync: \(String(cString: strerror(errno)))") }
    if created { try syncDirectory(parent(of: path), for: path) }  // the new file's name, too
  }
}
