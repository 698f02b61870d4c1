/// What can be wrong with a file vae-dist reads or writes (checkpoints, models, metrics, pictures),
/// each naming the file.
public enum FileError: Error, CustomStringConvertible, Equatable {
  case unreadable(path: String)
  case notSafeTensors(path: String, reason: String)
  case invalid(path: String, reason: String)
  case writeFailed(path: String, reason: String)
  case incompatible(path: String, reason: String)

  public var description: String {
    switch self {
    case .unreadable(let path): return "\(path): cannot be read (missing or not a file)"
    case .notSafeTensors(let path, let reason): return "\(path): not a valid safetensors file: \(reason)"
    case .invalid(let path, let reason): return "\(path): \(reason)"
    case .writeFailed(let path, let reason):
      return "\(path): could not be written: \(reason). Check that its directory exists, is writable and has free space."
    case .incompatible(let path, let reason): return "\(path): \(reason)"
    }
  }
}
