import VAEDistributed

/// Times allreduces of a buffer size, as the gradient reduction uses them.
public struct AllreduceTiming: Codable, Sendable {
  public var bytes: Int
  public var element: String
  public var repetitions: Int
  /// Mean seconds per allreduce over the repetitions (after one untimed).
  public var seconds: Double
}

public enum AllreduceBenchmark {
  /// Every rank must call this with the same arguments: each size is a collective.
  public static func measure(
    communicator: Communicator, sizes: [Int], repetitions: Int
  ) throws -> [AllreduceTiming] {
    var timings: [AllreduceTiming] = []
    for bytes in sizes {
      var integers = [Int64](repeating: 1, count: max(1, bytes / 8))
      var floats = [Float](repeating: 1, count: max(1, bytes / 4))
      for element in ["int64", "float"] {
        var total = 0.0
        for repetition in 0...repetitions {
          let start = monotonicSeconds()
          if element == "int64" {
            try integers.withUnsafeMutableBufferPointer { try communicator.allreduce($0, .sum, phase: "the allreduce benchmark") }
          } else {
            try floats.withUnsafeMutableBufferPointer { try communicator.allreduce($0, .sum, phase: "the allreduce benchmark") }
          }
          if repetition > 0 { total += monotonicSeconds() - start }
        }
        timings.append(AllreduceTiming(bytes: bytes, element: element, repetitions: repetitions, seconds: total / Double(repetitions)))
      }
    }
    return timings
  }

  /// Least-squares fit of seconds = latency + bytes / bandwidth.
  public static func fit(_ timings: [AllreduceTiming]) -> (latency: Double, bytesPerSecond: Double) {
    let n = Double(timings.count)
    let sx = timings.reduce(0.0) { $0 + Double($1.bytes) }, sy = timings.reduce(0.0) { $0 + $1.seconds }
    let sxx = timings.reduce(0.0) { $0 + Double($1.bytes) * Double($1.bytes) }
    let sxy = timings.reduce(0.0) { $0 + Double($1.bytes) * $1.seconds }
    let slope = (n * sxy - sx * sy) / max(n * sxx - sx * sx, 1e-30)
    let intercept = (sy - slope * sx) / n
    return (max(intercept, 0), slope > 0 ? 1 / slope : .infinity)
  }
}
