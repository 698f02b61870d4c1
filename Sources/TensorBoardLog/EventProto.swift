// The protocol-buffer encoding of the few TensorBoard messages vae-dist writes, by hand: their
// definitions are Proto/*.proto (trimmed copies of TensorFlow's, same field numbers). Why not
// swift-protobuf: its 1.39 package builds protoc from C++ source (about 600 files) in every fresh
// build that depends on it, 11.5 minutes on the 2-core machines (measured), for five write-only
// messages whose encoding is varints, fixed-width numbers and length-prefixed bytes. The tests
// decode what is written with a reader of their own and with TensorBoard's own EventAccumulator.

/// Appends protocol-buffer fields to a byte array (proto3 wire format).
struct ProtoWriter {
  private(set) var bytes: [UInt8] = []

  private mutating func varint(_ value: UInt64) {
    var v = value
    while v >= 0x80 {
      bytes.append(UInt8(v & 0x7F) | 0x80)
      v >>= 7
    }
    bytes.append(UInt8(v))
  }

  private mutating func key(_ field: Int, _ wireType: UInt64) { varint(UInt64(field) << 3 | wireType) }

  /// int32, int64, enum (wire type 0). Negative values take ten bytes, as protobuf specifies.
  mutating func integer(_ field: Int, _ value: Int64) {
    key(field, 0)
    varint(UInt64(bitPattern: value))
  }

  /// double (wire type 1, little-endian).
  mutating func double(_ field: Int, _ value: Double) {
    key(field, 1)
    withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
  }

  /// float (wire type 5, little-endian).
  mutating func float(_ field: Int, _ value: Float) {
    key(field, 5)
    withUnsafeBytes(of: value.bitPattern.littleEndian) { bytes.append(contentsOf: $0) }
  }

  /// bytes, string or an embedded message (wire type 2).
  mutating func bytes(_ field: Int, _ value: [UInt8]) {
    key(field, 2)
    varint(UInt64(value.count))
    bytes.append(contentsOf: value)
  }

  mutating func string(_ field: Int, _ value: String) { bytes(field, Array(value.utf8)) }

  mutating func message(_ field: Int, _ build: (inout ProtoWriter) -> Void) {
    var inner = ProtoWriter()
    build(&inner)
    bytes(field, inner.bytes)
  }
}

/// tensorflow.Event (event.proto) with one of its `what` members. Fields at their proto3 default
/// are left out, as protobuf does, except oneof members, which are written whatever their value
/// (a scalar 0 is still a scalar).
enum EventProto {
  enum What {
    case fileVersion(String)
    /// Summary.Value list: each entry encodes one Summary.Value.
    case summary([(inout ProtoWriter) -> Void])
    /// SessionLog with status START (1).
    case sessionStart
  }

  static func event(wallTime: Double, step: Int, _ what: What) -> [UInt8] {
    var event = ProtoWriter()
    if wallTime != 0 { event.double(1, wallTime) }
    if step != 0 { event.integer(2, Int64(step)) }
    switch what {
    case .fileVersion(let version): event.string(3, version)
    case .summary(let values): event.message(5) { summary in for value in values { summary.message(1, value) } }
    case .sessionStart: event.message(7) { $0.integer(1, 1) }
    }
    return event.bytes
  }

  /// Summary.Value { tag = 1; simple_value = 2 }.
  static func scalar(_ tag: String, _ value: Float) -> (inout ProtoWriter) -> Void {
    { v in
      v.string(1, tag)
      v.float(2, value)
    }
  }

  /// Summary.Value { tag = 1; image = 4: Image { height 1, width 2, colorspace 3, encoded_image_string 4 } }.
  static func image(_ tag: String, png: [UInt8], width: Int, height: Int, colorspace: Int32) -> (inout ProtoWriter) -> Void {
    { v in
      v.string(1, tag)
      v.message(4) { image in
        image.integer(1, Int64(height))
        image.integer(2, Int64(width))
        if colorspace != 0 { image.integer(3, Int64(colorspace)) }
        image.bytes(4, png)
      }
    }
  }

  /// Summary.Value { tag = 1; metadata = 9: { plugin_data 1: { plugin_name 1: "text" } };
  /// tensor = 8: TensorProto { dtype 1: DT_STRING (7), tensor_shape 2: {} (a scalar), string_val 8 } }.
  static func text(_ tag: String, _ markdown: String) -> (inout ProtoWriter) -> Void {
    { v in
      v.string(1, tag)
      v.message(8) { tensor in
        tensor.integer(1, 7)
        tensor.message(2) { _ in }
        tensor.string(8, markdown)
      }
      v.message(9) { metadata in metadata.message(1) { $0.string(1, "text") } }
    }
  }
}
