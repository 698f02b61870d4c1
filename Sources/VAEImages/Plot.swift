/// A 2-D chart with axes, ticks, labels, a title and a legend, rendered to a `Canvas`.
public struct Plot {
  public enum Style {
    case line  // points joined in order, with a marker on each
    case points(radius: Int, alpha: Double)
  }

  public struct Series {
    public var name: String
    public var color: Color
    public var points: [(x: Double, y: Double)]
    public var style: Style

    public init(name: String, color: Color, points: [(x: Double, y: Double)], style: Style) {
      // The legend holds at most 40 characters a name, so the plot keeps its width.
      self.name = name.count > 40 ? String(name.prefix(37)) + "..." : name
      self.color = color
      self.points = points
      self.style = style
    }
  }

  public var title: String
  public var xLabel: String
  public var yLabel: String
  public var series: [Series]
  public var width = 960
  public var height = 680
  /// Force the tick labels of the x axis to integers (epochs).
  public var integerX = false

  public init(title: String, xLabel: String, yLabel: String, series: [Series]) {
    self.title = title
    self.xLabel = xLabel
    self.yLabel = yLabel
    self.series = series
  }

  public func render() -> Canvas {
    var canvas = Canvas(width: width, height: height)
    let legendWidth = 24 + Canvas.characterWidth * (series.map(\.name.count).max() ?? 0) + 24
    let left = 84, right = legendWidth + 16, top = 44, bottom = 58
    let plotWidth = width - left - right, plotHeight = height - top - bottom
    let all = series.flatMap(\.points).filter(Self.plottable)
    let xs = Self.niceRange(all.map(\.x), integer: integerX), ys = Self.niceRange(all.map(\.y), integer: false)
    func px(_ x: Double) -> Int { left + Int(((x - xs.low) / (xs.high - xs.low) * Double(plotWidth - 1)).rounded()) }
    func py(_ y: Double) -> Int { top + plotHeight - 1 - Int(((y - ys.low) / (ys.high - ys.low) * Double(plotHeight - 1)).rounded()) }

    // Grid, ticks and their labels.
    for tick in xs.ticks {
      let x = px(tick)
      canvas.line(x, top, x, top + plotHeight - 1, .lightGray)
      canvas.line(x, top + plotHeight, x, top + plotHeight + 5, .black)
      let label = Self.label(tick, step: xs.step)
      canvas.text(label, x: x - Canvas.textWidth(label) / 2, y: top + plotHeight + 8)
    }
    for tick in ys.ticks {
      let y = py(tick)
      canvas.line(left, y, left + plotWidth - 1, y, .lightGray)
      canvas.line(left - 6, y, left - 1, y, .black)
      let label = Self.label(tick, step: ys.step)
      canvas.text(label, x: left - 9 - Canvas.textWidth(label), y: y - Canvas.lineHeight / 2)
    }
    canvas.rectangle(x: left - 1, y: top - 1, width: plotWidth + 2, height: plotHeight + 2, .black)

    // Data, clipped to the plot area.
    for s in series {
      var previous: (Int, Int)?
      for point in s.points where Self.plottable(point) {
        let x = px(point.x), y = py(point.y)
        switch s.style {
        case .line:
          if let (x0, y0) = previous { canvas.line(x0, y0, x, y, s.color, thickness: 2) }
          canvas.dot(x, y, radius: 3, s.color)
          previous = (x, y)
        case .points(let radius, let alpha):
          if x >= left && x < left + plotWidth && y >= top && y < top + plotHeight {
            canvas.dot(x, y, radius: radius, s.color, alpha: alpha)
          }
        }
      }
    }

    // Title, axis labels, legend.
    canvas.text(title, x: left + (plotWidth - Canvas.textWidth(title)) / 2, y: 14)
    canvas.text(xLabel, x: left + (plotWidth - Canvas.textWidth(xLabel)) / 2, y: height - 24)
    canvas.verticalText(yLabel, x: 14, y: top + (plotHeight - Canvas.textWidth(yLabel)) / 2)
    let legendX = left + plotWidth + 16, legendY = top
    let legendHeight = 12 + series.count * (Canvas.lineHeight + 8)
    canvas.fill(x: legendX, y: legendY, width: legendWidth, height: legendHeight, .white)
    canvas.rectangle(x: legendX, y: legendY, width: legendWidth, height: legendHeight, .gray)
    for (i, s) in series.enumerated() {
      let y = legendY + 8 + i * (Canvas.lineHeight + 8)
      switch s.style {
      case .line:
        canvas.line(legendX + 6, y + 6, legendX + 20, y + 6, s.color, thickness: 2)
        canvas.dot(legendX + 13, y + 6, radius: 3, s.color)
      case .points:
        canvas.dot(legendX + 13, y + 6, radius: 4, s.color)
      }
      canvas.text(s.name, x: legendX + 26, y: y)
    }
    return canvas
  }

  /// Points the axes can hold: finite, and within ±1e300, so that the span of any two is finite.
  public static func plottable(_ point: (x: Double, y: Double)) -> Bool { abs(point.x) <= 1e300 && abs(point.y) <= 1e300 }

  /// Axis limits on round numbers and ticks between them, 4 to 10 of them, for values within ±1e300.
  public static func niceRange(_ values: [Double], integer: Bool) -> (low: Double, high: Double, step: Double, ticks: [Double]) {
    var low = values.min() ?? 0, high = values.max() ?? 1
    // A span too narrow to tell the values apart (one value; or 1e20 and its neighbour, whose ticks
    // would not differ) is widened around them, by 1 or a billionth of their size.
    let size = max(abs(low), abs(high))
    if high - low < max(1e-12, size * 1e-9) {
      let pad = max(1, size * 1e-9)
      low -= pad
      high += pad
    }
    let raw = (high - low) / 6
    let magnitude = pow10(floor(log10(raw)))
    var step = [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
    if integer { step = max(1, step.rounded()) }
    let first = floor(low / step) * step, last = ceil(high / step) * step
    let count = Int(((last - first) / step).rounded())
    return (first, last, step, (0...count).map { first + Double($0) * step })
  }

  /// A tick's value with as many decimals as the step needs (0.00005, not 5.0e-05), and no "-0".
  package static func label(_ value: Double, step: Double) -> String {
    guard abs(value) < 1e15 else { return "\(value)" }
    let decimals = step >= 1 ? 0 : Int(-floor(log10(step)))
    var buffer = [CChar](repeating: 0, count: 64)
    _ = withVaList([Int32(decimals), value]) { vsnprintf(&buffer, buffer.count, "%.*f", $0) }
    let text = buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
    // A value that rounds to zero prints as "-0.000" when it is a hair below it.
    return text.hasPrefix("-") && text.allSatisfy({ "-0.".contains($0) }) ? String(text.dropFirst()) : text
  }
}

#if canImport(Glibc)
  import Glibc
#endif

private func pow10(_ x: Double) -> Double { pow(10, x) }
