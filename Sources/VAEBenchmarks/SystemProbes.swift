import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// Seconds since this process started (from /proc: its start time against the boot clock).
public func secondsSinceProcessStart() -> Double? {
  guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
    let close = stat.lastIndex(of: ")")
  else { return nil }
  let fields = stat[stat.index(after: close)...].split(separator: " ")
  guard fields.count > 19, let ticks = Double(fields[19]) else { return nil }  // field 22: starttime
  var now = timespec()
  clock_gettime(CLOCK_BOOTTIME, &now)
  let hertz = Double(sysconf(Int32(_SC_CLK_TCK)))
  return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9 - ticks / hertz
}

