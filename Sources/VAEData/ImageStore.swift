/// The images one process holds, addressed by file index, converted to [0, 1] on demand.
public struct ImageStore: Sendable {
  public let images: LabeledImages
  private let slotOfFileIndex: [Int32]

  public init(_ images: LabeledImages) {
    self.images = images
    var slots = [Int32](repeating: -1, count: images.fileCount)
    for (slot, index) in images.fileIndices.enumerated() { slots[index] = Int32(slot) }
    slotOfFileIndex = slots
  }

  public var count: Int { images.count }

  public func contains(fileIndex: Int) -> Bool {
    fileIndex >= 0 && fileIndex < slotOfFileIndex.count && slotOfFileIndex[fileIndex] >= 0
  }

  public func label(fileIndex: Int) -> Int { Int(images.labels[slot(fileIndex)]) }

  /// Writes the images with the given file indices, scaled by 1/255, as rows of `destination`.
  public func fill<T: BinaryFloatingPoint>(
    _ destination: UnsafeMutablePointer<T>, fileIndices: some Collection<Int>
  ) {
    let size = images.pixelsPerImage
    images.pixels.withUnsafeBufferPointer { pixels in
      for (row, index) in fileIndices.enumerated() {
        let source = pixels.baseAddress! + slot(index) * size
        let target = destination + row * size
        for p in 0..<size { target[p] = T(source[p]) / 255 }
      }
    }
  }

  /// i/255 for every byte value: the same Floats the division gives, without dividing per pixel.
  private static let unitScale: [Float] = (0..<256).map { Float($0) / 255 }

  /// The Float case of `fill`, through a table.
  public func fill(_ destination: UnsafeMutablePointer<Float>, fileIndices: some Collection<Int>) {
    let size = images.pixelsPerImage
    Self.unitScale.withUnsafeBufferPointer { table in
      images.pixels.withUnsafeBufferPointer { pixels in
        for (row, index) in fileIndices.enumerated() {
          let source = pixels.baseAddress! + slot(index) * size
          let target = destination + row * size
          for p in 0..<size { target[p] = table[Int(source[p])] }
        }
      }
    }
  }

  private func slot(_ fileIndex: Int) -> Int {
    let slot = Int(slotOfFileIndex[fileIndex])
    precondition(slot >= 0, "image \(fileIndex) is not in this process's shard")
    return slot
  }
}
