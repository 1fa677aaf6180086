//! The audit log: who did what to what, when, from where and (where the law asks) why.
//! Against a malicious insider who would rewrite history (THREATS.md) it is append-only in
//! the database (triggers refuse UPDATE and DELETE), hash-chained ([`chain`]: each row
//! commits to the one before), and its head is appended to the transparency log at least
//! hourly ([`anchor`], [`run_anchoring`]), so that [`verify`] — `tandem audit verify` —
//! catches a rewritten, removed or cut-off row even when the triggers were dropped.
//!
//! Any area writes an [`AuditEntry`] with [`crate::db::AuditDb::append_audit`], or, inside a
//! transaction of its own, with `append_audit_in` of the backend's connection (see
//! `db/audit.rs`), so the entry commits or rolls back with the change it records. An entry
//! names its subject by kind and id (`user` and a user id, `visit-request` and its id…) and
//! carries a small JSON detail: counts, reasons, never personal data (no typed sign-in
//! names, no passwords, no debtor data).

pub mod chain;
pub mod verify;

use std::future::Future;
use std::net::IpAddr;
use std::time::Duration;

use tandem_core::model::BankId;
use uuid::Uuid;

use crate::AppState;
use crate::db::DbError;
use crate::db::audit::AuditAnchor;

/// How often `tandem serve` anchors the audit log's head by default (at least hourly).
pub const ANCHOR_EVERY: Duration = Duration::from_secs(3_600);

/// Appends the audit log's head to the transparency log, unless it is there already, and
/// records that in the log itself (so the next anchoring covers this one).
pub async fn anchor(state: &AppState) -> Result<Option<AuditAnchor>, DbError> {
    let Some((anchor, _checkpoint)) = state
        .db
        .anchor_audit_head(state.signer.as_ref(), state.now_ms())
        .await?
    else {
        return Ok(None);
    };
    let entry = AuditEntry::new(
        state.now_ms(),
        AuditAction::AuditAnchored,
        "audit-log",
        Some(anchor.audit_seq.to_string()),
    )
    .detail(serde_json::json!({ "log_index": anchor.log_index, "head": anchor.head_hash }));
    state.db.append_audit(&entry).await?;
    Ok(Some(anchor))
}

/// Anchors the head every `every` until `stop` completes: on each tick, and once more on
/// the way out (the server anchors once before it listens: [`anchor_logged`]). Several
/// servers may run it at once: a tick anchors only when it claims this period's run
/// ([`crate::schedule`]), so the log gets one anchor per period, not one per server; and
/// the head's row lock lets one anchor a head and the others find it anchored.
pub async fn run_anchoring<F>(state: AppState, every: Duration, stop: F)
where
    F: Future<Output = ()> + Send,
{
    let every = every.max(Duration::from_secs(1));
    let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    tokio::pin!(stop);
    loop {
        let stopping = tokio::select! {
            () = &mut stop => true,
            _ = ticks.tick() => false,
        };
        if stopping {
            // On a clean stop: what was done since the last tick is anchored before exit.
            anchor_logged(&state).await;
            break;
        }
        if crate::schedule::claim(&state, crate::schedule::Job::AuditAnchor, every).await {
            anchor_logged(&state).await;
        }
    }
}

/// Anchors the head once, within a minute, saying how it went in the log: a failure is
/// logged, never fatal (the next tick tries again).
pub async fn anchor_logged(state: &AppState) {
    match tokio::time::timeout(Duration::from_secs(60), anchor(state)).await {
        Ok(Ok(Some(a))) => tracing::info!(
            log_index = a.log_index,
            audit_seq = a.audit_seq,
            "audit log head anchored in the transparency log"
        ),
        Ok(Ok(None)) => {}
        Ok(Err(e)) => tracing::error!(error = %e, "audit anchoring failed"),
        Err(_) => tracing::error!("audit anchoring took over a minute; abandoned this tick"),
    }
}

/// The subject kind of an entry about a user account.
pub const SUBJECT_USER: &str = "user";

/// What happened. Each action has a stable stored name ([`AuditAction::as_str`]); a new
/// action is a new variant with a new name, and a name once stored never changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditAction {
    /// A user signed in (console form or `POST /v1/login`).
    SignIn,
    /// A sign-in was refused: wrong password, unknown name or a locked account.
    SignInFailed,
    /// Failed sign-ins in a row locked the sign-in name (A01).
    LockedOut,
    /// A user signed out.
    SignOut,
    /// A sign-in elsewhere ended the account's other sessions (one session per account).
    SessionReplaced,
    /// A user changed their password.
    PasswordChanged,
    /// A password change was refused (wrong current password, or the policy).
    PasswordChangeRefused,
    /// A console user asked for a visit.
    VisitRequested,
    /// A manager approved a visit request (the approval's id and visit in the detail).
    VisitApproved,
    /// A manager rejected a visit request.
    VisitRejected,
    /// A manager or admin imported a bank's case file (the count in the detail).
    CasesImported,
    /// A complaint was recorded and its case put on hold (P01).
    ComplaintRecorded,
    /// A manager resolved a complaint.
    ComplaintResolved,
    /// The scheduled check found a complaint still open past its 24 hours (P01).
    ComplaintEscalated,
    /// A manager marked a receipt deposited (C03; the serial is the subject).
    ReceiptDeposited,
    /// The scheduled check flagged a receipt not deposited by its deadline (C03).
    ReceiptOverdue,
    /// An admin created a console user (role and banks in the detail; never the password).
    UserCreated,
    /// An admin disabled a user: their sessions ended, sign-in refused.
    UserDisabled,
    /// An admin enabled a disabled user again.
    UserEnabled,
    /// An admin changed a user's role or banks (before and after in the detail).
    UserAccessChanged,
    /// An admin created an agent (banks in the detail).
    AgentCreated,
    /// An admin issued an agent a one-time enrollment code (its expiry in the detail, never
    /// the code).
    EnrollmentCodeIssued,
    /// An admin revoked a phone (the reason in the detail).
    DeviceRevoked,
    /// An admin set a new version of a bank's policy (the version in the detail).
    PolicyChanged,
    /// Legal staff searched for visits (which filters were used and the count, never the
    /// text typed: it may be a debtor's name).
    EvidenceSearched,
    /// A user stated the purpose for reading a visit's evidence (A03); later reads of that
    /// visit in the session carry it.
    EvidenceAccessOpened,
    /// A user opened a visit's evidence page.
    EvidenceViewed,
    /// A user's browser loaded a photo's thumbnail (the digest is the subject).
    ThumbnailViewed,
    /// A user opened a blob's original bytes: a photo as taken, a signature image.
    OriginalViewed,
    /// A user's browser played (read) an audio segment, whole or a range of it.
    AudioPlayed,
    /// A user exported a visit's bundle with its report (A03: the purpose is recorded).
    EvidenceExported,
    /// A user ran the bundle's verification again on the stored blobs (the outcome in the
    /// detail).
    EvidenceVerified,
    /// A legal hold was placed on a case or visit (E04).
    LegalHoldPlaced,
    /// A legal hold was lifted.
    LegalHoldLifted,
    /// A bank asked for a visit's evidence to be destroyed (E04).
    DestructionRequested,
    /// A second person approved a destruction; the evidence was destroyed and a certificate
    /// signed (its id in the detail).
    DestructionApproved,
    /// A destruction was refused: inside retention, under hold, or asked and approved by the
    /// same person (the rule in the detail).
    DestructionRefused,
    /// The head of this log was appended to the transparency log (its index in the
    /// detail).
    AuditAnchored,
    /// A bank's contract ended: its key was destroyed and its evidence with it (E04, seed
    /// 5.2.5; `tandem bank destroy`, the certificate in the detail).
    BankDestroyed,
}

impl AuditAction {
    /// Every action, for parsing and for tests.
    pub const ALL: [Self; 39] = [
        Self::SignIn,
        Self::SignInFailed,
        Self::LockedOut,
        Self::SignOut,
        Self::SessionReplaced,
        Self::PasswordChanged,
        Self::PasswordChangeRefused,
        Self::VisitRequested,
        Self::VisitApproved,
        Self::VisitRejected,
        Self::CasesImported,
        Self::ComplaintRecorded,
        Self::ComplaintResolved,
        Self::ComplaintEscalated,
        Self::ReceiptDeposited,
        Self::ReceiptOverdue,
        Self::UserCreated,
        Self::UserDisabled,
        Self::UserEnabled,
        Self::UserAccessChanged,
        Self::AgentCreated,
        Self::EnrollmentCodeIssued,
        Self::DeviceRevoked,
        Self::PolicyChanged,
        Self::EvidenceSearched,
        Self::EvidenceAccessOpened,
        Self::EvidenceViewed,
        Self::ThumbnailViewed,
        Self::OriginalViewed,
        Self::AudioPlayed,
        Self::EvidenceExported,
        Self::EvidenceVerified,
        Self::LegalHoldPlaced,
        Self::LegalHoldLifted,
        Self::DestructionRequested,
        Self::DestructionApproved,
        Self::DestructionRefused,
        Self::AuditAnchored,
        Self::BankDestroyed,
    ];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignIn => "sign-in",
            Self::SignInFailed => "sign-in-failed",
            Self::LockedOut => "locked-out",
            Self::SignOut => "sign-out",
            Self::SessionReplaced => "session-replaced",
            Self::PasswordChanged => "password-changed",
            Self::PasswordChangeRefused => "password-change-refused",
            Self::VisitRequested => "visit-requested",
            Self::VisitApproved => "visit-approved",
            Self::VisitRejected => "visit-rejected",
            Self::CasesImported => "cases-imported",
            Self::ComplaintRecorded => "complaint-recorded",
            Self::ComplaintResolved => "complaint-resolved",
            Self::ComplaintEscalated => "complaint-escalated",
            Self::ReceiptDeposited => "receipt-deposited",
            Self::ReceiptOverdue => "receipt-overdue",
            Self::UserCreated => "user-created",
            Self::UserDisabled => "user-disabled",
            Self::UserEnabled => "user-enabled",
            Self::UserAccessChanged => "user-access-changed",
            Self::AgentCreated => "agent-created",
            Self::EnrollmentCodeIssued => "enrollment-code-issued",
            Self::DeviceRevoked => "device-revoked",
            Self::PolicyChanged => "policy-changed",
            Self::EvidenceSearched => "evidence-searched",
            Self::EvidenceAccessOpened => "evidence-access-opened",
            Self::EvidenceViewed => "evidence-viewed",
            Self::ThumbnailViewed => "thumbnail-viewed",
            Self::OriginalViewed => "original-viewed",
            Self::AudioPlayed => "audio-played",
            Self::EvidenceExported => "evidence-exported",
            Self::EvidenceVerified => "evidence-verified",
            Self::LegalHoldPlaced => "legal-hold-placed",
            Self::LegalHoldLifted => "legal-hold-lifted",
            Self::DestructionRequested => "destruction-requested",
            Self::DestructionApproved => "destruction-approved",
            Self::DestructionRefused => "destruction-refused",
            Self::AuditAnchored => "audit-anchored",
            Self::BankDestroyed => "bank-destroyed",
        }
    }

    /// Parses a stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|a| a.as_str() == s)
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing that happened, to be appended to the log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// When, UTC ms (the server's clock).
    pub at_ms: i64,
    /// The signed-in user who acted; `None` for an unauthenticated attempt.
    pub actor: Option<Uuid>,
    /// What happened.
    pub action: AuditAction,
    /// The kind of thing it happened to (`user`, `visit-request`, `case`…).
    pub subject_kind: String,
    /// Which one, when it is known (an unknown sign-in name has none).
    pub subject_id: Option<String>,
    /// The bank concerned, when there is one.
    pub bank_id: Option<BankId>,
    /// A small JSON object: counts, reasons; never personal data.
    pub detail: serde_json::Value,
    /// The client's address, when the connection is known.
    pub client_addr: Option<IpAddr>,
    /// The stated purpose, when the law asks for one (legal retrieval, A03).
    pub purpose: Option<String>,
}

impl AuditEntry {
    /// An entry of `action` on (`subject_kind`, `subject_id`) at `at_ms`, by nobody yet,
    /// with an empty detail.
    pub fn new(
        at_ms: i64,
        action: AuditAction,
        subject_kind: &str,
        subject_id: Option<String>,
    ) -> Self {
        Self {
            at_ms,
            actor: None,
            action,
            subject_kind: subject_kind.to_owned(),
            subject_id,
            bank_id: None,
            detail: serde_json::Value::Object(serde_json::Map::new()),
            client_addr: None,
            purpose: None,
        }
    }

    /// An entry about the user account `user`.
    pub fn about_user(at_ms: i64, action: AuditAction, user: Option<Uuid>) -> Self {
        Self::new(at_ms, action, SUBJECT_USER, user.map(|u| u.to_string()))
    }

    /// The same entry, acted by `user`.
    #[must_use]
    pub fn by(mut self, user: Uuid) -> Self {
        self.actor = Some(user);
        self
    }

    /// The same entry, concerning `bank`.
    #[must_use]
    pub fn bank(mut self, bank: BankId) -> Self {
        self.bank_id = Some(bank);
        self
    }

    /// The same entry with `detail` (a JSON object).
    #[must_use]
    pub fn detail(mut self, detail: serde_json::Value) -> Self {
        self.detail = detail;
        self
    }

    /// The same entry, from the client at `addr`.
    #[must_use]
    pub fn from_addr(mut self, addr: Option<IpAddr>) -> Self {
        self.client_addr = addr;
        self
    }

    /// The same entry once for each bank concerned (so each bank's log is whole on its
    /// own), or once without a bank when there is none.
    pub fn per_bank(self, banks: &[BankId]) -> Vec<Self> {
        if banks.is_empty() {
            return vec![self];
        }
        banks.iter().map(|b| self.clone().bank(*b)).collect()
    }

    /// The same entry with its stated purpose.
    #[must_use]
    pub fn purpose(mut self, purpose: impl Into<String>) -> Self {
        self.purpose = Some(purpose.into());
        self
    }
}

/// An entry as stored, with its place in the log.
#[derive(Debug, Clone, PartialEq)]
pub struct AuditRecord {
    /// Its position: increasing, never reused.
    pub seq: i64,
    /// What was recorded.
    pub entry: AuditEntry,
}

/// Which entries to read; every field left `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Acted by this user.
    pub actor: Option<Uuid>,
    /// Of this action.
    pub action: Option<AuditAction>,
    /// On subjects of this kind.
    pub subject_kind: Option<String>,
    /// On this subject id.
    pub subject_id: Option<String>,
    /// Concerning this bank.
    pub bank_id: Option<BankId>,
    /// At or after this time, UTC ms.
    pub since_ms: Option<i64>,
    /// Before this position (paging back from the newest).
    pub before_seq: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_action_has_a_distinct_stable_name_that_parses_back() {
        let names: std::collections::HashSet<_> =
            AuditAction::ALL.iter().map(|a| a.as_str()).collect();
        assert_eq!(names.len(), AuditAction::ALL.len());
        for a in AuditAction::ALL {
            assert_eq!(AuditAction::parse(a.as_str()), Some(a));
        }
        assert_eq!(AuditAction::SignIn.as_str(), "sign-in");
        assert_eq!(AuditAction::parse("sign_in"), None);
    }
}
