// libFuzzer entry for the IDX reader (built by launch/fuzz.sh with the VAEData sources).
// The input is written to a file, as the reader only reads files, then read as images (3 dims) and
// as labels (1 dim). Errors are the expected outcome; crashes, hangs and huge allocations are bugs.
import Foundation

#if canImport(Glibc)
  import Glibc
#endif

let scratch = "/dev/shm/vae-dist-fuzz-idx-\(getpid())"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let fd = open(scratch, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
  guard fd >= 0 else { return 0 }
  _ = write(fd, data, size)
  close(fd)
  for rank in [3, 1] {
    if let contents = try? IDXFile.read(path: scratch, rank: rank) {
      precondition(contents.data.count == contents.itemIndices.count * contents.itemSize)
    }
  }
  _ = try? IDXFile.read(path: scratch, rank: 3, keep: { $0 % 2 == 0 })
  return 0
}
