// Facts of this process and host that the ranks report to each other (the memory and host lines).
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
      return buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    }
    if let text, !text.hasPrefix("127.") { return text }
  }
  return nil
}

/// The number of CPUs this process may run on (the `Cpus_allowed` mask in /proc/self/status), which
/// is what an MPI launcher's core binding changes.
public func allowedCPUCount() -> Int? {
  guard let file = fopen("/proc/self/status", "r") else { return nil }
  defer { fclose(file) }
  var line = [CChar](repeating: 0, count: 4096)
  while fgets(&line, Int32(line.count), file) != nil {
    let text = line.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    guard text.hasPrefix("Cpus_allowed:") else { continue }
    let mask = text.dropFirst("Cpus_allowed:".count)
    return mask.reduce(0) { count, character in count + (character.hexDigitValue?.nonzeroBitCount ?? 0) }
  }
  return nil
}

/// The CPUs online on this host, whatever this process may run on.
public func onlineCPUCount() -> Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }
