import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// The process's peak resident set size (VmHWM) in KiB, or 0 where /proc is not available.
public func peakResidentKilobytes() -> Int {
  guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return 0 }
  for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
    return Int(line.dropFirst(6).trimmingCharacters(in: .whitespaces).split(separator: " ").first ?? "") ?? 0
  }
  return 0
}

/// The first IPv4 address of this host that is not loopback (what other hosts reach it by).
public func primaryIPv4Address() -> String? {
  var list: UnsafeMutablePointer<ifaddrs>?
  guard getifaddrs(&list) == 0, let first = list else { return nil }
  defer { freeifaddrs(list) }
  var entry: UnsafeMutablePointer<ifaddrs>? = first
  while let current = entry {
    defer { entry = current.pointee.ifa_next }
    guard let address = current.pointee.ifa_addr, address.pointee.sa_family == UInt16(AF_INET) else { continue }
    var buffer = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
    let text: String? = address.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { ipv4 in
      var raw = ipv4.pointee.sin_addr
      guard inet_ntop(AF_INET, &raw, &buffer, socklen_t(buffer.count)) != nil else { return nil }
      return String(cString: buffer)
    }
    if let text, !text.hasPrefix("127.") { return text }
  }
  return nil
}

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
