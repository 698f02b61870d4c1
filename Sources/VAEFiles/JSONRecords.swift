import Foundation

// The JSON of a run's files: metrics.jsonl (a line per epoch), evaluation.json, `evaluate --json`.
// Written by VAETraining, read by the loss curves' picture and by a resume's trim of the log.

/// A number in JSON: null when absent, NaN or infinite (JSON has no such numbers).
public struct Number: Codable, Sendable, Equatable {
  public var value: Double?
  public init(_ value: Double?) { self.value = value.flatMap { $0.isFinite ? $0 : nil } }
  public init(from decoder: Decoder) throws {
    let container = try decoder.singleValueContainer()
    value = container.decodeNil() ? nil : try container.decode(Double.self)
  }
  public func encode(to encoder: Encoder) throws {
    var container = encoder.singleValueContainer()
    if let value { try container.encode(value) } else { try container.encodeNil() }
  }
}

/// Every JSON vae-dist writes or prints goes through here: Codable, keys sorted, one line.
public enum JSONLine {
  public static func encode<T: Encodable>(_ value: T) -> String {
    let encoder = JSONEncoder()
    encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    // Every Double in our records is a Number, so encoding cannot fail on a non-finite value.
    return (try? String(decoding: encoder.encode(value), as: UTF8.self)) ?? "{}"
  }
}

/// What a reader of metrics.jsonl needs of a line: the epoch, the step and the losses. Decoded
/// strictly: a `true` or a string where a number belongs makes the line unreadable (JSONSerialization
/// read `true` as the loss 1).
public struct MetricsRecord: Decodable, Sendable {
  public var epoch: Int
  /// Every line vae-dist writes has it; the loss curves need only the epoch.
  public var step: Int?
  public var train_loss, val_loss, test_loss: Number?

  /// The record of one line, or nil when it is not one (a write cut short by a crash, an edit).
  public static func parse<Line: StringProtocol>(_ line: Line) -> MetricsRecord? {
    try? JSONDecoder().decode(MetricsRecord.self, from: Data(line.utf8))
  }

  /// The lines of a metrics.jsonl, blank ones left out, each with its 1-based line number (CRLF and
  /// LF both end a line).
  public static func lines(of text: String) -> [(number: Int, text: Substring)] {
    text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).enumerated()
      .filter { !$0.element.allSatisfy(\.isWhitespace) }.map { ($0.offset + 1, $0.element) }
  }
}
