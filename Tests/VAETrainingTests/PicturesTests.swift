import VAECore
import VAEData
import VAEPictures
import XCTest

/// What the pictures show, image by image (the end-to-end test checks that each is written).
final class PicturesTests: XCTestCase {
  let store = Fixtures.images()  // 96 images, labels i mod 10
  let (parameters, _) = Fixtures.parameters(zeroing: [])
  var pictures: Pictures { Pictures(parameters: parameters, latentDim: 2, seed: 3) }

  func pixels(_ fileIndex: Int) -> [Float] {
    var values = [Float](repeating: 0, count: 784)
    store.fill(&values, fileIndices: [fileIndex])
    return values
  }

  /// The passes split their micro-batches of 16 among the threads: the same values for any count,
  /// and for an image alone as among others (a lane is one image's). 37 images: 3 micro-batches, the
  /// last of 5.
  func testPassesGiveTheSameValuesOnAnyThreadCount() {
    let indices = Array(stride(from: 95, to: 21, by: -2))
    let one = Pictures(parameters: parameters, latentDim: 2, seed: 3, threads: 1)
    let means = one.latentMeans(store, fileIndices: indices), images = one.decode(means)
    XCTAssertEqual(means.count, 37)
    XCTAssertEqual(images.count, 37)
    XCTAssertTrue(images.allSatisfy { $0.count == 784 && $0.allSatisfy { (0...1).contains($0) } })
    for threads in [2, 3, 8] {
      let many = Pictures(parameters: parameters, latentDim: 2, seed: 3, threads: threads)
      XCTAssertEqual(many.latentMeans(store, fileIndices: indices), means, "\(threads) threads")
      XCTAssertEqual(many.decode(means), images, "\(threads) threads")
    }
    XCTAssertEqual(one.decode([means[36]]), [images[36]], "an image alone")
    XCTAssertEqual(one.latentMeans(store, fileIndices: [indices[20]]), [means[20]], "an image alone")
  }

  /// Image a, then the decodes of z_mean(a) … z_mean(b) (both ends exactly), then image b.
  func testInterpolationRunsFromOneImagesMeanToTheOthers() {
    let pictures = pictures
    let row = pictures.interpolationRow(store, from: 3, to: 40, steps: 7)
    let ends = pictures.decode(pictures.latentMeans(store, fileIndices: [3, 40]))
    XCTAssertEqual(row.count, 9)
    XCTAssertEqual(row[0], pixels(3))
    XCTAssertEqual(row[1], ends[0])
    XCTAssertEqual(row[7], ends[1])
    XCTAssertEqual(row[8], pixels(40))
    XCTAssertNotEqual(row[4], ends[0])
    XCTAssertNotEqual(row[4], ends[1])
  }

  /// Odd rows: test images, a class per column; even rows: the decodes of their z_mean, in the same places.
  func testReconstructionsPairEachImageWithItsDecodedMean() {
    let pictures = pictures
    let (rows, indices) = pictures.reconstructionRows(store, columns: 10, pairs: 2)
    XCTAssertEqual(rows.count, 4)
    XCTAssertEqual(indices.count, 20)
    XCTAssertEqual(Set(indices).count, 20)
    let decoded = pictures.decode(pictures.latentMeans(store, fileIndices: indices))
    for p in 0..<2 {
      for c in 0..<10 {
        let i = indices[p * 10 + c]
        XCTAssertEqual(store.label(fileIndex: i), c, "column \(c) holds class \(c)")
        XCTAssertEqual(rows[2 * p][c], pixels(i), "row \(2 * p), column \(c)")
        XCTAssertEqual(rows[2 * p + 1][c], decoded[p * 10 + c], "row \(2 * p + 1), column \(c)")
      }
    }
  }

  /// z[first] grows to the right and z[second] upwards, from the 5% to the 95% quantile of N(0, 1),
  /// and each image is the decode of its point.
  func testManifoldPutsTheFirstDimensionAcrossAndTheSecondUp() {
    let pictures = pictures, size = 5
    let points = pictures.manifoldPoints(size: size, dimensions: (1, 0))
    for r in 0..<size {
      for c in 0..<size {
        let z = points[r * size + c]
        if c > 0 { XCTAssertGreaterThan(z[1], points[r * size + c - 1][1]) }
        if r > 0 { XCTAssertLessThan(z[0], points[(r - 1) * size + c][0]) }
      }
    }
    XCTAssertEqual(points[0][1], -points[size - 1][1], accuracy: 1e-6)
    XCTAssertEqual(points[0][1], -1.6448536, accuracy: 1e-6)  // the 5% quantile of N(0, 1)
    let rows = pictures.manifoldRows(size: size, dimensions: (1, 0))
    XCTAssertEqual(rows.flatMap { $0 }, pictures.decode(points))
  }
}
