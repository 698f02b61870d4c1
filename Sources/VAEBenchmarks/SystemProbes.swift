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

/// "AMD EPYC 7B13 (family 25, model 1)": /proc/cpuinfo's model name, family and model, which every
/// performance figure is printed with (the CPU under these machines changes between sessions).
public func cpuDescription() -> String {
  guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return "unknown CPU" }
  var fields: [String: String] = [:]
  for line in text.split(separator: "\n") {
    if line.isEmpty { break }
    let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
    if parts.count == 2, fields[parts[0]] == nil { fields[parts[0]] = parts[1] }
  }
  return "\(fields["model name"] ?? "unknown CPU") (family \(fields["cpu family"] ?? "?"), model \(fields["model"] ?? "?"))"
}
