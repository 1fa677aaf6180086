//! Checking one row of a case file, whatever its format: the named fields of a JSON object
//! or a CSV record, validated into a case with masked numbers. Errors name the field and
//! never quote the value.

use std::collections::HashMap;

use serde_json::{Map, Value};
use tandem_core::model::{AddressId, BankId, CaseId, MaskedCardNumber, MaskedIdNumber};
use tandem_core::place::{Coordinate, Datum};

use super::import::{RowError, RowPos};
use crate::db::visits::ImportedCase;
use crate::db::{NewAddress, NewCase};

/// A source of named fields: a JSON object or a CSV record.
pub(super) trait Fields {
    /// Text, `None` when absent or empty; `Err` when of another type.
    fn text(&self, key: &str) -> Result<Option<&str>, ()>;
    /// An integer, `None` when absent or empty; `Err` when not an integer.
    fn int(&self, key: &str) -> Result<Option<i64>, ()>;
    /// The name the file uses for `key`.
    fn label(&self, key: &str) -> String;
}

pub(super) struct JsonFields<'a> {
    pub(super) obj: &'a Map<String, Value>,
    pub(super) prefix: String,
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

pub(super) struct CsvFields<'a> {
    pub(super) columns: &'a HashMap<String, usize>,
    pub(super) record: &'a csv::StringRecord,
    /// `""` for the case's own columns, `_N` for address group N.
    pub(super) suffix: String,
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

    pub(super) fn cell(&self, key: &str) -> Option<&str> {
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
pub(super) fn check_row(
    bank: BankId,
    pos: RowPos,
    row: &dyn Fields,
    addresses: &[&dyn Fields],
    errors: &mut Vec<RowError>,
) -> Option<ImportedCase> {
    let before = errors.len();
    let mut check = RowCheck { pos, errors };
    let fields = check.case_fields(row);
    if addresses.is_empty() {
        check.err(row, "address", "at least one address is required");
    }
    let parsed_addresses: Vec<NewAddress> =
        addresses.iter().filter_map(|a| check.address(*a)).collect();
    if errors.len() > before {
        return None;
    }
    Some(ImportedCase {
        case: NewCase {
            id: CaseId::new(),
            bank_id: bank,
            case_ref: fields.case_ref?,
            card: fields.card?,
            debtor_name: fields.debtor_name?,
            id_number: fields.id_number?,
            outstanding_fen: fields.outstanding_fen?,
            entrustment_start_ms: fields.entrustment_start_ms?,
            entrustment_end_ms: fields.entrustment_end_ms?,
            addresses: parsed_addresses,
        },
        debtor_phone: fields.debtor_phone,
    })
}

/// The case's own fields of a row, each `None` when it is absent or wrong (its error is
/// pushed).
struct CaseFields {
    case_ref: Option<String>,
    debtor_name: Option<String>,
    debtor_phone: Option<String>,
    card: Option<MaskedCardNumber>,
    id_number: Option<MaskedIdNumber>,
    outstanding_fen: Option<i64>,
    entrustment_start_ms: Option<i64>,
    entrustment_end_ms: Option<i64>,
}

/// Checks the fields of one row, pushing an error for each problem, in the order of the
/// fields.
struct RowCheck<'e> {
    pos: RowPos,
    errors: &'e mut Vec<RowError>,
}

impl RowCheck<'_> {
    fn err(&mut self, f: &dyn Fields, key: &str, problem: &str) {
        self.errors.push(self.pos.error(f.label(key), problem));
    }

    /// The case's fields: text, the masked numbers, the amount and the entrustment period.
    fn case_fields(&mut self, row: &dyn Fields) -> CaseFields {
        let case_ref = self.text(row, "case_ref", 64, true);
        let debtor_name = self.text(row, "debtor_name", 100, true);
        let debtor_phone = self.text(row, "debtor_phone", 32, false);
        if let Some(p) = &debtor_phone
            && !p
                .chars()
                .all(|c| c.is_ascii_digit() || matches!(c, '+' | '-' | ' '))
        {
            self.err(row, "debtor_phone", "may hold only digits, spaces, + and -");
        }
        // The clear numbers live only in this request's memory: masked here, and the error
        // says what is wrong with the number without quoting it.
        let card = self.masked(
            row,
            "card_number",
            MaskedCardNumber::mask,
            "a card number has 12 to 19 digits",
        );
        let id_number = self.masked(
            row,
            "id_number",
            MaskedIdNumber::mask,
            "an ID number has 15 or 18 characters, digits (the last may be X)",
        );
        let outstanding_fen = self.int(row, "outstanding_fen");
        if outstanding_fen.is_some_and(|v| v < 0) {
            self.err(row, "outstanding_fen", "must not be negative");
        } else if outstanding_fen.is_some_and(|v| v > crate::input::MAX_FEN) {
            self.err(row, "outstanding_fen", "is larger than any card's arrears");
        }
        let entrustment_start_ms = self.time(row, "entrustment_start_ms");
        let entrustment_end_ms = self.time(row, "entrustment_end_ms");
        if let (Some(s), Some(e)) = (entrustment_start_ms, entrustment_end_ms)
            && s >= e
        {
            self.err(
                row,
                "entrustment_end_ms",
                "must be after entrustment_start_ms",
            );
        }
        CaseFields {
            case_ref,
            debtor_name,
            debtor_phone,
            card,
            id_number,
            outstanding_fen,
            entrustment_start_ms,
            entrustment_end_ms,
        }
    }

    /// One approved address: its text, its position and the position's datum.
    fn address(&mut self, a: &dyn Fields) -> Option<NewAddress> {
        let text = match a.text("text") {
            Ok(Some(t)) if t.chars().count() <= 200 => Some(t.to_owned()),
            Ok(Some(_)) => {
                self.err(a, "text", "is too long");
                None
            }
            Ok(None) => {
                self.err(a, "text", "is required");
                None
            }
            Err(()) => {
                self.err(a, "text", "must be text");
                None
            }
        };
        let lat = self.int(a, "lat_e7");
        let lon = self.int(a, "lon_e7");
        let datum = match a.text("datum") {
            Ok(None) => {
                self.err(a, "datum", "is required (wgs84, gcj02 or bd09)");
                None
            }
            text => {
                let datum = text.ok().flatten().and_then(|n| n.parse::<Datum>().ok());
                if datum.is_none() {
                    self.err(a, "datum", "must be wgs84, gcj02 or bd09");
                }
                datum
            }
        };
        let lat = self.e7_within(
            a,
            "lat_e7",
            lat,
            900_000_000,
            "latitude in 1e-7 degrees, within ±900000000",
        );
        let lon = self.e7_within(
            a,
            "lon_e7",
            lon,
            1_800_000_000,
            "longitude in 1e-7 degrees, within ±1800000000",
        );
        let (text, lat, lon, datum) = (text?, lat?, lon?, datum?);
        match Coordinate::new(lat, lon, datum) {
            Ok(position) => Some(NewAddress {
                id: AddressId::new(),
                text,
                position,
            }),
            Err(_) => {
                self.err(a, "lat_e7", "not a valid position");
                None
            }
        }
    }

    /// Text of at most `max` characters and no control characters.
    fn text(&mut self, f: &dyn Fields, key: &str, max: usize, required: bool) -> Option<String> {
        match f.text(key) {
            Err(()) => self.err(f, key, "must be text"),
            Ok(None) if required => self.err(f, key, "is required"),
            Ok(Some(s)) if s.chars().count() > max => self.err(f, key, "is too long"),
            Ok(Some(s)) if s.chars().any(char::is_control) => {
                self.err(f, key, "must not hold control characters")
            }
            Ok(v) => return v.map(str::to_owned),
        }
        None
    }

    /// A required number, masked by `mask`; `problem` says what a valid one looks like.
    fn masked<T, E>(
        &mut self,
        f: &dyn Fields,
        key: &str,
        mask: impl FnOnce(&str) -> Result<T, E>,
        problem: &str,
    ) -> Option<T> {
        let text = self.required(f, key, f.text(key), "must be text")?;
        mask(text).map_err(|_| self.err(f, key, problem)).ok()
    }

    /// A required integer.
    fn int(&mut self, f: &dyn Fields, key: &str) -> Option<i64> {
        self.required(f, key, f.int(key), "must be an integer")
    }

    /// A value that must be there; `wrong` says what it must be when it is of another type.
    fn required<T>(
        &mut self,
        f: &dyn Fields,
        key: &str,
        value: Result<Option<T>, ()>,
        wrong: &str,
    ) -> Option<T> {
        match value {
            Ok(Some(v)) => Some(v),
            Ok(None) => {
                self.err(f, key, "is required");
                None
            }
            Err(()) => {
                self.err(f, key, wrong);
                None
            }
        }
    }

    /// A required time, UTC ms, within the years the server accepts.
    fn time(&mut self, f: &dyn Fields, key: &str) -> Option<i64> {
        let value = self.int(f, key);
        if value
            .is_some_and(|v| !(crate::input::EARLIEST_MS..=crate::input::LATEST_MS).contains(&v))
        {
            self.err(
                f,
                key,
                "must be a time between the years 2000 and 2200, in UTC milliseconds",
            );
            return None;
        }
        value
    }

    /// A coordinate in 1e-7 degrees within ±`limit`.
    fn e7_within(
        &mut self,
        f: &dyn Fields,
        key: &str,
        value: Option<i64>,
        limit: i32,
        problem: &str,
    ) -> Option<i32> {
        value.and_then(|v| {
            i32::try_from(v)
                .ok()
                .filter(|v| (-limit..=limit).contains(v))
                .or_else(|| {
                    self.err(f, key, problem);
                    None
                })
        })
    }
}
