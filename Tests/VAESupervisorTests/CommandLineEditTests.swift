import Foundation
import VAESupervisor
import XCTest

/// How the supervisor reads and edits the job's command line and hostfile (the restarts themselves
/// run end to end in ChaosRunTests and NetworkChaosTests).
final class CommandLineEditTests: XCTestCase {
  /// `--out DIR` and `--out=DIR` alike (ArgumentParser takes both): the supervisor once read the
  /// second as no --out and watched vae-dist-run/ instead.
  func testFlagsWithAndWithoutEquals() {
    XCTAssertEqual(Supervisor.value(of: "--out", in: ["train", "--out", "run1"]), "run1")
    XCTAssertEqual(Supervisor.value(of: "--out", in: ["train", "--out=run2"]), "run2")
    XCTAssertEqual(Supervisor.value(of: "--out", in: ["train", "--out=a", "--out", "b"]), "b")
    XCTAssertNil(Supervisor.value(of: "--out", in: ["train", "--output", "x", "--out"]))
    XCTAssertEqual(Supervisor.value(of: "-n", in: ["mpirun", "-n", "4", "vae-dist"]), "4")
    XCTAssertEqual(
      Supervisor.replacing("--hostfile", with: "active", in: ["--hostfile=all", "-n", "4"]), ["--hostfile=active", "-n", "4"])
    XCTAssertEqual(Supervisor.replacing("-n", with: "3", in: ["-n", "4", "x"]), ["-n", "3", "x"])
    XCTAssertEqual(Supervisor.replacing("-n", with: "3", in: ["x", "-n"]), ["x", "-n"])
  }

  /// A hostfile's lines and their slots (1 where none is given).
  func testHostfileLinesAndSlots() throws {
    let path = NSTemporaryDirectory() + "hosts-" + UUID().uuidString
    defer { try? FileManager.default.removeItem(atPath: path) }
    try "# nodes\nnode01 slots=4\n\nnode02\nnode03 slots=2 max_slots=2\n".write(toFile: path, atomically: true, encoding: .utf8)
    let lines = try Supervisor.hostLines(path)
    XCTAssertEqual(lines.map(String.init), ["node01 slots=4", "node02", "node03 slots=2 max_slots=2"])
    XCTAssertEqual(lines.map(Supervisor.slots), [4, 1, 2])
    for bad in ["a slots=0", "a slots=-3", "a slots=x", "a slots=9223372036854775807", "a slots=65537"] {
      XCTAssertNil(Supervisor.slots(Substring(bad)), bad)
    }
    // Lines ended by CRLF (a hostfile written on Windows) are lines too.
    try "node01 slots=2\r\nnode02\r\n".write(toFile: path, atomically: true, encoding: .utf8)
    XCTAssertEqual(try Supervisor.hostLines(path).map(Supervisor.slots), [2, 1])
    // Tabs between fields, indented comments and comments after a host, as Open MPI reads them (a
    // tab made "h1\tslots=2" one host name, and "  # x" a host named "#").
    try "h1\tslots=2\n  # a comment\n\th2  slots=3 # the big one\n\t\n".write(toFile: path, atomically: true, encoding: .utf8)
    let spaced = try Supervisor.hostLines(path)
    XCTAssertEqual(spaced.map(String.init), ["h1 slots=2", "h2 slots=3"])
    XCTAssertEqual(spaced.map(Supervisor.host), ["h1", "h2"])
    XCTAssertEqual(spaced.map(Supervisor.slots), [2, 3])
    XCTAssertThrowsError(try Supervisor.hostLines(path + "-missing"))
  }

  /// What failed, from the job's output: mpirun's line read whole, or cut short after "rank" or
  /// "node" (any text a job prints reaches this parser).
  func testCauseFromMpirunsLine() {
    XCTAssertEqual(
      Supervisor.cause(status: 137, transcript: "mpirun noticed that process rank 1 with PID 0 on node vm exited on signal 9 (Killed).\n"),
      "rank 1 on vm ended (signal 9 (Killed))")
    XCTAssertEqual(Supervisor.cause(status: 1, transcript: "mpirun noticed that process rank"), "rank ? ended (status 1)")
    XCTAssertEqual(Supervisor.cause(status: 1, transcript: "noticed that process rank 2 on node"), "rank 2 ended (status 1)")
  }
}
