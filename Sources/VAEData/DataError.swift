/// Everything that can be wrong with a data file, each naming the file and what to do.
public enum DataError: Error, CustomStringConvertible, Equatable {
  case missing(path: String, hint: String)
  case unreadable(path: String, reason: String)
  case corrupt(path: String, reason: String)
  case mismatch(reason: String)
  /// Settings that do not fit the data (too many validation images, too few images for a step).
  case setting(String)

  public var description: String {
    switch self {
    case .missing(let path, let hint): return "\(path): not found. \(hint)"
    case .unreadable(let path, let reason): return "\(path): cannot be read: \(reason)"
    case .corrupt(let path, let reason): return "\(path): \(reason)"
    case .mismatch(let reason): return reason
    case .setting(let message): return message
    }
  }
}
