import Foundation
import VAECore
import VAETraining

// The one place that reads the debug and test hooks from the environment; the libraries take them
// as settings. Unset in normal runs.
//
//   VAE_DIST_TRACE_DIR=DIR           rank zero writes the step trace of the differential test
//   VAE_DIST_TRACE_STATES=0,1,9,10   the steps after which the trace holds the whole state
//   VAE_DIST_TEST_ROOT_DELAY=S       rank zero's epoch-end work takes S seconds longer (stall tests)
//   VAE_DIST_TEST_LOAD_DELAY=S       the last rank's data load takes S seconds longer
//   VAE_DIST_TEST_LAUNCHER_GRACE=S   supervise kills a launcher S s after its last rank (default 30)
//   VAE_DIST_KERNELS=avx512|avx2|avx512_on_avx2|portable   the kernels (default: the widest
//                                    this CPU has); every variant gives the same bits
enum Hooks {
  static var environment: [String: String] { ProcessInfo.processInfo.environment }

  static var trainer: TrainerHooks {
    var hooks = TrainerHooks()
    hooks.rootEpochEndDelay = environment["VAE_DIST_TEST_ROOT_DELAY"].flatMap(Double.init) ?? 0
    hooks.lastRankLoadDelay = environment["VAE_DIST_TEST_LOAD_DELAY"].flatMap(Double.init) ?? 0
    if let directory = environment["VAE_DIST_TRACE_DIR"], !directory.isEmpty { hooks.traceDirectory = directory }
    if let states = environment["VAE_DIST_TRACE_STATES"] {
      hooks.traceStates = Set(states.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) })
    }
    return hooks
  }

  /// Chooses the kernels VAE_DIST_KERNELS names, before any runs; refuses a name this CPU cannot run.
  static func selectKernels() throws {
    guard let name = environment["VAE_DIST_KERNELS"], !name.isEmpty else { return }
    guard let variant = KernelVariant(rawValue: name) else { throw KernelVariantError.unknown(name) }
    try variant.select()
  }

  static var launcherGrace: Double? { environment["VAE_DIST_TEST_LAUNCHER_GRACE"].flatMap(Double.init) }
}
