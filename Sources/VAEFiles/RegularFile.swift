import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Whole files a user names (a checkpoint, metrics.jsonl, a CSV, a hostfile), read only when they
/// are regular files of a bounded size: open(2) of a fifo blocks for ever, and a device such as
/// /dev/zero would be read until memory runs out.
public enum RegularFile {
  /// The bytes of `path`, or a `FileError` naming it; `kind` says what it should have been ("a
  /// .safetensors file"), `limit` is the most bytes such a file can hold.
  public static func bytes(_ path: String, kind: String, limit: Int) throws -> [UInt8] {
    guard !path.isEmpty else { throw FileError.invalid(path: "\"\"", reason: "an empty path; give the path of \(kind)") }
    var info = stat()
    guard stat(path, &info) == 0 else {
      // Missing, or in the way: a folder that may not be searched, a loop of links.
      guard errno == ENOENT else { throw FileError.invalid(path: path, reason: "cannot be read: \(String(cString: strerror(errno)))") }
      throw FileError.unreadable(path: path)
    }
    guard info.st_mode & S_IFMT == S_IFREG else {
      throw FileError.invalid(path: path, reason: "is not a regular file (a fifo, a device or a directory); give the path of \(kind)")
    }
    guard info.st_size <= limit else {
      throw FileError.invalid(path: path, reason: "is \(info.st_size) bytes, more than \(kind) can hold (\(limit) at most)")
    }
    guard let data = FileManager.default.contents(atPath: path) else {
      // It exists and is a regular file: say why it could not be read (a mode that forbids it).
      let reason = access(path, R_OK) != 0 ? String(cString: strerror(errno)) : "the read failed"
      throw FileError.invalid(path: path, reason: "cannot be read: \(reason)")
    }
    return [UInt8](data)
  }

  /// The text of `path` as UTF-8 (invalid bytes replaced), checked as `bytes` checks it.
  public static func text(_ path: String, kind: String, limit: Int) throws -> String {
    String(decoding: try bytes(path, kind: kind, limit: limit), as: UTF8.self)
  }
}
