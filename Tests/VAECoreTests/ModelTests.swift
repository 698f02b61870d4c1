import CounterRNG
import VAECore
import XCTest
import _CKernels

final class ModelTests: XCTestCase {
  func testParameterCountAndNames() {
    let layout = ParameterLayout(latentDim: 2)
    XCTAssertEqual(layout.totalCount, 134_165)
    XCTAssertEqual(layout.tensors.count, 18)
    XCTAssertEqual(layout.spec(named: "decoder.deconv1.weight")?.shape, [64, 64, 3, 3])
    XCTAssertEqual(layout.spec(named: "decoder.deconv2.weight")?.shape, [64, 32, 3, 3])
    XCTAssertEqual(layout.spec(named: "encoder.fc.weight")?.shape, [16, 3136])
    XCTAssertEqual(ParameterLayout(latentDim: 8).totalCount, 134_165 + 6 * (16 + 1) * 2 + 6 * 3136)
  }

  /// The work and traffic `bench --layers` divides by, from the layers' geometry, against hand counts.
  func testPassFlopsAndBytesFromGeometry() {
    // conv2 32→64, 14×14 → 7×7: 64·32·9·49 multiply-adds per image.
    XCTAssertEqual(Pass.conv2Forward.multiplyAddsPerImage(latentDim: 2), 903_168)
    // 16 images: x 32·14·14 and y 64·7·7 per image, the weights once.
    XCTAssertEqual(Pass.conv2Forward.floatsMoved(latentDim: 2, images: 16), 16 * (6272 + 3136) + 18_432)
    // backward-data: dy, the mask (conv1's output, as x) and dx; backward-weights: x, dy twice (the bias), dW.
    XCTAssertEqual(Pass.conv2Data.floatsMoved(latentDim: 2, images: 16), 16 * (3136 + 2 * 6272) + 18_432)
    XCTAssertEqual(Pass.conv2Weights.floatsMoved(latentDim: 2, images: 16), 16 * (6272 + 2 * 3136) + 18_432)
    // ConvTranspose2d 64→32, 14×14 → 28×28: x is the small grid.
    XCTAssertEqual(Pass.deconv2Forward.floatsMoved(latentDim: 2, images: 1), 64 * 196 + 32 * 784 + 18_432)
    // dense 3136→16: its backward-data reads dy, the mask, writes dx; the weights once.
    XCTAssertEqual(Pass.denseData.floatsMoved(latentDim: 2, images: 16), 16 * (16 + 2 * 3136) + 50_176)
    XCTAssertEqual(Pass.latentForward.floatsMoved(latentDim: 2, images: 16), 2 * (16 * (16 + 2) + 32))
    XCTAssertEqual(Pass.inputLayout.floatsMoved(latentDim: 2, images: 16), 0)
  }

  /// The whole loss Σ_images (BCE + β·KL) against central differences of every tensor, in Double.
  func testWholeModelGradientMatchesFiniteDifferences() {
    let model = VAEModel<Double>(latentDim: 2)
    let layout = model.layout
    let batch = 2
    let beta = 0.7
    let parameters = ScalarBuffer<Double>(randomValues(layout.totalCount, seed: 51, scale: 0.2))
    let gradients = ScalarBuffer<Double>(count: layout.totalCount)
    let workspace = VAEWorkspace<Double>(capacity: batch, latentDim: 2)
    let pixels = randomValues(batch * 784, seed: 52).map { ($0 + 1) / 2 }
    let noise = randomValues(batch * 2, seed: 53, scale: 1.5)

    func loss() -> Double {
      workspace.input.pointer.update(from: pixels, count: pixels.count)
      workspace.noise.pointer.update(from: noise, count: noise.count)
      let sums = model.forward(ParameterViews(layout: layout, base: parameters.pointer), batch: batch, workspace: workspace)
      return sums.reconstruction + beta * sums.kl
    }
    _ = loss()
    model.backward(
      ParameterViews(layout: layout, base: parameters.pointer),
      gradients: ParameterViews(layout: layout, base: gradients.pointer), batch: batch, beta: beta,
      workspace: workspace)

    var worst = 0.0
    for spec in layout.tensors {
      var random = CounterRandomStream(seed: 54, purpose: .priorSamples, UInt64(spec.offset), 0)
      // 6 entries a tensor; 1 under a sanitizer (6 took 45 s of 212 under AddressSanitizer on a Zen 1, 2
      // took 31 s), where every entry runs the same code: the sanitizer watches the passes, not the sums.
      let picks = Set((0..<min(spec.count, underSanitizer ? 1 : 6)).map { _ in spec.offset + random.nextIndex(below: spec.count) })
      var analytic: [Double] = [], numeric: [Double] = []
      // Two steps: a large one is spoilt where it moves a ReLU input across zero (biases feed many
      // units), a small one by the roundoff of a loss near 10³. A wrong gradient disagrees with both,
      // so each entry keeps the difference that agrees better.
      for i in picks.sorted() {
        let candidates = [1e-4, 1e-6].map { h -> Double in
          let saved = parameters.pointer[i]
          parameters.pointer[i] = saved + h
          let plus = loss()
          parameters.pointer[i] = saved - h
          let minus = loss()
          parameters.pointer[i] = saved
          return (plus - minus) / (2 * h)
        }
        let a = gradients.pointer[i]
        numeric.append(candidates.min { abs($0 - a) < abs($1 - a) }!)
        analytic.append(a)
      }
      let error = maxRelativeError(analytic, numeric, floor: 1e-3)
      print("whole model, \(spec.name): max relative error \(error) over \(picks.count) entries")
      worst = max(worst, error)
      XCTAssertLessThan(error, 1e-5, spec.name)
    }
    print("whole model: max relative error over all tensors \(worst)")
  }

  /// The Float model and the Double model agree on the loss and gradient (BLAS sgemm vs dgemm paths).
  func testFloatModelAgreesWithDouble() {
    let layout = ParameterLayout(latentDim: 3)
    let values = randomValues(layout.totalCount, seed: 61, scale: 0.1)
    let pixels = randomValues(5 * 784, seed: 62).map { ($0 + 1) / 2 }
    let noise = randomValues(5 * 3, seed: 63)

    func run<T: VAEScalar>(_: T.Type) -> (Double, [Double]) {
      let model = VAEModel<T>(latentDim: 3)
      let p = ScalarBuffer<T>(values.map { T($0) }), g = ScalarBuffer<T>(count: layout.totalCount)
      let w = VAEWorkspace<T>(capacity: 5, latentDim: 3)
      for i in 0..<pixels.count { w.input.pointer[i] = T(pixels[i]) }
      for i in 0..<noise.count { w.noise.pointer[i] = T(noise[i]) }
      let views = ParameterViews(layout: layout, base: p.pointer)
      let sums = model.forward(views, batch: 5, workspace: w)
      model.backward(views, gradients: ParameterViews(layout: layout, base: g.pointer), batch: 5, beta: 1, workspace: w)
      withExtendedLifetime(p) {}  // `views` points into it
      return (sums.reconstruction + sums.kl, g.array.map { Double($0) })
    }
    let (lossF, gradF) = run(Float.self)
    let (lossD, gradD) = run(Double.self)
    let gradScale = gradD.map(abs).max()!
    let gradError = maxAbsoluteDifference(gradF, gradD) / gradScale
    print("float vs double: loss \(lossF) vs \(lossD); max gradient difference / max |gradient| \(gradError)")
    XCTAssertEqual(lossF, lossD, accuracy: 1e-5 * abs(lossD))
    XCTAssertLessThan(gradError, 1e-4)
  }

  /// Micro-batch gradients are sums: the gradient of a batch of 4 equals the sum of two batches of 2.
  func testGradientsAddAcrossMicroBatches() {
    let layout = ParameterLayout(latentDim: 2)
    let model = VAEModel<Double>(latentDim: 2)
    let p = ScalarBuffer<Double>(randomValues(layout.totalCount, seed: 71, scale: 0.2))
    let pixels = randomValues(4 * 784, seed: 72).map { ($0 + 1) / 2 }
    let noise = randomValues(8, seed: 73)
    func gradient(_ range: Range<Int>) -> [Double] {
      let w = VAEWorkspace<Double>(capacity: 4, latentDim: 2)
      let g = ScalarBuffer<Double>(count: layout.totalCount)
      w.input.pointer.update(from: Array(pixels[(range.lowerBound * 784)..<(range.upperBound * 784)]), count: range.count * 784)
      w.noise.pointer.update(from: Array(noise[(range.lowerBound * 2)..<(range.upperBound * 2)]), count: range.count * 2)
      let views = ParameterViews(layout: layout, base: p.pointer)
      _ = model.forward(views, batch: range.count, workspace: w)
      model.backward(views, gradients: ParameterViews(layout: layout, base: g.pointer), batch: range.count, beta: 1, workspace: w)
      return g.array
    }
    let whole = gradient(0..<4)
    let parts = zip(gradient(0..<2), gradient(2..<4)).map { $0 + $1 }
    XCTAssertLessThan(maxAbsoluteDifference(whole, parts) / whole.map(abs).max()!, 1e-12)
  }
}

final class LossTests: XCTestCase {
  func testBinaryCrossEntropyFromLogitsMatchesProbabilityForm() {
    let logits: [Double] = [-30, -4, -0.5, 0, 0.25, 3, 25]
    let targets: [Double] = [0, 0.2, 1, 0.5, 0.75, 1, 0.1]
    var perImage = [0.0]
    let got = bceWithLogitsForward(logits: logits, targets: targets, batch: 1, pixels: 7, perImage: &perImage)
    // −[x log σ(l) + (1 − x) log(1 − σ(l))], with log σ(l) = −log(1 + e^−l) written out per sign.
    var expected = 0.0
    for (l, x) in zip(logits, targets) {
      let logSigma = l >= 0 ? -log(1 + exp(-l)) : l - log(1 + exp(l))
      let logOneMinusSigma = l >= 0 ? -l - log(1 + exp(-l)) : -log(1 + exp(l))
      expected -= x * logSigma + (1 - x) * logOneMinusSigma
    }
    XCTAssertEqual(got, expected, accuracy: 1e-12)
    XCTAssertEqual(perImage[0], got)
    // A hand value: l = 0, x = 0.5 gives log 2.
    XCTAssertEqual(bceWithLogitsForward(logits: [0.0], targets: [0.5], batch: 1, pixels: 1), log(2), accuracy: 1e-15)
    var d = [0.0, 0.0]
    bceWithLogitsBackward(logits: [0.0, 2.0], targets: [1.0, 0.0], dLogits: &d, count: 2)
    XCTAssertEqual(d[0], -0.5, accuracy: 1e-15)
    XCTAssertEqual(d[1], 1 / (1 + exp(-2.0)), accuracy: 1e-15)
  }

  func testKLDivergenceHandValues() {
    // KL(N(0.5, 2) ‖ N(0, 1)) = ½(σ² + μ² − 1 − ln σ²) = ½(2 + 0.25 − 1 − ln 2); N(0, 1) has KL 0.
    let kl = klForward(mean: [0.5, 0.0], logVar: [log(2.0), 0.0], batch: 1, latent: 2)
    XCTAssertEqual(kl, 0.5 * (1.25 - log(2.0)), accuracy: 1e-15)
    XCTAssertEqual(klForward(mean: [0.0], logVar: [0.0], batch: 1, latent: 1), 0, accuracy: 0)
  }

  func testAdamMatchesTextbookFormulation() {
    // Reference: the paper's form with explicit bias-corrected moments and ε̂ = ε·√(1 − β2^t), which
    // is algebraically Keras's update.
    let config = AdamConfiguration(learningRate: 0.01)
    var p: [Float] = [1.0, -2.0, 0.5], m: [Float] = [0, 0, 0], v: [Float] = [0, 0, 0]
    var rp = p.map(Double.init), rm = [0.0, 0.0, 0.0], rv = [0.0, 0.0, 0.0]
    let gradients: [[Float]] = [[0.5, -1.5, 1e-4], [0.25, 2.0, -3e-4], [-1.0, 0.1, 0.0]]
    for (t, g) in gradients.enumerated() {
      adamUpdate(parameters: &p, gradients: g, firstMoment: &m, secondMoment: &v, count: 3, step: t + 1, configuration: config)
      let step = Double(t + 1)
      for i in 0..<3 {
        let gi = Double(g[i])
        rm[i] = 0.9 * rm[i] + 0.1 * gi
        rv[i] = 0.999 * rv[i] + 0.001 * gi * gi
        let mHat = rm[i] / (1 - pow(0.9, step)), vHat = rv[i] / (1 - pow(0.999, step))
        rp[i] -= 0.01 * mHat / (vHat.squareRoot() + 1e-7 / (1 - pow(0.999, step)).squareRoot())
      }
    }
    for i in 0..<3 { XCTAssertEqual(Double(p[i]), rp[i], accuracy: 1e-6) }
    // First step moves each parameter by about lr against the sign of its gradient.
    XCTAssertEqual(rp[0], 1.0 - 0.01 * 3 + 0, accuracy: 0.02)
  }

  func testAdamKernelRoundsEveryOperationAsWritten() throws {
    // In every build of the kernel this CPU has (the one that goes with each kernel variant).
    KernelVariant.withEachElementwiseBuild {
      adamKernelRoundsEveryOperationAsWritten()
    }
  }

  func adamKernelRoundsEveryOperationAsWritten() {
    // vdk_adam (vectorized, every width the CPU has, plus a tail) against the update written out in
    // Swift one element at a time, each operation rounded to Float in order: the same bits, over
    // gradients from 2^-100 to 2^9 with either sign, zeros, and steps whose moments start at zero;
    // three of adamUpdate's pieces of 16 Ki, run on the threads, the last one partial.
    let count = 2 * 16_384 + 1_003, divisor: Float = 96
    var random = CounterRandomStream(seed: 11, purpose: .priorSamples, 7, 0)
    var p = (0..<count).map { _ in Float.random(in: -2...2, using: &random) }
    var m = [Float](repeating: 0, count: count), v = m
    var rp = p, rm = m, rv = v
    let config = AdamConfiguration(learningRate: 3e-3)
    for t in 1...4 {
      let g: [Float] = (0..<count).map { i in
        i % 97 == 0 ? 0 : Float.random(in: -1...1, using: &random) * Float(sign: .plus, exponent: (i * 7 + t) % 110 - 100, significand: 1)
      }
      adamUpdate(
        parameters: &p, gradients: g, firstMoment: &m, secondMoment: &v, count: count, step: t, configuration: config,
        gradientDivisor: divisor)
      let alpha = Float(config.learningRate * (1 - pow(config.beta2, Double(t))).squareRoot() / (1 - pow(config.beta1, Double(t))))
      let beta1 = Float(config.beta1), beta2 = Float(config.beta2), epsilon = Float(config.epsilon)
      for i in 0..<count {
        let gi = g[i] / divisor
        rm[i] = beta1 * rm[i] + (1 - beta1) * gi
        rv[i] = beta2 * rv[i] + (1 - beta2) * gi * gi
        rp[i] -= alpha * rm[i] / (rv[i].squareRoot() + epsilon)
      }
      var mismatches = 0
      for i in 0..<count where p[i].bitPattern != rp[i].bitPattern || m[i].bitPattern != rm[i].bitPattern
        || v[i].bitPattern != rv[i].bitPattern
      {
        mismatches += 1
      }
      print("Adam step \(t): \(mismatches) of \(count) elements differ from the scalar formula (\(String(cString: vdk_instruction_set())))")
      XCTAssertEqual(mismatches, 0, "step \(t)")
    }
  }
}

final class RandomTests: XCTestCase {
  func testPhiloxKnownAnswers() {
    // Known-answer vectors from the Random123 distribution (kat_vectors, philox4x32_10).
    XCTAssertEqual(
      philox4x32(counter: SIMD4(0, 0, 0, 0), key: SIMD2(0, 0)),
      SIMD4(0x6627_e8d5, 0xe169_c58d, 0xbc57_ac4c, 0x9b00_dbd8))
    XCTAssertEqual(
      philox4x32(counter: SIMD4(repeating: 0xffff_ffff), key: SIMD2(repeating: 0xffff_ffff)),
      SIMD4(0x408f_276d, 0x41c8_3b0e, 0xa20b_c7c6, 0x6d54_51fd))
    XCTAssertEqual(
      philox4x32(counter: SIMD4(0x243f_6a88, 0x85a3_08d3, 0x1319_8a2e, 0x0370_7344), key: SIMD2(0xa409_3822, 0x299f_31d0)),
      SIMD4(0xd16c_fe09, 0x94fd_cceb, 0x5001_e420, 0x2412_6ea1))
  }

  func testNormalDrawsHaveUnitMoments() {
    var random = CounterRandomStream(seed: 5, purpose: .trainingNoise, 1, 2)
    var values = [Double](repeating: 0, count: 200_000)
    values.withUnsafeMutableBufferPointer { random.fillStandardNormal($0) }
    let mean = values.reduce(0, +) / Double(values.count)
    let variance = values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count)
    XCTAssertEqual(mean, 0, accuracy: 0.01)
    XCTAssertEqual(variance, 1, accuracy: 0.01)
  }

  func testGlorotInitialization() {
    let layout = ParameterLayout(latentDim: 2)
    let p = ScalarBuffer<Float>(count: layout.totalCount)
    glorotUniformInitialize(p.pointer, layout: layout, seed: 3)
    for spec in layout.tensors {
      let values = (0..<spec.count).map { p.pointer[spec.offset + $0] }
      if spec.shape.count == 1 {
        XCTAssertTrue(values.allSatisfy { $0 == 0 }, spec.name)
      } else {
        let fans = Double((spec.shape[0] + spec.shape[1]) * spec.shape.dropFirst(2).reduce(1, *))
        let limit = Float((6 / fans).squareRoot())
        XCTAssertTrue(values.allSatisfy { abs($0) <= limit }, spec.name)
        // Uniform on (−a, a) has variance a²/3.
        let variance = values.reduce(0) { $0 + Double($1 * $1) } / Double(values.count)
        if spec.count > 1000 { XCTAssertEqual(variance, Double(limit * limit) / 3, accuracy: 0.05 * Double(limit * limit)) }
      }
    }
    let again = ScalarBuffer<Float>(count: layout.totalCount)
    glorotUniformInitialize(again.pointer, layout: layout, seed: 3)
    XCTAssertEqual(p.array, again.array)
  }
}
