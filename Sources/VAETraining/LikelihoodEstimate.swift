import CounterRNG
import Foundation
import VAECore
import VAEData
import VAEDistributed

// The importance-weighted estimate of the test log-likelihood: the Evaluator's passes with k
// decoder samples per image, alone or shared over the ranks in rounds.

/// The importance-weighted estimate of the test log-likelihood (Burda et al. 2016) beside the ELBO.
public struct LikelihoodEstimate: Sendable {
  /// Mean over images of log p̂(x) = log (1/k) Σ_s p(x|z_s) p(z_s) / q(z_s|x), z_s ~ q(z|x), in nats.
  public var logLikelihood: Double
  /// Mean over images of the ELBO, −(reconstruction + KL), with the first of the k samples.
  public var elbo: Double
  public var samples: Int
  public var images: Int
}

extension Evaluator {
  /// log p̂(x) with k samples per image. The encoder runs once per image, the decoder k times.
  /// Sample s of an image is keyed by (seed, s, image), and sample 0 is the noise `loss` uses, so
  /// with k = 1 the estimate is the single-sample ELBO with the KL term sampled.
  /// `shouldStop` is asked between micro-batches and every 64 samples; once it says yes the estimate ends early and
  /// returns nil.
  public func importanceWeighted(
    parameters: ScalarBuffer<Float>, images: ImageStore, samples k: Int, progress: ((Int, Int) -> Void)? = nil,
    shouldStop: () -> Bool = { false }
  ) -> LikelihoodEstimate? {
    var estimates = [ChunkEstimate](repeating: ChunkEstimate(), count: MicroBatchLoop.chunks(of: images, size: microBatchSize).count)
    let (stopped, _) = chunkEstimates(
      parameters: parameters, images: images, samples: k, part: (0, 1), into: &estimates, progress: progress, shouldStop: shouldStop)
    guard !stopped else { return nil }
    return Self.estimate(estimates.map(\.sums), samples: k, images: images.count)
  }

  /// Decoder passes of a micro-batch a worker thread runs between two checks of the ranks' stop
  /// flags (at least one micro-batch's share of samples each): about 2 s, 8 micro-batches a rank at
  /// k = 100 on up to 8 threads. Above that many samples a micro-batch's samples are cut into rounds
  /// too, so a round stays this long whatever k is.
  public static let estimateRoundPasses = 800

  /// The same estimate, shared out over the ranks of `communicator` as `evaluate(…over:…)` is, with the
  /// same bits for any layout. It runs in rounds of max(threads, roundPasses / k) micro-batches a
  /// rank (the most threads any rank has), each with up to `roundPasses` of its samples, each round ended by a MAX of the ranks' stop
  /// flags, so a stop on any rank ends it on every rank (nil everywhere) within a round, and no rank waits longer than a round's difference in speed (the
  /// whole estimate takes minutes, past the stall timeout). An image's running log-sum-exp goes on
  /// from one round of samples to the next, so the rounds change no bit.
  public func importanceWeighted(
    parameters: ScalarBuffer<Float>, images: ImageStore, samples k: Int, over communicator: Communicator,
    roundPasses: Int = estimateRoundPasses, progress: ((Int, Int) -> Void)? = nil, shouldStop: () -> Bool = { false }
  ) throws -> LikelihoodEstimate? {
    let chunks = MicroBatchLoop.chunks(of: images, size: microBatchSize).count
    // Every worker thread a micro-batch at least: the round's passes are a thread's, not a rank's.
    // Ranks may have different thread counts (hosts of other sizes, fewer streams on one rank): all
    // take the largest, so every rank runs the same rounds, and so the same collectives.
    let threads = Int(try communicator.extremes(of: [Int64(workspaces.count)], phase: "the importance-weighted estimate's round size").high[0])
    let perRound = max(threads, roundPasses / k) * communicator.size, samplesPerRound = min(k, max(1, roundPasses))
    var estimates = [ChunkEstimate](repeating: ChunkEstimate(), count: chunks)
    var done = 0
    for start in stride(from: 0, to: chunks, by: perRound) {
      for first in stride(from: 0, to: k, by: samplesPerRound) {
        let (stopped, imagesDone) = chunkEstimates(
          parameters: parameters, images: images, samples: k, part: (communicator.rank, communicator.size),
          within: start..<min(start + perRound, chunks), sampleRange: first..<min(first + samplesPerRound, k), into: &estimates,
          progress: progress, progressBase: done, shouldStop: shouldStop)
        done += imagesDone
        var flag = [stopped ? 1.0 : 0]
        if communicator.size > 1 {
          try flag.withUnsafeMutableBufferPointer {
            try communicator.allreduce($0, .max, phase: "the importance-weighted estimate's stop check")
          }
        }
        guard flag[0] == 0 else { return nil }
      }
    }
    var flat: [Double] = estimates.flatMap { [$0.sums.logLikelihood, $0.sums.elbo] }
    if communicator.size > 1 {
      try flat.withUnsafeMutableBufferPointer {
        try communicator.allreduce($0, .sum, phase: "the importance-weighted estimate")
      }
    }
    let reduced: [(logLikelihood: Double, elbo: Double)] = (0..<chunks).map { (flat[2 * $0], flat[2 * $0 + 1]) }
    return Self.estimate(reduced, samples: k, images: images.count)
  }

  static func estimate(_ sums: [(logLikelihood: Double, elbo: Double)], samples k: Int, images: Int) -> LikelihoodEstimate {
    let count = Double(images)
    return LikelihoodEstimate(
      logLikelihood: sums.reduce(0.0) { $0 + $1.logLikelihood } / count, elbo: sums.reduce(0.0) { $0 + $1.elbo } / count,
      samples: k, images: images)
  }

  /// One micro-batch's estimate as its samples go by: per image the largest log-weight so far and
  /// the total of the weights scaled by it (a running log-sum-exp), the micro-batch's ELBO (sample
  /// 0's), and once every sample is in, the sums of log p̂(x) and of the ELBO over its images (zeros
  /// until then, and for the micro-batches of other ranks).
  struct ChunkEstimate {
    var largest: [Double] = [], total: [Double] = []
    var elbo = 0.0
    var sums = (logLikelihood: 0.0, elbo: 0.0)
  }

  /// Runs samples `sampleRange` (all k when nil) of the micro-batches of `part` in `range` (all when
  /// nil) on from `estimates` (a fresh start at sample 0); returns whether `shouldStop` ended the
  /// passes early, and the images whose k samples are all in. Progress reports count
  /// `progressBase` images done before, of all the images of `part`.
  func chunkEstimates(
    parameters: ScalarBuffer<Float>, images: ImageStore, samples k: Int, part: (Int, Int), within range: Range<Int>? = nil,
    sampleRange: Range<Int>? = nil, into estimates: inout [ChunkEstimate], progress: ((Int, Int) -> Void)?, progressBase: Int = 0,
    shouldStop: () -> Bool
  ) -> (stopped: Bool, images: Int) {
    precondition(k >= 1)
    let size = microBatchSize, d = model.latentDim, samples = sampleRange ?? 0..<k
    let (chunks, batch) = MicroBatchLoop.chunks(of: images, size: size)
    precondition(estimates.count == chunks)
    let all = Array(stride(from: part.0, to: chunks, by: part.1))
    let myImages = all.reduce(0) { $0 + batch($1).count }
    let mine = range.map { range in all.filter(range.contains) } ?? all
    let views = ParameterViews(layout: model.layout, base: parameters.pointer)
    let done = ProgressCounter()
    let stopped = ProgressCounter()
    estimates.withUnsafeMutableBufferPointer { estimates in
      loop(images).run(count: mine.count, batch: { batch(mine[$0]) }, noise: nil) { _, j, batch, w in
        let chunk = mine[j]
        guard stopped.value == 0 else { return }
        if shouldStop() { _ = stopped.add(1); return }
        let n = batch.count
        var state = estimates[chunk]
        if samples.lowerBound == 0 { state = ChunkEstimate(largest: Array(repeating: 0, count: n), total: Array(repeating: 0, count: n)) }
        model.encode(views, batch: n, workspace: w)
        for sample in samples {
          if sample % 64 == 63 && shouldStop() {
            _ = stopped.add(1)
            return
          }
          fillNoise(w.noise.pointer, latentDim: d, seed: seed, purpose: .evaluationNoise, step: sample, fileIndices: batch)
          reparameterizeForward(mean: w.mean.pointer, logVar: w.logVar.pointer, noise: w.noise.pointer, z: w.z.pointer, count: n * d)
          model.decode(views, batch: n, workspace: w)
          _ = bceWithLogitsForward(logits: w.logits.pointer, targets: w.input.pointer, batch: n, pixels: 784, perImage: w.reconstructionPerImage)
          if sample == 0 {
            let kl = klForward(mean: w.mean.pointer, logVar: w.logVar.pointer, batch: n, latent: d)
            state.elbo = -(0..<n).reduce(0.0) { $0 + w.reconstructionPerImage[$1] } - kl
          }
          for i in 0..<n {
            // log p(x|z) + log p(z) − log q(z|x); the log 2π terms cancel.
            var logWeight = -w.reconstructionPerImage[i]
            for j in 0..<d {
              let z = Double(w.z.pointer[i * d + j]), e = Double(w.noise.pointer[i * d + j])
              logWeight += 0.5 * (e * e - z * z + Double(w.logVar.pointer[i * d + j]))
            }
            if sample == 0 || logWeight > state.largest[i] {
              state.total[i] = sample == 0 ? 1 : state.total[i] * exp(state.largest[i] - logWeight) + 1
              state.largest[i] = logWeight
            } else {
              state.total[i] += exp(logWeight - state.largest[i])
            }
          }
        }
        if samples.upperBound == k {
          let logK = log(Double(k))
          state.sums = ((0..<n).reduce(0.0) { $0 + state.largest[$1] + log(state.total[$1]) - logK }, state.elbo)
        }
        estimates[chunk] = state
        guard samples.upperBound == k else { return }
        // Under the counter's lock: the report (a clock, the console) runs on one worker at a time.
        _ = done.add(n) { progress?(progressBase + $0, myImages) }
      }
    }
    withExtendedLifetime(parameters) {}
    return (stopped.value != 0, done.value)
  }
}
