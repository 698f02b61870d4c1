import VAETraining
import XCTest

final class FormattingTests: XCTestCase {
  func testFixedHandlesEveryMagnitude() {
    XCTAssertEqual(fixed(273.456, 2), "273.46")
    XCTAssertEqual(fixed(-0.004, 2), "0.00")
    XCTAssertEqual(fixed(-1.5, 1), "-1.5")
    XCTAssertEqual(fixed(0.05, 3), "0.050")
    XCTAssertEqual(fixed(2.5e20, 2), "2.5e+20")
    XCTAssertEqual(fixed(.infinity, 2), "inf")
    XCTAssertEqual(fixed(.nan, 2), "nan")
    XCTAssertEqual(grouped(134_165), "134,165")
    XCTAssertEqual(grouped(-1_000), "-1,000")
    XCTAssertEqual(grouped(999), "999")
  }
}
