/// An RGB colour.
public struct Color: Sendable, Equatable {
  public var r, g, b: UInt8
  public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) {
    self.r = r
    self.g = g
    self.b = b
  }
  public static let white = Color(255, 255, 255)
  public static let black = Color(0, 0, 0)
  public static let gray = Color(128, 128, 128)
  public static let lightGray = Color(225, 225, 225)

  /// Matplotlib's "tab10" palette: ten colours told apart easily, one per class.
  public static let categorical: [Color] = [
    Color(31, 119, 180), Color(255, 127, 14), Color(44, 160, 44), Color(214, 39, 40), Color(148, 103, 189),
    Color(140, 86, 75), Color(227, 119, 194), Color(127, 127, 127), Color(188, 189, 34), Color(23, 190, 207),
  ]
}

/// A picture in memory: RGB pixels, drawing operations clipped to the frame.
public struct Canvas {
  public let width: Int
  public let height: Int
  public private(set) var pixels: [UInt8]

  public init(width: Int, height: Int, background: Color = .white) {
    self.width = width
    self.height = height
    pixels = [UInt8](repeating: 0, count: width * height * 3)
    fill(x: 0, y: 0, width: width, height: height, background)
  }

  public var png: [UInt8] { PNG.encode(width: width, height: height, color: .rgb, pixels: pixels) }

  public mutating func set(_ x: Int, _ y: Int, _ color: Color) {
    guard x >= 0, y >= 0, x < width, y < height else { return }
    let i = (y * width + x) * 3
    pixels[i] = color.r
    pixels[i + 1] = color.g
    pixels[i + 2] = color.b
  }

  /// Blends `color` over the pixel with opacity `alpha` (0…1).
  public mutating func blend(_ x: Int, _ y: Int, _ color: Color, alpha: Double) {
    guard x >= 0, y >= 0, x < width, y < height else { return }
    let i = (y * width + x) * 3
    func mix(_ a: UInt8, _ b: UInt8) -> UInt8 { UInt8((Double(a) * (1 - alpha) + Double(b) * alpha).rounded()) }
    pixels[i] = mix(pixels[i], color.r)
    pixels[i + 1] = mix(pixels[i + 1], color.g)
    pixels[i + 2] = mix(pixels[i + 2], color.b)
  }

  public mutating func fill(x: Int, y: Int, width w: Int, height h: Int, _ color: Color) {
    for yy in max(0, y)..<min(height, y + h) {
      for xx in max(0, x)..<min(width, x + w) { set(xx, yy, color) }
    }
  }

  public mutating func rectangle(x: Int, y: Int, width w: Int, height h: Int, _ color: Color) {
    line(x, y, x + w - 1, y, color)
    line(x, y + h - 1, x + w - 1, y + h - 1, color)
    line(x, y, x, y + h - 1, color)
    line(x + w - 1, y, x + w - 1, y + h - 1, color)
  }

  /// A line from (x0, y0) to (x1, y1), `thickness` pixels wide (Bresenham).
  public mutating func line(_ x0: Int, _ y0: Int, _ x1: Int, _ y1: Int, _ color: Color, thickness: Int = 1) {
    var x = x0, y = y0
    let dx = abs(x1 - x0), dy = -abs(y1 - y0)
    let sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1
    var error = dx + dy
    let half = thickness / 2
    while true {
      for ox in -half...(thickness - 1 - half) {
        for oy in -half...(thickness - 1 - half) { set(x + ox, y + oy, color) }
      }
      if x == x1 && y == y1 { break }
      let e2 = 2 * error
      if e2 >= dy { error += dy; x += sx }
      if e2 <= dx { error += dx; y += sy }
    }
  }

  /// A filled disc of `radius` around (cx, cy), blended with opacity `alpha`.
  public mutating func dot(_ cx: Int, _ cy: Int, radius: Int, _ color: Color, alpha: Double = 1) {
    for y in (cy - radius)...(cy + radius) {
      for x in (cx - radius)...(cx + radius) where (x - cx) * (x - cx) + (y - cy) * (y - cy) <= radius * radius {
        blend(x, y, color, alpha: alpha)
      }
    }
  }

  public static let characterWidth = FixedFont.width
  public static let lineHeight = FixedFont.height

  /// Writes ASCII `text` with its top-left corner at (x, y); other characters show as '?'.
  public mutating func text(_ text: String, x: Int, y: Int, _ color: Color = .black) {
    var cx = x
    for scalar in text.unicodeScalars {
      let code = (32...126).contains(Int(scalar.value)) ? Int(scalar.value) : Int(("?" as Unicode.Scalar).value)
      let glyph = (code - FixedFont.firstCharacter) * FixedFont.height
      for row in 0..<FixedFont.height {
        let bits = FixedFont.glyphs[glyph + row]
        for column in 0..<FixedFont.width where bits & (0x80 >> UInt8(column)) != 0 {
          set(cx + column, y + row, color)
        }
      }
      cx += FixedFont.width
    }
  }

  /// Text rotated a quarter turn counter-clockwise (for a vertical axis label), its top-left at (x, y).
  public mutating func verticalText(_ text: String, x: Int, y: Int, _ color: Color = .black) {
    var scratch = Canvas(width: text.count * FixedFont.width, height: FixedFont.height, background: .white)
    scratch.text(text, x: 0, y: 0, color)
    for sy in 0..<scratch.height {
      for sx in 0..<scratch.width {
        let i = (sy * scratch.width + sx) * 3
        let c = Color(scratch.pixels[i], scratch.pixels[i + 1], scratch.pixels[i + 2])
        if c != .white { set(x + sy, y + scratch.width - 1 - sx, c) }
      }
    }
  }

  public static func textWidth(_ text: String) -> Int { text.count * FixedFont.width }

  /// Draws a grayscale image (values 0…1, row-major `side × side`) scaled by `scale`, top-left (x, y).
  public mutating func grayImage(_ values: ArraySlice<Float>, side: Int, x: Int, y: Int, scale: Int) {
    for row in 0..<side {
      for column in 0..<side {
        let v = values[values.startIndex + row * side + column]
        // NaN (a diverged model) shows as black rather than trapping.
        let level = v.isNaN ? 0 : UInt8((min(max(v, 0), 1) * 255).rounded())
        fill(x: x + column * scale, y: y + row * scale, width: scale, height: scale, Color(level, level, level))
      }
    }
  }
}
