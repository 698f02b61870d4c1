#if canImport(Glibc)
  import Glibc
#endif

// Philox4x32-10 (Salmon et al., "Parallel random numbers: as easy as 1, 2, 3", SC'11).
//
// A counter-based generator: every output block is a pure function of (key, counter). vae-dist keys
// every random draw by what it is for — (seed, step, example index) for the reparameterization noise,
// (seed, epoch, stream) for the data order — so no draw depends on how many ranks or threads exist or
// in which order they ran.

/// One Philox4x32-10 block: 128 random bits from a 128-bit counter and a 64-bit key. The state is
/// held in scalars: built as SIMD4 values each round, the same arithmetic took twice the time.
@inlinable
public func philox4x32(counter: SIMD4<UInt32>, key: SIMD2<UInt32>) -> SIMD4<UInt32> {
  var (c0, c1, c2, c3) = (counter.x, counter.y, counter.z, counter.w)
  var (k0, k1) = (key.x, key.y)
  for round in 0..<10 {
    if round > 0 {
      k0 &+= 0x9E37_79B9
      k1 &+= 0xBB67_AE85
    }
    let p0 = UInt64(0xD251_1F53) &* UInt64(c0)
    let p1 = UInt64(0xCD9E_8D57) &* UInt64(c2)
    (c0, c1, c2, c3) = (
      UInt32(truncatingIfNeeded: p1 >> 32) ^ c1 ^ k0, UInt32(truncatingIfNeeded: p1),
      UInt32(truncatingIfNeeded: p0 >> 32) ^ c3 ^ k1, UInt32(truncatingIfNeeded: p0)
    )
  }
  return SIMD4(c0, c1, c2, c3)
}

/// What a stream of random numbers is for. Each purpose gets its own counter space, so streams for
/// different purposes never overlap whatever their other coordinates are.
public enum RandomPurpose: UInt32 {
  case parameterInitialization = 1
  case trainingStreamAssignment = 2
  case epochOrder = 3
  case trainingNoise = 4
  case evaluationNoise = 5
  case validationSplit = 6
  case priorSamples = 7
  case pictureSelection = 8
}

/// A sequential stream of random numbers identified by (seed, purpose, a, b): the counter is
/// (block index, a, b, purpose) and the key is the 64-bit seed.
public struct CounterRandomStream: RandomNumberGenerator {
  let key: SIMD2<UInt32>
  let a: UInt32, b: UInt32, purpose: UInt32
  var blockIndex: UInt32 = 0
  var buffered = SIMD4<UInt32>()
  var bufferedCount = 0

  public init(seed: UInt64, purpose: RandomPurpose, _ a: UInt64 = 0, _ b: UInt64 = 0) {
    key = SIMD2(UInt32(truncatingIfNeeded: seed), UInt32(truncatingIfNeeded: seed >> 32))
    // a and b are steps, epochs and example indices: all below 2^32 in any run this program makes.
    precondition(a <= UInt64(UInt32.max) && b <= UInt64(UInt32.max), "random stream coordinate overflow")
    self.a = UInt32(a)
    self.b = UInt32(b)
    self.purpose = purpose.rawValue
  }

  public mutating func next32() -> UInt32 {
    if bufferedCount == 0 {
      buffered = philox4x32(counter: SIMD4(blockIndex, a, b, purpose), key: key)
      blockIndex &+= 1
      bufferedCount = 4
    }
    bufferedCount -= 1
    return buffered[3 - bufferedCount]
  }

  public mutating func next() -> UInt64 {
    let high = UInt64(next32())
    return high << 32 | UInt64(next32())
  }

  /// Uniform in the open interval (0, 1), with 32 bits of resolution.
  public mutating func nextOpenUnit() -> Double {
    (Double(next32()) + 0.5) * 0x1p-32
  }

  /// A uniform integer in 0..<bound without modulo bias (Lemire's multiply-and-reject).
  public mutating func nextIndex(below bound: Int) -> Int {
    precondition(bound > 0 && bound <= Int(UInt32.max))
    let range = UInt32(bound)
    var product = UInt64(next32()) &* UInt64(range)
    if UInt32(truncatingIfNeeded: product) < range {
      let threshold = (0 &- range) % range
      while UInt32(truncatingIfNeeded: product) < threshold {
        product = UInt64(next32()) &* UInt64(range)
      }
    }
    return Int(product >> 32)
  }

  /// Fills `output` with independent standard normal draws (Box–Muller on pairs of uniforms).
  public mutating func fillStandardNormal<T: BinaryFloatingPoint>(_ output: UnsafeMutableBufferPointer<T>) {
    var i = 0
    while i < output.count {
      let radius = (-2 * log(nextOpenUnit())).squareRoot()
      let angle = 2 * Double.pi * nextOpenUnit()
      output[i] = T(radius * cos(angle))
      if i + 1 < output.count { output[i + 1] = T(radius * sin(angle)) }
      i += 2
    }
  }

  /// Fisher–Yates shuffle of `values` in place.
  public mutating func shuffle<C: MutableCollection & RandomAccessCollection>(_ values: inout C)
  where C.Index == Int {
    var i = values.count - 1
    while i > 0 {
      let j = nextIndex(below: i + 1)
      values.swapAt(values.startIndex + i, values.startIndex + j)
      i -= 1
    }
  }
}
