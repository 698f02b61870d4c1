import Foundation

#if canImport(Glibc)
  import Glibc
#endif

/// A child process started with posix_spawn and waited for with waitpid, its output read through
/// two pipes. Not Foundation's Process: on Linux that learns of a child's end from a socket the
/// child inherits, so only once every descendant holding it has ended too
/// (swift-corelibs-foundation issue 4795). A rank or an ssh that outlived mpirun kept the
/// supervisor waiting for it, however long it lived.
struct SpawnedProcess {
  struct Failure: Error, CustomStringConvertible {
    var description: String
  }

  let pid: pid_t
  /// The read ends of the child's stdout and stderr pipes still open, each with where it goes.
  private var pipes: [(descriptor: Int32, console: Int32)] = []
  private(set) var status: Int32?

  /// Starts `arguments` (its first found on PATH, through /usr/bin/env) with `environment`, the
  /// signals in `defaultSignals` back at their default action (a supervisor ignores them; an
  /// ignored signal stays ignored across exec), in a process group of its own, and no descriptor
  /// of ours but 0, 1 and 2. With
  /// `capture`, its stdout and stderr come through pipes (`relay`); without, they go to /dev/null.
  init(_ arguments: [String], environment: [String: String], defaultSignals: [Int32], capture: Bool) throws(Failure) {
    var actions = posix_spawn_file_actions_t()
    var attributes = posix_spawnattr_t()
    posix_spawn_file_actions_init(&actions)
    posix_spawnattr_init(&attributes)
    defer {
      posix_spawn_file_actions_destroy(&actions)
      posix_spawnattr_destroy(&attributes)
    }
    Self.closeOnExec()
    var writeEnds: [Int32] = []
    defer { writeEnds.forEach { _ = close($0) } }
    if capture {
      for (target, console) in [(STDOUT_FILENO, STDOUT_FILENO), (STDERR_FILENO, STDERR_FILENO)] {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else {
          pipes.forEach { _ = close($0.descriptor) }
          throw Failure(description: "cannot make a pipe: \(String(cString: strerror(errno)))")
        }
        // Close-on-exec (one thread spawns, so no other child can catch them before it is set).
        ends.forEach { _ = fcntl($0, F_SETFD, FD_CLOEXEC) }
        pipes.append((ends[0], console))
        writeEnds.append(ends[1])
        posix_spawn_file_actions_adddup2(&actions, ends[1], target)  // dup2 clears close-on-exec
      }
    } else {
      for target in [STDOUT_FILENO, STDERR_FILENO] {
        posix_spawn_file_actions_addopen(&actions, target, "/dev/null", O_WRONLY, 0)
      }
    }
    var signals = sigset_t(), none = sigset_t()
    sigemptyset(&signals)
    sigemptyset(&none)
    for number in defaultSignals { sigaddset(&signals, number) }
    posix_spawnattr_setsigdefault(&attributes, &signals)
    posix_spawnattr_setsigmask(&attributes, &none)
    // Its own process group, as Foundation's Process gave it: the terminal's Ctrl-C reaches the
    // supervisor alone, which passes on one clean stop (a second signal to the job would abort it).
    posix_spawnattr_setpgroup(&attributes, 0)
    posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETPGROUP))

    let argv = (["/usr/bin/env"] + arguments).map { strdup($0) } + [nil]
    let envp = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
    defer { (argv + envp).forEach { free($0) } }
    var pid: pid_t = 0
    let code = posix_spawn(&pid, "/usr/bin/env", &actions, &attributes, argv, envp)
    guard code == 0 else {
      pipes.forEach { _ = close($0.descriptor) }
      throw Failure(description: String(cString: strerror(code)))
    }
    self.pid = pid
  }

  /// Marks every descriptor of this process above 2 close-on-exec: a job must not hold what the
  /// supervisor was given (a parent's pipe, or the socket by which a Foundation parent learns of the
  /// supervisor's end, would keep that parent waiting for the job's leftovers).
  private static func closeOnExec() {
    for entry in (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? [] {
      if let descriptor = Int32(entry), descriptor > 2 { _ = fcntl(descriptor, F_SETFD, FD_CLOEXEC) }
    }
  }

  /// Passes what the child wrote to the console (where the supervisor's own output goes) and into
  /// `tail`, waiting up to `seconds` for something to come. False once both pipes have ended (every
  /// process holding them gone), at once.
  @discardableResult
  mutating func relay(waiting seconds: Double, into tail: inout TranscriptTail) -> Bool {
    guard !pipes.isEmpty else { return false }
    var descriptors = pipes.map { pollfd(fd: $0.descriptor, events: Int16(POLLIN), revents: 0) }
    guard poll(&descriptors, nfds_t(descriptors.count), Int32(max(0, seconds) * 1000)) > 0 else { return true }
    var buffer = [UInt8](repeating: 0, count: 65_536)
    var ended: [Int32] = []
    for (index, ready) in descriptors.enumerated() where ready.revents != 0 {
      let count = read(ready.fd, &buffer, buffer.count)
      if count < 0 && (errno == EINTR || errno == EAGAIN) { continue }
      guard count > 0 else {  // the end, or a read error: nothing more comes from this pipe
        ended.append(ready.fd)
        continue
      }
      var written = 0
      while written < count {
        let n = buffer.withUnsafeBytes { write(pipes[index].console, $0.baseAddress! + written, count - written) }
        if n <= 0 && errno != EINTR { break }  // the console is gone (EPIPE: SIGPIPE is ignored): the tail still gets it
        written += max(0, n)
      }
      tail.append(Data(buffer[..<count]))
    }
    for descriptor in ended { close(descriptor) }
    pipes.removeAll { ended.contains($0.descriptor) }
    return !pipes.isEmpty
  }

  /// Closes what is left of the pipes (a process that escaped the supervisor still holds them).
  mutating func closePipes() {
    pipes.forEach { _ = close($0.descriptor) }
    pipes = []
  }

  /// The exit status as a shell gives it (128 + the signal's number for a killed child), nil while
  /// it runs; with `blocking`, waits for it.
  @discardableResult
  mutating func reap(blocking: Bool) -> Int32? {
    if let status { return status }
    var raw: Int32 = 0
    while true {
      let result = waitpid(pid, &raw, blocking ? 0 : WNOHANG)
      if result == pid { break }
      if result == 0 { return nil }
      if errno == EINTR { continue }
      status = 127  // not our child any more (cannot happen): as a command that cannot be run
      return status
    }
    let signal = raw & 0x7f
    status = signal == 0 ? (raw >> 8) & 0xff : 128 + signal
    return status
  }
}
