import ArgumentParser
import VAECore
import VAEDistributed

#if canImport(Glibc)
  import Glibc
#endif

@main
struct VAEDist: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "vae-dist",
    abstract: "Train a convolutional variational autoencoder on Fashion-MNIST, data-parallel over MPI ranks.",
    discussion: """
      Started by an MPI launcher (`mpirun -n 4 vae-dist`), every rank trains on its shard of the data and \
      the ranks average gradients before each synchronized Adam step. Started alone, vae-dist trains as \
      one process on all cores. With no subcommand it runs `train`.

      Results are bit-identical for any number of ranks and threads, given the same seed, batch size \
      and micro-batch size.
      """,
    version: "0.1.0",
    subcommands: [
      Train.self, Evaluate.self, Sample.self, Reconstruct.self, Interpolate.self, LatentScatter.self, Manifold.self,
      PlotMetrics.self, PlotCSV.self, Bench.self, Supervise.self,
    ],
    defaultSubcommand: Train.self
  )

  /// ArgumentParser's own entry, but for its status on a bad flag: a flag it rejects (64, EX_USAGE)
  /// and settings the trainer finds unworkable (`mpirun -n 9` with 8 micro-batches) are both
  /// settings errors, and exit with one status, 2 (FailureKind.configuration), as the README says.
  static func main() {
    do {
      try Hooks.selectKernels()
      let arguments = Array(CommandLine.arguments.dropFirst())
      // `help NAME` of no command printed the overview and exited 0.
      let names = configuration.subcommands.map { $0._commandName }
      if arguments.count >= 2, arguments[0] == "help", !arguments[1].hasPrefix("-"), !names.contains(arguments[1]) {
        throw ValidationError("help: there is no command \(arguments[1]); the commands are \(names.joined(separator: ", "))")
      }
      var command = try parseAsRoot(joiningNegativeValues(arguments))
      // The commands that run as one process (evaluate, the pictures, the plots), started by a
      // launcher as several ranks: each rank ran it whole, printed it and wrote the same file.
      let oneProcess: [ParsableCommand.Type] = [
        Evaluate.self, Sample.self, Reconstruct.self, Interpolate.self, LatentScatter.self, Manifold.self, PlotMetrics.self, PlotCSV.self,
      ]
      if oneProcess.contains(where: { $0 == type(of: command) }), MPICommunicator.startedAsARank,
        let ranks = MPICommunicator.launchedRanks, ranks > 1
      {
        if (MPICommunicator.launchedRank ?? 0) != 0 {
          usleep(1_000_000)  // rank zero says why first: the launcher ends the job at the first rank that fails
          Glibc.exit(FailureKind.configuration.exitStatus)
        }
        throw ValidationError(
          "\(type(of: command)._commandName) runs as one process (on all cores), and an MPI launcher started \(ranks) ranks of it: run it without mpirun")
      }
      try command.run()
    } catch {
      guard error is KernelVariantError || exitCode(for: error) == .validationFailure else { exit(withError: error) }
      printError(error is KernelVariantError ? "vae-dist: \(error)" : fullMessage(for: error))
      Glibc.exit(FailureKind.configuration.exitStatus)
    }
  }

  /// `--lr -1` as `--lr=-1`. ArgumentParser reads a value that starts with a dash as an option and
  /// answered "Missing value for '--lr <lr>'" (apple/swift-argument-parser#31); joined, the value
  /// reaches the option's own check: "--lr must be a positive number (got -1.0)". No option of
  /// vae-dist is a digit or spelt `inf` or `nan`, so `-1`, `-0.5`, `-.5` and `-inf` after a long
  /// option are always its value. Nothing after `--`, and nothing of `supervise`, is touched.
  static func joiningNegativeValues(_ arguments: [String]) -> [String] {
    // supervise passes its job's command on as given, even without a -- before it.
    if arguments.first == "supervise" { return arguments }
    var joined: [String] = []
    for (index, argument) in arguments.enumerated() {
      if argument == "--" { return joined + arguments[index...] }
      let second = argument.dropFirst().first
      let isNegativeNumber =
        argument.hasPrefix("-") && (second.map { ("0"..."9").contains($0) } == true || second == "."
          || ["-inf", "-infinity", "-nan"].contains(argument.lowercased()))
      if isNegativeNumber, let option = joined.last, option.hasPrefix("--"), option.count > 2, !option.contains("=") {
        joined[joined.count - 1] = option + "=" + argument
      } else {
        joined.append(argument)
      }
    }
    return joined
  }
}
