//! Receipt numbers: the signed ranges the server issued to this phone, and every number
//! taken from them — reserved, then issued or voided, never deleted and never reused.
//!
//! The next number is one past the highest ever taken, so a number reserved and then lost
//! to a crash is still taken: it shows up as a reservation to void, never as a reuse.

use rusqlite::{OptionalExtension as _, params};

use super::error::{from_sql_int, to_sql_int};
use super::{ReadTx, StoreError, WriteTx, parse_column};
use crate::model::{ReceiptSerial, SerialRange, Signed, VisitId};
use crate::receipts::SignedReceipt;

/// Where a receipt number stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SerialState {
    /// Taken for a receipt being co-signed.
    Reserved,
    /// On a receipt both agents signed.
    Issued,
    /// Voided, with a reason (an issued receipt, or a reservation never co-signed).
    Voided,
}

impl SerialState {
    fn as_str(self) -> &'static str {
        match self {
            SerialState::Reserved => "reserved",
            SerialState::Issued => "issued",
            SerialState::Voided => "voided",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        match s {
            "reserved" => Ok(SerialState::Reserved),
            "issued" => Ok(SerialState::Issued),
            "voided" => Ok(SerialState::Voided),
            other => Err(StoreError::Corrupt {
                column: "receipt_serials.state",
                reason: format!("unknown state {other:?}"),
            }),
        }
    }
}

/// One receipt number taken by this phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SerialEntry {
    /// The number.
    pub serial: ReceiptSerial,
    /// The visit it was taken on.
    pub visit_id: VisitId,
    /// Where it stands.
    pub state: SerialState,
    /// When it was reserved, UTC ms.
    pub reserved_at_ms: i64,
    /// The signed receipt, once issued (kept when voided).
    pub receipt: Option<SignedReceipt>,
    /// Why it was voided.
    pub void_reason: Option<String>,
}

const ENTRY_COLUMNS: &str = "serial, visit_id, state, reserved_at_ms, receipt, void_reason";

type RawEntry = (i64, String, String, i64, Option<Vec<u8>>, Option<String>);

fn read_entry(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawEntry> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn receipt_context(serial: ReceiptSerial) -> String {
    format!("receipt:{serial}")
}

impl ReadTx<'_> {
    /// The signed receipt-number ranges held, lowest first.
    pub fn serial_ranges(&self) -> Result<Vec<Signed<SerialRange>>, StoreError> {
        let mut stmt = self
            .conn
            .prepare("SELECT document FROM serial_ranges ORDER BY first_serial")?;
        let rows = stmt
            .query_map([], |row| row.get::<_, String>(0))?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.iter()
            .map(|doc| {
                serde_json::from_str(doc).map_err(|e| StoreError::Corrupt {
                    column: "serial_ranges.document",
                    reason: e.to_string(),
                })
            })
            .collect()
    }

    /// The next number to take from `ranges` (sorted by first number): one past the highest
    /// ever taken, or the start of the next range. `None` when every range is used up.
    pub fn next_serial(&self, ranges: &[SerialRange]) -> Result<Option<ReceiptSerial>, StoreError> {
        let highest: Option<i64> =
            self.conn
                .query_row("SELECT MAX(serial) FROM receipt_serials", [], |row| {
                    row.get(0)
                })?;
        let highest = highest
            .map(|h| from_sql_int("receipt_serials.serial", h))
            .transpose()?;
        let mut sorted: Vec<&SerialRange> = ranges.iter().collect();
        sorted.sort_by_key(|r| r.first);
        Ok(sorted.iter().find_map(|r| match highest {
            None => Some(r.first),
            Some(h) if r.last.0 > h => Some(ReceiptSerial(r.first.0.max(h + 1))),
            Some(_) => None,
        }))
    }

    /// One taken number.
    pub fn serial_entry(&self, serial: ReceiptSerial) -> Result<Option<SerialEntry>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {ENTRY_COLUMNS} FROM receipt_serials WHERE serial = ?1"),
                [to_sql_int("serial", serial.0)?],
                read_entry,
            )
            .optional()?
            .map(|raw| self.to_entry(raw))
            .transpose()
    }

    /// The numbers taken on a visit, in order.
    pub fn visit_serials(&self, visit: VisitId) -> Result<Vec<SerialEntry>, StoreError> {
        self.entries_where("visit_id = ?1", &visit.to_string())
    }

    /// Every number still reserved (a receipt begun and not, or not yet, co-signed).
    pub fn reserved_serials(&self) -> Result<Vec<SerialEntry>, StoreError> {
        self.entries_where("state = ?1", SerialState::Reserved.as_str())
    }

    /// Every number this phone took, in order: the device's receipt sequence.
    pub fn all_serials(&self) -> Result<Vec<SerialEntry>, StoreError> {
        self.entries_where("?1 IS NOT NULL", "all")
    }

    fn entries_where(&self, filter: &str, value: &str) -> Result<Vec<SerialEntry>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {ENTRY_COLUMNS} FROM receipt_serials WHERE {filter} ORDER BY serial"
        ))?;
        let rows = stmt
            .query_map([value], read_entry)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        rows.into_iter().map(|raw| self.to_entry(raw)).collect()
    }

    fn to_entry(&self, raw: RawEntry) -> Result<SerialEntry, StoreError> {
        let (serial, visit, state, reserved_at_ms, receipt, void_reason) = raw;
        let serial = ReceiptSerial(from_sql_int("receipt_serials.serial", serial)?);
        let receipt = match receipt {
            None => None,
            Some(sealed) => {
                let plain = self.open_sealed(&receipt_context(serial), &sealed)?;
                Some(
                    serde_json::from_slice(&plain).map_err(|e| StoreError::Corrupt {
                        column: "receipt_serials.receipt",
                        reason: e.to_string(),
                    })?,
                )
            }
        };
        Ok(SerialEntry {
            serial,
            visit_id: parse_column("receipt_serials.visit_id", &visit)?,
            state: SerialState::parse(&state)?,
            reserved_at_ms,
            receipt,
            void_reason,
        })
    }
}

impl WriteTx<'_> {
    /// Keeps a verified range; `false` when the very same range is already held.
    pub fn put_serial_range(
        &self,
        signed: &Signed<SerialRange>,
        range: &SerialRange,
    ) -> Result<bool, StoreError> {
        let document = serde_json::to_string(signed).map_err(|e| StoreError::Corrupt {
            column: "serial_ranges.document",
            reason: e.to_string(),
        })?;
        let inserted = self.conn.execute(
            "INSERT INTO serial_ranges (first_serial, last_serial, device_id, issued_at_ms,
                 document) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (first_serial) DO NOTHING",
            params![
                to_sql_int("first_serial", range.first.0)?,
                to_sql_int("last_serial", range.last.0)?,
                range.device_id.to_string(),
                range.issued_at_ms,
                document
            ],
        )?;
        Ok(inserted == 1)
    }

    /// Takes `serial` for a receipt on `visit`. It must be the next number (see
    /// [`ReadTx::next_serial`]): taking it in the same transaction as the check is what
    /// keeps the sequence gapless and free of reuse.
    pub fn reserve_serial(
        &self,
        serial: ReceiptSerial,
        visit: VisitId,
        at_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO receipt_serials (serial, visit_id, state, reserved_at_ms)
             VALUES (?1, ?2, 'reserved', ?3)",
            params![to_sql_int("serial", serial.0)?, visit.to_string(), at_ms],
        )?;
        Ok(())
    }

    /// Records the co-signed receipt of a reserved number; `false` if the number is no
    /// longer reserved (it was voided as abandoned meanwhile).
    pub fn issue_receipt(
        &self,
        serial: ReceiptSerial,
        receipt: &SignedReceipt,
    ) -> Result<bool, StoreError> {
        let json = serde_json::to_vec(receipt).map_err(|e| StoreError::Corrupt {
            column: "receipt_serials.receipt",
            reason: e.to_string(),
        })?;
        let sealed = self.seal(&receipt_context(serial), &json)?;
        let changed = self.conn.execute(
            "UPDATE receipt_serials SET state = 'issued', receipt = ?2
             WHERE serial = ?1 AND state = 'reserved'",
            params![to_sql_int("serial", serial.0)?, sealed],
        )?;
        Ok(changed == 1)
    }

    /// Voids a reserved or issued number with its reason; `false` if it was not.
    pub fn void_serial(&self, serial: ReceiptSerial, reason: &str) -> Result<bool, StoreError> {
        let changed = self.conn.execute(
            "UPDATE receipt_serials SET state = 'voided', void_reason = ?2
             WHERE serial = ?1 AND state IN ('reserved', 'issued')",
            params![to_sql_int("serial", serial.0)?, reason],
        )?;
        Ok(changed == 1)
    }
}
