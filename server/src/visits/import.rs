//! Reading a bank's case file (JSON array or CSV): every row checked, errors named by line
//! (CSV) or index (JSON) and field, never quoting a value — a card or ID number must not
//! come back in an error, a log or the database. Numbers are masked as they are read.

use std::collections::{HashMap, HashSet};

use serde::Serialize;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde_json::{Map, Value};
use tandem_core::model::{AddressId, BankId, CaseId, MaskedCardNumber, MaskedIdNumber};
use tandem_core::place::{Coordinate, Datum};
use utoipa::ToSchema;

use crate::db::NewCase;
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
const ADDRESS_FIELDS: &[&str] = &["text", "lat_e7", "lon_e7", "datum"];
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
    fn error(self, field: impl Into<String>, problem: impl Into<String>) -> RowError {
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

/// A source of named fields: a JSON object or a CSV record.
trait Fields {
    /// Text, `None` when absent or empty; `Err` when of another type.
    fn text(&self, key: &str) -> Result<Option<&str>, ()>;
    /// An integer, `None` when absent or empty; `Err` when not an integer.
    fn int(&self, key: &str) -> Result<Option<i64>, ()>;
    /// The name the file uses for `key`.
    fn label(&self, key: &str) -> String;
}

struct JsonFields<'a> {
    obj: &'a Map<String, Value>,
    prefix: String,
}

impl Fields for JsonFields<'_> {
    fn text(&self, key: &str) -> Result<Option<&str>, ()> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) if s.trim().is_empty() => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.trim())),
            Some(_) => Err(()),
        }
    }

    fn int(&self, key: &str) -> Result<Option<i64>, ()> {
        match self.obj.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n.as_i64().map(Some).ok_or(()),
            Some(_) => Err(()),
        }
    }

    fn label(&self, key: &str) -> String {
        format!("{}{key}", self.prefix)
    }
}

struct CsvFields<'a> {
    columns: &'a HashMap<String, usize>,
    record: &'a csv::StringRecord,
    /// `""` for the case's own columns, `_N` for address group N.
    suffix: String,
}

impl CsvFields<'_> {
    fn column(&self, key: &str) -> String {
        if self.suffix.is_empty() {
            key.to_owned()
        } else if key == "text" {
            format!("address{}", self.suffix)
        } else {
            format!("{key}{}", self.suffix)
        }
    }

    fn cell(&self, key: &str) -> Option<&str> {
        let i = *self.columns.get(&self.column(key))?;
        self.record.get(i).map(str::trim).filter(|s| !s.is_empty())
    }
}

impl Fields for CsvFields<'_> {
    fn text(&self, key: &str) -> Result<Option<&str>, ()> {
        Ok(self.cell(key))
    }

    fn int(&self, key: &str) -> Result<Option<i64>, ()> {
        self.cell(key)
            .map(|s| s.parse::<i64>().map_err(|_| ()))
            .transpose()
    }

    fn label(&self, key: &str) -> String {
        self.column(key)
    }
}

/// Checks one row; pushes its errors, returns the case when it has none.
fn check_row(
    bank: BankId,
    pos: RowPos,
    row: &dyn Fields,
    addresses: &[&dyn Fields],
    errors: &mut Vec<RowError>,
) -> Option<ImportedCase> {
    let before = errors.len();
    let mut err =
        |key: &str, f: &dyn Fields, problem: &str| errors.push(pos.error(f.label(key), problem));
    let text =
        |key: &str, max: usize, required: bool, err: &mut dyn FnMut(&str, &dyn Fields, &str)| {
            match row.text(key) {
                Err(()) => err(key, row, "must be text"),
                Ok(None) if required => err(key, row, "is required"),
                Ok(Some(s)) if s.chars().count() > max => err(key, row, "is too long"),
                Ok(Some(s)) if s.chars().any(char::is_control) => {
                    err(key, row, "must not hold control characters")
                }
                Ok(v) => return v.map(str::to_owned),
            }
            None
        };
    let case_ref = text("case_ref", 64, true, &mut err);
    let debtor_name = text("debtor_name", 100, true, &mut err);
    let debtor_phone = text("debtor_phone", 32, false, &mut err);
    if let Some(p) = &debtor_phone
        && !p
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' '))
    {
        err("debtor_phone", row, "may hold only digits, spaces, + and -");
    }
    // The clear numbers live only in this request's memory: masked here, and the error
    // says what is wrong with the number without quoting it.
    let card = match row.text("card_number") {
        Ok(Some(s)) => MaskedCardNumber::mask(s)
            .map_err(|_| err("card_number", row, "a card number has 12 to 19 digits"))
            .ok(),
        Ok(None) => {
            err("card_number", row, "is required");
            None
        }
        Err(()) => {
            err("card_number", row, "must be text");
            None
        }
    };
    let id_number = match row.text("id_number") {
        Ok(Some(s)) => MaskedIdNumber::mask(s)
            .map_err(|_| {
                err(
                    "id_number",
                    row,
                    "an ID number has 15 or 18 characters, digits (the last may be X)",
                )
            })
            .ok(),
        Ok(None) => {
            err("id_number", row, "is required");
            None
        }
        Err(()) => {
            err("id_number", row, "must be text");
            None
        }
    };
    let int = |key: &str, f: &dyn Fields, err: &mut dyn FnMut(&str, &dyn Fields, &str)| match f
        .int(key)
    {
        Ok(Some(v)) => Some(v),
        Ok(None) => {
            err(key, f, "is required");
            None
        }
        Err(()) => {
            err(key, f, "must be an integer");
            None
        }
    };
    let outstanding = int("outstanding_fen", row, &mut err);
    if outstanding.is_some_and(|v| v < 0) {
        err("outstanding_fen", row, "must not be negative");
    }
    let start = int("entrustment_start_ms", row, &mut err);
    let end = int("entrustment_end_ms", row, &mut err);
    if let (Some(s), Some(e)) = (start, end)
        && s >= e
    {
        err(
            "entrustment_end_ms",
            row,
            "must be after entrustment_start_ms",
        );
    }
    if addresses.is_empty() {
        err("address", row, "at least one address is required");
    }
    let mut parsed_addresses = Vec::new();
    for a in addresses {
        let text = match a.text("text") {
            Ok(Some(t)) if t.chars().count() <= 200 => Some(t.to_owned()),
            Ok(Some(_)) => {
                err("text", *a, "is too long");
                None
            }
            Ok(None) => {
                err("text", *a, "is required");
                None
            }
            Err(()) => {
                err("text", *a, "must be text");
                None
            }
        };
        let lat = int("lat_e7", *a, &mut err);
        let lon = int("lon_e7", *a, &mut err);
        let datum = match a.text("datum") {
            Ok(Some("wgs84")) => Some(Datum::Wgs84),
            Ok(Some("gcj02")) => Some(Datum::Gcj02),
            Ok(Some("bd09")) => Some(Datum::Bd09),
            Ok(Some(_)) | Err(()) => {
                err("datum", *a, "must be wgs84, gcj02 or bd09");
                None
            }
            Ok(None) => {
                err("datum", *a, "is required (wgs84, gcj02 or bd09)");
                None
            }
        };
        let lat = lat.and_then(|v| {
            i32::try_from(v)
                .ok()
                .filter(|v| (-900_000_000..=900_000_000).contains(v))
                .or_else(|| {
                    err("lat_e7", *a, "latitude in 1e-7 degrees, within ±900000000");
                    None
                })
        });
        let lon = lon.and_then(|v| {
            i32::try_from(v)
                .ok()
                .filter(|v| (-1_800_000_000..=1_800_000_000).contains(v))
                .or_else(|| {
                    err(
                        "lon_e7",
                        *a,
                        "longitude in 1e-7 degrees, within ±1800000000",
                    );
                    None
                })
        });
        if let (Some(text), Some(lat), Some(lon), Some(datum)) = (text, lat, lon, datum) {
            match Coordinate::new(lat, lon, datum) {
                Ok(position) => parsed_addresses.push(crate::db::NewAddress {
                    id: AddressId::new(),
                    text,
                    position,
                }),
                Err(_) => err("lat_e7", *a, "not a valid position"),
            }
        }
    }
    if errors.len() > before {
        return None;
    }
    Some(ImportedCase {
        case: NewCase {
            id: CaseId::new(),
            bank_id: bank,
            case_ref: case_ref?,
            card: card?,
            debtor_name: debtor_name?,
            id_number: id_number?,
            outstanding_fen: outstanding?,
            entrustment_start_ms: start?,
            entrustment_end_ms: end?,
            addresses: parsed_addresses,
        },
        debtor_phone,
    })
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
            // Field names are the file's own and may be anything: shown only when short
            // and plain.
            let shown =
                if key.len() <= 40 && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    key.clone()
                } else {
                    "row".into()
                };
            errors.push(pos.error(shown, "unknown field"));
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
            header_errors.push(RowPos::Line(1).error(
                if name.len() <= 40 && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    name.to_owned()
                } else {
                    "header".into()
                },
                "unknown column",
            ));
        } else if columns.insert(name.to_owned(), i).is_some() {
            header_errors.push(RowPos::Line(1).error(name, "column given twice"));
        }
    }
    for required in CSV_COLUMNS.iter().filter(|c| **c != "debtor_phone") {
        if !columns.contains_key(*required) {
            header_errors.push(RowPos::Line(1).error(*required, "required column missing"));
        }
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
