/// CSV as spreadsheets, pandas and the benchmark scripts write it (RFC 4180): fields split at commas
/// outside double quotes; inside quotes `""` is one quote, and commas and line breaks are text; LF
/// or CRLF ends a record. Blanks around a field (outside its quotes) and a UTF-8 byte-order mark at
/// the start are dropped, and blank lines skipped. A comma split that ignored the quotes plotted `"a,5,b"`'s 5
/// as the next column's value.
public enum CSV {
  public struct UnterminatedQuote: Error, CustomStringConvertible {
    public let record: Int
    public var description: String { "a quoted field that starts in record \(record) (the header is 1) never ends" }
  }

  public static func records(_ text: String) throws -> [[String]] {
    // Read one scalar ahead, not copied into an array (4 bytes a scalar: 1 GiB for a 256 MiB file).
    var scalars = text.unicodeScalars.makeIterator()
    var next = scalars.next()
    if next == "\u{FEFF}" { next = scalars.next() }
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
    var closed = false  // past a quoted field's closing quote: blanks there are not the field's
    while let c = next {
      next = scalars.next()
      if inQuotes {
        if c != "\"" {
          field.append(c)
        } else if next == "\"" {
          field.append(c)
          next = scalars.next()
        } else {
          (inQuotes, closed) = (false, true)
        }
        continue
      }
      switch c {
      case "\"" where String(field).allSatisfy(\.isWhitespace) && !fieldQuoted:
        field = String.UnicodeScalarView()  // blanks before the opening quote are not the field's
        (inQuotes, fieldQuoted, recordQuoted) = (true, true, true)
      case ",":
        endField()
        closed = false
      case "\n", "\r":
        endRecord()
        closed = false
        if c == "\r", next == "\n" { next = scalars.next() }
      case " " where closed, "\t" where closed: break
      default: field.append(c)
      }
    }
    if inQuotes { throw UnterminatedQuote(record: records.count + 1) }
    if !field.isEmpty || !record.isEmpty || fieldQuoted { endRecord() }
    return records
  }
}
