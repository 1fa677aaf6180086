//! Destruction at the bank's request (E04): the request (refused at once inside retention or
//! under a hold), the second person's approval deciding again inside the transaction that
//! marks the evidence destroyed, the signed certificate, and the removal of the blobs no
//! other evidence lists.

use std::collections::{BTreeMap, HashSet};
use std::net::IpAddr;

use serde_json::json;
use tandem_core::bundle::Manifest;
use tandem_core::crypto::{Digest, SignatureAlgorithm, Signer as _};
use tandem_core::model::BankId;
use uuid::Uuid;

use super::{
    MAX_REASON_CHARS, MAX_REFERENCE_CHARS, RetentionError, Subject, clean_text, evidence_retention,
    require, retention_terms,
};
use crate::AppState;
use crate::audit::{AuditAction, AuditEntry};
use crate::auth::UserAuth;
use crate::db::Role;
use crate::db::retention::{
    CertificateRecord, Decision, DestroyOutcome, DestructionFacts, EvidenceBundle, NewCertificate,
    NewDestructionRequest,
};
use crate::error::AppError;

/// The certificate's format id.
pub const CERTIFICATE_FORMAT: &str = "tandem.destruction-certificate/v1";

/// Why the evidence of `subject` may not be destroyed now, if it may not: under a hold, or
/// inside retention; `NothingToDestroy` when none is left.
fn destruction_barrier(
    bundles: &[EvidenceBundle],
    holds: &[crate::db::retention::HoldRecord],
    policy: Option<&str>,
    bank: BankId,
    now_ms: i64,
) -> Result<(), RetentionError> {
    if bundles.is_empty() {
        return Err(RetentionError::NothingToDestroy);
    }
    if let Some(hold) = holds.first() {
        return Err(RetentionError::UnderHold {
            reference: hold.reference.clone(),
        });
    }
    let (days, zone) = retention_terms(policy, bank);
    let end = evidence_retention(bundles, days, zone).ok_or(RetentionError::App(
        AppError::Internal("retention date".into()),
    ))?;
    if now_ms < end.ends_ms {
        return Err(RetentionError::InsideRetention {
            until: end.last_day,
        });
    }
    Ok(())
}

/// The audit entry of a refused destruction.
fn refused_entry(
    now: i64,
    user: &UserAuth,
    bank: BankId,
    subject: (&str, String),
    error: &RetentionError,
    request: Option<Uuid>,
    client: Option<IpAddr>,
) -> AuditEntry {
    let reason = match error {
        RetentionError::InsideRetention { .. } => "retention",
        RetentionError::UnderHold { .. } => "hold",
        RetentionError::SamePerson => "same-person",
        _ => "other",
    };
    let mut detail = json!({
        "rule": "E04",
        "reason": reason,
        "refusal": error.refusal_text().unwrap_or_default(),
    });
    if let Some(id) = request {
        detail["request"] = json!(id.to_string());
    }
    AuditEntry::new(
        now,
        AuditAction::DestructionRefused,
        subject.0,
        Some(subject.1),
    )
    .by(user.user.user_id)
    .bank(bank)
    .from_addr(client)
    .detail(detail)
}

/// Asks for the destruction of a case's or visit's evidence at the bank's request (legal
/// or admin staff of the bank). Refused at once, and audited `DestructionRefused`, when
/// the evidence is under a hold or inside retention; otherwise stored pending a second
/// person's approval, audited `DestructionRequested`.
pub async fn request_destruction(
    state: &AppState,
    user: &UserAuth,
    (bank, subject): (BankId, Subject),
    bank_reference: &str,
    reason: &str,
    client: Option<IpAddr>,
) -> Result<Uuid, RetentionError> {
    require(user, &[Role::Legal, Role::Admin])?;
    user.check_bank(bank)
        .map_err(|_| RetentionError::NotFound)?;
    let bank_reference = clean_text(bank_reference, MAX_REFERENCE_CHARS, "reference")?;
    let reason = clean_text(reason, MAX_REASON_CHARS, "reason")?;
    let now = state.now_ms();
    let bundles: Vec<EvidenceBundle> = state
        .db
        .evidence(subject.case(), subject.visit())
        .await?
        .into_iter()
        .filter(|b| b.destroyed_ms.is_none())
        .collect();
    let holds = state
        .db
        .active_holds(subject.case(), subject.visit())
        .await?;
    let policy = state.db.latest_policy(bank).await?.map(|p| p.body);
    if let Err(e) = destruction_barrier(&bundles, &holds, policy.as_deref(), bank, now) {
        if e.refusal_text().is_some() {
            let entry = refused_entry(
                now,
                user,
                bank,
                (subject.kind(), subject.id()),
                &e,
                None,
                client,
            );
            state.db.append_audit(&entry).await?;
        }
        return Err(e);
    }
    let request = NewDestructionRequest {
        id: Uuid::now_v7(),
        bank_id: bank,
        case_id: subject.case(),
        visit_id: subject.visit(),
        bank_reference: bank_reference.clone(),
        reason,
        requested_by: user.user.user_id,
        requested_ms: now,
    };
    let audit = AuditEntry::new(
        now,
        AuditAction::DestructionRequested,
        subject.kind(),
        Some(subject.id()),
    )
    .by(user.user.user_id)
    .bank(bank)
    .from_addr(client)
    .detail(json!({
        "request": request.id.to_string(),
        "bank_reference": bank_reference,
        "bundles": bundles.len(),
    }));
    state.db.put_destruction_request(&request, &audit).await?;
    tracing::info!(request = %request.id, "destruction requested");
    Ok(request.id)
}

/// One blob of a destroyed bundle, as the certificate lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DestroyedBlob {
    /// Its address.
    pub digest: Digest,
    /// Its size.
    pub size: u64,
    /// Deleted from the blob store (`false`: kept, other evidence lists it).
    pub deleted: bool,
}

/// The blobs one bundle lists: (address, size, media type).
type ListedBlobs = Vec<(Digest, u64, String)>;

/// What a destruction removes: each bundle's blobs, and every blob once.
struct Inventory {
    per_bundle: Vec<(String, ListedBlobs)>,
    blobs: Vec<DestroyedBlob>,
}

/// Every blob the bundles list (once each, in order), and whether no other evidence lists
/// it (so it is deleted).
fn blobs_to_destroy(
    bundles: &[EvidenceBundle],
    other_manifests: &[Vec<u8>],
) -> Result<Inventory, String> {
    let mut shared: HashSet<Digest> = HashSet::new();
    for bytes in other_manifests {
        // A manifest the server stored always parses; one that does not keeps nothing
        // alive, but neither can it list anything.
        if let Ok(m) = Manifest::parse(bytes) {
            shared.extend(m.blobs.iter().map(|b| b.sha256));
        }
    }
    let mut per_bundle = Vec::new();
    let mut seen = HashSet::new();
    let mut all = Vec::new();
    for b in bundles {
        let manifest = Manifest::parse(&b.manifest).map_err(|e| format!("manifest: {e}"))?;
        let mut listed = Vec::new();
        for entry in &manifest.blobs {
            listed.push((entry.sha256, entry.size, entry.media_type.clone()));
            if seen.insert(entry.sha256) {
                all.push(DestroyedBlob {
                    digest: entry.sha256,
                    size: entry.size,
                    deleted: !shared.contains(&entry.sha256),
                });
            }
        }
        per_bundle.push((b.id.clone(), listed));
    }
    Ok(Inventory {
        per_bundle,
        blobs: all,
    })
}

/// What the approver's decision needs besides the facts.
struct Approval<'a> {
    user: &'a UserAuth,
    now: i64,
    client: Option<IpAddr>,
    certificate_id: Uuid,
    server: &'a tandem_core::crypto::SoftwareSigner,
}

/// The decision of a destruction over the facts read in its transaction: refused (hold,
/// retention) or the certificate signed.
fn decide(a: &Approval<'_>, facts: &DestructionFacts) -> Result<Decision, String> {
    let r = &facts.request;
    let subject = match r.visit_id {
        Some(v) => ("visit", v.to_string()),
        None => ("case", r.case_id.to_string()),
    };
    if let Err(e) = destruction_barrier(
        &facts.bundles,
        &facts.holds,
        facts.policy.as_deref(),
        r.bank_id,
        a.now,
    ) {
        let refusal = e
            .refusal_text()
            .unwrap_or_else(|| "E04: nothing left to destroy".to_owned());
        let audit = refused_entry(a.now, a.user, r.bank_id, subject, &e, Some(r.id), a.client);
        return Ok(Decision::Refuse { refusal, audit });
    }
    let (days, zone) = retention_terms(facts.policy.as_deref(), r.bank_id);
    let Inventory { per_bundle, blobs } = blobs_to_destroy(&facts.bundles, &facts.other_manifests)?;
    let deleted: HashSet<Digest> = blobs
        .iter()
        .filter(|b| b.deleted)
        .map(|b| b.digest)
        .collect();
    let mut visits: BTreeMap<String, Vec<serde_json::Value>> = BTreeMap::new();
    for (b, (id, listed)) in facts.bundles.iter().zip(&per_bundle) {
        let blobs: Vec<serde_json::Value> = listed
            .iter()
            .map(|(digest, size, media)| {
                json!({
                    "sha256": digest.to_hex(),
                    "size": size,
                    "media_type": media,
                    "disposition": if deleted.contains(digest) { "deleted" } else { "kept-shared" },
                })
            })
            .collect();
        visits.entry(b.visit_id.clone()).or_default().push(json!({
            "bundle_id": id,
            "manifest_digest": b.manifest_digest,
            "log_index": b.log_index,
            "committed_ms": b.committed_ms,
            "blobs": blobs,
        }));
    }
    let visits: Vec<serde_json::Value> = visits
        .into_iter()
        .map(|(visit, bundles)| {
            let own: Vec<EvidenceBundle> = facts
                .bundles
                .iter()
                .filter(|b| b.visit_id == visit)
                .cloned()
                .collect();
            let kept_through = evidence_retention(&own, days, zone)
                .map(|e| e.last_day.to_string())
                .unwrap_or_default();
            json!({
                "visit_id": visit,
                "retention_kept_through": kept_through,
                "bundles": bundles,
            })
        })
        .collect();
    let key = a.server.public_key();
    let bytes_deleted: u64 = blobs.iter().filter(|b| b.deleted).map(|b| b.size).sum();
    let document = json!({
        "format": CERTIFICATE_FORMAT,
        "certificate_id": a.certificate_id.to_string(),
        "rule": "E04",
        "bank_id": r.bank_id.to_string(),
        "bank_reference": r.bank_reference,
        "reason": r.reason,
        "case_id": r.case_id.to_string(),
        "case_ref": r.case_ref,
        "requested_by": { "user_id": r.requested_by.to_string(), "name": r.requested_by_name },
        "requested_ms": r.requested_ms,
        "approved_by": { "user_id": a.user.user.user_id.to_string(), "name": a.user.user.display_name },
        "destroyed_ms": a.now,
        "destroyed_at_utc": chrono::DateTime::from_timestamp_millis(a.now)
            .map(|t| t.to_rfc3339())
            .unwrap_or_default(),
        "retention_days": days,
        "time_zone": zone.name(),
        "visits": visits,
        "blobs_deleted": blobs.iter().filter(|b| b.deleted).count(),
        "bytes_deleted": bytes_deleted,
        "blobs_kept_shared": blobs.iter().filter(|b| !b.deleted).count(),
        "kept": "bundle rows with their manifest digests, the transparency log, receipts and the audit log",
        "server_key": { "alg": key.alg.to_string(), "kid": key.kid().to_string() },
    });
    let bytes = serde_json::to_vec_pretty(&document).map_err(|e| e.to_string())?;
    // The certificate's JSON, signed as it is: it starts with `{`, so it can never be one
    // of the `tandem/v1/<purpose>\n…` inputs the server key signs for anything else.
    let signature = a.server.sign(&bytes).map_err(|e| e.to_string())?;
    let audit = AuditEntry::new(
        a.now,
        AuditAction::DestructionApproved,
        subject.0,
        Some(subject.1),
    )
    .by(a.user.user.user_id)
    .bank(r.bank_id)
    .from_addr(a.client)
    .detail(json!({
        "request": r.id.to_string(),
        "certificate": a.certificate_id.to_string(),
        "bundles": facts.bundles.len(),
        "blobs_deleted": blobs.iter().filter(|b| b.deleted).count(),
    }));
    Ok(Decision::Destroy {
        bundle_ids: facts.bundles.iter().map(|b| b.id.clone()).collect(),
        certificate: NewCertificate {
            id: a.certificate_id,
            document: bytes,
            signature,
        },
        audit,
    })
}

/// Approves a pending destruction request (an administrator of its bank who did not ask):
/// retention and holds are checked again in the transaction that marks the evidence
/// destroyed and stores the signed certificate; the blobs no other evidence lists are then
/// removed from the blob store. Returns the certificate's id.
pub async fn approve_destruction(
    state: &AppState,
    user: &UserAuth,
    id: &str,
    client: Option<IpAddr>,
) -> Result<Uuid, RetentionError> {
    let id: Uuid = id.parse().map_err(|_| RetentionError::NotFound)?;
    let request = state
        .db
        .destruction_request(id)
        .await?
        .ok_or(RetentionError::NotFound)?;
    user.check_bank(request.bank_id)
        .map_err(|_| RetentionError::NotFound)?;
    require(user, &[Role::Admin])?;
    if request.status != "pending" {
        return Err(RetentionError::NotPending);
    }
    let now = state.now_ms();
    let subject = match request.visit_id {
        Some(v) => ("visit", v.to_string()),
        None => ("case", request.case_id.to_string()),
    };
    if request.requested_by == user.user.user_id {
        let e = RetentionError::SamePerson;
        let entry = refused_entry(now, user, request.bank_id, subject, &e, Some(id), client);
        state.db.append_audit(&entry).await?;
        return Err(e);
    }
    let approval = Approval {
        user,
        now,
        client,
        certificate_id: Uuid::now_v7(),
        server: state.signer.as_ref(),
    };
    let decide_in_tx = |facts: &DestructionFacts| decide(&approval, facts);
    match state
        .db
        .destroy(id, user.user.user_id, now, &decide_in_tx)
        .await?
    {
        DestroyOutcome::NotPending => Err(RetentionError::NotPending),
        DestroyOutcome::Failed(e) => Err(AppError::Internal(format!("destruction: {e}")).into()),
        DestroyOutcome::Refused(refusal) => Err(RetentionError::from_refusal(&refusal)),
        DestroyOutcome::Destroyed(certificate) => {
            remove_blobs(state, certificate).await;
            tracing::info!(request = %id, certificate = %certificate, "evidence destroyed");
            Ok(certificate)
        }
    }
}

/// Removes the blobs a certificate says were deleted (after its commit: a crash before
/// leaves files a later run of this removes; never a record without its destruction).
async fn remove_blobs(state: &AppState, certificate: Uuid) {
    let Ok(Some(cert)) = state.db.certificate(certificate).await else {
        tracing::error!(certificate = %certificate, "destroyed evidence: certificate unreadable");
        return;
    };
    let digests = deleted_digests(&cert.document);
    let blobs = state.blobs.clone();
    let removed = tokio::task::spawn_blocking(move || {
        let mut failed = 0usize;
        for digest in digests {
            match blobs.remove(&digest) {
                Ok(()) => {}
                Err(e) => {
                    failed += 1;
                    tracing::error!(error = %e, "destroyed evidence: a blob could not be removed");
                }
            }
        }
        failed
    })
    .await;
    if !matches!(removed, Ok(0)) {
        tracing::error!(certificate = %certificate, "destroyed evidence: blobs left behind");
    }
}

/// The digests a certificate lists as deleted.
fn deleted_digests(document: &[u8]) -> Vec<Digest> {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(document) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for visit in doc["visits"].as_array().into_iter().flatten() {
        for bundle in visit["bundles"].as_array().into_iter().flatten() {
            for blob in bundle["blobs"].as_array().into_iter().flatten() {
                if blob["disposition"] == "deleted"
                    && let Some(d) = blob["sha256"].as_str().and_then(|s| s.parse().ok())
                {
                    out.push(d);
                }
            }
        }
    }
    out
}

/// A certificate of one of `user`'s banks (legal or admin staff).
pub async fn certificate(
    state: &AppState,
    user: &UserAuth,
    id: &str,
) -> Result<CertificateRecord, RetentionError> {
    require(user, &[Role::Legal, Role::Admin])?;
    let id: Uuid = id.parse().map_err(|_| RetentionError::NotFound)?;
    let cert = state
        .db
        .certificate(id)
        .await?
        .ok_or(RetentionError::NotFound)?;
    user.check_bank(cert.bank_id)
        .map_err(|_| RetentionError::NotFound)?;
    Ok(cert)
}

/// The server's public key as a SubjectPublicKeyInfo PEM for `openssl pkeyutl -verify
/// -pubin`, as exports carry keys (`keys/<kid>.pem`); `None` for a key that is not Ed25519
/// (the server's own key always is: `key.rs`; the certificate's steps are Ed25519's).
pub fn server_key_pem(state: &AppState) -> Option<String> {
    let key = state.signer.public_key();
    (key.alg == SignatureAlgorithm::Ed25519).then(|| tandem_core::bundle::public_key_pem(&key))
}
