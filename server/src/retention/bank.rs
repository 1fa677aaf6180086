//! A bank's contract ends: no copy of its evidence may be kept (seed 5.2.5), once its
//! retention is over and nothing of it is under a legal hold (E04). `tandem bank destroy`
//! destroys the bank's key, which leaves every blob only that bank held sealed for good in
//! the folder, the bucket and any backup of them (crypto-shredding); removes those blobs
//! from storage; and writes a certificate signed by the server key, naming what was made
//! unreadable by digest, who asked, who approved and when. Two different administrators of
//! the bank must be named; the command refuses, naming the rule, inside retention or under
//! a hold.

use std::sync::Arc;

use serde_json::json;
use tandem_core::crypto::{Digest, Signer as _, SoftwareSigner};
use tandem_core::model::BankId;
use uuid::Uuid;

use super::{RetentionEnd, retention_end, retention_terms};
use crate::audit::{AuditAction, AuditEntry};
use crate::blobstore::{BlobStore, KeyringError};
use crate::db::{Db, DbError, Role};

/// The certificate's format id.
pub const BANK_CERTIFICATE_FORMAT: &str = "tandem.bank-destruction-certificate/v1";

/// Why a bank's evidence was not destroyed.
#[derive(Debug, thiserror::Error)]
pub enum BankDestroyError {
    /// No bank has this code.
    #[error("no bank has the code {0:?}")]
    UnknownBank(String),
    /// The same person asked and approved.
    #[error(
        "E04: destruction needs a second person: --approved-by must name another administrator than --requested-by"
    )]
    SamePerson,
    /// A named person is not an administrator of the bank.
    #[error("{0:?} is not an administrator of this bank")]
    NotAdmin(String),
    /// Some of the bank's evidence is still inside its retention.
    #[error(
        "E04: this bank's evidence is kept until {until} (its retention); nothing was destroyed"
    )]
    InsideRetention {
        /// The last day it is kept.
        until: chrono::NaiveDate,
    },
    /// Some of the bank's evidence is under a legal hold.
    #[error("E04: this bank's evidence is under legal hold {reference}; nothing was destroyed")]
    UnderHold {
        /// The hold's reference.
        reference: String,
    },
    /// The bank's key was destroyed before.
    #[error("this bank's key was destroyed already")]
    AlreadyDestroyed,
    /// The keys failed.
    #[error(transparent)]
    Keys(#[from] KeyringError),
    /// The database failed.
    #[error(transparent)]
    Db(#[from] DbError),
    /// Signing the certificate failed.
    #[error("signing the certificate: {0}")]
    Sign(String),
}

/// A destruction done: the signed certificate, and what it says in figures.
#[derive(Debug, Clone)]
pub struct BankCertificate {
    /// Its id.
    pub id: Uuid,
    /// The certificate's JSON, exactly as signed.
    pub document: Vec<u8>,
    /// The server key's Ed25519 signature over `document`.
    pub signature: Vec<u8>,
    /// Blobs made unreadable (only this bank held them).
    pub shredded: usize,
    /// Blobs another bank holds too (still readable by that bank alone).
    pub kept_for_others: usize,
    /// Blobs of those shredded that could not be removed from storage (sealed for good all
    /// the same), each with the reason.
    pub left_in_storage: Vec<(Digest, String)>,
}

/// Who asks for a bank's destruction and who approves it (console logins).
#[derive(Debug, Clone, Copy)]
pub struct BankDestruction<'a> {
    /// The bank's code.
    pub bank_code: &'a str,
    /// The administrator asking.
    pub requested_by: &'a str,
    /// The second administrator approving.
    pub approved_by: &'a str,
    /// Now, UTC ms.
    pub now_ms: i64,
}

async fn admin_of(db: &dyn Db, login: &str, bank: BankId) -> Result<Uuid, BankDestroyError> {
    match db.user_credentials(login).await? {
        Some(user) if user.role == Role::Admin && user.bank_ids.contains(&bank) => Ok(user.id),
        _ => Err(BankDestroyError::NotAdmin(login.to_owned())),
    }
}

/// When the retention of all of a bank's evidence ends (that of its newest), `None` when
/// it holds none.
async fn bank_retention(db: &dyn Db, bank: BankId) -> Result<Option<RetentionEnd>, DbError> {
    let Some(newest) = db.bank_newest_evidence_ms(&bank.to_string()).await? else {
        return Ok(None);
    };
    let policy = db.latest_policy(bank).await?.map(|p| p.body);
    let (days, zone) = retention_terms(policy.as_deref(), bank);
    Ok(retention_end(newest, days, zone))
}

/// Destroys a bank's evidence as the module says; blocking work runs off the runtime.
pub async fn destroy_bank(
    db: Arc<dyn Db>,
    blobs: &BlobStore,
    signer: &SoftwareSigner,
    req: BankDestruction<'_>,
) -> Result<BankCertificate, BankDestroyError> {
    let (bank_id, bank_name) = db
        .bank_by_code(req.bank_code)
        .await?
        .ok_or_else(|| BankDestroyError::UnknownBank(req.bank_code.to_owned()))?;
    let bank: BankId = bank_id.parse().map_err(|_| DbError::Corrupt("banks.id"))?;
    if req
        .requested_by
        .trim()
        .eq_ignore_ascii_case(req.approved_by.trim())
    {
        return Err(BankDestroyError::SamePerson);
    }
    let requester = admin_of(db.as_ref(), req.requested_by, bank).await?;
    let approver = admin_of(db.as_ref(), req.approved_by, bank).await?;
    if let Some(hold) = db.holds(&[bank], true, 1).await?.into_iter().next() {
        return Err(BankDestroyError::UnderHold {
            reference: hold.reference,
        });
    }
    let retention = bank_retention(db.as_ref(), bank).await?;
    if let Some(end) = &retention
        && req.now_ms < end.ends_ms
    {
        return Err(BankDestroyError::InsideRetention {
            until: end.last_day,
        });
    }
    let keys = blobs.keys().clone();
    let (key_row, held) = keys
        .destroy_bank(&bank_id, req.now_ms)
        .await?
        .ok_or(BankDestroyError::AlreadyDestroyed)?;

    // The blobs only this bank held are sealed for good now; their bytes go too.
    let shredded: Vec<Digest> = held
        .iter()
        .filter(|(_, only)| *only)
        .map(|(d, _)| *d)
        .collect();
    let store = blobs.clone();
    let to_remove = shredded.clone();
    let left_in_storage = tokio::task::spawn_blocking(move || {
        to_remove
            .iter()
            .filter_map(|d| match store.remove(d) {
                Ok(()) => None,
                Err(e) => Some((*d, e.to_string())),
            })
            .collect::<Vec<_>>()
    })
    .await
    .map_err(|e| BankDestroyError::Sign(e.to_string()))?;

    let id = Uuid::now_v7();
    let at = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string())
    };
    let document = json!({
        "format": BANK_CERTIFICATE_FORMAT,
        "certificate_id": id.to_string(),
        "rule": "E04",
        "bank": {"id": bank_id, "code": req.bank_code, "name": bank_name},
        "requested_by": {"login": req.requested_by, "user_id": requester.to_string()},
        "approved_by": {"login": req.approved_by, "user_id": approver.to_string()},
        "destroyed_at": at(req.now_ms),
        "retention_ended": retention.as_ref().map(|r| r.last_day.to_string()),
        "bank_key": {
            "created_at": at(key_row.created_ms),
            "destroyed_at": at(req.now_ms),
        },
        "blobs_shredded": shredded.iter().map(Digest::to_hex).collect::<Vec<_>>(),
        "blobs_kept_for_other_banks": held
            .iter()
            .filter(|(_, only)| !*only)
            .map(|(d, _)| d.to_hex())
            .collect::<Vec<_>>(),
        "blobs_left_in_storage_sealed": left_in_storage
            .iter()
            .map(|(d, _)| d.to_hex())
            .collect::<Vec<_>>(),
        "statement": "The bank's key is destroyed: every blob listed under blobs_shredded \
            can no longer be decrypted from any copy, and was removed from storage unless \
            listed under blobs_left_in_storage_sealed.",
    });
    let document =
        serde_json::to_vec_pretty(&document).map_err(|e| BankDestroyError::Sign(e.to_string()))?;
    // Signed as it is: it starts with `{`, so it is never one of the `tandem/v1/<purpose>\n…`
    // inputs the server key signs for anything else.
    let signature = signer
        .sign(&document)
        .map_err(|e| BankDestroyError::Sign(e.to_string()))?;

    let mut entry = AuditEntry::new(
        req.now_ms,
        AuditAction::BankDestroyed,
        "bank",
        Some(bank_id.clone()),
    );
    entry.actor = Some(approver);
    entry.bank_id = Some(bank);
    entry.detail = json!({
        "rule": "E04",
        "certificate": id.to_string(),
        "requested_by": requester.to_string(),
        "shredded": shredded.len(),
        "kept_for_other_banks": held.len() - shredded.len(),
        "left_in_storage": left_in_storage.len(),
    });
    db.append_audit(&entry).await?;
    Ok(BankCertificate {
        id,
        document,
        signature,
        shredded: shredded.len(),
        kept_for_others: held.len() - shredded.len(),
        left_in_storage,
    })
}
