import Foundation
import VAEFiles
import XCTest

/// CSV as RFC 4180 has it, against what a comma split gave.
final class CSVTests: XCTestCase {
  func testQuotesCommasLineBreaksAndBlanks() throws {
    let text = "\u{FEFF}\"ranks\", ips ,note\r\n1,100,\"a,5,b\"\r\n\r\n2 , 190,\"say \"\"hi\"\"\"\n3,350,\"two\nlines\"\n4,,\"\"\n"
    let records = try CSV.records(text)
    let expected = [
      ["ranks", "ips", "note"], ["1", "100", "a,5,b"], ["2", "190", "say \"hi\""], ["3", "350", "two\nlines"], ["4", "", ""],
    ]
    XCTAssertEqual(records, expected)
    for (record, want) in zip(records, expected) { print("CSV record \(record) (want \(want))") }
  }

  func testTheLastRecordNeedsNoLineBreakAndBlanksInsideQuotesStay() throws {
    XCTAssertEqual(try CSV.records("a,b\n1,\" x \""), [["a", "b"], ["1", " x "]])
    XCTAssertEqual(try CSV.records(""), [])
    XCTAssertEqual(try CSV.records("\n\n"), [])
    // Blanks after a closing quote are not the field's; inside an unquoted field they stay.
    XCTAssertEqual(try CSV.records("\"ranks\" ,\"ips\"\t\n1 2,3\n"), [["ranks", "ips"], ["1 2", "3"]])
  }

  func testAnUnterminatedQuoteIsAnErrorNamingItsRecord() {
    XCTAssertThrowsError(try CSV.records("a,b\n1,\"2\n3,4\n")) { error in
      XCTAssertEqual("\(error)", "a quoted field that starts in record 2 (the header is 1) never ends")
    }
  }

  func testAnEmptyPathIsNamedAsOne() {
    XCTAssertThrowsError(try RegularFile.bytes("", kind: "a CSV file", limit: 100)) { error in
      XCTAssertEqual("\(error)", "\"\": an empty path; give the path of a CSV file")
    }
  }
}
