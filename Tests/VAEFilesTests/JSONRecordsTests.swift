import Foundation
import VAEFiles
import XCTest

/// The reader of metrics.jsonl lines that the loss curves and a resume's trim share.
final class JSONRecordsTests: XCTestCase {
  func testALineVaeDistWritesReadsBack() throws {
    let record = try XCTUnwrap(MetricsRecord.parse(#"{"epoch":2,"step":48,"train_loss":301.25,"test_loss":null,"lr":0.001}"#))
    XCTAssertEqual(record.epoch, 2)
    XCTAssertEqual(record.step, 48)
    XCTAssertEqual(record.train_loss?.value, 301.25)
    XCTAssertNil(record.test_loss?.value, "null: a diverged run's loss")
    XCTAssertNil(record.val_loss, "no validation: the key is absent")
  }

  /// JSONSerialization read `true` as 1 and a loss curve drew it; a string or a fractional epoch
  /// was as quietly wrong.
  func testWrongTypesAreNotRecords() {
    for line in [
      #"{"epoch":1,"step":24,"train_loss":true}"#, #"{"epoch":"1","step":24}"#, #"{"epoch":1.5,"step":24}"#,
      #"{"epoch":true}"#, #"{"step":24,"train_loss":300}"#, #"[1,2]"#, #"{"epoch": 2, "train_lo"#, "",
    ] {
      XCTAssertNil(MetricsRecord.parse(line), line)
    }
    XCTAssertNotNil(MetricsRecord.parse(#"{"epoch":1,"train_loss":300.5}"#), "the loss curves need no step")
  }

  func testLinesAreNumberedAsAnEditorShowsThem() {
    let lines = MetricsRecord.lines(of: "{\"epoch\":1}\r\n\n  \n{\"epoch\":2}\n")
    XCTAssertEqual(lines.map(\.number), [1, 4])
    XCTAssertEqual(lines.map { String($0.text) }, ["{\"epoch\":1}", "{\"epoch\":2}"])
  }
}
