import Foundation
import VAEDistributed

#if canImport(Glibc)
  import Glibc
#endif

/// DIR/.lock: the exclusive `flock` a live run holds on its --out, taken by rank zero before it
/// writes anything there and held until the process ends. A second run into the same --out is
/// refused at once (exit 7) with the holder's host, pid and start time, which the file holds as
/// text. The kernel drops the lock when the process ends, however it ends (kill -9 included), so a
/// crashed run leaves nothing that blocks `--resume`. `vae-dist supervise` restarts take it the same
/// way, after the job they replace is gone. See docs/checkpoints.md for shared file systems.
public final class RunLock {
  let path: String
  private var descriptor: Int32

  /// Takes the lock of `directory` (which must exist), or throws the refusal naming its holder.
  init(directory: String) throws {
    path = directory + "/.lock"
    // Not through a link: a .lock copied as one (cp -rs) would lock, and overwrite, another run's.
    let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o644)
    guard fd >= 0 else {
      let reason = errno == ELOOP ? "it is a symbolic link; remove it" : String(cString: strerror(errno)) + ". Pass a writable --out"
      throw TrainingError.output("--out \(directory): cannot create \(path): \(reason).")
    }
    var status = stat()
    guard fstat(fd, &status) == 0, status.st_mode & S_IFMT == S_IFREG else {
      close(fd)
      throw TrainingError.output("--out \(directory): \(path) is not a regular file; remove it.")
    }
    guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
      let busy = errno == EWOULDBLOCK
      let reason = String(cString: strerror(errno))
      let holder = Self.holder(fd)
      close(fd)
      guard busy else {
        throw TrainingError.output(
          "--out \(directory): cannot lock \(path) (\(reason)); the file system may not support flock (see docs/checkpoints.md).")
      }
      throw TrainingError.refused(
        "--out \(directory) is in use by a live run\(holder.map { " (\($0))" } ?? ""): two runs must not write one --out. "
          + "Wait for it to end, stop it (a checkpoint is kept; continue with --resume), or pass another --out.")
    }
    descriptor = fd
    let started = ISO8601DateFormatter().string(from: Date())
    let text = Array("host \(localHostName()), pid \(getpid()), started \(started)\n".utf8)
    ftruncate(fd, 0)
    _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
  }

  /// Gives the lock up (once; later calls do nothing). The run calls it when it ends, so a run in the
  /// same process (tests, a resume after a stop) finds --out free even while something still holds
  /// the ended trainer.
  func release() {
    guard descriptor >= 0 else { return }
    close(descriptor)  // closing the last descriptor releases the lock
    descriptor = -1
  }

  deinit { release() }

  /// The holder of `directory`'s lock while a live process holds it: its line ("" when it wrote
  /// none); nil when the lock is free or there is no DIR/.lock. Tested with a shared lock let go at
  /// once (a read-only descriptor may take one, over NFS too), so a run that starts meanwhile is
  /// refused only for the instant of the test.
  public static func liveHolder(of directory: String) -> String? {
    // Not blocking: a fifo in its place would hold the supervisor for ever (the run refuses one).
    let fd = open(directory + "/.lock", O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
    guard fd >= 0 else { return nil }
    defer { close(fd) }  // and with it the shared lock, if taken
    var status = stat()
    guard fstat(fd, &status) == 0, status.st_mode & S_IFMT == S_IFREG else { return nil }
    guard flock(fd, LOCK_SH | LOCK_NB) != 0, errno == EWOULDBLOCK else { return nil }
    return holder(fd) ?? ""
  }

  /// The holder's line, as it wrote it.
  private static func holder(_ fd: Int32) -> String? {
    var buffer = [UInt8](repeating: 0, count: 512)
    let n = buffer.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
    guard n > 0 else { return nil }
    let text = String(decoding: buffer.prefix(n), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
    return text.isEmpty ? nil : text
  }
}
