//! Complaints (P01): a complaint recorded by a manager or carried by a phone's sealed
//! visit opens a 24-hour ticket and puts the case on hold — no new requests or approvals
//! (V01 refuses them, naming the hold) — until a manager resolves it with a note. A ticket
//! still open after 24 hours is escalated by the scheduled check.

use tandem_core::model::CaseId;
use uuid::Uuid;

use crate::AppState;
use crate::audit::{AuditAction, AuditEntry};
use crate::auth::UserAuth;
use crate::db::Role;
use crate::db::complaints::{ComplaintRecord, ComplaintSource, NewComplaint, Opened};
use crate::error::AppError;

/// Longest complaint or resolution note.
pub const MAX_NOTE_CHARS: usize = 1000;

fn note(text: &str, kind: &'static str) -> Result<String, AppError> {
    let text = text.trim();
    if text.is_empty() || text.chars().count() > MAX_NOTE_CHARS {
        return Err(AppError::invalid(
            kind,
            format!("Write a note of 1 to {MAX_NOTE_CHARS} characters."),
        )
        .with_rule("P01"));
    }
    if text.contains('\0') {
        return Err(AppError::nul_in_text());
    }
    Ok(text.to_owned())
}

/// A manager of the case's bank records a complaint: the ticket opens and the case is on
/// hold from now on.
pub async fn record(
    state: &AppState,
    user: &UserAuth,
    case: CaseId,
    text: &str,
) -> Result<Uuid, AppError> {
    user.require(&[Role::Manager])?;
    let stored = state.db.case(case).await?.ok_or(AppError::NotFound)?;
    user.check_bank(stored.bank_id)?;
    let complaint = NewComplaint {
        id: Uuid::now_v7(),
        bank_id: stored.bank_id,
        case_id: case,
        visit_id: None,
        source: ComplaintSource::Console(user.user.user_id),
        note: note(text, "complaint-note-invalid")?,
        opened_ms: state.now_ms(),
    };
    state.db.open_complaint(&complaint).await?;
    tracing::info!(complaint = %complaint.id, case = %case, "complaint recorded; case on hold");
    let entry = AuditEntry::new(
        complaint.opened_ms,
        AuditAction::ComplaintRecorded,
        "complaint",
        Some(complaint.id.to_string()),
    )
    .by(user.user.user_id)
    .bank(stored.bank_id)
    .detail(serde_json::json!({ "case": case.to_string() }));
    state.db.append_audit(&entry).await?;
    Ok(complaint.id)
}

/// A complaint of the user's banks (404 for another bank's or a random id).
pub async fn visible(
    state: &AppState,
    user: &UserAuth,
    id: &str,
) -> Result<ComplaintRecord, AppError> {
    user.require(&[Role::Manager, Role::Admin])?;
    let id: Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    let complaint = state.db.complaint(id).await?.ok_or(AppError::NotFound)?;
    user.check_bank(complaint.bank_id)?;
    Ok(complaint)
}

/// A manager resolves an open complaint with a note; the case comes off hold when no other
/// complaint of it is open.
pub async fn resolve(
    state: &AppState,
    user: &UserAuth,
    complaint: &ComplaintRecord,
    text: &str,
) -> Result<(), AppError> {
    user.require(&[Role::Manager])?;
    let resolution = note(text, "resolution-note-invalid")?;
    if !state
        .db
        .resolve_complaint(complaint.id, user.user.user_id, &resolution, state.now_ms())
        .await?
    {
        return Err(AppError::conflict(
            "complaint-resolved",
            "This complaint was resolved already.",
        ));
    }
    tracing::info!(complaint = %complaint.id, "complaint resolved");
    let entry = AuditEntry::new(
        state.now_ms(),
        AuditAction::ComplaintResolved,
        "complaint",
        Some(complaint.id.to_string()),
    )
    .by(user.user.user_id)
    .bank(complaint.bank_id)
    .detail(serde_json::json!({ "case": complaint.case_id.to_string() }));
    state.db.append_audit(&entry).await?;
    Ok(())
}

/// The scheduled check: escalates every complaint still open past its 24 hours (marked once,
/// whichever instance runs first). Returns how many it escalated.
pub async fn escalate_breaches(state: &AppState) -> Result<usize, AppError> {
    let breached = state.db.mark_breached_complaints(state.now_ms()).await?;
    for k in &breached {
        tracing::warn!(complaint = %k.id, bank = %k.bank_id, "complaint open past 24 hours: escalated");
        let entry = AuditEntry::new(
            state.now_ms(),
            AuditAction::ComplaintEscalated,
            "complaint",
            Some(k.id.to_string()),
        )
        .bank(k.bank_id)
        .detail(serde_json::json!({ "case": k.case_id.to_string(), "due_ms": k.due_ms }));
        state.db.append_audit(&entry).await?;
    }
    Ok(breached.len())
}

/// Opens the complaint a committed bundle carries (idempotent per bundle and note).
pub async fn from_bundle(
    state: &AppState,
    bundle: tandem_core::model::BundleId,
    bank: tandem_core::model::BankId,
    case: CaseId,
    visit: Uuid,
    text: &str,
    at_ms: i64,
) -> Result<Opened, AppError> {
    if state.db.case(case).await?.is_none() {
        // Evidence for a case this server does not know is quarantined already; there is
        // no case to hold.
        return Ok(Opened::Already);
    }
    let complaint = NewComplaint {
        id: Uuid::now_v7(),
        bank_id: bank,
        case_id: case,
        visit_id: Some(visit),
        source: ComplaintSource::Phone(bundle),
        // As the phone wrote it, without NUL (no database column holds one).
        note: text
            .chars()
            .filter(|c| *c != '\0')
            .take(MAX_NOTE_CHARS)
            .collect(),
        opened_ms: at_ms,
    };
    let opened = state.db.open_complaint(&complaint).await?;
    if opened == Opened::New {
        let entry = AuditEntry::new(
            at_ms,
            AuditAction::ComplaintRecorded,
            "complaint",
            Some(complaint.id.to_string()),
        )
        .bank(bank)
        .detail(serde_json::json!({
            "case": case.to_string(),
            "visit": visit.to_string(),
            "bundle": bundle.to_string(),
        }));
        state.db.append_audit(&entry).await?;
    }
    Ok(opened)
}
