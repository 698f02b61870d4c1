import Foundation
import VAEData
import XCTest

/// Every input the fuzzer started from or once crashed on (Tests/Fuzz) must be read or rejected
/// with an error, never crash.
final class IDXFuzzRegressionTests: XCTestCase {
  func testKeptFuzzInputs() throws {
    let fuzz = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("Fuzz")
    var files: [String] = []
    for folder in ["seeds/idx", "crashes/idx"] {
      let directory = fuzz.appendingPathComponent(folder).path
      files += try FileManager.default.contentsOfDirectory(atPath: directory)
        .filter { !$0.hasPrefix(".") }.map { directory + "/" + $0 }
    }
    XCTAssertGreaterThanOrEqual(files.count, 5, "seeds and the crash found on the first fuzz run")
    for file in files {
      for rank in [3, 1] {
        do {
          let contents = try IDXFile.read(path: file, rank: rank)
          XCTAssertEqual(contents.data.count, contents.itemIndices.count * contents.itemSize, file)
        } catch let error as DataError {
          XCTAssertTrue(error.description.contains(file), "\(error)")
        }
      }
    }
  }
}
