import VAEPictures
import VAEFiles
import ArgumentParser
import VAECore
import VAEData
import VAEImages
import VAETraining

#if canImport(Glibc)
  import Glibc
#endif

/// What every picture command needs: a saved model and where to write.
struct PictureOptions: ParsableArguments {
  @Option(help: ArgumentHelp(
    "A model.safetensors written by vae-dist, or a folder holding one: a run's --out, or a checkpoint (DIR/checkpoints/step-N, DIR/checkpoints/best).",
    valueName: "path"))
  var checkpoint: String

  @Option(name: .customLong("output"), help: ArgumentHelp("The PNG file to write.", valueName: "file"))
  var output: String

  @Option(help: "Seed of the sampling and of which test images are shown (default: the run's, which the model file records, so DIR/images is drawn again; 0 if it records none).")
  var seed: UInt64?

  @OptionGroup var threads: ThreadOptions

  func pictures() throws -> Pictures {
    let path = modelFilePath(checkpoint)
    let file = try SafeTensors.read(path: path)
    let (layout, parameters) = try ModelFile.parameters(from: file, path: path)
    return Pictures(parameters: parameters, latentDim: layout.latentDim, seed: seed ?? recordedSeed(file) ?? 0, threads: threads.resolved)
  }

  /// Runs `draw` and writes its picture; errors go the one way every command's go. The data files
  /// count as inputs too (of `data`, for the commands that read the test images; else of the
  /// default data directory): a picture must never replace the dataset.
  func write(guarding data: DataOptions? = nil, _ draw: () throws -> Canvas) throws {
    configureBLASForWorkerThreads()
    var inputs = ["--checkpoint": modelFilePath(checkpoint)]
    let (directory, name) = data.map { ($0.directory, "--data") } ?? (defaults.dataDirectory, "Fashion-MNIST")
    for split in [FashionMNIST.Split.train, .test] {
      guard let files = try? FashionMNIST.files(in: directory, split: split) else { continue }
      inputs["\(name) (\(split) images)"] = files.images
      inputs["\(name) (\(split) labels)"] = files.labels
    }
    try writePNG(to: output, readingFrom: inputs, draw)
  }
}

extension DataOptions {
  /// The test split, for the picture commands that show test images.
  func testImages() throws -> ImageStore { ImageStore(try FashionMNIST.load(directory: directory, split: .test)) }
}

struct Sample: ParsableCommand {
  static let configuration = CommandConfiguration(abstract: "Decode images from z ~ N(0, I) into a grid.")
  @OptionGroup var options: PictureOptions
  @Option(help: "Rows and columns of the grid, 1 to 40.") var grid = 10
  func validate() throws { guard (1...40).contains(grid) else { throw ValidationError("--grid must be between 1 and 40.") } }
  func run() throws { try options.write { try options.pictures().samples(rows: grid, columns: grid) } }
}

struct Reconstruct: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Test images beside their reconstructions (one of each class per column).")
  @OptionGroup var options: PictureOptions
  @Option(help: "Pairs of rows (images, reconstructions), 1 to 10.") var pairs = 3
  @OptionGroup(title: "Data") var data: DataOptions
  func validate() throws { guard (1...10).contains(pairs) else { throw ValidationError("--pairs must be between 1 and 10.") } }
  func run() throws {
    try options.write(guarding: data) {
      let test = try data.testImages(), pictures = try options.pictures()
      let (rows, indices) = pictures.reconstructionRows(test, pairs: pairs)
      if indices.count < 10 * pairs {
        printError("reconstruct: note: the test set (\(test.count) images) does not hold \(pairs) of each of the 10 classes; drawing one pair of rows of \(indices.count) image\(indices.count == 1 ? "" : "s") instead")
      }
      return pictures.reconstructions(rows: rows)
    }
  }
}

struct Interpolate: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Walk the latent space between two test images and decode the way.")
  @OptionGroup var options: PictureOptions
  @Option(help: ArgumentHelp("Index of the first test image (default: a sneaker).", valueName: "i")) var from: Int?
  @Option(help: ArgumentHelp("Index of the last test image (default: a T-shirt).", valueName: "j")) var to: Int?
  @Option(help: "Decoded points between them, 2 to 64.") var steps = 10
  @OptionGroup(title: "Data") var data: DataOptions
  func validate() throws {
    guard (2...64).contains(steps) else { throw ValidationError("--steps must be between 2 and 64.") }
    for (flag, value) in [("--from", from), ("--to", to)] {
      if let value, value < 0 { throw ValidationError("\(flag) must be a test image index, 0 or more (got \(value)).") }
    }
  }
  func run() throws {
    try options.write(guarding: data) {
      let pictures = try options.pictures(), test = try data.testImages()
      let ends = pictures.interpolationEnds(test)
      let a = from ?? ends.0, b = to ?? ends.1
      // The test set's size is known only now: --data may hold more images than Fashion-MNIST's 10,000.
      for (flag, index) in [("--from", a), ("--to", b)] where !test.contains(fileIndex: index) {
        throw ValidationError("\(flag) \(index): the test set holds \(test.count) images, indices 0 to \(test.count - 1).")
      }
      return pictures.interpolation(test, from: a, to: b, steps: steps)
    }
  }
}

struct LatentScatter: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "latent-scatter", abstract: "Plot z_mean of every test image, coloured by class.")
  @OptionGroup var options: PictureOptions
  @Option(help: ArgumentHelp("The two latent dimensions to plot, e.g. 0,1.", valueName: "i,j")) var dims = "0,1"
  @OptionGroup(title: "Data") var data: DataOptions
  func run() throws {
    try options.write(guarding: data) {
      let pictures = try options.pictures()
      return pictures.latentScatter(try data.testImages(), dimensions: try parseDimensions(dims, latentDim: pictures.model.latentDim))
    }
  }
}

struct Manifold: ParsableCommand {
  static let configuration = CommandConfiguration(
    abstract: "Decode a regular grid over two latent dimensions (the 2-D latent space itself when d = 2).")
  @OptionGroup var options: PictureOptions
  @Option(help: "Points along each side, 2 to 60.") var grid = 20
  @Option(help: ArgumentHelp("The two latent dimensions spanning the plane, e.g. 0,1.", valueName: "i,j")) var dims = "0,1"
  func validate() throws { guard (2...60).contains(grid) else { throw ValidationError("--grid must be between 2 and 60.") } }
  func run() throws {
    try options.write {
      let pictures = try options.pictures()
      return pictures.manifold(size: grid, dimensions: try parseDimensions(dims, latentDim: pictures.model.latentDim))
    }
  }
}

struct PlotMetrics: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "plot-metrics", abstract: "Plot train, validation and test loss per epoch from metrics.jsonl.")
  @Option(help: ArgumentHelp("The metrics.jsonl of a run.", valueName: "file")) var metrics: String
  @Option(name: .customLong("output"), help: ArgumentHelp("The PNG file to write.", valueName: "file")) var output: String
  func run() throws {
    try writePNG(to: output, readingFrom: ["--metrics": metrics]) { try Pictures.lossCurves(metricsPath: metrics) }
  }
}

/// --dims i,j: two latent dimensions below `latentDim`, different unless the model has one (then 0,0;
/// the default 0,1 stands for it, as training's own pictures do).
func parseDimensions(_ text: String, latentDim: Int) throws -> (Int, Int) {
  if latentDim == 1 && text == "0,1" { return (0, 0) }
  let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) }
  guard parts.count == 2, let i = parts[0], let j = parts[1], (0..<latentDim).contains(i), (0..<latentDim).contains(j),
    latentDim == 1 || i != j
  else {
    let wanted = latentDim == 1 ? "0,0 (the model has one latent dimension)" : "two different latent dimensions below \(latentDim), as i,j"
    throw ValidationError("--dims takes \(wanted) (got \(text))")
  }
  return (i, j)
}

struct PlotCSV: ParsableCommand {
  static let configuration = CommandConfiguration(
    commandName: "plot-csv", abstract: "Plot columns of a CSV file against one of them (used by the scaling benchmark).")
  @Option(help: ArgumentHelp("A CSV file with a header line.", valueName: "file")) var csv: String
  @Option(help: ArgumentHelp("The column for the x axis.", valueName: "column")) var x: String
  @Option(help: ArgumentHelp("Columns to plot, comma-separated.", valueName: "columns")) var y: String
  @Option(help: ArgumentHelp("Only rows whose column equals a value, as column=value.", valueName: "filter")) var only: String?
  @Option(help: "The chart's title.") var title = ""
  @Option(help: ArgumentHelp("The x axis's label (default: the --x column's name).", valueName: "text")) var xLabel: String?
  @Option(help: ArgumentHelp("The y axis's label.", valueName: "text")) var yLabel = ""
  @Option(name: .customLong("output"), help: ArgumentHelp("The PNG file to write.", valueName: "file")) var output: String

  func run() throws {
    try writePNG(to: output, readingFrom: ["--csv": csv]) {
      let text: String
      do { text = try RegularFile.text(csv, kind: "a CSV file", limit: 256 << 20) } catch { throw ValidationError("--csv: \(error)") }
      let lines: [[String]]
      do { lines = try CSV.records(text) } catch { throw ValidationError("--csv: \(csv): \(error)") }
      let columns = " (its columns: \((lines.first ?? []).joined(separator: ", ")))"
      guard let header = lines.first, let xColumn = header.firstIndex(of: x) else {
        throw ValidationError("--x: \(csv) has no column \(x)" + columns)
      }
      var rows = Array(lines.dropFirst())
      if let only {
        let parts = only.split(separator: "=", maxSplits: 1).map(String.init)
        guard parts.count == 2, let column = header.firstIndex(of: parts[0]) else {
          throw ValidationError("--only takes column=value with a column of \(csv)")
        }
        rows = rows.filter { $0.count > column && $0[column] == parts[1] }
      }
      let series = try y.split(separator: ",").map(String.init).enumerated().map { index, name -> Plot.Series in
        guard let column = header.firstIndex(of: name) else { throw ValidationError("--y: \(csv) has no column \(name)" + columns) }
        let points = rows.compactMap { row -> (x: Double, y: Double)? in
          guard row.count > max(column, xColumn), let px = Double(row[xColumn]), let py = Double(row[column]),
            Plot.plottable((px, py))  // NaN, ∞ and beyond ±1e300 are not drawn
          else { return nil }
          return (px, py)
        }
        return Plot.Series(name: name, color: Color.categorical[index % 10], points: points, style: .line)
      }
      guard series.contains(where: { !$0.points.isEmpty }) else {
        throw ValidationError(
          "--y \(y)\(only.map { " --only \($0)" } ?? ""): no row of \(csv) has numbers in those columns and in --x \(x); nothing to plot")
      }
      return Plot(title: title, xLabel: xLabel ?? x, yLabel: yLabel, series: series).render()
    }
  }
}

/// The absolute path of an existing file, links resolved; nil when it does not exist.
func resolved(_ path: String) -> String? {
  guard let pointer = realpath(path, nil) else { return nil }
  defer { free(pointer) }
  return String(cString: pointer)
}

/// Draws a picture and writes it as PNG to `path`, reporting errors the one way. `path` must not be
/// one of the command's input files (`inputs`, by flag): the picture would replace it; and a name
/// with an extension must end in .png (a PNG written to `x.jpg` was a silently wrong file).
func writePNG(to path: String, readingFrom inputs: [String: String], _ draw: () throws -> Canvas) throws {
  try reportingFailures {
    guard !path.isEmpty else { throw ValidationError("--output needs a file name, e.g. --output picture.png") }
    if let output = resolved(path), let flag = inputs.keys.sorted().first(where: { resolved(inputs[$0]!) == output }) {
      throw ValidationError("--output \(path) is the \(flag) file; the picture would replace it: give another --output")
    }
    let name = path.split(separator: "/").last ?? ""
    // An extension of letters that is not png (x.jpg, x.txt); `beta0.5` or `run.v2` are names, not formats.
    if let dot = name.lastIndex(of: "."), dot != name.startIndex, case let ext = name[name.index(after: dot)...],
      !ext.isEmpty, ext.allSatisfy({ $0.isASCII && $0.isLetter }), ext.lowercased() != "png"
    {
      throw ValidationError("--output \(path): vae-dist writes PNG pictures only, and a name ending in .\(ext) says otherwise: give a name ending in .png")
    }
    let canvas = try draw()
    try AtomicFile.write(canvas.png, to: path)
    print("wrote \(path) (\(canvas.width)×\(canvas.height))")
  }
}
