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
      var command = try parseAsRoot()
      try command.run()
    } catch {
      guard error is KernelVariantError || exitCode(for: error) == .validationFailure else { exit(withError: error) }
      printError(error is KernelVariantError ? "vae-dist: \(error)" : fullMessage(for: error))
      Glibc.exit(FailureKind.configuration.exitStatus)
    }
  }
}
