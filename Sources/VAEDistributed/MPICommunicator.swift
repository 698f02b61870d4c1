import _CMPIShim

#if canImport(Glibc)
  import Glibc
#endif

/// Open MPI's MPI_COMM_WORLD through the C shim.
///
/// Each collective is started non-blocking and polled: the waiting rank yields the CPU (ranks and
/// their Dispatch threads may share cores), and if the collective has not completed within
/// `stallTimeout` seconds it prints which rank waited in which phase and aborts the whole job, so a
/// stalled or lost peer never leaves the others hanging.
public final class MPICommunicator: Communicator {
  public let rank: Int
  public let size: Int
  public let hostName: String
  public var stallTimeout: Double
  public var rootWorkTimeout: Double
  public private(set) var waitingSeconds = 0.0

  /// True when an MPI launcher (mpirun/mpiexec, srun with PMI/PMIx) started this process.
  public static var launchedByMPI: Bool {
    let variables = ["OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE", "MPI_LOCALNRANKS"]
    return variables.contains { getenv($0) != nil }
  }

  /// The rank count the launcher put in the environment (Open MPI's, PMI's, Slurm's step), when it put one.
  public static var launchedRanks: Int? { environmentInteger(["OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "SLURM_STEP_NUM_TASKS"]) }

  /// Whether a launcher started this very process as one of its ranks: its parent is mpirun, Open
  /// MPI's or PRRTE's daemon, MPICH's proxy or Slurm's step daemon. Not so for a program that a
  /// script the launcher started runs (`mpirun -n 4 sh -c '…; vae-dist evaluate …'`), which inherits
  /// the launcher's variables all the same.
  public static var startedAsARank: Bool {
    guard launchedByMPI else { return false }
    let fd = open("/proc/\(getppid())/comm", O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var buffer = [UInt8](repeating: 0, count: 64)
    let count = read(fd, &buffer, buffer.count)
    guard count > 0 else { return false }
    let parent = String(decoding: buffer[0..<count].filter { $0 != 10 }, as: UTF8.self)
    return ["mpirun", "mpiexec", "orterun", "orted", "prterun", "prted", "hydra_pmi_proxy", "slurmstepd"].contains(parent)
  }

  /// This process's rank as the launcher put it in the environment, when it put one.
  public static var launchedRank: Int? { environmentInteger(["OMPI_COMM_WORLD_RANK", "PMIX_RANK", "PMI_RANK"]) }

  public init(stallTimeout: Double = 60, rootWorkTimeout: Double = 600) throws {
    var rank: Int32 = 0, size: Int32 = 0, funneled: Int32 = 0
    let code = vmpi_init(&rank, &size, &funneled)
    guard code == 0 else {
      throw CommunicationError(rank: -1, phase: "MPI initialization", reason: Self.errorString(code))
    }
    self.rank = Int(rank)
    self.size = Int(size)
    self.stallTimeout = stallTimeout
    self.rootWorkTimeout = rootWorkTimeout
    var name = [CChar](repeating: 0, count: 256)
    vmpi_processor_name(&name, Int32(name.count))
    hostName = name.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    guard funneled != 0 else {
      throw CommunicationError(
        rank: self.rank, phase: "MPI initialization",
        reason: "this MPI library does not provide MPI_THREAD_FUNNELED, which vae-dist needs")
    }
  }

  public var modeDescription: String { "MPI (Open MPI), \(size) rank\(size == 1 ? "" : "s")" }

  public func allreduce(_ values: UnsafeMutableBufferPointer<Int64>, _ operation: ReduceOperation, phase: @autoclosure () -> String) throws {
    try reduce(values.baseAddress, values.count, VMPI_INT64, operation, phase)
  }

  public func allreduce(_ values: UnsafeMutableBufferPointer<Double>, _ operation: ReduceOperation, phase: @autoclosure () -> String) throws {
    try reduce(values.baseAddress, values.count, VMPI_DOUBLE, operation, phase)
  }

  public func allreduce(_ values: UnsafeMutableBufferPointer<Float>, _ operation: ReduceOperation, phase: @autoclosure () -> String) throws {
    try reduce(values.baseAddress, values.count, VMPI_FLOAT, operation, phase)
  }

  public func broadcast(_ bytes: UnsafeMutableRawBufferPointer, root: Int, phase: @autoclosure () -> String) throws {
    guard bytes.count > 0 else { return }
    try check(vmpi_ibcast(bytes.baseAddress, Int32(bytes.count), Int32(root)), phase)
    try wait(phase)
  }

  public func abort(code: Int32) -> Never {
    vmpi_abort(code)
    exit(code)
  }

  public func finalize() { _ = vmpi_finalize() }

  private func reduce(
    _ pointer: UnsafeMutableRawPointer?, _ count: Int, _ type: vmpi_datatype, _ operation: ReduceOperation,
    _ phase: () -> String
  ) throws {
    guard count > 0 else { return }
    precondition(count <= Int(Int32.max))
    let op: vmpi_op = operation == .sum ? VMPI_SUM : operation == .max ? VMPI_MAX : VMPI_MIN
    try check(vmpi_iallreduce(pointer, Int32(count), type, op), phase)
    try wait(phase)
  }

  private func check(_ code: Int32, _ phase: () -> String) throws {
    guard code != 0 else { return }
    throw CommunicationError(rank: rank, phase: phase(), reason: Self.errorString(code))
  }

  private func wait(_ phase: () -> String) throws {
    let start = monotonicSeconds()
    defer { waitingSeconds += monotonicSeconds() - start }
    var polls = 0
    while true {
      var done: Int32 = 0
      try check(vmpi_test(&done), phase)
      if done != 0 { return }
      polls += 1
      // Non-blocking collectives progress only inside MPI calls on every rank, so a rank that sleeps
      // between polls delays each round of the algorithm for all. Yield (not sleep) for the first
      // 100 ms — a gradient allreduce's whole life — so that ranks sharing a core still run, then
      // sleep in short slices while a slow peer catches up.
      if polls < 64 || monotonicSeconds() - start < 0.1 {
        sched_yield()
      } else {
        usleep(500)
      }
      if polls % 64 == 0 && monotonicSeconds() - start > stallTimeout {
        let message =
          "vae-dist: rank \(rank) on \(hostName): waited \(Int(stallTimeout)) s in \(phase()) without the "
          + "other ranks arriving; a peer rank has stalled or died. Ending the whole job (status 3; raise "
          + "--stall-timeout if a step legitimately takes longer). A training run continues from its last "
          + "checkpoint with --resume (same --out), or restarts on its own when launched with --max-restarts K.\n"
        _ = message.withCString { write(STDERR_FILENO, $0, strlen($0)) }
        abort(code: FailureKind.peerLost.exitStatus)
      }
    }
  }

  static func errorString(_ code: Int32) -> String {
    var buffer = [CChar](repeating: 0, count: 512)
    vmpi_error_string(code, &buffer, Int32(buffer.count))
    return "MPI error \(code): \(buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })"
  }
}

public func monotonicSeconds() -> Double {
  var now = timespec()
  clock_gettime(CLOCK_MONOTONIC, &now)
  return Double(now.tv_sec) + Double(now.tv_nsec) * 1e-9
}
