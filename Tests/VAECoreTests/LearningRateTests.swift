import VAECore
import XCTest

final class LearningRateTests: XCTestCase {
  func rate(_ s: LearningRateSchedule, _ t: Int, batch: Int = 128, run: Int = 100) -> Double {
    s.rate(step: t, base: 1e-3, batchSize: batch, runSteps: run)
  }

  func testTheDefaultIsTheConstantRate() {
    let s = LearningRateSchedule()
    XCTAssertTrue(s.isConstant)
    for t in [1, 2, 50, 100, 1000] { XCTAssertEqual(rate(s, t), 1e-3) }
  }

  func testWarmUpRampsLinearlyToTheScaledPeak() {
    var s = LearningRateSchedule()
    (s.warmupSteps, s.scaling) = (10, .linear)
    XCTAssertEqual(s.peak(base: 1e-3, batchSize: 1024), 8e-3)
    XCTAssertEqual(rate(s, 1, batch: 1024), 8e-4, accuracy: 1e-15)
    XCTAssertEqual(rate(s, 5, batch: 1024), 4e-3, accuracy: 1e-15)
    XCTAssertEqual(rate(s, 10, batch: 1024), 8e-3)
    XCTAssertEqual(rate(s, 11, batch: 1024), 8e-3)
    s.scaling = .sqrt
    XCTAssertEqual(s.peak(base: 1e-3, batchSize: 512), 2e-3, accuracy: 1e-15)
  }

  func testCosineGoesFromThePeakToTheFinalFractionOverTheRest() {
    var s = LearningRateSchedule()
    (s.shape, s.warmupSteps, s.finalFraction) = (.cosine, 10, 0.1)
    XCTAssertEqual(rate(s, 11), 1e-3, accuracy: 1e-15)  // first step after the warm-up: the peak
    XCTAssertEqual(rate(s, 100), 1e-4, accuracy: 1e-15)  // the run's last step: the final fraction
    XCTAssertEqual(rate(s, 1000), 1e-4, accuracy: 1e-15)  // beyond it, held
    let middle = 10 + 1 + (90 - 1) / 2  // half-way through the decay: the mean of peak and end
    XCTAssertEqual(rate(s, middle), 1e-3 * (0.1 + 0.9 * 0.5 * (1 + cos(Double.pi * 44 / 89))), accuracy: 1e-15)
    s.decaySteps = 20
    XCTAssertEqual(rate(s, 30), 1e-4, accuracy: 1e-15)
    for t in 11..<100 { XCTAssertLessThanOrEqual(rate(s, t + 1), rate(s, t)) }
  }

  func testStepDecayMultipliesByGammaEveryK() {
    var s = LearningRateSchedule()
    (s.shape, s.stepEvery, s.gamma) = (.step, 30, 0.5)
    XCTAssertEqual(rate(s, 1), 1e-3)
    XCTAssertEqual(rate(s, 30), 1e-3)
    XCTAssertEqual(rate(s, 31), 5e-4)
    XCTAssertEqual(rate(s, 61), 2.5e-4)
    XCTAssertEqual(s.description, "×0.5 every 30 steps")
    var cosine = LearningRateSchedule()
    cosine.shape = .cosine
    XCTAssertEqual(cosine.description, "cosine to 0 of the peak over the run", "not 0.0")
    // Settings as a person reads them: %g, not Swift's shortest round trip.
    XCTAssertEqual([0.0028284271247461905, 1, 0, 1e-5, 0.001, 1234567].map(shortNumber), ["0.00282843", "1", "0", "1e-05", "0.001", "1.23457e+06"])
  }
}
