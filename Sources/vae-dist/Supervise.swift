import ArgumentParser
import VAETraining
import VAESupervisor

#if canImport(Glibc)
  import Glibc
#endif

struct Supervise: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Run a training job and restart it with --resume when a rank, a host or mpirun fails.",
    discussion: """
      Runs COMMAND (a launcher: launch/mpirun-local.sh, launch/mpirun-hosts.sh, or mpirun itself with \
      `vae-dist train …`). When it ends by a fault a restart can fix — a killed or stalled rank, a lost \
      host, a killed mpirun — it is started again with --resume after a short back-off, up to \
      --max-restarts times; since any rank count resumes to the same bits, the run still ends on the \
      bits of one that never failed. The resume is from the job's own newest checkpoint in its --out \
      (give it as --out DIR in COMMAND, or use the default); before the job has one, the same command \
      starts it afresh. Errors a restart cannot fix (exit statuses 2 settings, 4 data, \
      5 output, 6 non-finite loss, 7 refused; 126 and 127, a command that cannot run) end it at once. SIGINT, SIGTERM or SIGUSR1 (Slurm's \
      warning before a time limit) is passed on as a clean stop and never restarts; during a back-off, \
      it ends the supervisor with the failed attempt's status. Each restart is a line and a record in DIR/restarts.jsonl (DIR: the \
      job's --out). The launchers take --max-restarts K and run themselves under this command.

      Example: vae-dist supervise --max-restarts 5 -- launch/mpirun-local.sh -n 4 train --out run1
      """)

  @Option(help: ArgumentHelp("Restarts allowed before giving up.", valueName: "k")) var maxRestarts = 3
  @Option(help: ArgumentHelp("Seconds to wait before a restart (times the restart's number, up to 5×).", valueName: "seconds"))
  var backoff = 2.0
  @Option(help: ArgumentHelp(
    "Let the job's rank count (its -n) drop one at a restart, down to this many, when it failed before reaching a step.",
    valueName: "n"))
  var minRanks: Int?
  @Option(help: ArgumentHelp(
    "The job's hostfile: before each start, hosts that do not answer through --rsh-agent are left out (and rejoin when they answer).",
    valueName: "file"))
  var hostfile: String?
  @Option(help: ArgumentHelp("How to reach a host for the check: PROGRAM HOST true.", valueName: "program"))
  var rshAgent = "ssh"
  @Argument(parsing: .captureForPassthrough, help: "The job's command line (after --).") var command: [String] = []

  func validate() throws {
    // What ArgumentParser passed through before any --: help, or an option supervise lacks (a typo
    // that would otherwise run as the job's command and fail as one that cannot run).
    if let first = command.first, first != "--", first.hasPrefix("-") {
      if first == "-h" || first == "--help" { throw CleanExit.helpRequest(self) }
      throw ValidationError("unknown option '\(first)': supervise takes the options in --help, and the job's command after --")
    }
    guard maxRestarts >= 0 else { throw ValidationError("--max-restarts must be 0 or more (got \(maxRestarts)).") }
    guard backoff >= 0 && backoff <= 600 else { throw ValidationError("--backoff must be between 0 and 600 seconds.") }
    if let minRanks, minRanks < 1 { throw ValidationError("--min-ranks must be at least 1 (got \(minRanks)).") }
    if let hostfile {
      let lines: [Substring]
      do { lines = try Supervisor.hostLines(hostfile) } catch { throw ValidationError("--hostfile: \(error)") }
      guard !lines.isEmpty else { throw ValidationError("--hostfile: \(hostfile) names no host") }
      if let line = lines.first(where: { Supervisor.slots($0) == nil }) {
        throw ValidationError("--hostfile: \(hostfile): the line '\(line)' needs slots=N with N from 1 to \(Supervisor.maximumSlots)")
      }
    }
    let job = Array(command.drop { $0 == "--" })
    guard !job.isEmpty else {
      throw ValidationError("give the job's command after --, e.g. -- launch/mpirun-local.sh -n 4 train --out run1")
    }
    // What the two options change in the job's command must be there, spelt as they look for it;
    // otherwise every restart would run the same failing command.
    if hostfile != nil && Supervisor.value(of: "--hostfile", in: job) == nil {
      throw ValidationError(
        "--hostfile: the job's command has no --hostfile FILE to replace with the hosts that answer (write it as --hostfile, not -hostfile or --machinefile).")
    }
    if hostfile == nil && rshAgent != "ssh" {
      throw ValidationError("--rsh-agent reaches the hosts of --hostfile, and none is given: add --hostfile FILE, or drop it.")
    }
    if minRanks != nil && Supervisor.value(of: "-n", in: job) == nil {
      throw ValidationError("--min-ranks: the job's command has no -n N to lower (write the rank count as -n N, not -np N).")
    }
    if let minRanks, let n = Supervisor.value(of: "-n", in: job).flatMap(Int.init), minRanks > n {
      throw ValidationError("--min-ranks \(minRanks) is above the job's -n \(n): a restart only lowers the rank count. Give at most \(n), or drop it.")
    }
  }

  func run() throws {
    var settings = Supervisor.Settings(command: Array(command.drop { $0 == "--" }))
    settings.maxRestarts = maxRestarts
    settings.backoff = backoff
    settings.minRanks = minRanks
    settings.hostfile = hostfile
    settings.rshAgent = rshAgent
    if let grace = Hooks.launcherGrace { settings.launcherGrace = grace }
    let status = Supervisor(settings: settings).run()
    if status != 0 { throw ExitCode(status) }
  }
}
