//! The evidence index: which blobs belong to which visit, and whether they were purged.
//! The bytes themselves live in the encrypted blob store.

use rusqlite::{OptionalExtension as _, params};

use super::error::{from_sql_int, to_sql_int};
use super::{ReadTx, StoreError, WriteTx, parse_column};
use crate::crypto::Digest;
use crate::model::{VisitId, VisitState};

/// What a blob is to its visit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EvidenceRole {
    /// A photo as the camera took it.
    Original,
    /// A thumbnail derived from a photo.
    Thumbnail,
    /// A WAV audio segment.
    Audio,
    /// A signature image (payer, debtor).
    Signature,
    /// A filled-in template or statement.
    Document,
}

impl EvidenceRole {
    /// The role's name as stored.
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceRole::Original => "original",
            EvidenceRole::Thumbnail => "thumbnail",
            EvidenceRole::Audio => "audio",
            EvidenceRole::Signature => "signature",
            EvidenceRole::Document => "document",
        }
    }
}

impl std::str::FromStr for EvidenceRole {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        use EvidenceRole::*;
        [Original, Thumbnail, Audio, Signature, Document]
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| format!("unknown evidence role {s:?}"))
    }
}

/// One blob of a visit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceItem {
    /// SHA-256 of the bytes: the blob's address.
    pub digest: Digest,
    /// Size in bytes.
    pub size: u64,
    /// Media type, e.g. `image/jpeg`.
    pub media_type: String,
    /// What it is to the visit.
    pub role: EvidenceRole,
}

/// An indexed blob and whether its bytes were purged from the phone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EvidenceRecord {
    /// The blob.
    pub item: EvidenceItem,
    /// When it was purged after the verified receipt (D01), UTC ms.
    pub purged_at_ms: Option<i64>,
}

impl ReadTx<'_> {
    /// The blobs indexed for a visit, in the order they were added.
    pub fn evidence(&self, visit: VisitId) -> Result<Vec<EvidenceRecord>, StoreError> {
        // rowid order is insertion order: the order the blobs were captured in.
        let mut stmt = self.conn.prepare(
            "SELECT digest, size, media_type, role, purged_at_ms FROM evidence
             WHERE visit_id = ?1 ORDER BY rowid",
        )?;
        let rows = stmt
            .query_map([visit.to_string()], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, i64>(1)?,
                    row.get::<_, String>(2)?,
                    row.get::<_, String>(3)?,
                    row.get::<_, Option<i64>>(4)?,
                ))
            })?
            .collect::<Result<Vec<_>, _>>()?;
        rows.into_iter()
            .map(|(digest, size, media_type, role, purged_at_ms)| {
                Ok(EvidenceRecord {
                    item: EvidenceItem {
                        digest: parse_column("evidence.digest", &digest)?,
                        size: from_sql_int("evidence.size", size)?,
                        media_type,
                        role: parse_column("evidence.role", &role)?,
                    },
                    purged_at_ms,
                })
            })
            .collect()
    }

    /// Whether any visit still needs the blob's bytes on the phone.
    pub fn blob_is_needed(&self, digest: Digest) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM evidence WHERE digest = ?1 AND purged_at_ms IS NULL LIMIT 1",
                [digest.to_hex()],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }
}

impl WriteTx<'_> {
    /// Records that segment `position` of audio recording `recording_id` is chained to
    /// `visit`'s log; `false` if it already was (a segment found again after a crash).
    pub fn claim_audio_segment(
        &self,
        visit: VisitId,
        recording_id: &str,
        position: u32,
    ) -> Result<bool, StoreError> {
        let inserted = self.conn.execute(
            "INSERT INTO audio_segments_chained (recording_id, position, visit_id)
             VALUES (?1, ?2, ?3) ON CONFLICT (recording_id, position) DO NOTHING",
            params![recording_id, position, visit.to_string()],
        )?;
        Ok(inserted > 0)
    }

    /// Indexes a blob for a visit; `false` if it was already indexed identically.
    pub fn add_evidence(&self, visit: VisitId, item: &EvidenceItem) -> Result<bool, StoreError> {
        let state = self.existing_visit(visit)?.visit.state;
        if state.is_sealed() {
            return Err(StoreError::VisitClosed { visit, state });
        }
        let size = to_sql_int("size", item.size)?;
        let inserted = self.conn.execute(
            "INSERT INTO evidence (visit_id, digest, size, media_type, role)
             VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (visit_id, digest) DO NOTHING",
            params![
                visit.to_string(),
                item.digest.to_hex(),
                size,
                item.media_type,
                item.role.as_str()
            ],
        )?;
        if inserted > 0 {
            return Ok(true);
        }
        let same = self
            .evidence(visit)?
            .into_iter()
            .any(|held| held.item == *item);
        if same {
            Ok(false)
        } else {
            Err(StoreError::EvidenceConflict {
                visit,
                digest: item.digest.to_hex(),
            })
        }
    }

    /// Purges an acknowledged visit (D01): its events go, its evidence is marked purged,
    /// and the visit row keeps its log head as the record of what the server holds.
    ///
    /// Returns the digests whose bytes no visit needs any more: the caller deletes them
    /// from the blob store after this transaction commits.
    pub fn purge_visit(&self, visit: VisitId, at_ms: i64) -> Result<Vec<Digest>, StoreError> {
        let state = self.existing_visit(visit)?.visit.state;
        if !state.can_become(VisitState::Purged) {
            return Err(StoreError::IllegalTransition {
                visit,
                from: state,
                to: VisitState::Purged,
            });
        }
        let id = visit.to_string();
        self.conn
            .execute("DELETE FROM events WHERE visit_id = ?1", [&id])?;
        self.conn.execute(
            "UPDATE evidence SET purged_at_ms = ?1 WHERE visit_id = ?2 AND purged_at_ms IS NULL",
            params![at_ms, id],
        )?;
        self.set_visit_state(visit, VisitState::Purged, at_ms)?;
        let mut unneeded = Vec::new();
        for record in self.evidence(visit)? {
            if !self.blob_is_needed(record.item.digest)? {
                unneeded.push(record.item.digest);
            }
        }
        Ok(unneeded)
    }
}
