//! Checking one row of a case file, whatever its format: the named fields of a JSON object
//! or a CSV record, validated into a case with masked numbers. Errors name the field and
//! never quote the value.

use std::collections::HashMap;

use serde_json::{Map, Value};
use tandem_core::model::{AddressId, BankId, CaseId, MaskedCardNumber, MaskedIdNumber};
use tandem_core::place::{Coordinate, Datum};

use super::import::{RowError, RowPos};
use crate::db::NewCase;
use crate::db::visits::ImportedCase;

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
    } else if outstanding.is_some_and(|v| v > crate::input::MAX_FEN) {
        err("outstanding_fen", row, "is larger than any card's arrears");
    }
    let time = |key: &str, err: &mut dyn FnMut(&str, &dyn Fields, &str)| {
        let value = int(key, row, err);
        if value
            .is_some_and(|v| !(crate::input::EARLIEST_MS..=crate::input::LATEST_MS).contains(&v))
        {
            err(
                key,
                row,
                "must be a time between the years 2000 and 2200, in UTC milliseconds",
            );
            return None;
        }
        value
    };
    let start = time("entrustment_start_ms", &mut err);
    let end = time("entrustment_end_ms", &mut err);
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
            Ok(None) => {
                err("datum", *a, "is required (wgs84, gcj02 or bd09)");
                None
            }
            text => {
                let datum = text.ok().flatten().and_then(|n| n.parse::<Datum>().ok());
                if datum.is_none() {
                    err("datum", *a, "must be wgs84, gcj02 or bd09");
                }
                datum
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
