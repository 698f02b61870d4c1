import CounterRNG
import Foundation
import VAECore
import VAEData
import VAEDistributed
import VAETraining
import XCTest

final class EarlyStoppingTests: XCTestCase {
  /// A validation loss that falls, then rises: the stop comes `patience` epochs after the best, and
  /// the best is remembered with its step.
  func testStopsWhenTheValidationLossRisesAndKeepsTheBest() {
    var state = TrainingState()
    let losses = [400.0, 380, 379.5, 385, 390, 395, 370]
    var improved: [Bool] = [], stoppedAfter: Int?
    for (epoch, loss) in losses.enumerated() {
      improved.append(state.recordValidation(loss, step: 100 * (epoch + 1), minDelta: 1))
      if state.shouldStopEarly(patience: 3) {
        stoppedAfter = epoch + 1
        break
      }
    }
    XCTAssertEqual(improved, [true, true, false, false, false])  // 379.5 is within min-delta of 380
    XCTAssertEqual(stoppedAfter, 5)
    XCTAssertEqual(state.bestValidationLoss, 380)
    XCTAssertEqual(state.bestStep, 200)
    XCTAssertFalse(TrainingState().shouldStopEarly(patience: nil))
    var nan = TrainingState()
    XCTAssertTrue(nan.recordValidation(10, step: 1, minDelta: 0))
    XCTAssertFalse(nan.recordValidation(.nan, step: 2, minDelta: 0))
    XCTAssertEqual(nan.bestValidationLoss, 10)
    // An infinite loss first (a held-out image whose KL overflows) is no best either: the
    // checkpoint's JSON could not hold it.
    var infinite = TrainingState()
    XCTAssertFalse(infinite.recordValidation(.infinity, step: 1, minDelta: 0))
    XCTAssertNil(infinite.bestValidationLoss)
    XCTAssertEqual(infinite.epochsWithoutImprovement, 1)
  }
}

final class ImportanceWeightedTests: XCTestCase {
  /// log p̂_k is a lower bound of log p(x) that rises with k (in expectation) from the ELBO at k = 1.
  func testEstimateIsAtLeastTheELBOAndApproachesItAsKFallsToOne() {
    let (parameters, _) = Fixtures.parameters(zeroing: [])
    let evaluator = Evaluator(latentDim: 2, seed: 9, threads: 2)
    let store = Fixtures.images()
    let estimates = [1, 4, 32].map { evaluator.importanceWeighted(parameters: parameters, images: store, samples: $0)! }
    let elbo = estimates[0].elbo
    for e in estimates {
      print("k = \(e.samples): IW log-likelihood \(e.logLikelihood), ELBO \(e.elbo)")
      XCTAssertEqual(e.elbo, elbo, "the ELBO uses the first sample whatever k is")
    }
    XCTAssertGreaterThan(estimates[2].logLikelihood, estimates[1].logLikelihood)
    XCTAssertGreaterThan(estimates[1].logLikelihood, estimates[0].logLikelihood)
    XCTAssertGreaterThan(estimates[2].logLikelihood, elbo)
    // At k = 1 the estimate is the ELBO with the KL term sampled instead of exact: the same on
    // average, so close over 96 images.
    XCTAssertEqual(estimates[0].logLikelihood, elbo, accuracy: 0.01 * abs(elbo))
    // The ELBO is minus the loss the evaluator reports with the same noise.
    let loss = evaluator.evaluate(parameters: parameters, images: store).loss
    XCTAssertEqual(-loss.meanLoss(beta: 1), elbo, accuracy: 1e-6 * abs(elbo))
  }

  /// With q(z|x) = p(z) = N(0, I) (the z_mean and z_log_var layers zero) and a decoder that ignores z
  /// (its dense weights zero), every importance weight is p(x|z) with the same value, so their mean is
  /// that value for any k: the estimate equals the ELBO exactly, not log k above it.
  func testEqualWeightsGiveTheELBOForEveryK() {
    let (parameters, views) = Fixtures.parameters(zeroing: [
      "encoder.z_mean.weight", "encoder.z_mean.bias", "encoder.z_log_var.weight", "encoder.z_log_var.bias",
      "decoder.fc.weight",
    ])
    XCTAssertEqual(views.zLogVarBias[1], 0)
    XCTAssertEqual(views.decoderFcWeight[64 * 7 * 7 * 2 - 1], 0)  // its last weight
    let evaluator = Evaluator(latentDim: 2, seed: 9, threads: 2)
    let store = Fixtures.images()
    for k in [1, 4, 32] {
      let e = evaluator.importanceWeighted(parameters: parameters, images: store, samples: k)!
      print("k = \(k): IW log-likelihood \(e.logLikelihood), ELBO \(e.elbo)")
      XCTAssertEqual(e.logLikelihood, e.elbo, accuracy: 1e-9 * abs(e.elbo), "k = \(k)")
    }
  }

  /// q(z|x) = N(0.5, 2²) for every image and a decoder that ignores z: at k = 1 the estimate is the
  /// mean of log p(x|z) + log p(z) − log q(z|x) over one draw per image, whose expectation is the ELBO
  /// (KL = 1.86 nats here) and whose spread over these 96 images is about 0.34 nats; a weight that
  /// lost its log σ² term would sit 1.39 nats lower, one with a sign slip in z² several nats off.
  func testOneSampleEstimateMatchesTheELBOWhenQIsNotThePrior() {
    let (parameters, views) = Fixtures.parameters(zeroing: [
      "encoder.z_mean.weight", "encoder.z_log_var.weight", "decoder.fc.weight",
    ])
    for j in 0..<2 { (views.zMeanBias[j], views.zLogVarBias[j]) = (0.5, Float(log(4.0))) }
    let e = Evaluator(latentDim: 2, seed: 9, threads: 2)
      .importanceWeighted(parameters: parameters, images: Fixtures.images(), samples: 1)!
    print("k = 1: IW log-likelihood \(e.logLikelihood), ELBO \(e.elbo)")
    XCTAssertEqual(e.logLikelihood, e.elbo, accuracy: 0.8)
  }
}

final class SharedEstimateTests: XCTestCase {
  /// Shared over two ranks the estimate keeps one rank's bits; a stop on one rank ends it on both
  /// after the round in progress (here 32 passes: 8 micro-batches a rank at k = 4), not after every
  /// rank's whole share (the default job's shares take 75 s, past the 60 s stall timeout).
  func testAStopOnOneRankEndsTheSharedEstimateWithinARound() {
    let (parameters, _) = Fixtures.parameters(zeroing: [])
    // 96 images: 48 micro-batches of 2, 3 rounds on 2 ranks; under a sanitizer 48 images, 1½ rounds.
    let store = Fixtures.images(count: Fixtures.underSanitizer ? 48 : 96)
    @Sendable func evaluator() -> Evaluator { Evaluator(latentDim: 2, seed: 9, threads: 1, microBatchSize: 2) }
    let single = evaluator().importanceWeighted(parameters: parameters, images: store, samples: 4)!
    let shared = InProcessGroup(size: 2).run { communicator in
      try! evaluator().importanceWeighted(parameters: parameters, images: store, samples: 4, over: communicator)!
    }
    XCTAssertEqual(shared.map(\.logLikelihood.bitPattern), [single.logLikelihood.bitPattern, single.logLikelihood.bitPattern])
    XCTAssertEqual(shared.map(\.elbo.bitPattern), [single.elbo.bitPattern, single.elbo.bitPattern])
    let stopped = InProcessGroup(size: 2).run { communicator -> (stopped: Bool, images: Int) in
      var images = 0  // one worker thread: the reports come one at a time
      let estimate = try! evaluator().importanceWeighted(
        parameters: parameters, images: store, samples: 4, over: communicator, roundPasses: 32,
        progress: { done, _ in images = done }, shouldStop: { communicator.rank == 1 })
      return (estimate == nil, images)
    }
    print("a stop on rank 1: images estimated by rank 0 \(stopped[0].images), by rank 1 \(stopped[1].images)")
    XCTAssertEqual(stopped.map(\.stopped), [true, true])
    XCTAssertEqual(stopped.map(\.images), [16, 0], "rank 0 ends after its first round, rank 1 at once")
  }

  /// Ranks with different thread counts (hosts of other sizes, fewer streams on one rank) run the
  /// same rounds, so the same collectives: here a round would otherwise be a micro-batch a thread,
  /// 2 micro-batches on rank 0's one thread and 6 on rank 1's three. One rank's bits, as ever.
  func testRanksWithDifferentThreadCountsRunTheSameRounds() {
    let (parameters, _) = Fixtures.parameters(zeroing: [])
    let store = Fixtures.images(count: Fixtures.underSanitizer ? 32 : 96)  // 48 (16) micro-batches of 2
    let single = Evaluator(latentDim: 2, seed: 9, threads: 1, microBatchSize: 2)
      .importanceWeighted(parameters: parameters, images: store, samples: 4)!
    let shared = InProcessGroup(size: 2).run { communicator in
      try! Evaluator(latentDim: 2, seed: 9, threads: communicator.rank == 0 ? 1 : 3, microBatchSize: 2)
        .importanceWeighted(parameters: parameters, images: store, samples: 4, over: communicator, roundPasses: 4)!
    }
    XCTAssertEqual(shared.map(\.logLikelihood.bitPattern), [single.logLikelihood.bitPattern, single.logLikelihood.bitPattern])
    XCTAssertEqual(shared.map(\.elbo.bitPattern), [single.elbo.bitPattern, single.elbo.bitPattern])
  }

  /// With more samples than a round's passes (k = 40, rounds of 16), each micro-batch's samples are
  /// cut into rounds (16, 16, 8) whose running log-sum-exp goes on from one to the next: the same
  /// bits as the estimate in one go, on 1 and 3 ranks; a stop on one rank ends the first round of
  /// samples on every rank, before any micro-batch is whole. (Under a sanitizer 24 images: one
  /// micro-batch a rank on 3 ranks.)
  func testRoundsOfSamplesKeepTheBitsAndStopWithinARound() {
    let (parameters, _) = Fixtures.parameters(zeroing: [])
    let store = Fixtures.images(count: Fixtures.underSanitizer ? 24 : 96)
    @Sendable func evaluator() -> Evaluator { Evaluator(latentDim: 2, seed: 9, threads: 2, microBatchSize: 8) }
    let whole = evaluator().importanceWeighted(parameters: parameters, images: store, samples: 40)!
    for ranks in [1, 3] {
      let cut = InProcessGroup(size: ranks).run { communicator in
        try! evaluator().importanceWeighted(parameters: parameters, images: store, samples: 40, over: communicator, roundPasses: 16)!
      }
      for estimate in cut {
        XCTAssertEqual(estimate.logLikelihood.bitPattern, whole.logLikelihood.bitPattern, "\(ranks) ranks: \(estimate.logLikelihood) against \(whole.logLikelihood)")
        XCTAssertEqual(estimate.elbo.bitPattern, whole.elbo.bitPattern, "\(ranks) ranks")
      }
    }
    let stopped = InProcessGroup(size: 2).run { communicator -> (stopped: Bool, images: Int) in
      var images = 0  // reports come one at a time, under the evaluator's lock
      let estimate = try! evaluator().importanceWeighted(
        parameters: parameters, images: store, samples: 40, over: communicator, roundPasses: 16,
        progress: { done, _ in images = done }, shouldStop: { communicator.rank == 1 })
      return (estimate == nil, images)
    }
    XCTAssertEqual(stopped.map(\.stopped), [true, true])
    XCTAssertEqual(stopped.map(\.images), [0, 0], "a micro-batch was finished after the stop")
  }
}

final class HiddenActivityTests: XCTestCase {
  /// Dead hidden units: units 3, 7 and 12 get a bias no input can overcome, unit 5 a zero row and a
  /// zero bias (never positive); the count must be those 4, whether one rank or two share the passes,
  /// and the live units' mask must be what a pass written out here (fc of the encoder's features)
  /// gives.
  func testCountsTheEncoderUnitsThatNeverFire() throws {
    let layout = ParameterLayout(latentDim: 2)
    let parameters = ScalarBuffer<Float>(count: layout.totalCount)
    glorotUniformInitialize(parameters.pointer, layout: layout, seed: 11)
    let views = ParameterViews(layout: layout, base: parameters.pointer)
    let features = 64 * 7 * 7
    for unit in [3, 7, 12] { views.fcBias[unit] = -1e6 }
    for i in 0..<features { views.fcWeight[5 * features + i] = 0 }
    views.fcBias[5] = 0
    let store = Fixtures.images()
    let evaluator = Evaluator(latentDim: 2, seed: 9, threads: 2)
    let single = evaluator.evaluate(parameters: parameters, images: store)
    XCTAssertEqual(single.deadHiddenUnits, 4)
    let deadMask: UInt32 = (1 << 3) | (1 << 5) | (1 << 7) | (1 << 12)
    XCTAssertEqual(single.hiddenActive & deadMask, 0)

    // Independent arithmetic: the encoder's features from the core's own layers, then fc by hand.
    let model = VAEModel<Float>(latentDim: 2)
    let workspace = VAEWorkspace<Float>(capacity: store.count, latentDim: 2)
    store.fill(workspace.input.pointer, fileIndices: 0..<store.count)
    model.encode(views, batch: store.count, workspace: workspace)
    var mask: UInt32 = 0
    for image in 0..<store.count {
      for unit in 0..<16 {
        var sum = Double(views.fcBias[unit])
        for i in 0..<features { sum += Double(views.fcWeight[unit * features + i]) * Double(workspace.conv2Out.pointer[workspace.conv2Features.pointer[i] + image]) }
        if sum > 0 { mask |= 1 << UInt32(unit) }
      }
    }
    print("hidden units live: evaluator \(String(single.hiddenActive, radix: 2)), by hand \(String(mask, radix: 2))")
    XCTAssertEqual(single.hiddenActive, mask)

    let shared: [SetEvaluation] = InProcessGroup(size: 2).run { communicator in
      try! Evaluator(latentDim: 2, seed: 9, threads: 1).evaluate(parameters: parameters, images: store, over: communicator, phase: "test")
    }
    XCTAssertEqual(shared, [single, single], "two ranks give the same sums and mask as one")
  }
}
