//! Reading a bank's case file (JSON array or CSV): every row checked, errors named by line
//! (CSV) or index (JSON) and field, never quoting a value — a card or ID number must not
//! come back in an error, a log or the database. Numbers are masked as they are read.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::Value;
use tandem_core::model::BankId;
use utoipa::ToSchema;

use super::rows::{CsvFields, Fields, JsonFields, check_row};
use crate::db::visits::ImportedCase;

/// Most cases one import may hold.
pub const MAX_IMPORT_ROWS: usize = 10_000;
/// Largest import body, bytes.
pub const IMPORT_BODY_LIMIT: usize = 8 * 1024 * 1024;
/// Most addresses per case (CSV: `address_1` … `address_3` column groups).
pub const MAX_ADDRESSES: usize = 3;
/// Most row errors listed in one answer (the count says how many there were).
pub const MAX_LISTED_ERRORS: usize = 100;

/// The CSV columns, in the documented order; `debtor_phone` and the `_2`, `_3` address
/// groups may be left out of the header.
pub const CSV_COLUMNS: &[&str] = &[
    "case_ref",
    "card_number",
    "debtor_name",
    "id_number",
    "debtor_phone",
    "outstanding_fen",
    "entrustment_start_ms",
    "entrustment_end_ms",
    "address_1",
    "lat_e7_1",
    "lon_e7_1",
    "datum_1",
];

const CASE_FIELDS: &[&str] = &[
    "case_ref",
    "card_number",
    "debtor_name",
    "id_number",
    "debtor_phone",
    "outstanding_fen",
    "entrustment_start_ms",
    "entrustment_end_ms",
];
pub(super) const ADDRESS_FIELDS: &[&str] = &["text", "lat_e7", "lon_e7", "datum"];
const TOO_MANY: &str = "tandem: too many rows";

/// One problem with one field of one row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
pub struct RowError {
    /// CSV: the line in the file (the header is line 1).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub line: Option<u64>,
    /// JSON: the index in the array (from 0).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub index: Option<usize>,
    /// The field (`card_number`, `lat_e7_1`, `addresses[0].datum`), or `row`.
    pub field: String,
    /// What is wrong, without the value.
    pub problem: String,
}

/// Why a file cannot be imported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportError {
    /// The body is not JSON / CSV at all, or not of the expected shape.
    Malformed(String),
    /// More than [`MAX_IMPORT_ROWS`] rows.
    TooManyRows,
    /// Rows with errors; nothing is stored.
    Rows(Vec<RowError>),
}

/// Where a row is in its file.
#[derive(Debug, Clone, Copy)]
pub enum RowPos {
    /// A CSV line.
    Line(u64),
    /// A JSON array index.
    Index(usize),
}

impl RowPos {
    pub(super) fn error(self, field: impl Into<String>, problem: impl Into<String>) -> RowError {
        let (line, index) = match self {
            Self::Line(l) => (Some(l), None),
            Self::Index(i) => (None, Some(i)),
        };
        RowError {
            line,
            index,
            field: field.into(),
            problem: problem.into(),
        }
    }
}

/// A valid row and where it was.
#[derive(Debug, Clone)]
pub struct ParsedCase {
    /// Where it was.
    pub pos: RowPos,
    /// The case to store.
    pub case: ImportedCase,
}

/// A JSON array read one element at a time, refused as soon as it passes the row limit.
struct BoundedRows(Vec<Value>);

impl<'de> serde::Deserialize<'de> for BoundedRows {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = BoundedRows;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an array of cases")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<BoundedRows, A::Error> {
                let mut rows = Vec::new();
                while let Some(v) = seq.next_element::<Value>()? {
                    if rows.len() == MAX_IMPORT_ROWS {
                        return Err(de::Error::custom(TOO_MANY));
                    }
                    rows.push(v);
                }
                Ok(BoundedRows(rows))
            }
        }
        d.deserialize_seq(V)
    }
}

/// Reads a JSON array of cases.
pub fn parse_json(bank: BankId, body: &[u8]) -> Result<Vec<ParsedCase>, ImportError> {
    let rows = match serde_json::from_slice::<BoundedRows>(body) {
        Ok(rows) => rows.0,
        Err(e) if e.to_string().starts_with(TOO_MANY) => return Err(ImportError::TooManyRows),
        // serde's messages may quote the body: say only which way it is wrong.
        Err(e) if e.is_data() => {
            return Err(ImportError::Malformed(
                "The body must be a JSON array of case objects.".into(),
            ));
        }
        Err(_) => return Err(ImportError::Malformed("The body is not valid JSON.".into())),
    };
    let known: HashSet<&str> = CASE_FIELDS.iter().copied().chain(["addresses"]).collect();
    let mut errors = Vec::new();
    let mut out = Vec::with_capacity(rows.len());
    for (i, value) in rows.iter().enumerate() {
        let pos = RowPos::Index(i);
        let Value::Object(obj) = value else {
            errors.push(pos.error("row", "must be an object"));
            continue;
        };
        for key in obj.keys().filter(|k| !known.contains(k.as_str())) {
            errors.push(pos.error(shown_name(key).unwrap_or("row"), "unknown field"));
        }
        let row = JsonFields {
            obj,
            prefix: String::new(),
        };
        let mut address_fields = Vec::new();
        match obj.get("addresses") {
            Some(Value::Array(list)) if list.len() <= MAX_ADDRESSES => {
                for (j, a) in list.iter().enumerate() {
                    match a {
                        Value::Object(a)
                            if a.keys().all(|k| ADDRESS_FIELDS.contains(&k.as_str())) =>
                        {
                            address_fields.push(JsonFields {
                                obj: a,
                                prefix: format!("addresses[{j}]."),
                            });
                        }
                        _ => errors.push(pos.error(
                            format!("addresses[{j}]"),
                            "must be an object of text, lat_e7, lon_e7 and datum",
                        )),
                    }
                }
            }
            Some(Value::Array(_)) => errors.push(pos.error(
                "addresses",
                format!("at most {MAX_ADDRESSES} addresses per case"),
            )),
            Some(_) => errors.push(pos.error("addresses", "must be an array")),
            None => {}
        }
        let refs: Vec<&dyn Fields> = address_fields.iter().map(|a| a as &dyn Fields).collect();
        if let Some(case) = check_row(bank, pos, &row, &refs, &mut errors) {
            out.push(ParsedCase { pos, case });
        }
    }
    finish(out, errors)
}

/// Reads a CSV file with the documented header ([`CSV_COLUMNS`]).
pub fn parse_csv(bank: BankId, body: &[u8]) -> Result<Vec<ParsedCase>, ImportError> {
    // Spreadsheet programs start UTF-8 files with a byte-order mark.
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(body);
    let header = reader
        .headers()
        .map_err(|_| ImportError::Malformed("The first line must be the CSV header.".into()))?
        .clone();
    let mut columns = HashMap::new();
    let mut header_errors = Vec::new();
    let optional: Vec<String> = std::iter::once("debtor_phone".to_owned())
        .chain(
            (2..=MAX_ADDRESSES)
                .flat_map(|n| ["address", "lat_e7", "lon_e7", "datum"].map(|k| format!("{k}_{n}"))),
        )
        .collect();
    for (i, name) in header.iter().enumerate() {
        let name = name.trim();
        let known = CSV_COLUMNS.contains(&name) || optional.iter().any(|o| o == name);
        if !known {
            let field = shown_name(name).map_or_else(|| format!("column {}", i + 1), str::to_owned);
            header_errors.push(RowPos::Line(1).error(field, "unknown column name"));
        } else if columns.insert(name.to_owned(), i).is_some() {
            header_errors.push(RowPos::Line(1).error(name, "column given twice"));
        }
    }
    for required in CSV_COLUMNS.iter().filter(|c| **c != "debtor_phone") {
        if !columns.contains_key(*required) {
            header_errors.push(RowPos::Line(1).error(*required, "required column missing"));
        }
    }
    if columns.is_empty() {
        // Not one documented name: the first line is data, not the header.
        return Err(ImportError::Rows(vec![RowPos::Line(1).error(
            "header",
            "the first line must be the header naming the documented columns",
        )]));
    }
    if !header_errors.is_empty() {
        return Err(ImportError::Rows(header_errors));
    }
    let groups: Vec<String> = (1..=MAX_ADDRESSES)
        .map(|n| format!("_{n}"))
        .filter(|s| columns.contains_key(&format!("address{s}")))
        .collect();
    let mut errors = Vec::new();
    let mut out = Vec::new();
    let mut record = csv::StringRecord::new();
    let mut rows = 0usize;
    loop {
        let line = reader.position().line() + 1;
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(line, |p| p.line());
                let problem = match e.kind() {
                    csv::ErrorKind::UnequalLengths { .. } => {
                        "has a different number of fields than the header"
                    }
                    csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8",
                    _ => "is not valid CSV",
                };
                errors.push(RowPos::Line(line).error("row", problem));
                if !matches!(
                    e.kind(),
                    csv::ErrorKind::UnequalLengths { .. } | csv::ErrorKind::Utf8 { .. }
                ) {
                    break;
                }
                continue;
            }
        }
        rows += 1;
        if rows > MAX_IMPORT_ROWS {
            return Err(ImportError::TooManyRows);
        }
        if errors.len() > MAX_LISTED_ERRORS * 4 {
            continue;
        }
        let pos = RowPos::Line(record.position().map_or(line, |p| p.line()));
        let row = CsvFields {
            columns: &columns,
            record: &record,
            suffix: String::new(),
        };
        // An address group left empty is no address; one partly filled is checked.
        let address_fields: Vec<CsvFields<'_>> = groups
            .iter()
            .map(|s| CsvFields {
                columns: &columns,
                record: &record,
                suffix: s.clone(),
            })
            .filter(|g| ADDRESS_FIELDS.iter().any(|k| g.cell(k).is_some()))
            .collect();
        let refs: Vec<&dyn Fields> = address_fields.iter().map(|a| a as &dyn Fields).collect();
        if let Some(case) = check_row(bank, pos, &row, &refs, &mut errors) {
            out.push(ParsedCase { pos, case });
        }
    }
    finish(out, errors)
}

/// A name from the file's header or keys, if it may be quoted back: only names written
/// the way field names are (`card_no`), lowercase ASCII letters and underscores. A file
/// without its header row has a debtor's card, ID or phone number, name or address where
/// the names should be, and none of those is written that way (they hold digits, capitals,
/// spaces or Chinese), so a cell's value never comes back in an error.
fn shown_name(name: &str) -> Option<&str> {
    let plain = !name.is_empty()
        && name.len() <= 40
        && name.chars().all(|c| c.is_ascii_lowercase() || c == '_');
    plain.then_some(name)
}

/// Adds duplicate references within the file to the errors; the cases when there are none.
fn finish(
    cases: Vec<ParsedCase>,
    mut errors: Vec<RowError>,
) -> Result<Vec<ParsedCase>, ImportError> {
    let mut seen = HashSet::new();
    for c in &cases {
        if !seen.insert(c.case.case.case_ref.as_str()) {
            errors.push(
                c.pos
                    .error("case_ref", "the same case reference is earlier in the file"),
            );
        }
    }
    if errors.is_empty() {
        Ok(cases)
    } else {
        Err(ImportError::Rows(errors))
    }
}

/// The errors for cases whose reference the bank has already.
pub fn already_stored(cases: &[ParsedCase], existing: &[String]) -> Vec<RowError> {
    let existing: HashSet<&str> = existing.iter().map(String::as_str).collect();
    cases
        .iter()
        .filter(|c| existing.contains(c.case.case.case_ref.as_str()))
        .map(|c| {
            c.pos
                .error("case_ref", "a case with this reference exists already")
        })
        .collect()
}

/// Reads an XLSX workbook: its first sheet laid out like the CSV (the header on the sheet's
/// first row), checked exactly as the CSV is — row errors name the sheet's row numbers.
/// Numbers that are whole are read as integers; date cells in the `entrustment_start_ms`
/// and `entrustment_end_ms` columns are read as the start of that day, or the end of it,
/// in the bank's time zone `zone`.
pub fn parse_xlsx(
    bank: BankId,
    body: &[u8],
    zone: chrono_tz::Tz,
) -> Result<Vec<ParsedCase>, ImportError> {
    use calamine::{Data, Reader, Xlsx};
    let not_xlsx = || ImportError::Malformed("The file is not a readable XLSX workbook.".into());
    let mut book: Xlsx<_> =
        calamine::open_workbook_from_rs(std::io::Cursor::new(body)).map_err(|_| not_xlsx())?;
    let sheet = book
        .worksheet_range_at(0)
        .ok_or_else(|| ImportError::Malformed("The workbook has no sheet.".into()))?
        .map_err(|_| not_xlsx())?;
    if sheet.height() > MAX_IMPORT_ROWS + 1 {
        return Err(ImportError::TooManyRows);
    }
    let (first_row, first_col) = sheet.start().unwrap_or((0, 0));
    let mut out = csv::WriterBuilder::new()
        .flexible(true)
        .from_writer(Vec::new());
    let mut header: Vec<String> = Vec::new();
    for (r, row) in sheet.rows().enumerate() {
        let mut cells: Vec<String> = vec![String::new(); first_col as usize];
        for (c, cell) in row.iter().enumerate() {
            let column = header.get(first_col as usize + c).map(String::as_str);
            cells.push(match cell {
                Data::Empty => String::new(),
                Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => s.clone(),
                Data::Int(i) => i.to_string(),
                Data::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => {
                    format!("{}", *f as i64)
                }
                Data::Float(f) => f.to_string(),
                Data::Bool(b) => b.to_string(),
                Data::DateTime(d) => match (column, d.as_datetime()) {
                    (Some(col), Some(t)) if col.ends_with("_ms") => {
                        let day = if col == "entrustment_end_ms" {
                            t.date().succ_opt().unwrap_or(t.date())
                        } else {
                            t.date()
                        };
                        day.and_hms_opt(0, 0, 0)
                            .and_then(|t| t.and_local_timezone(zone).earliest())
                            .map(|t| t.timestamp_millis().to_string())
                            .unwrap_or_default()
                    }
                    _ => d.to_string(),
                },
                Data::Error(_) => "#ERROR".to_owned(),
            });
        }
        if r == 0 {
            header = cells.iter().map(|c| c.trim().to_owned()).collect();
        }
        out.write_record(&cells).map_err(|_| not_xlsx())?;
    }
    let csv = out.into_inner().map_err(|_| not_xlsx())?;
    // Errors name the sheet's rows: the CSV's line 1 is the sheet's first used row.
    parse_csv(bank, &csv).map_err(|e| match e {
        ImportError::Rows(mut errors) => {
            for error in &mut errors {
                error.line = error.line.map(|l| l + u64::from(first_row));
            }
            ImportError::Rows(errors)
        }
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A bank's workbook: the header on row 1 (after a title row the sheet starts below),
    /// entrustment dates as date cells, whole numbers as numbers.
    fn workbook(bad_card_on_second: bool) -> Vec<u8> {
        use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
        let mut book = Workbook::new();
        let sheet = book.add_worksheet();
        let date = Format::new().set_num_format("yyyy-mm-dd");
        let header = [
            "case_ref",
            "card_number",
            "debtor_name",
            "id_number",
            "outstanding_fen",
            "entrustment_start_ms",
            "entrustment_end_ms",
            "address_1",
            "lat_e7_1",
            "lon_e7_1",
            "datum_1",
        ];
        for (c, h) in header.iter().enumerate() {
            sheet.write_string(0, c as u16, *h).unwrap();
        }
        for (r, (case_ref, card)) in [
            ("XL-1", "6222020200001234561"),
            (
                "XL-2",
                if bad_card_on_second {
                    "12"
                } else {
                    "6222020200001234572"
                },
            ),
        ]
        .into_iter()
        .enumerate()
        {
            let row = r as u32 + 1;
            sheet.write_string(row, 0, case_ref).unwrap();
            sheet.write_string(row, 1, card).unwrap();
            sheet.write_string(row, 2, "林晓虹").unwrap();
            sheet.write_string(row, 3, "310101198805120026").unwrap();
            sheet.write_number(row, 4, 1_234_567.0).unwrap();
            let start = ExcelDateTime::from_ymd(2026, 12, 1).unwrap();
            let end = ExcelDateTime::from_ymd(2027, 5, 31).unwrap();
            sheet
                .write_datetime_with_format(row, 5, &start, &date)
                .unwrap();
            sheet
                .write_datetime_with_format(row, 6, &end, &date)
                .unwrap();
            sheet
                .write_string(row, 7, "上海市黄浦区南京东路300号")
                .unwrap();
            sheet.write_number(row, 8, 312_380_500.0).unwrap();
            sheet.write_number(row, 9, 1_214_817_400.0).unwrap();
            sheet.write_string(row, 10, "gcj02").unwrap();
        }
        book.save_to_buffer().unwrap()
    }

    #[test]
    fn an_xlsx_workbook_is_read_like_the_csv_with_date_cells_in_the_banks_zone() {
        let zone = chrono_tz::Asia::Shanghai;
        let cases = parse_xlsx(BankId::new(), &workbook(false), zone).unwrap();
        assert_eq!(cases.len(), 2);
        let c = &cases[0].case.case;
        assert_eq!(c.case_ref, "XL-1");
        assert_eq!(c.outstanding_fen, 1_234_567);
        assert_eq!(c.card.as_str(), "**** **** **** 4561");
        // 2026-12-01 00:00 and the end of 2027-05-31 (2027-06-01 00:00) in Shanghai.
        assert_eq!(c.entrustment_start_ms, 1_796_054_400_000);
        assert_eq!(c.entrustment_end_ms, 1_811_779_200_000);
    }

    #[test]
    fn a_bad_row_of_a_workbook_is_named_by_its_row_on_the_sheet() {
        let Err(ImportError::Rows(errors)) =
            parse_xlsx(BankId::new(), &workbook(true), chrono_tz::Asia::Shanghai)
        else {
            panic!("refused");
        };
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].line, Some(3));
        assert_eq!(errors[0].field, "card_number");
    }

    #[test]
    fn a_file_that_is_not_a_workbook_is_refused_as_malformed() {
        let refused = parse_xlsx(
            BankId::new(),
            b"PK\x03\x04 not really",
            chrono_tz::Asia::Shanghai,
        );
        assert!(matches!(refused, Err(ImportError::Malformed(_))));
    }
}
