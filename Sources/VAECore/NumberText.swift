#if canImport(Glibc)
  import Glibc
#endif

/// A setting's value for a person (banners, schedules, refusals): at most 6 significant digits and
/// no trailing zeros, as C's %g writes it: 0.001, 1, 0.00282843, 1e-05 (Swift's own text of a Double
/// gives 1.0 and 0.0028284271247461905).
public func shortNumber(_ value: Double) -> String {
  var buffer = [CChar](repeating: 0, count: 32)
  _ = withVaList([value]) { vsnprintf(&buffer, buffer.count, "%g", $0) }
  return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}
