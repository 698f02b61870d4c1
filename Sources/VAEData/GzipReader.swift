import _CZlib

#if canImport(Glibc)
  import Glibc
#endif

/// Reads a file through zlib's gz* interface, which inflates gzip streams and passes plain files
/// through unchanged, so IDX files may be compressed or not.
final class GzipReader {
  let path: String
  private let file: gzFile
  private(set) var bytesRead = 0

  init(path: String) throws {
    self.path = path
    // A fifo would block the open until some writer came; a device could stream forever.
    var info = stat()
    if stat(path, &info) == 0 && info.st_mode & S_IFMT != S_IFREG {
      throw DataError.unreadable(path: path, reason: "not a regular file (a fifo, a device or a directory); --data needs IDX files, plain or gzip")
    }
    guard let file = gzopen(path, "rb") else {
      throw DataError.unreadable(path: path, reason: String(cString: strerror(errno)))
    }
    gzbuffer(file, 1 << 17)
    self.file = file
  }

  deinit { gzclose_r(file) }

  /// Reads up to `count` bytes; fewer only at the end of the data. Corrupt compressed data throws.
  func read(into buffer: UnsafeMutableRawPointer, count: Int) throws -> Int {
    var total = 0
    while total < count {
      let chunk = UInt32(min(count - total, 1 << 30))
      let got = gzread(file, buffer + total, chunk)
      if got < 0 { throw DataError.corrupt(path: path, reason: "gzip data is corrupt (\(zlibMessage()))") }
      if got == 0 { break }
      total += Int(got)
    }
    bytesRead += total
    if total < count {
      // zlib reports a stream cut short as Z_BUF_ERROR only through gzerror.
      var code: Int32 = 0
      gzerror(file, &code)
      if code != Z_OK && code != Z_STREAM_END {
        throw DataError.corrupt(path: path, reason: "gzip data is truncated or corrupt (\(zlibMessage()))")
      }
    }
    return total
  }

  /// Confirms the data ends here: no trailing bytes, and the gzip trailer (CRC, length) checks out.
  func expectEnd(describing expected: String) throws {
    var probe: UInt8 = 0
    let got = gzread(file, &probe, 1)
    if got < 0 { throw DataError.corrupt(path: path, reason: "gzip data is corrupt (\(zlibMessage()))") }
    if got > 0 {
      throw DataError.corrupt(path: path, reason: "has data after the \(expected) its header announces")
    }
    var code: Int32 = 0
    gzerror(file, &code)
    if code != Z_OK && code != Z_STREAM_END {
      throw DataError.corrupt(path: path, reason: "gzip data is truncated or corrupt (\(zlibMessage()))")
    }
  }

  private func zlibMessage() -> String {
    var code: Int32 = 0
    guard let message = gzerror(file, &code) else { return "zlib error \(code)" }
    return String(cString: message)
  }
}
