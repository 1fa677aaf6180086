//! The outbox (DESIGN.md §8): one job per sealed bundle, created in the seal's own
//! transaction (its blobs are fsynced before), moving through its stages — manifest sent,
//! blobs uploaded, committed, receipt verified — each recorded as it is confirmed, so a
//! crash or a lost answer repeats at most one idempotent step. A job that fails waits with
//! backoff; a rejected bundle is quarantined and kept, never dropped.

use rusqlite::{OptionalExtension as _, params};

use super::error::{from_sql_int, to_sql_int};
use super::{ReadTx, StoreError, WriteTx, parse_column};
use crate::crypto::Digest;
use crate::model::{BundleId, DeviceId, DeviceRevocation, Signed, VisitId};

/// Where a push job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// The manifest and signatures are to be sent.
    Manifest,
    /// Blobs are being uploaded.
    Blobs,
    /// Everything is on the server; the commit is to be asked.
    Commit,
    /// The server's receipt and inclusion proof verified: acknowledged.
    Done,
    /// The server refused the bundle; kept and shown, never dropped.
    Quarantined,
}

impl Stage {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Manifest => "manifest",
            Self::Blobs => "blobs",
            Self::Commit => "commit",
            Self::Done => "done",
            Self::Quarantined => "quarantined",
        }
    }

    fn parse(s: &str) -> Result<Self, StoreError> {
        Ok(match s {
            "manifest" => Self::Manifest,
            "blobs" => Self::Blobs,
            "commit" => Self::Commit,
            "done" => Self::Done,
            "quarantined" => Self::Quarantined,
            other => {
                return Err(StoreError::Corrupt {
                    column: "outbox.stage",
                    reason: format!("unknown stage {other:?}"),
                });
            }
        })
    }

    /// Whether the job still has work to do.
    pub fn is_pending(self) -> bool {
        !matches!(self, Self::Done | Self::Quarantined)
    }
}

/// One push job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushJob {
    /// The bundle.
    pub bundle_id: BundleId,
    /// Its visit.
    pub visit_id: VisitId,
    /// Where it is.
    pub stage: Stage,
    /// Failed attempts since the last progress.
    pub attempts: u32,
    /// Not to be tried before, UTC ms.
    pub next_attempt_ms: i64,
    /// The last error, as shown to the agent.
    pub last_error: Option<String>,
    /// Bytes of all its blobs.
    pub bytes_total: u64,
    /// Bytes of the blobs the server confirmed.
    pub bytes_done: u64,
    /// When the seal queued it, UTC ms.
    pub enqueued_ms: i64,
}

/// A blob a job must upload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JobBlob {
    /// Its address.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Whether the server confirmed it.
    pub uploaded: bool,
}

/// What the sync screen shows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OutboxStatus {
    /// Bundles still to send.
    pub pending: u32,
    /// Bundles the server refused (kept on the phone).
    pub quarantined: u32,
    /// Bundles acknowledged.
    pub done: u32,
    /// Bytes still to upload.
    pub bytes_left: u64,
    /// The most recent error of a pending job.
    pub last_error: Option<String>,
    /// Why the server quarantined a bundle (the first quarantined one), to show the user.
    pub quarantine_reason: Option<String>,
    /// The earliest moment a pending job will be tried, UTC ms.
    pub next_attempt_ms: Option<i64>,
    /// The oldest pending bundle's seal time, UTC ms (for the E03 deadline).
    pub oldest_pending_sealed_ms: Option<i64>,
}

const JOB_COLUMNS: &str = "bundle_id, visit_id, stage, attempts, next_attempt_ms, last_error, \
     bytes_total, bytes_done, enqueued_ms";

type RawJob = (
    String,
    String,
    String,
    i64,
    i64,
    Option<String>,
    i64,
    i64,
    i64,
);

fn to_job(raw: RawJob) -> Result<PushJob, StoreError> {
    let (bundle, visit, stage, attempts, next, error, total, done, enqueued) = raw;
    Ok(PushJob {
        bundle_id: parse_column("outbox.bundle_id", &bundle)?,
        visit_id: parse_column("outbox.visit_id", &visit)?,
        stage: Stage::parse(&stage)?,
        attempts: u32::try_from(attempts).map_err(|_| StoreError::Corrupt {
            column: "outbox.attempts",
            reason: format!("{attempts} out of range"),
        })?,
        next_attempt_ms: next,
        last_error: error,
        bytes_total: from_sql_int("outbox.bytes_total", total)?,
        bytes_done: from_sql_int("outbox.bytes_done", done)?,
        enqueued_ms: enqueued,
    })
}

fn read_job(row: &rusqlite::Row<'_>) -> rusqlite::Result<RawJob> {
    Ok((
        row.get(0)?,
        row.get(1)?,
        row.get(2)?,
        row.get(3)?,
        row.get(4)?,
        row.get(5)?,
        row.get(6)?,
        row.get(7)?,
        row.get(8)?,
    ))
}

impl ReadTx<'_> {
    /// A job by bundle.
    pub fn push_job(&self, bundle: BundleId) -> Result<Option<PushJob>, StoreError> {
        self.conn
            .query_row(
                &format!("SELECT {JOB_COLUMNS} FROM outbox WHERE bundle_id = ?1"),
                params![bundle.to_string()],
                read_job,
            )
            .optional()?
            .map(to_job)
            .transpose()
    }

    /// Pending jobs due at `now_ms`, oldest seal first.
    pub fn due_push_jobs(&self, now_ms: i64) -> Result<Vec<PushJob>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {JOB_COLUMNS} FROM outbox \
             WHERE stage NOT IN ('done', 'quarantined') AND next_attempt_ms <= ?1 \
             ORDER BY enqueued_ms, bundle_id"
        ))?;
        let rows = stmt.query_map(params![now_ms], read_job)?;
        rows.map(|r| to_job(r?)).collect()
    }

    /// Every job, newest first (for the sync screen).
    pub fn push_jobs(&self) -> Result<Vec<PushJob>, StoreError> {
        let mut stmt = self.conn.prepare(&format!(
            "SELECT {JOB_COLUMNS} FROM outbox ORDER BY enqueued_ms DESC, bundle_id"
        ))?;
        let rows = stmt.query_map([], read_job)?;
        rows.map(|r| to_job(r?)).collect()
    }

    /// The blobs of a job, in the manifest's order.
    pub fn job_blobs(&self, bundle: BundleId) -> Result<Vec<JobBlob>, StoreError> {
        let mut stmt = self.conn.prepare(
            "SELECT digest, size, uploaded_ms FROM outbox_blobs WHERE bundle_id = ?1 \
             ORDER BY position",
        )?;
        let rows = stmt.query_map(params![bundle.to_string()], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, Option<i64>>(2)?,
            ))
        })?;
        rows.map(|r| {
            let (digest, size, uploaded) = r?;
            Ok(JobBlob {
                digest: parse_column("outbox_blobs.digest", &digest)?,
                size: from_sql_int("outbox_blobs.size", size)?,
                uploaded: uploaded.is_some(),
            })
        })
        .collect()
    }

    /// What the sync screen shows.
    pub fn outbox_status(&self) -> Result<OutboxStatus, StoreError> {
        let mut status = OutboxStatus::default();
        for job in self.push_jobs()? {
            match job.stage {
                Stage::Done => status.done += 1,
                Stage::Quarantined => {
                    status.quarantined += 1;
                    if status.quarantine_reason.is_none() {
                        status.quarantine_reason.clone_from(&job.last_error);
                    }
                }
                _ => {
                    status.pending += 1;
                    status.bytes_left += job.bytes_total.saturating_sub(job.bytes_done);
                    if status.last_error.is_none() {
                        status.last_error.clone_from(&job.last_error);
                    }
                    status.next_attempt_ms = Some(
                        status
                            .next_attempt_ms
                            .map_or(job.next_attempt_ms, |n| n.min(job.next_attempt_ms)),
                    );
                }
            }
        }
        status.oldest_pending_sealed_ms = self.conn.query_row(
            "SELECT MIN(s.sealed_at_ms) FROM outbox o JOIN seals s ON s.bundle_id = o.bundle_id \
             WHERE o.stage NOT IN ('done', 'quarantined')",
            [],
            |row| row.get(0),
        )?;
        Ok(status)
    }
}

impl ReadTx<'_> {
    /// The server's receipt for a bundle as kept: (receipt, proof, checkpoint, verdict).
    pub fn server_receipt(
        &self,
        bundle: BundleId,
    ) -> Result<Option<(String, String, String, String)>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT receipt, proof, checkpoint, verdict FROM server_receipts \
                 WHERE bundle_id = ?1",
                params![bundle.to_string()],
                |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
            )
            .optional()?)
    }

    /// When a phone was revoked, if the server said so.
    pub fn revoked_at(&self, device: DeviceId) -> Result<Option<i64>, StoreError> {
        Ok(self
            .conn
            .query_row(
                "SELECT revoked_at_ms FROM revoked_devices WHERE device_id = ?1",
                params![device.to_string()],
                |row| row.get(0),
            )
            .optional()?)
    }
}

impl WriteTx<'_> {
    /// Keeps a verified revocation (the first one received for a device stands).
    pub fn put_revocation(
        &self,
        signed: &Signed<DeviceRevocation>,
        revocation: &DeviceRevocation,
    ) -> Result<(), StoreError> {
        let document = serde_json::to_string(signed).map_err(|e| StoreError::Corrupt {
            column: "revoked_devices.document",
            reason: e.to_string(),
        })?;
        self.conn.execute(
            "INSERT INTO revoked_devices (device_id, agent_id, revoked_at_ms, document) \
             VALUES (?1, ?2, ?3, ?4) ON CONFLICT (device_id) DO NOTHING",
            params![
                revocation.device_id.to_string(),
                revocation.agent_id.to_string(),
                revocation.revoked_at_ms,
                document
            ],
        )?;
        Ok(())
    }

    /// Queues the push of a sealed bundle with its blobs (in the seal's transaction).
    pub fn enqueue_push(
        &self,
        bundle: BundleId,
        visit: VisitId,
        blobs: &[(Digest, u64)],
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let mut total: u64 = 0;
        for (_, size) in blobs {
            total = total.saturating_add(*size);
        }
        self.conn.execute(
            &format!(
                "INSERT INTO outbox ({JOB_COLUMNS}) VALUES (?1, ?2, 'manifest', 0, ?3, NULL, ?4, 0, ?3)"
            ),
            params![
                bundle.to_string(),
                visit.to_string(),
                now_ms,
                to_sql_int("bytes_total", total)?
            ],
        )?;
        let mut stmt = self.conn.prepare(
            "INSERT INTO outbox_blobs (bundle_id, position, digest, size) VALUES (?1, ?2, ?3, ?4) \
             ON CONFLICT (bundle_id, digest) DO NOTHING",
        )?;
        for (position, (digest, size)) in blobs.iter().enumerate() {
            stmt.execute(params![
                bundle.to_string(),
                to_sql_int("position", position as u64)?,
                digest.to_hex(),
                to_sql_int("size", *size)?
            ])?;
        }
        Ok(())
    }

    /// Moves a job to `stage`, clearing its failures (progress was made).
    pub fn set_push_stage(
        &self,
        bundle: BundleId,
        stage: Stage,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE outbox SET stage = ?2, attempts = 0, last_error = NULL, next_attempt_ms = ?3 \
             WHERE bundle_id = ?1",
            params![bundle.to_string(), stage.as_str(), now_ms],
        )?;
        Ok(())
    }

    /// Records that the server holds a blob of a job.
    pub fn mark_blob_uploaded(
        &self,
        bundle: BundleId,
        digest: &Digest,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        let changed = self.conn.execute(
            "UPDATE outbox_blobs SET uploaded_ms = ?3 \
             WHERE bundle_id = ?1 AND digest = ?2 AND uploaded_ms IS NULL",
            params![bundle.to_string(), digest.to_hex(), now_ms],
        )?;
        if changed == 1 {
            self.conn.execute(
                "UPDATE outbox SET bytes_done = bytes_done + \
                 (SELECT size FROM outbox_blobs WHERE bundle_id = ?1 AND digest = ?2), \
                 attempts = 0, last_error = NULL WHERE bundle_id = ?1",
                params![bundle.to_string(), digest.to_hex()],
            )?;
        }
        Ok(())
    }

    /// Records a failed attempt and when to try again.
    pub fn record_push_failure(
        &self,
        bundle: BundleId,
        error: &str,
        next_attempt_ms: i64,
    ) -> Result<u32, StoreError> {
        self.conn.execute(
            "UPDATE outbox SET attempts = attempts + 1, last_error = ?2, next_attempt_ms = ?3 \
             WHERE bundle_id = ?1",
            params![bundle.to_string(), error, next_attempt_ms],
        )?;
        Ok(self.push_job(bundle)?.map_or(0, |j| j.attempts))
    }

    /// Keeps the server's verified receipt, proof and checkpoint for a bundle (JSON).
    pub fn put_server_receipt(
        &self,
        bundle: BundleId,
        receipt: &str,
        proof: &str,
        checkpoint: &str,
        verdict: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "INSERT INTO server_receipts (bundle_id, receipt, proof, checkpoint, verdict, \
             verified_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (bundle_id) DO NOTHING",
            params![
                bundle.to_string(),
                receipt,
                proof,
                checkpoint,
                verdict,
                now_ms
            ],
        )?;
        Ok(())
    }

    /// Quarantines a job the server refused: kept with the reason, never retried by itself.
    pub fn quarantine_push(
        &self,
        bundle: BundleId,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), StoreError> {
        self.conn.execute(
            "UPDATE outbox SET stage = 'quarantined', last_error = ?2, next_attempt_ms = ?3 \
             WHERE bundle_id = ?1",
            params![bundle.to_string(), reason, now_ms],
        )?;
        Ok(())
    }
}
