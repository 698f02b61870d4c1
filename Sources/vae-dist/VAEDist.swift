import ArgumentParser

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
}
