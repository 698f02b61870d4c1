#if canImport(Glibc)
  import Glibc
#endif

/// How progress inside an epoch is shown.
public enum ProgressStyle: String, Sendable, CaseIterable, Codable {
  /// A bar on a terminal, plain lines otherwise. Under mpirun, standard output is a pseudo-terminal
  /// whatever the user's is, so `auto` means lines there.
  case auto
  case bar
  case lines
  case none
}

/// Output of rank zero. Other ranks get a silent console and only ever write errors, to stderr.
public final class Console {
  public let enabled: Bool
  public let style: ProgressStyle
  private var progressVisible = false

  /// `.auto` becomes a bar on a terminal and lines otherwise (the command line passes `lines` under an MPI launcher).
  public init(enabled: Bool, style: ProgressStyle) {
    self.enabled = enabled
    self.style = style == .auto ? (isatty(STDOUT_FILENO) != 0 ? .bar : .lines) : style
  }

  public func line(_ text: String) {
    guard enabled else { return }
    clearProgress()
    print(text)
    fflush(nil)  // all streams: Swift 6 forbids naming the global `stdout`
  }

  /// A progress line that rewrites itself (style `.bar`).
  public func progress(_ text: String) {
    guard enabled, style == .bar else { return }
    print("\r\u{1B}[2K" + text, terminator: "")
    fflush(nil)  // all streams: Swift 6 forbids naming the global `stdout`
    progressVisible = true
  }

  public func clearProgress() {
    guard progressVisible else { return }
    print("\r\u{1B}[2K", terminator: "")
    progressVisible = false
  }
}

/// A number with thousands separators: 134165 → "134,165".
public func grouped(_ value: Int) -> String {
  let digits = String(value.magnitude)
  var result = ""
  for (i, digit) in digits.enumerated() {
    if i > 0 && (digits.count - i) % 3 == 0 { result += "," }
    result.append(digit)
  }
  return value < 0 ? "-" + result : result
}

/// Fixed decimals without Foundation's formatter (plain Swift notation beyond 1e15, NaN and ∞).
public func fixed(_ value: Double, _ decimals: Int) -> String {
  guard value.isFinite, abs(value) < 1e15 else { return "\(value)" }
  var scale = 1.0
  for _ in 0..<decimals { scale *= 10 }
  let rounded = (abs(value) * scale).rounded()
  let whole = Int(rounded / scale)
  let fraction = Int(rounded - Double(whole) * scale)
  var text = "\(value < 0 && rounded > 0 ? "-" : "")\(whole)"
  if decimals > 0 {
    let digits = String(fraction)
    text += "." + String(repeating: "0", count: decimals - digits.count) + digits
  }
  return text
}

/// Progress as lines at a quarter, a half and three quarters of some work whose progress arrives in
/// uneven steps (the likelihood estimate's rounds).
public struct QuarterMarks {
  private var next = 1
  public init() {}

  /// The percentage done when `done` of `total` has crossed the next quarter since the last call
  /// that returned one, else nil.
  public mutating func crossed(_ done: Int, of total: Int) -> Int? {
    guard next < 4, total > 0, 4 * done >= next * total else { return nil }
    next = 4 * done / total + 1
    return 100 * done / total
  }
}
