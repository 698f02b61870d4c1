// swift-tools-version:6.0
// vae-dist: data-parallel training of a convolutional VAE on Fashion-MNIST over MPI ranks.
//
// The targets follow the data flow (docs/architecture.md draws it and lists every file):
//   VAEData (IDX files, shards, batch order) → VAECore (layers, model, loss, Adam; no MPI, no files)
//   → VAEDistributed (communicator, protocol, deterministic gradient reduction) → VAETraining (the
//   run: step engine, epoch loop, evaluation, rank zero's output, --out) → vae-dist (the command line).
// Beside them, each with one concern: VAEFiles (safetensors, the model file, atomic writes, CSV),
// VAEImages (PNG, canvas, plots), TensorBoardLog (event files), VAEPictures (the pictures of a
// trained model), VAESupervisor (restarts of a failed job), VAEBenchmarks (bench, the layer profile,
// the peaks, the allreduce timing). The C shims are underscored, each with a README.
import PackageDescription

// The end-to-end tests run the release binary (launch/test.sh). launch/sanitize.sh builds and runs the
// unit tests alone, under VAE_DIST_UNIT_TESTS_ONLY: compiling the end-to-end tests with a sanitizer's
// instrumentation, for tests that are skipped there, took 28 s of a Zen 1's cores in each of its builds.
let endToEndTests: [Target] =
  Context.environment["VAE_DIST_UNIT_TESTS_ONLY"] == nil ? [.testTarget(name: "EndToEndTests", dependencies: [])] : []

let package = Package(
  name: "vae-dist",
  products: [
    .executable(name: "vae-dist", targets: ["vae-dist"]),
    .library(name: "VAECore", targets: ["VAECore"]),
  ],
  dependencies: [
    .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2")
  ],
  targets: [
    // C libraries from Debian: OpenBLAS (libopenblas-dev), zlib (zlib1g-dev), Open MPI (libopenmpi-dev,
    // found through pkg-config).
    .systemLibrary(name: "_COpenBLAS", path: "Sources/_COpenBLAS"),
    .systemLibrary(name: "_CZlib", path: "Sources/_CZlib"),
    .systemLibrary(name: "_CMPI", path: "Sources/_CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
    .target(name: "_CMPIShim", dependencies: ["_CMPI"]),
    // Hand-written SIMD loops of the step (window gathers, fused bias/ReLU, loss, fixed-point sums).
    .target(name: "_CKernels"),
    // The calibrated FMA loop the benchmarks measure the host's peak with.
    .target(name: "_CPeak"),

    .target(name: "CounterRNG"),
    .target(name: "VAEData", dependencies: ["_CZlib", "CounterRNG"]),
    .target(name: "VAECore", dependencies: ["_COpenBLAS", "_CKernels", "CounterRNG"]),
    .target(name: "VAEDistributed", dependencies: ["_CMPIShim", "_CKernels", "VAECore"]),
    .target(name: "VAEFiles", dependencies: ["VAECore"]),
    .target(name: "VAEImages", dependencies: ["_CZlib"]),
    // TensorBoard event files; the protocol buffers are encoded by hand (see its README for why).
    .target(name: "TensorBoardLog", exclude: ["Proto", "README.md"]),
    .target(name: "VAEPictures", dependencies: ["VAECore", "VAEData", "VAEImages", "VAEFiles", "CounterRNG"]),
    .target(
      name: "VAETraining",
      dependencies: [
        "VAEData", "VAECore", "VAEDistributed", "VAEFiles", "VAEImages", "VAEPictures", "TensorBoardLog", "CounterRNG", "_CZlib",
      ]
    ),
    .target(name: "VAESupervisor", dependencies: ["VAETraining", "VAEDistributed", "VAEFiles"]),
    .target(
      name: "VAEBenchmarks", dependencies: ["VAETraining", "VAEDistributed", "VAECore", "VAEData", "_CPeak", "CounterRNG"]),
    .executableTarget(
      name: "vae-dist",
      dependencies: [
        "VAETraining", "VAEDistributed", "VAECore", "VAEData", "VAEFiles", "VAEImages", "VAEPictures", "VAESupervisor",
        "VAEBenchmarks", .product(name: "ArgumentParser", package: "swift-argument-parser"),
      ]
    ),

    .testTarget(name: "VAECoreTests", dependencies: ["VAECore", "CounterRNG", "_CKernels"]),
    .testTarget(name: "VAEDataTests", dependencies: ["VAEData", "_CZlib"]),
    .testTarget(name: "VAEDistributedTests", dependencies: ["VAEDistributed", "VAECore", "CounterRNG", "_CKernels"]),
    .testTarget(name: "VAEFilesTests", dependencies: ["VAEFiles", "VAECore", "VAEData"]),
    .testTarget(
      name: "VAETrainingTests", dependencies: ["VAETraining", "VAECore", "VAEData", "VAEDistributed", "VAEFiles", "VAEPictures"]),
    .testTarget(name: "VAEImagesTests", dependencies: ["VAEImages"]),
    .testTarget(name: "VAESupervisorTests", dependencies: ["VAESupervisor"]),
    .testTarget(name: "TensorBoardLogTests", dependencies: ["TensorBoardLog"]),
  ] + endToEndTests
)
