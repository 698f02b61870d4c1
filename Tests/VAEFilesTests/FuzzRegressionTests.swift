import Foundation
import VAEData
import VAEFiles
import XCTest

/// Every input the fuzzer started from or once crashed on (Tests/Fuzz) must be read or rejected with
/// an error naming the file, never crash.
final class FuzzRegressionTests: XCTestCase {
  func keptInputs(_ target: String) throws -> [String] {
    let fuzz = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
      .appendingPathComponent("Fuzz")
    return try ["seeds", "crashes"].flatMap { folder -> [String] in
      let directory = fuzz.appendingPathComponent("\(folder)/\(target)").path
      return try FileManager.default.contentsOfDirectory(atPath: directory).filter { !$0.hasPrefix(".") }.map { directory + "/" + $0 }
    }
  }

  func testIDXInputs() throws {
    let files = try keptInputs("idx")
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

  func testSafeTensorsInputs() throws {
    let files = try keptInputs("safetensors")
    XCTAssertGreaterThanOrEqual(files.count, 2)
    for file in files {
      do {
        let decoded = try SafeTensors.read(path: file)
        XCTAssertEqual(try SafeTensors.decode(SafeTensors.encode(decoded), path: file).tensors, decoded.tensors)
      } catch let error as FileError {
        XCTAssertTrue(error.description.contains(file), "\(error)")
      }
    }
  }
}
