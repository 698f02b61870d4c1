import Foundation
import VAEImages
import XCTest

/// PNG files checked by a decoder that shares no code with the encoder: Python's zlib and struct,
/// which verify the signature, every chunk's CRC, the header, and the decompressed pixels.
final class PNGTests: XCTestCase {
  static let decoder = #"""
    import json, struct, sys, zlib
    data = open(sys.argv[1], "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "signature"
    pos, chunks = 8, []
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        crc, = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert zlib.crc32(kind + body) == crc, "CRC of " + kind.decode()
        chunks.append((kind.decode(), body))
        pos += 12 + length
    assert [c[0] for c in chunks][0] == "IHDR" and chunks[-1][0] == "IEND"
    width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    channels = {0: 1, 2: 3}[color]
    raw = zlib.decompress(b"".join(b for k, b in chunks if k == "IDAT"))
    stride = width * channels
    assert len(raw) == height * (stride + 1)
    pixels = []
    for y in range(height):
        assert raw[y * (stride + 1)] == 0, "filter type"
        pixels += list(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    print(json.dumps({"width": width, "height": height, "depth": depth, "channels": channels, "pixels": pixels}))
    """#

  func decode(_ bytes: [UInt8]) throws -> [String: Any] {
    let directory = NSTemporaryDirectory() + "png-" + UUID().uuidString
    try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: directory) }
    let path = directory + "/image.png", script = directory + "/decode.py"
    try Data(bytes).write(to: URL(fileURLWithPath: path))
    try Self.decoder.write(toFile: script, atomically: true, encoding: .utf8)
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = ["python3", script, path]
    let pipe = Pipe()
    process.standardOutput = pipe
    try process.run()
    let output = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    XCTAssertEqual(process.terminationStatus, 0, "the independent decoder rejected the file")
    return try JSONSerialization.jsonObject(with: output) as! [String: Any]
  }

  func testGrayscaleRoundTrip() throws {
    let (width, height) = (37, 5)
    let pixels = (0..<(width * height)).map { UInt8(($0 * 7) % 256) }
    let decoded = try decode(PNG.encode(width: width, height: height, color: .gray, pixels: pixels))
    XCTAssertEqual(decoded["width"] as? Int, width)
    XCTAssertEqual(decoded["height"] as? Int, height)
    XCTAssertEqual(decoded["channels"] as? Int, 1)
    XCTAssertEqual(decoded["depth"] as? Int, 8)
    XCTAssertEqual(decoded["pixels"] as? [Int], pixels.map(Int.init))
  }

  func testCanvasDrawsWhereItShould() throws {
    var canvas = Canvas(width: 40, height: 20)
    canvas.fill(x: 2, y: 3, width: 4, height: 2, Color(10, 20, 30))
    canvas.text("A", x: 20, y: 2)
    let decoded = try decode(canvas.png)
    XCTAssertEqual(decoded["channels"] as? Int, 3)
    let pixels = decoded["pixels"] as! [Int]
    func at(_ x: Int, _ y: Int) -> [Int] { Array(pixels[((y * 40 + x) * 3)..<((y * 40 + x) * 3 + 3)]) }
    XCTAssertEqual(at(2, 3), [10, 20, 30])
    XCTAssertEqual(at(5, 4), [10, 20, 30])
    XCTAssertEqual(at(6, 4), [255, 255, 255])
    XCTAssertEqual(at(0, 0), [255, 255, 255])
    // The font's "A" has its apex on row 2 of the glyph, columns 3-4.
    XCTAssertEqual(at(23, 4), [0, 0, 0])
    XCTAssertEqual(at(20, 2), [255, 255, 255])
  }

  func testPlotHasAxesLegendAndData() throws {
    var plot = Plot(
      title: "t", xLabel: "epoch", yLabel: "loss",
      series: [Plot.Series(name: "train", color: Color(255, 0, 0), points: [(1, 300), (2, 280), (3, 275)], style: .line)])
    plot.width = 400
    plot.height = 300
    plot.integerX = true
    let canvas = plot.render()
    let decoded = try decode(canvas.png)
    let pixels = decoded["pixels"] as! [Int]
    let red = stride(from: 0, to: pixels.count, by: 3).filter { pixels[$0] == 255 && pixels[$0 + 1] == 0 && pixels[$0 + 2] == 0 }
    XCTAssertGreaterThan(red.count, 100, "the series and its legend swatch are drawn")
    let black = stride(from: 0, to: pixels.count, by: 3).filter { pixels[$0] == 0 && pixels[$0 + 1] == 0 && pixels[$0 + 2] == 0 }
    XCTAssertGreaterThan(black.count, 500, "axes, ticks and labels are drawn")
  }
}

extension PNGTests {
  /// A diverged model's pictures: NaN pixels and enormous coordinates draw, they do not trap.
  func testNonFiniteAndHugeValuesDraw() throws {
    var canvas = Canvas(width: 60, height: 60)
    canvas.grayImage([Float](repeating: .nan, count: 784)[...], side: 28, x: 0, y: 0, scale: 2)
    XCTAssertEqual(Array(canvas.pixels.prefix(3)), [0, 0, 0])
    let plot = Plot(title: "t", xLabel: "x", yLabel: "y", series: [
      Plot.Series(name: "s", color: .black, points: [(0, -3e38), (1, 3e38), (2, .nan), (.infinity, 1)], style: .points(radius: 2, alpha: 1)),
    ])
    XCTAssertGreaterThan(plot.render().png.count, 100)
  }

  /// Values a user's CSV can hold that once hung or trapped the axes: a span that overflows
  /// (±1e300 and beyond), and values too close for their ticks to differ (1e20 and its neighbour, or
  /// one value of 1e20). Each draws, with a handful of distinct ticks.
  func testAxesOfExtremeValuesDraw() throws {
    let cases: [[(x: Double, y: Double)]] = [
      [(0, 0), (1, 1.7e308)],
      [(-1e300, 0), (1e300, 1)],
      [(0, 1e20), (1, 1e20.nextUp)],
      [(0, 1e20), (1, 1e20)],
      [(5, 5)],
    ]
    for points in cases {
      let plot = Plot(title: "t", xLabel: "x", yLabel: "y", series: [Plot.Series(name: "s", color: .black, points: points, style: .line)])
      XCTAssertGreaterThan(plot.render().png.count, 100, "\(points)")
      for values in [points.map(\.x), points.map(\.y)] where values.allSatisfy({ abs($0) <= 1e300 }) {
        let ticks = Plot.niceRange(values, integer: false).ticks
        XCTAssertTrue((3...12).contains(ticks.count), "\(values): \(ticks)")
        XCTAssertEqual(Set(ticks).count, ticks.count, "\(values): \(ticks)")
      }
    }
  }

  /// Tick labels carry the decimals their step needs: below 1e-4 they once came out of
  /// String(Double)'s exponent form as "5.0e-05.00000", every tick alike.
  func testTickLabelsOfSmallAndNegativeValues() {
    let cases: [(Double, Double, String)] = [
      (0.00005, 0.00001, "0.00005"), (0.00003, 0.00002, "0.00003"), (1.5, 0.5, "1.5"), (120, 20, "120"),
      (-2.25, 0.05, "-2.25"), (-1e-12, 0.5, "0.0"), (0, 0.1, "0.0"), (2e-9, 1e-9, "0.000000002"),
    ]
    for (value, step, expected) in cases {
      XCTAssertEqual(Plot.label(value, step: step), expected, "\(value) at a step of \(step)")
    }
    let ticks = Plot.niceRange([0.00001, 0.00005], integer: false)
    let labels = ticks.ticks.map { Plot.label($0, step: ticks.step) }
    XCTAssertEqual(Set(labels).count, labels.count, "\(labels)")
  }
}
