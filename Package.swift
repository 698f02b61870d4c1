// swift-tools-version:6.0
// vae-dist: data-parallel training of a convolutional VAE on Fashion-MNIST over MPI ranks.
//
// The targets follow the data flow:
//   VAEData (IDX files, shards, batch order) → VAECore (layers, model, loss, Adam; no MPI, no files)
//   → VAEDistributed (communicator, deterministic gradient reduction) → VAETraining (the loop, metrics,
//   checkpoints, evaluation, pictures) → vae-dist (the command line). VAEImages draws PNG pictures and
//   plots for the trainer and knows nothing of the model.
import PackageDescription

let package = Package(
  name: "vae-dist",
  products: [
    .executable(name: "vae-dist", targets: ["vae-dist"]),
    .library(name: "VAECore", targets: ["VAECore"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0")
  ],
  targets: [
    // C libraries from Debian: OpenBLAS (libopenblas-dev), zlib (zlib1g-dev), Open MPI (libopenmpi-dev).
    .systemLibrary(name: "_COpenBLAS", path: "Sources/_COpenBLAS"),
    .systemLibrary(name: "_CZlib", path: "Sources/_CZlib"),
    .target(
      name: "_CMPIShim",
      cSettings: [.unsafeFlags(["-I/usr/lib/x86_64-linux-gnu/openmpi/include"])],
      linkerSettings: [.linkedLibrary("mpi")]
    ),

    // Hand-written SIMD loops of the step (window gathers, fused bias/ReLU, loss, fixed-point sums).
    .target(name: "_CKernels", cSettings: [.unsafeFlags(["-O3", "-ffp-contract=off", "-fno-math-errno", "-fno-builtin-memcpy", "-fno-builtin-memset"])]),

    .target(name: "CounterRNG"),
    .target(name: "VAEData", dependencies: ["_CZlib", "CounterRNG"]),
    .target(name: "VAECore", dependencies: ["_COpenBLAS", "_CKernels", "CounterRNG"]),
    .target(name: "VAEDistributed", dependencies: ["_CMPIShim", "_CKernels", "VAECore"]),
    .target(name: "VAEImages", dependencies: ["_CZlib"]),
    // TensorBoard event files; the protocol buffers are encoded by hand (see its README for why).
    .target(name: "TensorBoardLog", exclude: ["Proto", "README.md"]),
    .target(
      name: "VAETraining",
      dependencies: ["VAEData", "VAECore", "VAEDistributed", "VAEImages", "TensorBoardLog", "CounterRNG", "_CZlib"]
    ),
    .executableTarget(
      name: "vae-dist",
      dependencies: [
        "VAETraining", "VAEDistributed", "VAECore", "VAEData", "VAEImages",
        .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),

    .testTarget(name: "VAECoreTests", dependencies: ["VAECore", "CounterRNG"]),
    .testTarget(name: "VAEDataTests", dependencies: ["VAEData", "_CZlib"]),
    .testTarget(name: "VAEDistributedTests", dependencies: ["VAEDistributed", "VAECore"]),
    .testTarget(name: "VAETrainingTests", dependencies: ["VAETraining", "VAECore", "VAEData", "VAEDistributed"]),
    .testTarget(name: "VAEImagesTests", dependencies: ["VAEImages"]),
    .testTarget(name: "TensorBoardLogTests", dependencies: ["TensorBoardLog"]),
    .testTarget(name: "EndToEndTests", dependencies: []),
  ],
  swiftLanguageModes: [.v5]
)
