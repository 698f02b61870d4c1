/// CSV as spreadsheets, pandas and the benchmark scripts write it (RFC 4180): fields split at commas
/// outside double quotes; inside quotes `""` is one quote, and commas and line breaks are text; LF
/// or CRLF ends a record. Blanks around an unquoted field and a UTF-8 byte-order mark at the start
/// are dropped, and blank lines skipped. A comma split that ignored the quotes plotted `"a,5,b"`'s 5
/// as the next column's value.
public enum CSV {
  public struct UnterminatedQuote: Error, CustomStringConvertible {
    public let record: Int
    public var description: String { "a quoted field that starts in record \(record) (the header is 1) never ends" }
  }

  public static func records(_ text: String) throws -> [[String]] {
    var scalars = Array(text.unicodeScalars)
    if scalars.first == "\u{FEFF}" { scalars.removeFirst() }
    var records: [[String]] = [], record: [String] = []
    var field = String.UnicodeScalarView()
    var inQuotes = false, fieldQuoted = false, recordQuoted = false
    func endField() {
      let text = String(field)
      record.append(fieldQuoted ? text : text.trimmingCharacters(in: .whitespaces))
      field = String.UnicodeScalarView()
      fieldQuoted = false
    }
    func endRecord() {
      endField()
      if record != [""] || recordQuoted { records.append(record) }  // a blank line is no record
      record = []
      recordQuoted = false
    }
    var i = 0
    while i < scalars.count {
      let c = scalars[i]
      if inQuotes {
        if c != "\"" {
          field.append(c)
        } else if i + 1 < scalars.count, scalars[i + 1] == "\"" {
          field.append(c)
          i += 1
        } else {
          inQuotes = false
        }
      } else {
        switch c {
        case "\"" where String(field).allSatisfy(\.isWhitespace) && !fieldQuoted:
          field = String.UnicodeScalarView()  // blanks before the opening quote are not the field's
          (inQuotes, fieldQuoted, recordQuoted) = (true, true, true)
        case ",": endField()
        case "\n", "\r":
          endRecord()
          if c == "\r", i + 1 < scalars.count, scalars[i + 1] == "\n" { i += 1 }
        default: field.append(c)
        }
      }
      i += 1
    }
    if inQuotes { throw UnterminatedQuote(record: records.count + 1) }
    if !field.isEmpty || !record.isEmpty || fieldQuoted { endRecord() }
    return records
  }
}
