//! The phone's side of pushing a sealed visit: what to send, what the server confirmed,
//! and the server's receipt — checked against the pinned server key and the manifest's own
//! digest before the visit counts as acknowledged (and its media may be purged, D01).

use super::Phone;
use crate::bundle::{Manifest, SealedBundle, signatures_to_bytes};
use crate::crypto::Digest;
use crate::model::{BundleId, Signed, VisitState};
use crate::store::{PushJob, Stage};
use crate::tlog::{Checkpoint, IngestReceipt, Verdict, verify_receipt};
use crate::{Error, Result};

/// What a push sends for one bundle.
#[derive(Debug, Clone)]
pub struct PushMaterial {
    /// The sealed bundle (manifest bytes and signatures).
    pub bundle: SealedBundle,
    /// `signatures.json`.
    pub signatures_bytes: Vec<u8>,
    /// SHA-256 of `manifest.json`.
    pub manifest_digest: Digest,
}

/// The server's answer to a commit, as the phone keeps it.
#[derive(Debug, Clone)]
pub struct ServerReceipt {
    /// The signed receipt.
    pub receipt: Signed<IngestReceipt>,
    /// The inclusion proof.
    pub proof: Vec<Digest>,
    /// The signed checkpoint.
    pub checkpoint: Signed<Checkpoint>,
    /// The checks that failed, when the server quarantined the bundle (shown to the user).
    pub failed_checks: Vec<String>,
}

impl Phone {
    /// Push jobs due now (by the phone's wall clock: scheduling, not evidence).
    pub fn due_pushes(&self, now_ms: i64) -> Result<Vec<PushJob>> {
        self.store.read(|tx| Ok(tx.due_push_jobs(now_ms)?))
    }

    /// The manifest and signatures of a queued bundle.
    pub fn push_material(&self, job: &PushJob) -> Result<PushMaterial> {
        let bundle = self.sealed_bundle(job.visit_id)?;
        if bundle.manifest.bundle_id != job.bundle_id {
            return Err(Error::NotReady(format!(
                "bundle {} is not the seal of visit {}",
                job.bundle_id, job.visit_id
            )));
        }
        let signatures_bytes = signatures_to_bytes(&bundle.signatures)?;
        let manifest_digest = Manifest::digest_of(&bundle.manifest_bytes);
        Ok(PushMaterial {
            bundle,
            signatures_bytes,
            manifest_digest,
        })
    }

    /// The server holds the manifest: the visit is uploading, its blobs come next.
    pub fn push_manifest_sent(&self, job: &PushJob, now_ms: i64) -> Result<()> {
        self.store.write(|tx| {
            if tx
                .push_job(job.bundle_id)?
                .is_some_and(|j| j.stage == Stage::Manifest)
            {
                tx.set_push_stage(job.bundle_id, Stage::Blobs, now_ms)?;
            }
            let state = tx
                .visit(job.visit_id)?
                .map(|v| v.visit.state)
                .ok_or_else(|| Error::NotFound {
                    what: format!("visit {}", job.visit_id),
                })?;
            if state == VisitState::Sealed {
                tx.set_visit_state(job.visit_id, VisitState::Uploading, now_ms)?;
            }
            Ok(())
        })
    }

    /// The server holds this blob of the bundle.
    pub fn push_blob_done(&self, bundle: BundleId, digest: &Digest, now_ms: i64) -> Result<()> {
        self.store
            .write(|tx| Ok(tx.mark_blob_uploaded(bundle, digest, now_ms)?))
    }

    /// Every blob is on the server: the commit comes next.
    pub fn push_blobs_done(&self, bundle: BundleId, now_ms: i64) -> Result<()> {
        self.store
            .write(|tx| Ok(tx.set_push_stage(bundle, Stage::Commit, now_ms)?))
    }

    /// The server says blobs are missing after all: back to uploading them.
    pub fn push_blobs_missing(&self, bundle: BundleId, now_ms: i64) -> Result<()> {
        self.store
            .write(|tx| Ok(tx.set_push_stage(bundle, Stage::Blobs, now_ms)?))
    }

    /// The server lost the manifest: the push starts again from it (blobs it holds are
    /// reported by the next `PUT` and not sent again).
    pub fn push_restart(&self, bundle: BundleId, now_ms: i64) -> Result<()> {
        self.store
            .write(|tx| Ok(tx.set_push_stage(bundle, Stage::Manifest, now_ms)?))
    }

    /// A failed attempt: kept with its message; tried again at `next_attempt_ms`.
    pub fn push_failed(&self, bundle: BundleId, error: &str, next_attempt_ms: i64) -> Result<u32> {
        self.store
            .write(|tx| Ok(tx.record_push_failure(bundle, error, next_attempt_ms)?))
    }

    /// The server refused the bundle without a receipt (equivocation, a malformed
    /// manifest): kept on the phone and shown, never retried by itself.
    pub fn push_refused(&self, bundle: BundleId, reason: &str, now_ms: i64) -> Result<()> {
        self.store
            .write(|tx| Ok(tx.quarantine_push(bundle, reason, now_ms)?))
    }

    /// Checks the server's receipt for a committed bundle — signed by the pinned server
    /// key, for this manifest's digest, included in the signed checkpoint — and keeps it.
    /// Accepted: the visit is acknowledged (its media may be purged). Quarantined: the
    /// job is quarantined and the evidence stays on the phone.
    pub fn accept_server_receipt(
        &self,
        job: &PushJob,
        manifest_digest: &Digest,
        answer: &ServerReceipt,
        now_ms: i64,
    ) -> Result<Verdict> {
        self.store.write(|tx| {
            let key = tx
                .server_public_key()?
                .ok_or_else(|| Error::NotEnrolled("no server key: enrol first".into()))?;
            let verified = verify_receipt(
                &answer.receipt,
                &answer.proof,
                &answer.checkpoint,
                &key,
                manifest_digest,
            )?;
            if verified.receipt.bundle_id != job.bundle_id {
                return Err(Error::NotReady(format!(
                    "the server's receipt is for bundle {}, not {}",
                    verified.receipt.bundle_id, job.bundle_id
                )));
            }
            let verdict = verified.receipt.verdict;
            tx.put_server_receipt(
                job.bundle_id,
                &to_json(&answer.receipt)?,
                &to_json(&answer.proof)?,
                &to_json(&answer.checkpoint)?,
                match verdict {
                    Verdict::Accepted => "accepted",
                    Verdict::Quarantined => "quarantined",
                },
                now_ms,
            )?;
            match verdict {
                Verdict::Accepted => {
                    tx.set_push_stage(job.bundle_id, Stage::Done, now_ms)?;
                    let state = tx.visit(job.visit_id)?.map(|v| v.visit.state);
                    if state == Some(VisitState::Sealed) {
                        tx.set_visit_state(job.visit_id, VisitState::Uploading, now_ms)?;
                    }
                    if state != Some(VisitState::Acknowledged) && state != Some(VisitState::Purged)
                    {
                        tx.set_visit_state(
                            job.visit_id,
                            VisitState::Acknowledged,
                            verified.checkpoint.timestamp_ms,
                        )?;
                    }
                }
                Verdict::Quarantined => {
                    let reason = if answer.failed_checks.is_empty() {
                        "the server quarantined the bundle for review".to_owned()
                    } else {
                        format!(
                            "the server quarantined the bundle for review: {}",
                            answer.failed_checks.join("; ")
                        )
                    };
                    tx.quarantine_push(job.bundle_id, &reason, now_ms)?;
                }
            }
            Ok(verdict)
        })
    }
}

/// A part of the receipt as kept (JSON).
fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string(value).map_err(|e| Error::NotReady(format!("encoding a receipt: {e}")))
}
