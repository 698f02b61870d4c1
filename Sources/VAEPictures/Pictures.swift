import VAEFiles
import CounterRNG
import Foundation
import VAECore
import VAEData
import VAEImages

/// The pictures a VAE user came for, drawn from a trained model: reconstructions, samples from the
/// prior, the decoder's manifold over a latent grid, the test set's latent scatter by class, an
/// interpolation between two test images, and the loss curves. Seeded and reproducible.
public final class Pictures {
  public let model: VAEModel<Float>
  public let parameters: ScalarBuffer<Float>
  public let seed: UInt64
  /// The worker threads of the passes, which split their micro-batches of 16 images among them.
  let threads: Int
  var latentDim: Int { model.latentDim }

  /// `threads`: the worker threads of the passes (each image's pass is the same on any: the lanes
  /// of a micro-batch never mix).
  public init(parameters: ScalarBuffer<Float>, latentDim: Int, seed: UInt64, threads: Int = 1) {
    model = VAEModel(latentDim: latentDim)
    self.parameters = parameters
    self.seed = seed
    self.threads = max(1, threads)
  }

  var views: ParameterViews<Float> { ParameterViews(layout: model.layout, base: parameters.pointer) }

  // MARK: - Model passes

  /// Runs `pass` on each micro-batch of `count` items (rows `range` of the whole) with a worker's
  /// workspace, the micro-batches dealt round-robin to the workers, and gathers each item's `width`
  /// outputs, which `pass` writes at `output` (row 0 of its micro-batch).
  func passes(
    _ count: Int, width: Int,
    _ pass: (_ range: Range<Int>, _ workspace: VAEWorkspace<Float>, _ output: UnsafeMutablePointer<Float>) -> Void
  ) -> [[Float]] {
    guard count > 0 else { return [] }
    let capacity = 16, batches = (count + capacity - 1) / capacity
    // A workspace (megabytes) for each worker that has a micro-batch, for this pass only: rank zero
    // draws beside the step's own buffers.
    let workers = min(threads, batches)
    let workspaces = (0..<workers).map { _ in VAEWorkspace<Float>(capacity: capacity, latentDim: latentDim) }
    var flat = [Float](repeating: 0, count: count * width)
    flat.withUnsafeMutableBufferPointer { flat in
      let base = flat.baseAddress!
      // Worker w writes only its own micro-batches' rows of `flat` and uses only workspace w.
      concurrentForEach(workers) { w in
        for b in stride(from: w, to: batches, by: workers) {
          let range = (b * capacity)..<min(count, (b + 1) * capacity)
          pass(range, workspaces[w], base + range.lowerBound * width)
        }
      }
    }
    withExtendedLifetime(parameters) {}
    return (0..<count).map { Array(flat[($0 * width)..<(($0 + 1) * width)]) }
  }

  /// z_mean of each image.
  public func latentMeans(_ store: ImageStore, fileIndices: [Int]) -> [[Float]] {
    let views = views, latentDim = latentDim
    return passes(fileIndices.count, width: latentDim) { range, workspace, output in
      store.fill(workspace.input.pointer, fileIndices: fileIndices[range])
      model.encode(views, batch: range.count, workspace: workspace)
      output.update(from: workspace.mean.pointer, count: range.count * latentDim)
    }
  }

  /// The decoder's image (sigmoid of the logits, 784 values in 0…1) for each latent point.
  public func decode(_ points: [[Float]]) -> [[Float]] {
    let views = views, latentDim = latentDim
    return passes(points.count, width: 784) { range, workspace, output in
      for (row, z) in points[range].enumerated() { (workspace.z.pointer + row * latentDim).update(from: z, count: latentDim) }
      model.decode(views, batch: range.count, workspace: workspace)
      for i in 0..<(range.count * 784) { output[i] = sigmoid(workspace.logits.pointer[i]) }
    }
  }

  func pixels(_ store: ImageStore, _ index: Int) -> [Float] {
    var values = [Float](repeating: 0, count: 784)
    store.fill(&values, fileIndices: [index])
    return values
  }

  /// Test images picked reproducibly: `perClass` of each class, in class order.
  public func pick(_ store: ImageStore, perClass: Int) -> [Int] {
    var byClass = [[Int]](repeating: [], count: 10)
    var random = CounterRandomStream(seed: seed, purpose: .pictureSelection)
    var order = store.images.fileIndices
    random.shuffle(&order)
    for index in order where byClass[store.label(fileIndex: index)].count < perClass {
      byClass[store.label(fileIndex: index)].append(index)
    }
    return byClass.flatMap { $0 }
  }

  // MARK: - Pictures

  /// Rows of test images, each followed by a row of their reconstructions (decoded from z_mean).
  public func reconstructions(_ store: ImageStore, columns: Int = 10, pairs: Int = 3) -> Canvas {
    reconstructions(rows: reconstructionRows(store, columns: columns, pairs: pairs).rows)
  }

  /// The picture of `reconstructionRows`' rows.
  public func reconstructions(rows: [[[Float]]]) -> Canvas {
    grid(rows, title: "Test images (odd rows) and their reconstructions from z_mean (even rows)")
  }

  /// What `reconstructions` draws: `pairs` rows of test images (a class per column, where the set
  /// holds `pairs` of each), each followed by the row of their images decoded from z_mean; and the
  /// file indices of the images, row by row.
  public func reconstructionRows(_ store: ImageStore, columns: Int = 10, pairs: Int = 3)
    -> (rows: [[[Float]]], indices: [Int])
  {
    var (columns, pairs) = (columns, pairs)
    let chosen = Array(pick(store, perClass: pairs).prefix(columns * pairs))
    let ordered: [Int]
    if chosen.count == columns * pairs {
      ordered = (0..<pairs).flatMap { p in (0..<columns).map { chosen[$0 * pairs + p] } }
    } else {
      // A test set too small for `pairs` images of each of `columns` classes: one row of what there is.
      (columns, pairs) = (max(1, chosen.count), 1)
      ordered = chosen.isEmpty ? [store.images.fileIndices[0]] : chosen
    }
    let rebuilt = decode(latentMeans(store, fileIndices: ordered))
    var rows: [[[Float]]] = []
    for p in 0..<pairs {
      rows.append((0..<columns).map { pixels(store, ordered[p * columns + $0]) })
      rows.append(Array(rebuilt[(p * columns)..<((p + 1) * columns)]))
    }
    return (rows, ordered)
  }

  /// Images decoded from z ~ N(0, I).
  public func samples(rows: Int = 10, columns: Int = 10) -> Canvas {
    var random = CounterRandomStream(seed: seed, purpose: .priorSamples)
    var points: [[Float]] = []
    for _ in 0..<(rows * columns) {
      var z = [Float](repeating: 0, count: latentDim)
      z.withUnsafeMutableBufferPointer { random.fillStandardNormal($0) }
      points.append(z)
    }
    let images = decode(points)
    return grid((0..<rows).map { Array(images[($0 * columns)..<(($0 + 1) * columns)]) },
                title: "Samples: images decoded from z ~ N(0, I), seed \(seed)")
  }

  /// The decoder over a regular grid of latent points: quantiles 5%…95% of N(0, 1) along two latent
  /// dimensions (the others 0), z[first] rightwards, z[second] upwards.
  public func manifold(size: Int = 20, dimensions: (Int, Int) = (0, 1)) -> Canvas {
    let plane = latentDim == 2 ? "the latent plane" : "the plane of z[\(dimensions.0)], z[\(dimensions.1)] (other dimensions 0)"
    return grid(manifoldRows(size: size, dimensions: dimensions), scale: 1, gap: 0,
                title: "Manifold: decoder over \(plane), 5%-95% quantiles of N(0,1)")
  }

  /// What `manifold` draws: the decodes of `manifoldPoints`, `size` to a row.
  public func manifoldRows(size: Int = 20, dimensions: (Int, Int) = (0, 1)) -> [[[Float]]] {
    let images = decode(manifoldPoints(size: size, dimensions: dimensions))
    return (0..<size).map { Array(images[($0 * size)..<(($0 + 1) * size)]) }
  }

  /// The manifold's latent points, row by row: row r, column c has z[first] = q(c) and z[second] =
  /// q(size − 1 − r), q(i) the (5 + 90·i/(size − 1))% quantile of N(0, 1), the other dimensions 0.
  public func manifoldPoints(size: Int = 20, dimensions: (Int, Int) = (0, 1)) -> [[Float]] {
    let quantiles = (0..<size).map { standardNormalQuantile(0.05 + 0.9 * Double($0) / Double(size - 1)) }
    var points: [[Float]] = []
    for row in 0..<size {
      for column in 0..<size {
        var z = [Float](repeating: 0, count: latentDim)
        z[dimensions.0] = Float(quantiles[column])
        if latentDim > 1 { z[dimensions.1] = Float(quantiles[size - 1 - row]) }
        points.append(z)
      }
    }
    return points
  }

  /// z_mean of every test image, coloured by class.
  public func latentScatter(_ store: ImageStore, dimensions: (Int, Int) = (0, 1)) -> Canvas {
    let indices = store.images.fileIndices
    let means = latentMeans(store, fileIndices: indices)
    var series: [Plot.Series] = []
    for label in 0..<10 {
      let points = zip(indices, means).filter { store.label(fileIndex: $0.0) == label }.map {
        (x: Double($0.1[dimensions.0]), y: Double(latentDim > 1 ? $0.1[dimensions.1] : 0))
      }
      series.append(Plot.Series(name: FashionMNIST.classNames[label], color: Color.categorical[label], points: points,
                                style: .points(radius: 2, alpha: 0.45)))
    }
    let which = latentDim == 2 ? "" : " (dimensions \(dimensions.0) and \(dimensions.1) of \(latentDim))"
    var plot = Plot(title: "Latent space: z_mean of the \(indices.count) test images by class\(which)",
                    xLabel: "z[\(dimensions.0)]", yLabel: "z[\(dimensions.1)]", series: series)
    plot.height = 760
    return plot.render()
  }

  /// A walk through latent space: test image `from`, decoded points on the line from its z_mean to
  /// that of test image `to`, then test image `to`.
  public func interpolation(_ store: ImageStore, from a: Int, to b: Int, steps: Int = 10) -> Canvas {
    grid([interpolationRow(store, from: a, to: b, steps: steps)],
         title: "Interpolation: test image \(a), \(steps) points from its z_mean to that of \(b), test image \(b)")
  }

  /// What `interpolation` draws: image `from`, the `steps` decoded points (the first at its z_mean,
  /// the last at that of `to`), image `to`.
  public func interpolationRow(_ store: ImageStore, from a: Int, to b: Int, steps: Int = 10) -> [[Float]] {
    let means = latentMeans(store, fileIndices: [a, b])
    let points = (0..<steps).map { s -> [Float] in
      let t = Float(s) / Float(steps - 1)
      return zip(means[0], means[1]).map { (1 - t) * $0 + t * $1 }
    }
    return [pixels(store, a)] + decode(points) + [pixels(store, b)]
  }

  /// Two test images of different classes, picked reproducibly (a shoe and a shirt, say).
  public func interpolationEnds(_ store: ImageStore) -> (Int, Int) {
    let picks = pick(store, perClass: 1)  // one image per class present, in class order
    return (picks[min(7, picks.count - 1)], picks[0])  // a sneaker and a T-shirt/top on the full set
  }

  /// Train, test (and validation) loss per epoch from metrics.jsonl.
  public static func lossCurves(metricsPath: String) throws -> Canvas {
    let text = try RegularFile.text(metricsPath, kind: "a metrics.jsonl", limit: 256 << 20)
    var columns: [String: [(x: Double, y: Double)]] = [:]
    for (number, line) in MetricsRecord.lines(of: text) {
      guard let record = MetricsRecord.parse(line) else {
        throw FileError.invalid(
          path: metricsPath,
          reason: "line \(number) is not an epoch's record (a JSON object with an integer epoch and numbers or null for the losses; a write cut short by a crash?)")
      }
      for (key, value) in [("train_loss", record.train_loss), ("val_loss", record.val_loss), ("test_loss", record.test_loss)] {
        if let value = value?.value { columns[key, default: []].append((Double(record.epoch), value)) }
      }
    }
    let names = ["train_loss": "train", "val_loss": "validation", "test_loss": "test"]
    let colors = ["train_loss": Color.categorical[0], "val_loss": Color.categorical[2], "test_loss": Color.categorical[1]]
    let series = ["train_loss", "val_loss", "test_loss"].compactMap { key in
      columns[key].map { Plot.Series(name: names[key]!, color: colors[key]!, points: $0, style: .line) }
    }
    guard !series.isEmpty else { throw FileError.invalid(path: metricsPath, reason: "holds no losses to plot") }
    var plot = Plot(title: "Loss per epoch (reconstruction + KL, mean per image)", xLabel: "epoch",
                    yLabel: "loss", series: series)
    plot.integerX = true
    return plot.render()
  }

  /// Images on a white canvas in rows, each 28×28 image scaled `scale` times, under a title.
  func grid(_ rows: [[[Float]]], scale: Int = 2, gap: Int = 4, title: String) -> Canvas {
    let side = 28 * scale, columns = rows.map(\.count).max() ?? 0
    let titleHeight = Canvas.lineHeight + 12
    let width = max(columns * side + (columns + 1) * gap, Canvas.textWidth(title) + 16)
    var canvas = Canvas(width: width, height: titleHeight + rows.count * side + (rows.count + 1) * gap)
    canvas.text(title, x: 8, y: 6)
    let left = (width - (columns * side + (columns - 1) * gap)) / 2
    for (r, row) in rows.enumerated() {
      for (c, image) in row.enumerated() {
        canvas.grayImage(image[...], side: 28, x: left + c * (side + gap), y: titleHeight + gap + r * (side + gap), scale: scale)
      }
    }
    return canvas
  }

  /// The pictures a run writes, by file name; each is drawn only when asked for.
  public func all(test: ImageStore, metricsPath: String) -> [(name: String, draw: () -> Canvas?)] {
    let (a, b) = interpolationEnds(test)
    return [
      ("reconstructions.png", { self.reconstructions(test) }), ("samples.png", { self.samples() }),
      ("manifold.png", { self.manifold() }), ("latent-scatter.png", { self.latentScatter(test) }),
      ("interpolation.png", { self.interpolation(test, from: a, to: b) }),
      ("loss-curves.png", { try? Self.lossCurves(metricsPath: metricsPath) }),
    ]
  }

  /// Writes the six pictures into `directory` (atomically each), asking `shouldStop` before each.
  /// Returns the pictures written (name, path, canvas) and the names of those skipped by a stop.
  @discardableResult
  public func writeAll(
    into directory: String, test: ImageStore, metricsPath: String, shouldStop: () -> Bool = { false }
  ) throws -> (written: [WrittenPicture], skipped: [String]) {
    do {
      try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
      throw FileError.writeFailed(path: directory, reason: "cannot create the directory")
    }
    var written: [WrittenPicture] = [], skipped: [String] = []
    for (name, draw) in all(test: test, metricsPath: metricsPath) {
      guard !shouldStop() else {
        skipped.append(name)
        continue
      }
      guard let canvas = draw() else { continue }
      let path = directory + "/" + name, png = canvas.png
      try AtomicFile.write(png, to: path)
      written.append(WrittenPicture(name: name, path: path, png: png, width: canvas.width, height: canvas.height))
    }
    return (written, skipped)
  }
}

/// A picture as written: its file and its PNG bytes (TensorBoard takes the same bytes).
public struct WrittenPicture: Sendable {
  public var name: String
  public var path: String
  public var png: [UInt8]
  public var width: Int
  public var height: Int
}

/// Φ⁻¹(p) for the standard normal, by bisection on erf (ample for picture grids).
func standardNormalQuantile(_ p: Double) -> Double {
  var low = -10.0, high = 10.0
  for _ in 0..<80 {
    let middle = (low + high) / 2
    if 0.5 * (1 + erf(middle / 2.0.squareRoot())) < p { low = middle } else { high = middle }
  }
  return (low + high) / 2
}
