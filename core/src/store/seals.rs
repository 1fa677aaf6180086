//! What the handshake and the seal leave in the store: nonces this phone answered as the
//! partner, and this phone's sealed bundles, numbered without gaps.

use rusqlite::{OptionalExtension as _, Row, params};

use super::error::{from_sql_int, to_sql_int};
use super::{ReadTx, StoreError, WriteTx, parse_column};
use crate::crypto::{Digest, to_hex};
use crate::model::{BundleId, VisitId};

/// A sealed visit: its bundle id, its place in this phone's chain of bundles, and the
/// digests of the manifest and signatures (kept as blobs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SealRecord {
    /// The visit sealed.
    pub visit_id: VisitId,
    /// The bundle's id (the upload's idempotency key).
    pub bundle_id: BundleId,
    /// This phone's bundle number: 0, 1, 2… (device chain).
    pub device_seq: u64,
    /// SHA-256 of `manifest.json`.
    pub manifest: Digest,
    /// SHA-256 of `signatures.json`.
    pub signatures: Digest,
    /// Anchored time of sealing.
    pub sealed_at_ms: i64,
}

const SEAL_COLUMNS: &str =
    "visit_id, bundle_id, device_seq, manifest_digest, signatures_digest, sealed_at_ms";

fn read_seal(row: &Row<'_>) -> rusqlite::Result<(String, String, i64, String, String, i64)> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
    ))
}

fn to_record(raw: (String, String, i64, String, String, i64)) -> Result<SealRecord, StoreError> {
    let (visit, bundle, seq, manifest, signatures, sealed_at_ms) = raw;
    Ok(SealRecord {
        visit_id: parse_column("seals.visit_id", &visit)?,
        bundle_id: parse_column("seals.bundle_id", &bundle)?,
        device_seq: from_sql_int("seals.device_seq", seq)?,
        manifest: parse_column("seals.manifest_digest", &manifest)?,
        signatures: parse_column("seals.signatures_digest", &signatures)?,
        sealed_at_ms,
    })
}

impl ReadTx<'_> {
    /// Whether this phone already answered a challenge with this nonce.
    pub fn nonce_answered(&self, nonce: &[u8; 16]) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM answered_nonces WHERE nonce = ?1",
                [to_hex(nonce)],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// The seal of a visit, if sealed.
    pub fn seal_of(&self, visit: VisitId) -> Result<Option<SealRecord>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {SEAL_COLUMNS} FROM seals WHERE visit_id = ?1"),
                [visit.to_string()],
                read_seal,
            )
            .optional()?
            .map(to_record)
            .transpose()
    }

    /// This phone's latest seal: the previous link of the next bundle.
    pub fn last_seal(&self) -> Result<Option<SealRecord>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {SEAL_COLUMNS} FROM seals ORDER BY device_seq DESC LIMIT 1"),
                [],
                read_seal,
            )
            .optional()?
            .map(to_record)
            .transpose()
    }
}

impl WriteTx<'_> {
    /// Records that this phone answered a challenge; `false` if it already had (a replay).
    pub fn record_answered_nonce(
        &self,
        nonce: &[u8; 16],
        visit: VisitId,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let inserted = self.conn.execute(
            "INSERT INTO answered_nonces (nonce, visit_id, answered_at_ms) VALUES (?1, ?2, ?3)
             ON CONFLICT (nonce) DO NOTHING",
            params![to_hex(nonce), visit.to_string(), at_ms],
        )?;
        Ok(inserted == 1)
    }

    /// Records a seal. Its `device_seq` must follow this phone's last one, so the device's
    /// chain of bundles has no gap and no fork.
    pub fn record_seal(&self, seal: &SealRecord) -> Result<(), StoreError> {
        let expected = match self.last_seal()? {
            Some(last) => last
                .device_seq
                .checked_add(1)
                .ok_or(StoreError::OutOfRange {
                    field: "device_seq",
                    value: last.device_seq,
                })?,
            None => 0,
        };
        if seal.device_seq != expected {
            return Err(StoreError::Corrupt {
                column: "seals.device_seq",
                reason: format!("expected {expected}, got {}", seal.device_seq),
            });
        }
        self.conn.execute(
            &format!("INSERT INTO seals ({SEAL_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"),
            params![
                seal.visit_id.to_string(),
                seal.bundle_id.to_string(),
                to_sql_int("device_seq", seal.device_seq)?,
                seal.manifest.to_hex(),
                seal.signatures.to_hex(),
                seal.sealed_at_ms
            ],
        )?;
        Ok(())
    }
}
