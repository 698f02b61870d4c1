import Foundation
import VAETraining
import XCTest

/// Every safetensors input the fuzzer started from or once crashed on (Tests/Fuzz) must decode or
/// be rejected with an error, never crash.
final class SafeTensorsFuzzRegressionTests: XCTestCase {
  func testKeptFuzzInputs() throws {
    let fuzz = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("Fuzz")
    var files: [String] = []
    for folder in ["seeds/safetensors", "crashes/safetensors"] {
      let directory = fuzz.appendingPathComponent(folder).path
      files += try FileManager.default.contentsOfDirectory(atPath: directory)
        .filter { !$0.hasPrefix(".") }.map { directory + "/" + $0 }
    }
    XCTAssertGreaterThanOrEqual(files.count, 2)
    for file in files {
      do {
        let decoded = try SafeTensors.read(path: file)
        XCTAssertEqual(try SafeTensors.decode(SafeTensors.encode(decoded), path: file).tensors, decoded.tensors)
      } catch let error as CheckpointError {
        XCTAssertTrue(error.description.contains(file), "\(error)")
      }
    }
  }
}
