// libFuzzer entry for the IDX reader (built by launch/fuzz.sh with the VAEData sources).
// The input is written to a file, as the reader only reads files, then read as images (3 dims) and
// as labels (1 dim), and its CRC-32 taken. Errors are the expected outcome; crashes, hangs and huge allocations are bugs.
import Foundation
import _CZlib

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
    let crc = try? IDXFile.contentCRC32(path: scratch, rank: rank)
    if let contents = try? IDXFile.read(path: scratch, rank: rank) {
      precondition(contents.data.count == contents.itemIndices.count * contents.itemSize)
      // A file that reads whole has a CRC-32; a plain one, that of its header and data. (A gzip
      // file's is its trailer's when that claims the right length, which trailing garbage can fake.)
      precondition(crc != nil)
      guard size < 2 || data[0] != 0x1f || data[1] != 0x8b else { continue }
      var bytes: [UInt8] = [0, 0, 8, UInt8(rank)]
      for d in contents.dimensions { bytes += [UInt8(d >> 24 & 255), UInt8(d >> 16 & 255), UInt8(d >> 8 & 255), UInt8(d & 255)] }
      bytes += contents.data
      precondition(crc == bytes.withUnsafeBufferPointer { UInt32(_CZlib.crc32(0, $0.baseAddress, UInt32($0.count))) })
    }
  }
  _ = try? IDXFile.read(path: scratch, rank: 3, keep: { $0 % 2 == 0 })
  return 0
}
