#if canImport(Glibc)
  import Glibc
#endif

/// Images with their class labels, as bytes (0…255); converted to [0, 1] per micro-batch.
public struct LabeledImages: Sendable {
  public let side: Int
  public let pixels: [UInt8]
  public let labels: [UInt8]
  /// Each image's index in its file.
  public let fileIndices: [Int]
  /// How many images the file holds (of which these are a subset).
  public let fileCount: Int

  public var count: Int { labels.count }
  public var pixelsPerImage: Int { side * side }

  public init(side: Int, pixels: [UInt8], labels: [UInt8], fileIndices: [Int], fileCount: Int) {
    self.side = side
    self.pixels = pixels
    self.labels = labels
    self.fileIndices = fileIndices
    self.fileCount = fileCount
  }
}

/// Fashion-MNIST as Debian's `dataset-fashion-mnist` package installs it.
public enum FashionMNIST {
  public static let defaultDirectory = "/usr/share/datasets/fashion-mnist"
  public static let classNames = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
  ]

  public enum Split: String, Sendable {
    case train
    case test

    var filePrefix: String { self == .train ? "train" : "t10k" }
  }

  /// The images and labels files of a split in `directory`, gzip-compressed or not.
  public static func files(in directory: String, split: Split) throws -> (images: String, labels: String) {
    var isDirectory = stat()
    guard stat(directory, &isDirectory) == 0 else {
      throw DataError.missing(
        path: directory,
        hint: directory == defaultDirectory
          ? "Install Fashion-MNIST with `apt-get install dataset-fashion-mnist`, or pass --data DIR with the IDX files."
          : "Pass --data with the directory holding the Fashion-MNIST IDX files.")
    }
    func find(_ stem: String) throws -> String {
      for candidate in ["\(directory)/\(stem).gz", "\(directory)/\(stem)"] where access(candidate, F_OK) == 0 {
        return candidate
      }
      throw DataError.missing(
        path: "\(directory)/\(stem)(.gz)",
        hint: "The data directory must hold train- and t10k- images and labels IDX files"
          + (directory == defaultDirectory ? " (Debian package dataset-fashion-mnist)." : "."))
    }
    return (try find("\(split.filePrefix)-images-idx3-ubyte"), try find("\(split.filePrefix)-labels-idx1-ubyte"))
  }

  /// The number of images in a split, from its header alone.
  public static func imageCount(directory: String, split: Split) throws -> Int {
    try IDXFile.dimensions(path: files(in: directory, split: split).images, rank: 3)[0]
  }

  /// The CRC-32s of a split's images and labels files as they read uncompressed
  /// (`IDXFile.contentCRC32`): what identifies its data, stored either way.
  public static func contentCRC32s(directory: String, split: Split) throws -> (images: UInt32, labels: UInt32) {
    let (images, labels) = try files(in: directory, split: split)
    return (try IDXFile.contentCRC32(path: images, rank: 3), try IDXFile.contentCRC32(path: labels, rank: 1))
  }

  /// Loads a split, keeping only the images whose file index satisfies `keep` (all when nil): a rank
  /// reads the whole stream but holds only its shard.
  public static func load(directory: String, split: Split, keep: ((Int) -> Bool)? = nil) throws -> LabeledImages {
    let (imagesPath, labelsPath) = try files(in: directory, split: split)
    let images = try IDXFile.read(path: imagesPath, rank: 3, itemShape: [28, 28], keep: keep)
    let labels = try IDXFile.read(path: labelsPath, rank: 1, keep: keep)
    guard labels.dimensions[0] == images.dimensions[0] else {
      throw DataError.mismatch(
        reason: "\(imagesPath) holds \(images.dimensions[0]) images but \(labelsPath) holds \(labels.dimensions[0]) labels")
    }
    if let bad = labels.data.firstIndex(where: { $0 >= classNames.count }) {
      throw DataError.corrupt(
        path: labelsPath, reason: "label \(labels.data[bad]) of item \(labels.itemIndices[bad]) is outside 0…9")
    }
    return LabeledImages(
      side: 28, pixels: images.data, labels: labels.data, fileIndices: images.itemIndices,
      fileCount: images.dimensions[0])
  }
}
