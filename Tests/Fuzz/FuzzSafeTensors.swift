// libFuzzer entry for the safetensors reader (built by launch/fuzz.sh with VAEFiles' format files).
// Errors are the expected outcome; crashes, hangs and huge allocations are bugs.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSafeTensors(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
  let bytes = Array(UnsafeBufferPointer(start: data, count: size))
  if let file = try? SafeTensors.decode(bytes, path: "fuzz-input") {
    // Whatever decodes must encode and decode back to the same tensors.
    let again = try! SafeTensors.decode(SafeTensors.encode(file), path: "re-encoded")
    precondition(again.tensors.map(\.name) == file.tensors.map(\.name))
  }
  return 0
}
