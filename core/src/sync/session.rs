//! The phone's whole conversation with the server, as an app runs it: enrolment with a
//! one-time code (the device token is kept sealed in the store), then sync rounds — pull
//! the server's documents, push sealed visits, purge the media of visits the server has
//! verifiably received (D01) — and the status the sync screen shows.

use serde::{Deserialize, Serialize};

use super::backoff::Backoff;
use super::pull::pull;
use super::push::{Progress, PushSummary, push};
use super::transport::{Request, Transport};
use super::{SyncError, problem_of};
use crate::crypto::{SignatureRecord, sha256};
use crate::phone::{Enrollment, Phone, PullSummary};
use crate::rules::Violation;
use crate::store::OutboxStatus;
use crate::{Error, Result};

/// The purpose of the enrolment proof: the device key's signature over the code's hash.
pub const ENROLL_PURPOSE: &str = "enroll";

/// The stored form of an enrollment code, which the enrolment proof signs: SHA-256 hex of
/// its symbols, uppercase, with dashes and spaces dropped (so `ab12-cd34` as typed and
/// `AB12CD34` as scanned are the same code).
pub fn enrollment_code_hash(code: &str) -> String {
    let normalised: String = code
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    sha256(normalised.as_bytes()).to_hex()
}

#[derive(Serialize)]
struct EnrollBody<'a> {
    code: &'a str,
    public_key: crate::crypto::PublicKey,
    proof: SignatureRecord,
}

#[derive(Deserialize)]
struct EnrollAnswer {
    enrollment: Enrollment,
    token: String,
}

/// Enrols this phone with a one-time `code`: proves the device key, records the identity
/// and pins the server key, and keeps the device token sealed in the store.
pub fn enroll(phone: &Phone, transport: &dyn Transport, code: &str) -> Result<Enrollment> {
    let proof = SignatureRecord::sign(
        phone.signer().as_ref(),
        ENROLL_PURPOSE,
        enrollment_code_hash(code).as_bytes(),
    )?;
    let body = serde_json::to_vec(&EnrollBody {
        code,
        public_key: phone.public_key(),
        proof,
    })
    .map_err(|e| SyncError::Local(e.to_string()))?;
    let answer = transport.send(
        &Request::new("POST", "/v1/enroll")
            .header("Content-Type", "application/json")
            .body(&body),
    )?;
    if answer.status != 201 {
        return Err(problem_of(&answer, "enrolling").into());
    }
    let enrolled: EnrollAnswer = serde_json::from_slice(&answer.body)
        .map_err(|e| SyncError::Protocol(format!("enrolment answer: {e}")))?;
    phone.enroll(&enrolled.enrollment)?;
    phone.set_device_token(&enrolled.token)?;
    Ok(enrolled.enrollment)
}

/// What one sync round did, and where the phone stands after it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// What the pull applied.
    pub pulled: PullSummary,
    /// What the push sent and what the server acknowledged.
    pub pushed: PushSummary,
    /// Visits whose local media were deleted after a verified server receipt (D01).
    pub purged_visits: u32,
    /// The outbox afterwards.
    pub status: SyncStatus,
}

/// What the sync screen shows: what is waiting, how much is left, what went wrong, and the
/// upload deadline (E03) of sealed visits not yet on the server.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncStatus {
    /// The outbox: pending, quarantined and acknowledged bundles, bytes left, last error.
    pub outbox: OutboxStatus,
    /// E03 warnings or blocks for sealed visits not yet uploaded.
    pub deadlines: Vec<Violation>,
    /// Whether this phone is enrolled.
    pub enrolled: bool,
}

/// One sync round with the stored device token: pull, then push every due bundle
/// (`progress` sees the bytes of the bundle being uploaded), then purge acknowledged
/// media. A network failure in the pull stops the round (nothing half-applied: each page
/// is one transaction); push failures are recorded per bundle and retried with backoff.
pub fn sync_now(
    phone: &Phone,
    transport: &dyn Transport,
    progress: Progress<'_>,
) -> Result<SyncReport> {
    let token = phone.device_token()?;
    let pulled = pull(phone, transport, &token)?;
    let pushed = push(
        phone,
        transport,
        &token,
        &Backoff::default(),
        &|| phone.wall_ms(),
        progress,
    )?;
    let purged_visits = purge_acknowledged(phone)?;
    Ok(SyncReport {
        pulled,
        pushed,
        purged_visits,
        status: phone.sync_status()?,
    })
}

/// Deletes the media of acknowledged visits whose server receipt verified; returns how many
/// visits were purged. Case data stays: the server does not (yet) say when an assignment
/// ends, so every held case counts as assigned.
pub fn purge_acknowledged(phone: &Phone) -> Result<u32> {
    let held = phone.held_cases()?;
    let plan = phone.purge(&held)?;
    Ok(u32::try_from(plan.media.len()).unwrap_or(u32::MAX))
}

impl Phone {
    /// The sync screen's status.
    pub fn sync_status(&self) -> Result<SyncStatus> {
        let enrolled = self.identity().is_ok();
        let outbox = self
            .store()
            .read(|tx| Ok::<_, Error>(tx.outbox_status()?))?;
        let deadlines = match self.strictest_policy()? {
            Some(policy) => self.upload_deadlines(&policy)?,
            None => Vec::new(),
        };
        Ok(SyncStatus {
            outbox,
            deadlines,
            enrolled,
        })
    }
}
