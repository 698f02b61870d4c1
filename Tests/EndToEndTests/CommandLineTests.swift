import Foundation
import XCTest

#if canImport(Glibc)
  import Glibc
#endif

/// The command line as a user meets it: help, and every bad value rejected before anything starts.
final class CommandLineTests: XCTestCase {
  func testHelpNamesTheCommandsAndOptions() throws {
    let help = try Harness.vaeDist(["--help"])
    XCTAssertEqual(help.status, 0)
    XCTAssertTrue(help.output.contains("train (default)"))
    let unknown = try Harness.vaeDist(["help", "trian"])
    XCTAssertTrue(unknown.status == 2 && unknown.error.contains("help: there is no command trian; the commands are train, evaluate"), unknown.all)
    XCTAssertEqual(try Harness.vaeDist(["help", "supervise"]).status, 0)
    let trainHelp = try Harness.vaeDist(["train", "--help"])
    for option in ["--data", "--latent-dim", "--beta", "--epochs", "--batch-size", "--micro-batch", "--lr", "--seed",
                   "--max-steps", "--threads", "--reduction", "--stall-timeout", "--check-sync", "--out", "--progress"] {
      XCTAssertTrue(trainHelp.output.contains(option), "train --help lacks \(option)")
    }
  }

  func testBadValuesAreRejectedNamingTheFlag() throws {
    let cases: [([String], String)] = [
      (["--batch-size", "0"], "--batch-size"),
      (["--lr", "-0.1"], "--lr must be a positive number (got -0.1)"),  // not "Missing value for '--lr'"
      (["--seed", "-5"], "The value '-5' is invalid for '--seed <seed>'"),
      (["--warmup-steps", "-5"], "--warmup-steps must be 0 or more"),
      (["--beta", "-inf"], "--beta must be a non-negative number"),
      (["--data", ""], "--data needs a directory"),
      (["--lr", "nan"], "--lr"),
      (["--latent-dim", "0"], "--latent-dim"),
      (["--epochs", "0"], "--epochs"),
      (["--epochs", "20000000000000000"], "--epochs must be between 1 and 1000000"),  // its step count overflowed
      (["--stall-timeout", "0.5"], "--stall-timeout must be at least 2 seconds"),
      (["--micro-batch", "7"], "--micro-batch"),
      (["--threads", "0"], "--threads"),
      (["--max-steps", "0"], "--max-steps"),
      (["--reduction", "sloppy"], "--reduction"),
      (["--batch-size", "many"], "--batch-size"),
      (["--no-such-flag"], "--no-such-flag"),
      // The learning-rate schedule (issue 24).
      (["--warmup-steps=-5"], "--warmup-steps must be 0 or more"),
      (["--lr-schedule", "sawtooth"], "--lr-schedule"),
      (["--scale-lr", "cubic"], "--scale-lr"),
      (["--lr-schedule", "cosine", "--lr-final", "1.5"], "--lr-final must be between 0 and 1"),
      (["--lr-schedule", "cosine", "--lr-decay-steps=-1"], "--lr-decay-steps must be 0 or more"),
      (["--lr-schedule", "step", "--lr-step-every", "0"], "--lr-step-every"),
      (["--lr-schedule", "step", "--lr-step-every", "5", "--lr-gamma", "0"], "--lr-gamma must be above 0"),
      // A setting the schedule would not read, which did nothing without a word.
      (["--lr-gamma", "0.5"], "--lr-gamma is read by --lr-schedule step only, and this run's is constant"),
      (["--lr-schedule", "step", "--lr-step-every", "5", "--lr-final", "0.1"], "--lr-final is read by --lr-schedule cosine only"),
      (["--precision", "fp16"], "--precision"),
      // Values past Float's range, which the step would have made infinite (and blamed on --lr).
      (["--beta", "1e39"], "--beta must be a non-negative number within Float's range"),
      (["--lr", "1e39"], "--lr must be within Float's range"),
      (["--lr", "1e37", "--scale-lr", "linear", "--batch-size", "65536", "--micro-batch", "256"], "past Float's range: give a smaller --lr"),
      // Settings that would do nothing.
      (["--min-delta", "0.5"], "--min-delta is read by --early-stopping only"),
      (["--log-every", "5", "--tensorboard", "none"], "--log-every sets how often TensorBoard gets the scalars"),
    ]
    for (arguments, flag) in cases {
      let result = try Harness.vaeDist(arguments + ["--out", temporaryDirectory()], timeout: 30)
      XCTAssertEqual(result.status, 2, "\(arguments): not refused as a configuration error")
      XCTAssertTrue(result.error.contains(flag), "\(arguments): error does not name \(flag): \(result.error)")
      XCTAssertFalse(result.output.contains("epoch 1/"), "\(arguments) started training")
    }
    let emptyOut = try Harness.vaeDist(["--out", "", "--max-steps", "1"], timeout: 30)
    XCTAssertEqual(emptyOut.status, 2, emptyOut.all)
    XCTAssertTrue(emptyOut.error.contains("--out needs a directory"), emptyOut.error)
  }

  /// bench's step counts are bounded (a huge --warmup trapped on an overflow); plot-csv with nothing to
  /// plot is an error, not an empty chart.
  func testBenchAndPlotValuesAreChecked() throws {
    for (arguments, flag) in [
      (["--warmup", "9223372036854775807"], "--warmup must be between"), (["--steps", "1"], "--steps must be between"),
      (["--layer-seconds", "2"], "--layer-seconds times the passes of --layers"),
      (["--allreduce", "--layers"], "--allreduce times allreduces instead of training steps"),
      (["--warmup-steps", "20"], "the untimed steps are --warmup"),
      (["--epochs", "3"], "Unknown option '--epochs'"),
    ] {
      let result = try Harness.vaeDist(["bench"] + arguments, timeout: 30)
      XCTAssertEqual(result.status, 2, result.error)
      XCTAssertTrue(result.error.contains(flag), result.error)
    }
    let csv = temporaryDirectory() + "/t.csv"
    _ = FileManager.default.createFile(atPath: csv, contents: Data("ranks,images\n1,100\n2,190\n".utf8))
    let output = temporaryDirectory() + "/t.png"
    let plotted = try Harness.vaeDist(["plot-csv", "--csv", csv, "--x", "ranks", "--y", "images", "--output", output], timeout: 30)
    XCTAssertEqual(plotted.status, 0, plotted.error)
    // A name that says another format is refused: the PNG went into it without a word.
    let jpeg = temporaryDirectory() + "/t.jpg"
    let refused = try Harness.vaeDist(["plot-csv", "--csv", csv, "--x", "ranks", "--y", "images", "--output", jpeg], timeout: 30)
    XCTAssertEqual(refused.status, 2, refused.all)
    XCTAssertTrue(refused.error.contains("--output \(jpeg): vae-dist writes PNG pictures only"), refused.error)
    XCTAssertFalse(FileManager.default.fileExists(atPath: jpeg))
    // A dot in a name is not a format: beta0.5 is written (as a PNG).
    let dotted = temporaryDirectory() + "/samples_beta0.5"
    let written = try Harness.vaeDist(["plot-csv", "--csv", csv, "--x", "ranks", "--y", "images", "--output", dotted], timeout: 30)
    XCTAssertTrue(written.status == 0 && FileManager.default.fileExists(atPath: dotted), written.all)
    // A quoted field holding commas is one field (a comma split read "a,5,b"'s 5 as ips): the row
    // --only picks by it is there, and quoted headers with blanks and a byte-order mark are columns.
    let quoted = temporaryDirectory() + "/q.csv"
    _ = FileManager.default.createFile(
      atPath: quoted, contents: Data("\u{FEFF}\"ranks\", \"ips\", note\r\n1,100,\"a,5,b\"\r\n2,190,plain\r\n".utf8))
    let picked = try Harness.vaeDist(
      ["plot-csv", "--csv", quoted, "--x", "ranks", "--y", "ips", "--only", "note=a,5,b", "--output", output], timeout: 30)
    XCTAssertEqual(picked.status, 0, picked.all)
    let missing = try Harness.vaeDist(["plot-csv", "--csv", quoted, "--x", "rank", "--y", "ips", "--output", output], timeout: 30)
    XCTAssertTrue(missing.status == 2 && missing.error.contains("has no column rank (its columns: ranks, ips, note)"), missing.all)
    // A one-process command under a launcher of several ranks is refused (each rank ran it whole).
    // Rank zero says why, once; a script that mpirun starts may run it (on one rank, or each its own).
    let plot = ["plot-csv", "--csv", quoted, "--x", "ranks", "--y", "ips", "--output", output]
    let ranked = try Harness.run(Harness.mpirun, try Harness.mpirunArguments(ranks: 2, plot), timeout: 60)
    XCTAssertTrue(ranked.status == 2 && ranked.error.contains("plot-csv runs as one process"), ranked.all)
    XCTAssertEqual(ranked.error.components(separatedBy: "runs as one process").count - 1, 1, ranked.error)
    let script = "\"$0\" \"$@\" --output \(temporaryDirectory())/rank-$OMPI_COMM_WORLD_RANK.png"
    let scripted = try Harness.run(
      Harness.mpirun, try Harness.mpirunArguments(ranks: 2, []).dropLast() + ["/bin/sh", "-c", script, try Harness.requireBinary()]
        + plot.dropLast(2), timeout: 60)
    XCTAssertEqual(scripted.status, 0, scripted.all)
    // Help under mpirun is help (ArgumentParser's help command is no one-process command).
    let help = try Harness.run(Harness.mpirun, try Harness.mpirunArguments(ranks: 2, ["--help"]), timeout: 60)
    XCTAssertEqual(help.status, 0, help.all)
    // One process has no one to allreduce with (it printed "bandwidth inf GB/s").
    let alone = try Harness.vaeDist(["bench", "--allreduce", "--steps", "2"], timeout: 30)
    XCTAssertTrue(alone.status == 2 && alone.error.contains("this is one process: start it under MPI"), alone.all)
    let empty = try Harness.vaeDist(
      ["plot-csv", "--csv", csv, "--x", "ranks", "--y", "images", "--only", "ranks=3", "--output", output], timeout: 30)
    XCTAssertNotEqual(empty.status, 0)
    XCTAssertTrue(empty.error.contains("nothing to plot"), empty.error)
    // A fifo (or a device) is refused at once: reading it used to block (or fill memory).
    let fifo = temporaryDirectory() + "/fifo.csv"
    XCTAssertEqual(mkfifo(fifo, 0o600), 0)
    let blocked = try Harness.vaeDist(["plot-csv", "--csv", fifo, "--x", "a", "--y", "b", "--output", output], timeout: 30)
    XCTAssertNotEqual(blocked.status, 0)
    XCTAssertTrue(blocked.error.contains("--csv: \(fifo): is not a regular file"), blocked.error)
    let zero = try Harness.vaeDist(["plot-metrics", "--metrics", "/dev/zero", "--output", output], timeout: 30)
    XCTAssertNotEqual(zero.status, 0)
    XCTAssertTrue(zero.error.contains("/dev/zero: is not a regular file"), zero.error)
  }

  /// A picture command's --output that is one of the dataset's files is refused before anything is
  /// drawn: the PNG used to replace the test images, and the command exited 0.
  func testAPictureNeverReplacesTheDataset() throws {
    let data = temporaryDirectory()
    for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
      _ = FileManager.default.createFile(atPath: data + "/" + name, contents: Data("idx".utf8))
    }
    let target = data + "/t10k-images-idx3-ubyte"
    let result = try Harness.vaeDist(["reconstruct", "--checkpoint", "/nonexistent/model.safetensors", "--data", data, "--output", target], timeout: 30)
    XCTAssertNotEqual(result.status, 0)
    XCTAssertTrue(result.error.contains("is the --data (test images) file; the picture would replace it"), result.error)
    XCTAssertEqual(try String(contentsOfFile: target, encoding: .utf8), "idx")
  }

  /// A supervisor's hostfile it cannot read, or that names no host, is refused before any job starts
  /// (it once became an empty hosts.active and `-n 0`).
  /// `supervise --help` is its help, not a job (it ran `--help` as the command and said "finished
  /// with status 0"), and a misspelt option of supervise is an error, not the job's command.
  func testSupervisorHelpAndUnknownOptions() throws {
    let help = try Harness.vaeDist(["supervise", "--help"], timeout: 30)
    XCTAssertEqual(help.status, 0, help.all)
    XCTAssertTrue(help.output.contains("USAGE: vae-dist supervise") && !help.all.contains("finished with status"), help.all)
    let typo = try Harness.vaeDist(["supervise", "--max-restart", "5", "--", "true"], timeout: 30)
    XCTAssertEqual(typo.status, 2, typo.all)
    XCTAssertTrue(typo.error.contains("unknown option '--max-restart'"), typo.error)
  }

  func testSupervisorRefusesAnUnusableHostfile() throws {
    let empty = temporaryDirectory() + "/hosts"
    _ = FileManager.default.createFile(atPath: empty, contents: Data("# no hosts yet\n".utf8))
    let fifo = temporaryDirectory() + "/fifo"
    XCTAssertEqual(mkfifo(fifo, 0o600), 0)
    for (hostfile, reason) in [("/nonexistent/hosts", "/nonexistent/hosts: cannot be read"), (empty, "names no host"),
                               (fifo, "is not a regular file")] {
      let result = try Harness.vaeDist(["supervise", "--hostfile", hostfile, "--", "true", "--hostfile", hostfile], timeout: 30)
      XCTAssertNotEqual(result.status, 0)
      XCTAssertTrue(result.error.contains("--hostfile: ") && result.error.contains(reason), result.error)
    }
    // What --hostfile and --min-ranks rewrite must be in the job's command, or no restart differs.
    let hosts = temporaryDirectory() + "/hosts"
    _ = FileManager.default.createFile(atPath: hosts, contents: Data("h1 slots=1\n".utf8))
    for (options, job, reason) in [
      (["--hostfile", hosts], ["mpirun", "-np", "1", "-hostfile", hosts, "true"], "the job's command has no --hostfile FILE"),
      (["--min-ranks", "1"], ["mpirun", "-np", "2", "true"], "the job's command has no -n N to lower"),
      (["--min-ranks", "3"], ["mpirun", "-n", "2", "true"], "--min-ranks 3 is above the job's -n 2"),
      (["--rsh-agent", "rsh"], ["mpirun", "-n", "2", "true"], "--rsh-agent reaches the hosts of --hostfile, and none is given"),
    ] {
      let result = try Harness.vaeDist(["supervise"] + options + ["--"] + job, timeout: 30)
      XCTAssertNotEqual(result.status, 0)
      XCTAssertTrue(result.error.contains(reason), result.error)
    }
  }

  func testMissingDataSaysWhatToDo() throws {
    let result = try Harness.vaeDist(["--data", "/nonexistent/fmnist", "--out", temporaryDirectory()], timeout: 30)
    XCTAssertEqual(result.status, 4)
    XCTAssertTrue(result.error.contains("/nonexistent/fmnist"), result.error)
    XCTAssertTrue(result.error.contains("--data"), result.error)
  }

  func testCorruptDataNamesTheFile() throws {
    let directory = temporaryDirectory()
    for name in ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"] {
      _ = FileManager.default.createFile(atPath: "\(directory)/\(name)", contents: Data([0, 0, 8, 3, 0, 0]))
    }
    let result = try Harness.vaeDist(["--data", directory, "--out", temporaryDirectory()], timeout: 30)
    XCTAssertEqual(result.status, 4)
    XCTAssertTrue(result.error.contains("\(directory)/train-images-idx3-ubyte"), result.error)
    XCTAssertTrue(result.error.contains("IDX header"), result.error)
  }

  func testUnwritableOutputIsAClearError() throws {
    try Harness.requireRealData()
    let result = try Harness.vaeDist(["--max-steps", "1", "--out", "/proc/vae-dist-cannot-write-here", "--iw-samples", "0"], timeout: 60)
    XCTAssertEqual(result.status, 5)
    XCTAssertTrue(result.error.contains("--out /proc/vae-dist-cannot-write-here"), result.error)
  }
}

extension CommandLineTests {
  /// docs/cli.md is the binary's own help: regenerate it with launch/cli-reference.sh.
  func testCommandLineReferenceIsCurrent() throws {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let generated = try Harness.run(root.appendingPathComponent("launch/cli-reference.sh").path, [])
    XCTAssertEqual(generated.status, 0, generated.all)
    let committed = try String(contentsOf: root.appendingPathComponent("docs/cli.md"), encoding: .utf8)
    XCTAssertEqual(generated.output, committed, "docs/cli.md is stale: run launch/cli-reference.sh > docs/cli.md")
  }
}
