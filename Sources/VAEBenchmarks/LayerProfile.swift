import Dispatch
import VAECore
import VAEData
import CounterRNG
import VAETraining
import VAEDistributed

/// Time and rate of one layer pass, as `vae-dist bench --layers` reports it.
public struct LayerTiming: Codable, Sendable {
  public var layer: String
  public var pass: String
  /// Milliseconds this pass adds to one step of this rank (its micro-batches spread over its threads).
  public var millisecondsPerStep: Double
  /// Summed over the threads running it at once.
  public var gigaflopsPerSecond: Double
  public var fractionOfFmaPeak: Double?
  /// The bytes the pass must read and write (`Pass.floatsMoved`) per FLOP.
  public var bytesPerFlop: Double?
  /// Its operands' bytes per thread (one micro-batch), and what plain copies move at that working set
  /// on every thread at once: what the pass could draw from the cache or memory they live in.
  public var workingSetBytes: Int?
  public var copyGigabytesPerSecond: Double?
}

extension StepEngine {
  /// Each layer pass of the network (`Pass`, with a product to count), repeated alone for about `seconds` on every worker
  /// thread at once (each on its own workspace, after one real step filled it), as in training.
  /// "loss and elementwise" is the rest of a real forward + backward: everything but the passes.
  public func profileLayers(seconds: Double = 0.5, fmaPeak: Double?) -> [LayerTiming] {
    let threads = workspaces.count, n = configuration.microBatchSize
    let perThread = Double((data.localStreams.count + threads - 1) / threads)  // micro-batches per thread per step
    let views = ParameterViews(layout: layout, base: parameters.pointer)
    let orders = self.orders(epoch: 0)
    /// The whole forward and backward of one micro-batch on worker `worker`'s workspace.
    func forwardBackward(_ worker: Int) {
      let workspace = workspaces[worker]
      _ = model.forward(views, batch: n, workspace: workspace)
      model.backward(
        views, gradients: ParameterViews(layout: layout, base: microGradientPointers[worker]), batch: n,
        beta: Float(configuration.beta), workspace: workspace)
    }
    // One real micro-batch per workspace (one at a time: the loop would give them to whichever thread
    // came first) leaves real activations and gradients in every workspace.
    for worker in 0..<threads {
      MicroBatchLoop(workspaces: [workspaces[worker]], images: data.train, latentDim: configuration.latentDim).run(
        count: 1, batch: { _ in self.schedule.microBatch(order: orders[worker % orders.count], step: 0) },
        noise: .init(seed: configuration.seed, purpose: .trainingNoise, step: 0)
      ) { _, _, _, _ in forwardBackward(worker) }
    }
    let d = configuration.latentDim
    let passes = Pass.allCases.filter { $0.multiplyAddsPerImage(latentDim: d) > 0 }
    let gradients = (0..<threads).map { ParameterViews(layout: layout, base: microGradientPointers[$0]) }
    /// Wall-clock seconds of one round of `body` on every thread at once: the best of five windows of
    /// repeated rounds (a virtual machine's neighbours add noise that only ever slows a window down).
    func time(_ body: @escaping (Int) -> Void) -> Double {
      1 / bestOfFiveWindows(seconds: seconds) {
        concurrentForEach(threads) { body($0) }
        return 1
      }
    }
    var timings: [LayerTiming] = []
    var passSeconds = 0.0
    var bandwidth: [Int: Double] = [:]  // by working set
    // Layers in the network's order, each layer's passes together.
    let layers = passes.map(\.layer.name).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
    for pass in layers.flatMap({ name in passes.filter { $0.layer.name == name } }) {
      let model = self.model
      let round = time { model.run(pass, views, gradients: gradients[$0], batch: n, workspace: self.workspaces[$0]) }
      passSeconds += round
      let flops = 2 * Double(pass.multiplyAddsPerImage(latentDim: d) * n * threads)
      let bytes = 4 * pass.floatsMoved(latentDim: d, images: n)
      if bandwidth[bytes] == nil { bandwidth[bytes] = copyGigabytesPerSecond(threads: threads, bytes: bytes) }
      timings.append(
        LayerTiming(
          layer: pass.layer.name.replacingOccurrences(of: "dense d→", with: "dense \(d)→")
            .replacingOccurrences(of: "→d ×", with: "→\(d) ×"), pass: pass.layer.kind,
          millisecondsPerStep: 1000 * round * perThread, gigaflopsPerSecond: flops / round / 1e9,
          fractionOfFmaPeak: fmaPeak.map { flops / round / 1e9 / $0 },
          bytesPerFlop: Double(bytes * threads) / flops, workingSetBytes: bytes, copyGigabytesPerSecond: bandwidth[bytes]))
    }
    let whole = time(forwardBackward)
    timings.append(
      LayerTiming(
        layer: "loss and elementwise", pass: "rest of forward + backward",
        millisecondsPerStep: 1000 * max(0, whole - passSeconds) * perThread, gigaflopsPerSecond: 0, fractionOfFmaPeak: nil))
    let total = VAEModel<Float>.nominalFlopsPerImage(latentDim: d) * Double(n * threads)
    timings.append(
      LayerTiming(
        layer: "whole micro-batch", pass: "forward + backward", millisecondsPerStep: 1000 * whole * perThread,
        gigaflopsPerSecond: total / whole / 1e9, fractionOfFmaPeak: fmaPeak.map { total / whole / 1e9 / $0 }))
    return timings
  }
}
