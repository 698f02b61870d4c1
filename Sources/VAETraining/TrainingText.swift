import VAECore
import VAEDistributed

/// What rank zero prints: the banner, the progress within an epoch and the line of each epoch.
extension Trainer {
  /// The configuration banner rank zero prints before training.
  public func printBanner() {
    let c = configuration, data = engine.data
    let microBatches = schedule.streamCount, threads = engine.workerThreads
    console.line("vae-dist: convolutional VAE on Fashion-MNIST")
    console.line("  host       \(cpuDescription()), \(onlineCPUCount()) cores (rank 0's)")
    console.line("  mode       \(communicator.modeDescription), \(threads) worker thread\(threads == 1 ? "" : "s") per rank, kernels \(KernelVariant.active.rawValue), \(Precision.active.banner)")
    console.line("  data       \(c.syntheticData ? "synthetic images" : c.dataDirectory): \(grouped(schedule.exampleCount)) training images; this rank holds \(grouped(data.train.count)) (streams \(data.localStreams.lowerBound)..<\(data.localStreams.upperBound) of \(microBatches))")
    console.line("  model      latent size \(c.latentDim), \(grouped(engine.layout.totalCount)) parameters, β \(shortNumber(c.beta))")
    console.line("  training   \(c.epochs) epochs × \(schedule.stepsPerEpoch) steps\(c.maxSteps.map { " (stopping after \($0) step\($0 == 1 ? "" : "s"))" } ?? ""), batch \(c.batchSize) = \(microBatches) micro-batches of \(c.microBatchSize), Adam lr \(shortNumber(c.adam.learningRate))\(c.learningRateSchedule.map { " (\($0.description); peak \(shortNumber($0.peak(base: c.adam.learningRate, batchSize: c.batchSize))))" } ?? ""), seed \(c.seed)")
    console.line("  reduction  \(c.reduction.rawValue)")
    console.line("  output     \(c.outputDirectory)/")
  }

  func reportProgress(epoch: Int, done: Int, losses: LossSums, start: Double, last: inout Double) {
    let now = monotonicSeconds(), quarter = max(1, schedule.stepsPerEpoch / 4)
    if console.style == .bar, now - last > 0.25 {
      last = now
      console.progress(progressText(epoch, done, losses, now - start))
    } else if console.style == .lines, done % quarter == 0, done < 4 * quarter {
      console.line(progressText(epoch, done, losses, now - start))
    }
  }

  func progressText(_ epoch: Int, _ stepInEpoch: Int, _ losses: LossSums, _ seconds: Double) -> String {
    let width = 24
    let filled = width * stepInEpoch / schedule.stepsPerEpoch
    let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled)
    return "epoch \(epoch + 1)/\(configuration.epochs) [\(bar)] \(stepInEpoch)/\(schedule.stepsPerEpoch)"
      + "  loss \(fixed(losses.meanLoss(beta: configuration.beta), 2))"
      + "  \(grouped(Int(Double(losses.count) / max(seconds, 1e-9)))) img/s"
  }

  func epochLine(_ m: EpochMetrics) -> String {
    var text = "epoch \(m.epoch)/\(configuration.epochs)  step \(m.step)  train \(fixed(m.train.meanLoss(beta: m.beta), 2))"
      + " (recon \(fixed(m.train.meanReconstruction, 2)), kl \(fixed(m.train.meanKL, 2)))"
    if let validation = m.validation {
      text += "  val \(fixed(validation.meanLoss(beta: m.beta), 2))\(m.isBest == true ? "*" : "")"
    }
    if let test = m.test {
      text += "  test \(fixed(test.meanLoss(beta: m.beta), 2)) (recon \(fixed(test.meanReconstruction, 2)), kl \(fixed(test.meanKL, 2)))"
    }
    if let meanZ = m.testMeanZ { text += " z=μ \(fixed(meanZ.meanLoss(beta: m.beta), 2))" }
    return text + "  \(grouped(Int(m.imagesPerSecond.isFinite ? m.imagesPerSecond : 0))) img/s  \(fixed(m.seconds, 1)) s"
  }
}
