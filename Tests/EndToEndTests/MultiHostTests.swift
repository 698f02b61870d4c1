import Foundation
import XCTest

/// vae-dist across "hosts": Linux network namespaces on this machine, each with its own address on a
/// private test subnet joined by a bridge (launch/netns-hosts.sh). Open MPI starts the ranks inside
/// them through launch/netns-agent.sh, so the ranks talk TCP between addresses, not shared memory.
final class MultiHostTests: XCTestCase {
  static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()
  static func script(_ name: String) -> String { root.appendingPathComponent("launch/\(name)").path }

  var data = ""

  override func setUpWithError() throws {
    data = try Harness.smallRealDataset()
    guard getuid() == 0 else { throw XCTSkip("network namespaces need root; skipping the multi-host tests") }
    let check = try Harness.run(Self.script("netns-hosts.sh"), ["check"], timeout: 30)
    guard check.status == 0 else {
      throw XCTSkip("this kernel or sandbox does not allow network namespaces (ip netns add failed); skipping")
    }
    let up = try Harness.run(Self.script("netns-hosts.sh"), ["up", "3"], timeout: 60)
    XCTAssertEqual(up.status, 0, up.all)
  }

  override func tearDownWithError() throws {
    _ = try? Harness.run(Self.script("netns-hosts.sh"), ["down", "3"], timeout: 60)
  }

  func hostfile(_ hosts: Int) throws -> String {
    let path = temporaryDirectory() + "/hosts"
    try (1...hosts).map { "10.213.0.\(10 + $0) slots=1" }.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
    return path
  }

  func onHosts(
    _ hosts: Int, _ arguments: [String], timeout: Double = 300, environment: [String: String] = [:],
    onStart: ((Process) -> Void)? = nil
  ) throws -> Harness.Result {
    try Harness.run(
      Self.script("mpirun-hosts.sh"),
      ["--hostfile", try hostfile(hosts), "--rsh-agent", Self.script("netns-agent.sh"), "--network", "10.213.0.0/24",
       "--binary", try Harness.requireBinary(), "--threads", "1"] + arguments,
      timeout: timeout, environment: environment, onStart: onStart)
  }

  func common(_ out: String) -> [String] {
    ["--data", data, "--seed", "11", "--out", out, "--progress", "none", "--iw-samples", "0", "--checkpoint-every", "5"]
  }

  func testThreeHostsMatchTheSingleProcess() throws {
    let alone = temporaryDirectory()
    XCTAssertEqual(try Harness.vaeDist(common(alone) + ["--max-steps", "30"]).status, 0)
    let out = temporaryDirectory()
    let result = try onHosts(3, common(out) + ["--max-steps", "30", "--check-sync", "10"])
    XCTAssertEqual(result.status, 0, result.all)
    let hosts = result.output.split(separator: "\n").first { $0.contains("  hosts ") } ?? ""
    print("multi-host run: \(hosts.trimmingCharacters(in: .whitespaces))")
    for (rank, address) in ["10.213.0.11", "10.213.0.12", "10.213.0.13"].enumerated() {
      XCTAssertTrue(hosts.contains("rank \(rank) vae-h\(rank + 1) (\(address))"), result.output)
    }
    XCTAssertTrue(
      try Harness.safetensors(out + "/model.safetensors").data == Harness.safetensors(alone + "/model.safetensors").data,
      "parameters trained over TCP between three hosts differ from the single process's")
  }

  func testKilledHostEndsTheJobAndResumeCompletes() throws {
    let alone = temporaryDirectory()
    XCTAssertEqual(try Harness.vaeDist(common(alone) + ["--max-steps", "40"]).status, 0)
    let out = temporaryDirectory()
    var killedAt = Date()
    let result = try onHosts(2, common(out) + ["--epochs", "1000"], timeout: 120) { _ in
      for _ in 0..<1500 where (try? FileManager.default.contentsOfDirectory(atPath: out + "/checkpoints"))?.count ?? 0 < 2 {
        usleep(20_000)
      }
      killedAt = Date()
      // Every vae-dist process in the second host's namespace.
      let pids = (try? Harness.run("/usr/sbin/ip", ["netns", "pids", "vae-h2"], timeout: 10).output) ?? ""
      for pid in pids.split(separator: "\n").compactMap({ pid_t($0) }) {
        if let command = try? String(contentsOfFile: "/proc/\(pid)/comm", encoding: .utf8), command.hasPrefix("vae-dist") {
          kill(pid, SIGKILL)
        }
      }
    }
    let seconds = Date().timeIntervalSince(killedAt)
    print("host vae-h2 killed: the job ended \(seconds) s later, status \(result.status)")
    XCTAssertNotEqual(result.status, 0)
    XCTAssertLessThan(seconds, 10)
    XCTAssertTrue(result.all.contains("rank 1"), result.all)
    XCTAssertTrue(result.all.contains("10.213.0.12"), "the message names the host: \(result.all)")
    let resumed = try onHosts(2, common(out) + ["--max-steps", "40", "--resume"])
    XCTAssertEqual(resumed.status, 0, resumed.all)
    XCTAssertTrue(resumed.output.contains("resumed"), resumed.output)
    XCTAssertTrue(
      try Harness.safetensors(out + "/model.safetensors").data == Harness.safetensors(alone + "/model.safetensors").data,
      "the resumed run differs from the uninterrupted one")
  }
}

extension MultiHostTests {
  /// A host removed mid-run (its processes killed, its namespace deleted) under the supervisor
  /// (`mpirun-hosts.sh --max-restarts`): the host fails the reachability check, the job resumes on
  /// the two hosts left and ends on the bits of the single process.
  func testRemovedHostJobFinishesOnTheRemainingHosts() throws {
    let alone = temporaryDirectory()
    XCTAssertEqual(try Harness.vaeDist(common(alone) + ["--max-steps", "60"]).status, 0)
    let out = temporaryDirectory()
    // mpirun waits for the removed host's daemon after its ranks end; the supervisor ends it after a
    // grace of 30 s, 3 here (SuperviseRunTests checks the grace itself).
    let result = try onHosts(
      3, ["--max-restarts", "2"] + common(out) + ["--max-steps", "60"], timeout: 300,
      environment: ["VAE_DIST_TEST_LAUNCHER_GRACE": "3"]
    ) { _ in
      for _ in 0..<3000 where (try? FileManager.default.contentsOfDirectory(atPath: out + "/checkpoints"))?.count ?? 0 < 2 {
        usleep(20_000)
      }
      let pids = (try? Harness.run("/usr/sbin/ip", ["netns", "pids", "vae-h3"], timeout: 10).output) ?? ""
      for pid in pids.split(separator: "\n").compactMap({ pid_t($0) }) { kill(pid, SIGKILL) }
      _ = try? Harness.run("/usr/sbin/ip", ["netns", "del", "vae-h3"], timeout: 10)
    }
    XCTAssertEqual(result.status, 0, result.all)
    XCTAssertTrue(result.all.contains("left out (unreachable): 10.213.0.13"), result.all)
    XCTAssertTrue(result.all.contains("restart 1/2"), result.all)
    let restarts = try String(contentsOfFile: out + "/restarts.jsonl", encoding: .utf8)
    XCTAssertTrue(restarts.contains("\"hosts\":[\"10.213.0.11\",\"10.213.0.12\"]"), restarts)
    XCTAssertEqual(
      try Harness.safetensors(out + "/model.safetensors").data, try Harness.safetensors(alone + "/model.safetensors").data,
      "the run that lost a host differs from the single process")
  }

  /// launch/scaling-benchmark.sh --hostfile: one rank per host over TCP, 1, 2 and 3 hosts, one round.
  func testScalingBenchmarkOverTheHosts() throws {
    let out = temporaryDirectory()
    let result = try Harness.run(
      Self.script("scaling-benchmark.sh"),
      ["--hostfile", try hostfile(3), "--rsh-agent", Self.script("netns-agent.sh"), "--network", "10.213.0.0/24",
       "--rounds", "1", "--steps", "4", "--warmup", "1", "--out", out],
      timeout: 600, environment: ["VAE_DIST_BINARY": try Harness.requireBinary()])
    XCTAssertEqual(result.status, 0, result.all)
    let table = try String(contentsOfFile: out + "/results.md", encoding: .utf8)
    print(table)
    for layout in ["| strong | 1 × 1 |", "| strong | 2 × 1 |", "| strong | 3 × 1 |", "| weak | 3 × 1 |"] {
      XCTAssertTrue(table.contains(layout), "\(layout) missing:\n\(table)")
    }
    XCTAssertTrue(table.contains("3 hosts of"), table)
    for picture in ["strong-throughput.png", "weak-efficiency.png", "projection.png"] {
      let bytes = try Data(contentsOf: URL(fileURLWithPath: out + "/" + picture))
      XCTAssertEqual(Array(bytes.prefix(4)), [0x89, 0x50, 0x4E, 0x47], "\(picture) is not a PNG")
    }
  }
}

/// The cluster launch scripts print the exact command they would run.
final class LaunchScriptTests: XCTestCase {
  func testSlurmDryRun() throws {
    let script = MultiHostTests.script("slurm.sbatch")
    let process = try Harness.run("/usr/bin/env", ["SLURM_JOB_NUM_NODES=8", "SLURM_CPUS_ON_NODE=32", "VAE_DIST_BINARY=/opt/vae-dist",
                                                   "bash", script, "--dry-run", "--epochs", "3", "--out", "/shared/run1"])
    XCTAssertEqual(process.status, 0, process.all)
    XCTAssertEqual(
      process.output.trimmingCharacters(in: .whitespacesAndNewlines),
      "+ OPENBLAS_NUM_THREADS=1 srun --mpi=pmix --ntasks=8 --ntasks-per-node=1 --cpus-per-task=32 --cpu-bind=none "
        + "/opt/vae-dist --threads 32 --progress lines --epochs 3 --out /shared/run1")
  }

  /// Under --max-restarts a dry run prints the supervisor's command, then the one each attempt runs
  /// (which never gets the supervisor's flags).
  func testSupervisedDryRunsPrintBothCommands() throws {
    let slurm = try Harness.run("/usr/bin/env", ["SLURM_JOB_NUM_NODES=2", "SLURM_CPUS_ON_NODE=4", "VAE_DIST_BINARY=/opt/vae-dist",
                                                 "bash", MultiHostTests.script("slurm.sbatch"), "--dry-run", "--max-restarts", "3", "--epochs", "3"])
    XCTAssertEqual(slurm.status, 0, slurm.all)
    let lines = slurm.output.split(separator: "\n").map(String.init)
    XCTAssertEqual(lines.count, 2, slurm.output)
    XCTAssertTrue(lines[0].hasPrefix("+ /opt/vae-dist supervise --max-restarts 3 -- bash "), slurm.output)
    XCTAssertTrue(lines[0].hasSuffix("slurm.sbatch --epochs 3"), slurm.output)
    XCTAssertTrue(lines[1].hasSuffix("/opt/vae-dist --threads 4 --progress lines --epochs 3"), slurm.output)

    // --min-ranks lowers the job's -n: the supervised command always carries one (4 by default).
    let local = try Harness.run("/usr/bin/env", ["VAE_DIST_BINARY=/opt/vae-dist", MultiHostTests.script("mpirun-local.sh"),
                                                 "--max-restarts", "2", "--min-ranks", "2", "train", "--epochs", "1", "--dry-run"])
    XCTAssertEqual(local.status, 0, local.all)
    let supervised = local.output.split(separator: "\n").map(String.init)
    XCTAssertEqual(supervised.count, 2, local.output)
    XCTAssertTrue(supervised[0].hasPrefix("+ /opt/vae-dist supervise --max-restarts 2 --min-ranks 2 -- "), local.output)
    XCTAssertTrue(supervised[0].hasSuffix("mpirun-local.sh -n 4 train --epochs 1"), local.output)
    XCTAssertTrue(supervised[1].contains("mpirun -n 4 ") && supervised[1].hasSuffix("/opt/vae-dist train --epochs 1"), local.output)

    // Not built: the launcher says so (not bash's "No such file"), before the supervisor starts.
    let unbuilt = try Harness.run("/usr/bin/env", ["VAE_DIST_BINARY=/nonexistent/vae-dist", MultiHostTests.script("mpirun-local.sh"),
                                                   "--max-restarts", "2", "train"])
    XCTAssertEqual(unbuilt.status, 1, unbuilt.all)
    XCTAssertTrue(unbuilt.error.contains("is not built; run launch/setup.sh"), unbuilt.error)
  }

  func testHostfileDryRun() throws {
    let script = MultiHostTests.script("mpirun-hosts.sh")
    let example = MultiHostTests.root.appendingPathComponent("launch/hostfile.example").path
    let result = try Harness.run(script, ["--hostfile", example, "--binary", "/opt/vae-dist", "--network", "10.1.0.0/16", "--dry-run", "--epochs", "30"])
    XCTAssertEqual(result.status, 0, result.all)
    let root = getuid() == 0 ? " --allow-run-as-root" : ""
    XCTAssertEqual(
      result.output.trimmingCharacters(in: .whitespacesAndNewlines),
      "+ OPENBLAS_NUM_THREADS=1 mpirun -n 4 --hostfile \(example) --map-by node --bind-to none\(root) --mca btl tcp,self "
        + "--mca btl_tcp_if_include 10.1.0.0/16 --mca oob_tcp_if_include 10.1.0.0/16 -x OPENBLAS_NUM_THREADS=1 /opt/vae-dist --epochs 30")
    let missing = try Harness.run(script, ["--dry-run"])
    XCTAssertEqual(missing.status, 2)
    XCTAssertTrue(missing.error.contains("--hostfile"), missing.error)
  }

  func testLocalDryRun() throws {
    let result = try Harness.run(MultiHostTests.script("mpirun-local.sh"), ["-n", "4", "--dry-run", "--epochs", "5"])
    XCTAssertEqual(result.status, 0, result.all)
    XCTAssertTrue(result.output.contains("mpirun -n 4 --bind-to none"), result.output)
    XCTAssertTrue(result.output.contains("-x OPENBLAS_NUM_THREADS=1"), result.output)
    XCTAssertEqual(result.output.contains("--oversubscribe"), ProcessInfo.processInfo.activeProcessorCount < 4)
  }

  /// What a review of the launchers found: --dry-run after vae-dist's arguments started the job for
  /// real, a flag taken as the missing value of the one before it ran the supervisor for real, a
  /// printed command lost its quotes, and --help started 4 ranks.
  func testLaunchersTakeDryRunAnywhereRefuseAFlagForAValueAndQuote() throws {
    let hosts = MultiHostTests.script("hostfile.example")
    let dry = try Harness.run(MultiHostTests.script("mpirun-hosts.sh"), ["--hostfile", hosts, "train", "--out", "my run", "--dry-run"])
    XCTAssertEqual(dry.status, 0, dry.all)
    XCTAssertTrue(dry.output.contains("train --out my\\ run"), dry.output)
    for script in ["mpirun-local.sh", "mpirun-hosts.sh"] {
      let taken = try Harness.run(MultiHostTests.script(script), ["--hostfile", hosts, "--max-restarts", "--dry-run", "train"])
      XCTAssertEqual(taken.status, 2, "\(script): \(taken.all)")
      XCTAssertTrue(taken.error.contains("--max-restarts needs a"), "\(script): \(taken.error)")
      let help = try Harness.run(MultiHostTests.script(script), ["--help"])
      XCTAssertTrue(help.status == 0 && help.output.contains("launch/\(script)"), "\(script): \(help.all)")
    }
    let late = try Harness.run(MultiHostTests.script("mpirun-local.sh"), ["--dry-run", "train", "-n", "3"])
    XCTAssertTrue(late.status == 2 && late.error.contains("-n goes first, before vae-dist's arguments"), late.all)
    let zero = try Harness.run(MultiHostTests.script("mpirun-hosts.sh"), ["--hostfile", hosts, "-n", "0", "--dry-run"])
    XCTAssertTrue(zero.status == 2 && zero.error.contains("-n needs a positive number of ranks (got '0')"), zero.all)
  }
}
