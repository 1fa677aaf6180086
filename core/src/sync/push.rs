//! Pushing sealed visits (DESIGN.md §8): for each due outbox job, the manifest first
//! (`PUT /v1/bundles/{id}`), then every blob the server lacks through resumable uploads,
//! then the commit; the server's receipt is verified before the visit counts as
//! acknowledged. Every step is idempotent on the server, and each confirmed step is
//! recorded on the phone, so a cut connection or a killed app repeats at most one step.

use std::io::Read;

use serde::{Deserialize, Serialize};

use super::backoff::Backoff;
use super::transport::{Request, Transport};
use super::tus::TusClient;
use super::{SyncError, problem_of};
use crate::crypto::Digest;
use crate::model::Signed;
use crate::phone::{Phone, ServerReceipt};
use crate::store::{PushJob, Stage};
use crate::tlog::Verdict;
use crate::{Error, Result};

/// What one push run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushSummary {
    /// Bundles acknowledged by a verified receipt.
    pub acknowledged: u32,
    /// Bundles the server quarantined or refused (kept on the phone).
    pub quarantined: u32,
    /// Bundles that failed this time and wait for a retry.
    pub deferred: u32,
    /// Blob bytes sent (including re-sent chunks).
    pub bytes_sent: u64,
    /// Blob bytes the server already had.
    pub bytes_skipped: u64,
}

/// Progress of the blob being uploaded: (bundle bytes done, bundle bytes total).
pub type Progress<'a> = &'a mut dyn FnMut(u64, u64);

#[derive(Serialize)]
struct PutBody<'a> {
    manifest: &'a str,
    signatures: &'a str,
}

#[derive(Deserialize)]
struct PutAnswer {
    #[serde(default)]
    missing_blobs: Vec<String>,
}

#[derive(Deserialize)]
struct CommitAnswer {
    receipt: Signed<crate::tlog::IngestReceipt>,
    inclusion_proof: Vec<Digest>,
    checkpoint: Signed<crate::tlog::Checkpoint>,
    #[serde(default)]
    failed_checks: Vec<String>,
}

/// Pushes every due bundle. `now` gives the phone's wall clock (scheduling only). A
/// transport answering [`SyncError::Cancelled`] stops the run at once, with no retry delay.
pub fn push(
    phone: &Phone,
    transport: &dyn Transport,
    token: &str,
    backoff: &Backoff,
    now: &dyn Fn() -> i64,
    progress: Progress<'_>,
) -> Result<PushSummary> {
    let mut summary = PushSummary::default();
    for job in phone.due_pushes(now())? {
        match push_one(phone, transport, token, &job, now, progress, &mut summary) {
            Ok(Verdict::Accepted) => summary.acknowledged += 1,
            Ok(Verdict::Quarantined) => summary.quarantined += 1,
            // Every confirmed step is already recorded: stop here without a failed attempt.
            Err(Error::Sync(SyncError::Cancelled)) => return Err(SyncError::Cancelled.into()),
            Err(Error::Sync(e)) if !e.is_transient() && refuses_for_good(&e) => {
                phone.push_refused(job.bundle_id, &e.to_string(), now())?;
                summary.quarantined += 1;
            }
            Err(e) => {
                let attempts = job.attempts.saturating_add(1);
                let next = now().saturating_add(backoff.delay_ms(attempts));
                phone.push_failed(job.bundle_id, &e.to_string(), next)?;
                summary.deferred += 1;
            }
        }
    }
    Ok(summary)
}

/// Answers after which sending the same bundle again cannot help: equivocation, a
/// manifest the server cannot read, a bundle for another team, a bank whose evidence the
/// server no longer keeps (410, its contract ended). (A 404 is not one: the
/// push starts again from the manifest. Nor is a finished upload whose bytes did not hash
/// to their address: bytes damaged on the way, which the server discarded; the next try
/// sends the blob again from the phone's intact copy.)
fn refuses_for_good(e: &SyncError) -> bool {
    match e {
        SyncError::Server { status, kind, .. } => {
            kind == "bundle-equivocation"
                || (matches!(status, 400 | 403 | 410 | 413 | 422)
                    && kind != "upload-digest-mismatch")
        }
        _ => false,
    }
}

fn push_one(
    phone: &Phone,
    transport: &dyn Transport,
    token: &str,
    job: &PushJob,
    now: &dyn Fn() -> i64,
    progress: Progress<'_>,
    summary: &mut PushSummary,
) -> Result<Verdict> {
    let material = phone.push_material(job)?;
    let auth = format!("Bearer {token}");
    let bundle_path = format!("/v1/bundles/{}", job.bundle_id);
    let mut stage = job.stage;
    if stage == Stage::Manifest {
        let body = serde_json::to_vec(&PutBody {
            manifest: std::str::from_utf8(&material.bundle.manifest_bytes)
                .map_err(|_| SyncError::Local("the manifest is not UTF-8".into()))?,
            signatures: std::str::from_utf8(&material.signatures_bytes)
                .map_err(|_| SyncError::Local("signatures.json is not UTF-8".into()))?,
        })
        .map_err(|e| SyncError::Local(e.to_string()))?;
        let answer = transport.send(
            &Request::new("PUT", bundle_path.clone())
                .header("Authorization", auth.clone())
                .header("Content-Type", "application/json")
                .body(&body),
        )?;
        if !matches!(answer.status, 200 | 201) {
            return Err(problem_of(&answer, "sending the manifest").into());
        }
        let put: PutAnswer = serde_json::from_slice(&answer.body)
            .map_err(|e| SyncError::Protocol(format!("PUT answer: {e}")))?;
        phone.push_manifest_sent(job, now())?;
        // Blobs the server holds already (another phone sent them, or an earlier try).
        for blob in phone.store().read(|tx| tx.job_blobs(job.bundle_id))? {
            if !put.missing_blobs.contains(&blob.digest.to_hex()) {
                phone.push_blob_done(job.bundle_id, &blob.digest, now())?;
                summary.bytes_skipped += blob.size;
            }
        }
        stage = Stage::Blobs;
    }
    if stage == Stage::Blobs {
        let blobs = phone.store().read(|tx| tx.job_blobs(job.bundle_id))?;
        let total: u64 = blobs.iter().map(|b| b.size).sum();
        let mut done: u64 = blobs.iter().filter(|b| b.uploaded).map(|b| b.size).sum();
        let tus = TusClient::new(transport, token);
        for blob in blobs.iter().filter(|b| !b.uploaded) {
            let store = phone.blobs();
            let mut open = || -> std::result::Result<Box<dyn Read>, SyncError> {
                let reader = store
                    .open_blob(&blob.digest)
                    .map_err(|e| SyncError::Local(e.to_string()))?;
                Ok(Box::new(reader))
            };
            let base = done;
            let stats = tus.upload(&blob.digest, blob.size, &mut open, &mut |offset, _| {
                progress(base + offset, total);
            })?;
            summary.bytes_sent += stats.bytes_sent;
            summary.bytes_skipped += stats.skipped;
            phone.push_blob_done(job.bundle_id, &blob.digest, now())?;
            done += blob.size;
        }
        phone.push_blobs_done(job.bundle_id, now())?;
    }
    let body = serde_json::to_vec(&serde_json::json!({
        "manifest_digest": material.manifest_digest.to_hex(),
    }))
    .map_err(|e| SyncError::Local(e.to_string()))?;
    let answer = transport.send(
        &Request::new("POST", format!("{bundle_path}/commit"))
            .header("Authorization", auth)
            .header("Content-Type", "application/json")
            .body(&body),
    )?;
    let quarantined =
        answer.status == 422 && problem_of(&answer, "committing").kind_is("bundle-quarantined");
    if answer.status == 404 {
        // The server does not hold the manifest (an answer to the PUT was lost before it
        // was stored, or the server was restored from a backup): send it again.
        phone.push_restart(job.bundle_id, now())?;
        return Err(problem_of(&answer, "committing").into());
    }
    if answer.status == 409 && problem_of(&answer, "committing").kind_is("bundle-blobs-missing") {
        phone.push_blobs_missing(job.bundle_id, now())?;
        return Err(problem_of(&answer, "committing").into());
    }
    if answer.status != 200 && !quarantined {
        return Err(problem_of(&answer, "committing").into());
    }
    let commit: CommitAnswer = serde_json::from_slice(&answer.body)
        .map_err(|e| SyncError::Protocol(format!("commit answer: {e}")))?;
    let receipt = ServerReceipt {
        receipt: commit.receipt,
        proof: commit.inclusion_proof,
        checkpoint: commit.checkpoint,
        failed_checks: commit.failed_checks,
    };
    phone.accept_server_receipt(job, &material.manifest_digest, &receipt, now())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, kind: &str) -> SyncError {
        SyncError::Server {
            during: "test",
            status,
            kind: kind.into(),
            detail: String::new(),
        }
    }

    #[test]
    fn a_blob_damaged_in_transit_is_sent_again_not_quarantined() {
        assert!(!refuses_for_good(&answer(422, "upload-digest-mismatch")));
        assert!(!refuses_for_good(&answer(460, "upload-checksum-mismatch")));
        assert!(!refuses_for_good(&answer(404, "not-found")));
        assert!(!refuses_for_good(&SyncError::Network("reset".into())));
    }

    #[test]
    fn refusals_no_retry_can_change_are_final() {
        assert!(refuses_for_good(&answer(409, "bundle-equivocation")));
        assert!(refuses_for_good(&answer(422, "manifest-invalid")));
        assert!(refuses_for_good(&answer(403, "forbidden")));
        assert!(refuses_for_good(&answer(413, "payload-too-large")));
        assert!(refuses_for_good(&answer(410, "bank-destroyed")));
    }
}
