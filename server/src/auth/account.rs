//! Account security (A01): the policy's values, the lockout after failed sign-ins in a
//! row, password age and the rules a new password follows, and the password change that
//! the console's form and `POST /v1/password` share.
//!
//! Threats (THREATS.md): anyone on the internet guessing passwords (lockout per sign-in
//! name, kept in the database so every server and a restart see it; an unknown name locks
//! exactly as a real one, so the answers never say which names exist); a thief of a
//! password or a session (passwords age out, a change ends every other session, one
//! session per account).

use std::net::IpAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tandem_core::crypto::{Signer as _, to_hex};
use utoipa::ToSchema;

use super::SessionAuth;
use super::extractors::UserAuth;
use crate::AppState;
use crate::audit::{AuditAction, AuditEntry};
use crate::db::account::{PasswordChange, PasswordRecord};
use crate::error::{AppError, Problem};
use crate::throttle::{ClientAddr, Refusal, VerifyError};

/// The account rules of A01 (DOMAIN.md), part of [`crate::Config`] (`config.account`):
/// the defaults are the rule's; a deployment or a test sets other values there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPolicy {
    /// Failed sign-ins in a row that lock a sign-in name.
    pub max_failed_sign_ins: u32,
    /// How long a lock lasts.
    pub lockout: Duration,
    /// How old a password may get before it must be changed.
    pub password_max_age: Duration,
    /// The fewest characters a new password has.
    pub password_min_chars: usize,
    /// A new password may not be any of this many last passwords (the current one
    /// included).
    pub password_history: u32,
}

impl Default for AccountPolicy {
    fn default() -> Self {
        Self {
            max_failed_sign_ins: 5,
            lockout: Duration::from_secs(15 * 60),
            password_max_age: Duration::from_secs(30 * 24 * 3_600),
            password_min_chars: 12,
            password_history: 5,
        }
    }
}

impl AccountPolicy {
    /// How long a lock lasts, ms.
    pub fn lockout_ms(&self) -> i64 {
        i64::try_from(self.lockout.as_millis()).unwrap_or(i64::MAX / 4)
    }

    fn max_age_ms(&self) -> i64 {
        i64::try_from(self.password_max_age.as_millis()).unwrap_or(i64::MAX / 4)
    }

    /// Whether a password set at `changed_ms` must be changed at `now_ms`.
    pub fn password_expired(&self, changed_ms: i64, now_ms: i64) -> bool {
        now_ms.saturating_sub(changed_ms) > self.max_age_ms()
    }

    /// What is wrong with `new` for the account `login`, by the rules that need no hash.
    pub fn shape_problems(&self, login: &str, new: &str) -> Vec<PasswordProblem> {
        let mut problems = Vec::new();
        if new.chars().count() < self.password_min_chars {
            problems.push(PasswordProblem::TooShort);
        }
        let login = login.trim().to_lowercase();
        if !login.is_empty() && new.to_lowercase().contains(&login) {
            problems.push(PasswordProblem::ContainsLogin);
        }
        problems
    }
}

/// The key a sign-in name's failures are counted under: HMAC-SHA-256 of the name (case
/// folded) under a key derived from the server's signing key (Ed25519 signs
/// deterministically), so every server of one deployment counts a name alike, and the
/// database holds no name that was typed.
pub fn account_key(state: &AppState, login: &str) -> String {
    // Derived at each sign-in: a signature costs microseconds beside the password hash.
    let seed = state
        .signer
        .sign(b"tandem/login-failure-key/v1")
        .unwrap_or_else(|_| state.signer.public_key().key);
    let digest = tandem_core::crypto::sha256(&seed);
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, digest.as_bytes());
    to_hex(ring::hmac::sign(&key, login.trim().to_lowercase().as_bytes()).as_ref())
}

/// What is wrong with a new password.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PasswordProblem {
    /// The current password given is not the current password.
    CurrentWrong,
    /// Fewer characters than the policy asks.
    TooShort,
    /// It contains the sign-in name.
    ContainsLogin,
    /// It is one of the last passwords.
    Reused,
}

impl PasswordProblem {
    /// The problem `type` suffix of the JSON answer.
    pub fn kind(self) -> &'static str {
        match self {
            Self::CurrentWrong => "password-current-wrong",
            Self::TooShort => "password-too-short",
            Self::ContainsLogin => "password-contains-login",
            Self::Reused => "password-reused",
        }
    }
}

/// What a password change came to.
pub(crate) enum PasswordOutcome {
    /// Changed; every other session of the user ended.
    Changed,
    /// Refused, for these reasons.
    Refused(Vec<PasswordProblem>),
    /// Not checked: too many failures, or every password check busy.
    Throttled(Refusal),
}

fn verify_failed(e: VerifyError) -> Result<PasswordOutcome, AppError> {
    match e {
        VerifyError::Refused(refusal) => Ok(PasswordOutcome::Throttled(refusal)),
        VerifyError::Failed(e) => Err(AppError::Internal(e)),
    }
}

/// Changes the signed-in user's password: the current one must be given, the new one
/// follow the policy and be none of the last ones; every hash runs on the bounded pool.
/// A wrong current password counts against the account's in-memory throttle (a thief of a
/// session guessing the password to keep the account).
pub(crate) async fn change_password(
    state: &AppState,
    user: &UserAuth,
    client: Option<IpAddr>,
    current: String,
    new: String,
) -> Result<PasswordOutcome, AppError> {
    let policy = &state.config.account;
    let Some(record) = state.db.password_record(user.user.user_id).await? else {
        return Err(AppError::Unauthorized);
    };
    let throttle = &state.login_throttle;
    if let Err(refusal) = throttle.check(&record.login, client) {
        return Ok(PasswordOutcome::Throttled(refusal));
    }
    let mut problems = policy.shape_problems(&record.login, &new);
    match throttle
        .verify(current.clone(), record.password_hash.clone())
        .await
    {
        Ok(true) => {}
        Ok(false) => {
            throttle.failed(&record.login, client);
            problems.insert(0, PasswordProblem::CurrentWrong);
        }
        Err(e) => return verify_failed(e),
    }
    if problems.is_empty() {
        match reused(state, &record, &current, &new).await {
            Ok(true) => problems.push(PasswordProblem::Reused),
            Ok(false) => {}
            Err(e) => return verify_failed(e),
        }
    }
    if !problems.is_empty() {
        return refuse(state, user, client, problems).await;
    }
    let new_hash = match throttle.hash(new).await {
        Ok(hash) => hash,
        Err(e) => return verify_failed(e),
    };
    let changed = state
        .db
        .change_password(&PasswordChange {
            user: user.user.user_id,
            old_hash: &record.password_hash,
            new_hash: &new_hash,
            now_ms: state.now_ms(),
            keep_session: user.session_digest(),
            keep_history: policy.password_history.saturating_sub(1),
            client,
        })
        .await?;
    if !changed {
        // Changed meanwhile in another session: the current password given is no longer.
        return refuse(state, user, client, vec![PasswordProblem::CurrentWrong]).await;
    }
    Ok(PasswordOutcome::Changed)
}

/// Whether `new` is the current password or one of the history the policy compares.
async fn reused(
    state: &AppState,
    record: &PasswordRecord,
    current: &str,
    new: &str,
) -> Result<bool, VerifyError> {
    if new == current {
        return Ok(true);
    }
    let earlier = state.config.account.password_history.saturating_sub(1);
    let earlier = usize::try_from(earlier).unwrap_or(usize::MAX);
    for phc in record.history.iter().take(earlier) {
        if state
            .login_throttle
            .verify(new.to_owned(), phc.clone())
            .await?
        {
            return Ok(true);
        }
    }
    Ok(false)
}

async fn refuse(
    state: &AppState,
    user: &UserAuth,
    client: Option<IpAddr>,
    problems: Vec<PasswordProblem>,
) -> Result<PasswordOutcome, AppError> {
    let reasons: Vec<_> = problems.iter().map(|p| p.kind()).collect();
    let entry = AuditEntry::about_user(
        state.now_ms(),
        AuditAction::PasswordChangeRefused,
        Some(user.user.user_id),
    )
    .by(user.user.user_id)
    .from_addr(client)
    .detail(json!({ "reasons": reasons }));
    state.db.append_audit(&entry).await?;
    Ok(PasswordOutcome::Refused(problems))
}

/// A password change.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeRequest {
    /// The current password.
    pub current_password: String,
    /// The new password: at least 12 characters (the policy's value), not containing the
    /// sign-in name, none of the last 5 passwords.
    pub new_password: String,
}

/// Changes the signed-in user's password (A01); the one call a session whose password
/// expired may make besides signing out. Every other session of the user ends.
#[utoipa::path(post, path = "/v1/password", tag = "console", request_body = PasswordChangeRequest,
    security(("session" = [])),
    responses(
        (status = 204, description = "Changed; the user's other sessions ended"),
        (status = 400, description = "Malformed body", body = Problem,
            content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Refused: `password-current-wrong`, \
            `password-too-short`, `password-contains-login` or `password-reused` \
            (the first reason; `detail` names them all)", body = Problem,
            content_type = "application/problem+json"),
        (status = 429, description = "Too many failed checks for this account or address; \
            `Retry-After` says when to try again", body = Problem,
            content_type = "application/problem+json"),
        (status = 503, description = "Too many passwords being checked at once; \
            `Retry-After` says when to try again", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn change_password_json(
    State(state): State<AppState>,
    ClientAddr(client): ClientAddr,
    SessionAuth(user): SessionAuth,
    body: Result<Json<PasswordChangeRequest>, JsonRejection>,
) -> Result<Response, AppError> {
    let Json(req) = body?;
    match change_password(
        &state,
        &user,
        client,
        req.current_password,
        req.new_password,
    )
    .await?
    {
        PasswordOutcome::Changed => Ok(StatusCode::NO_CONTENT.into_response()),
        PasswordOutcome::Throttled(refusal) => Ok(super::sessions::refused(refusal).await),
        PasswordOutcome::Refused(problems) => {
            let first = problems
                .first()
                .copied()
                .unwrap_or(PasswordProblem::TooShort);
            let all: Vec<_> = problems.iter().map(|p| p.kind()).collect();
            let min = state.config.account.password_min_chars;
            let history = state.config.account.password_history;
            Err(AppError::problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                first.kind(),
                "Password refused",
                format!(
                    "Refused: {}. A new password has at least {min} characters, does not \
                     contain the sign-in name and is none of the last {history} passwords; \
                     the current password must be given.",
                    all.join(", ")
                ),
            )
            .with_rule("A01"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_must_be_long_enough_and_must_not_contain_the_login() {
        let policy = AccountPolicy::default();
        assert_eq!(
            policy.shape_problems("manager", "short"),
            [PasswordProblem::TooShort]
        );
        assert_eq!(
            policy.shape_problems("manager", "my-MANAGER-pass-2026"),
            [PasswordProblem::ContainsLogin]
        );
        assert!(
            policy
                .shape_problems("manager", "长城外访十二个字的口令啊")
                .is_empty()
        );
        assert!(
            policy
                .shape_problems("manager", "correct horse battery")
                .is_empty()
        );
    }

    #[test]
    fn a_password_expires_after_thirty_days() {
        let policy = AccountPolicy::default();
        let day = 86_400_000;
        assert!(!policy.password_expired(0, 30 * day));
        assert!(policy.password_expired(0, 30 * day + 1));
    }
}
