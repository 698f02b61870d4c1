// Facts of this process and host: what the ranks report to each other (the memory and host lines),
// and what the start-up checks weigh (the memory a host has for the ranks it runs).
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

/// This host's physical memory in bytes, or this process's cgroup (v2) limit when that is lower (a
/// container, a Slurm job's --mem).
public func hostMemoryBytes() -> Double {
  let physical = Double(sysconf(Int32(_SC_PHYS_PAGES))) * Double(sysconf(Int32(_SC_PAGESIZE)))
  guard let groups = try? String(contentsOfFile: "/proc/self/cgroup", encoding: .utf8),
    let line = groups.split(separator: "\n").first(where: { $0.hasPrefix("0::") }),
    let text = try? String(contentsOfFile: "/sys/fs/cgroup" + line.dropFirst(3) + "/memory.max", encoding: .utf8),
    let limit = Double(text.trimmingCharacters(in: .whitespacesAndNewlines))  // "max": no limit
  else { return physical }
  return min(physical, limit)
}

/// The ranks of this job on this host, as the launcher says (Open MPI, PMIx, MPICH); 1 alone.
public func ranksOnThisHost() -> Int {
  environmentInteger(["OMPI_COMM_WORLD_LOCAL_SIZE", "PMIX_LOCAL_SIZE", "MPI_LOCALNRANKS"], where: { $0 >= 1 }) ?? 1
}

/// The first of the launcher's variables `names` that holds an integer `valid` accepts.
func environmentInteger(_ names: [String], where valid: (Int) -> Bool = { _ in true }) -> Int? {
  let environment = ProcessInfo.processInfo.environment
  return names.lazy.compactMap { environment[$0].flatMap(Int.init) }.first(where: valid)
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
