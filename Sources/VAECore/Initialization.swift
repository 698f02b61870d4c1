import CounterRNG

/// Keras's defaults: Glorot-uniform weights, U(−a, a) with a = √(6 / (fan_in + fan_out)), zero biases.
/// Fans count the 3×3 taps for convolutions (fan_in + fan_out = 9·(in + out) for both kinds).
/// Draws come from one counter-based stream keyed by the seed, in tensor order, so the initial
/// parameters are a function of the seed and the latent size alone.
public func glorotUniformInitialize(
  _ parameters: UnsafeMutablePointer<Float>, layout: ParameterLayout, seed: UInt64
) {
  var random = CounterRandomStream(seed: seed, purpose: .parameterInitialization)
  for spec in layout.tensors {
    let target = parameters + spec.offset
    guard spec.shape.count > 1 else {
      target.update(repeating: 0, count: spec.count)
      continue
    }
    let receptive = spec.shape.dropFirst(2).reduce(1, *)
    let fanSum = (spec.shape[0] + spec.shape[1]) * receptive
    let limit = (6.0 / Double(fanSum)).squareRoot()
    for i in 0..<spec.count {
      target[i] = Float((2 * random.nextOpenUnit() - 1) * limit)
    }
  }
}
