import Foundation
import VAEFiles
import XCTest

final class AtomicFileTests: XCTestCase {
  var directory = ""

  override func setUp() {
    directory = NSTemporaryDirectory() + "atomic-" + UUID().uuidString
    try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
  }
  override func tearDown() { try? FileManager.default.removeItem(atPath: directory) }

  func makeDirectory(_ name: String, holding text: String) throws -> String {
    let path = directory + "/" + name
    try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    try AtomicFile.write(Array(text.utf8), to: path + "/file")
    return path
  }

  func contents(_ path: String) throws -> String { try String(contentsOfFile: path + "/file", encoding: .utf8) }

  /// A directory in place of an older one, and in a place that is empty; nothing left beside them.
  func testReplaceSwapsADirectoryInWhole() throws {
    let old = try makeDirectory("best", holding: "old")
    try AtomicFile.replace(old, with: try makeDirectory(".tmp-best", holding: "new"))
    XCTAssertEqual(try contents(old), "new")
    try AtomicFile.replace(directory + "/other", with: try makeDirectory(".tmp-other", holding: "first"))
    XCTAssertEqual(try contents(directory + "/other"), "first")
    XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: directory).sorted(), ["best", "other"])
  }

  /// The swap itself is one step: renameat2 exchanges the two (this file system supports it), so
  /// no moment passes without a copy at the name.
  func testExchangeSwapsTheTwo() throws {
    let a = try makeDirectory("a", holding: "A"), b = try makeDirectory("b", holding: "B")
    XCTAssertEqual(AtomicFile.exchange(a, b), 0, String(cString: strerror(errno)))
    XCTAssertEqual(try contents(a), "B")
    XCTAssertEqual(try contents(b), "A")
    let status = AtomicFile.exchange(a, directory + "/missing"), error = errno
    XCTAssertEqual(status, -1)
    XCTAssertEqual(error, ENOENT)
  }
}
