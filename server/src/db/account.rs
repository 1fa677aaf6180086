//! Account security (A01) in the database: failed sign-ins and lockouts per sign-in name,
//! one session per account, password changes with their history. What changes an account
//! writes its audit entry in the same transaction.

use std::net::IpAddr;

use async_trait::async_trait;
use serde_json::json;
use uuid::Uuid;

use super::DbError;
use crate::audit::{AuditAction, AuditEntry};

/// Why a session ended before its time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    /// Its user signed out.
    SignedOut,
    /// Its user signed in elsewhere (one session per account).
    Replaced,
    /// Its user changed the password in another session.
    PasswordChanged,
}

impl SessionEnd {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SignedOut => "signed-out",
            Self::Replaced => "replaced",
            Self::PasswordChanged => "password-changed",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::SignedOut, Self::Replaced, Self::PasswordChanged]
            .into_iter()
            .find(|e| e.as_str() == s)
    }
}

/// A sign-in name's failures after one more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginFailure {
    /// Failures in a row, this one included.
    pub failures: i64,
    /// Until when the name is locked, if it is.
    pub locked_until_ms: Option<i64>,
    /// Whether this failure locked it.
    pub newly_locked: bool,
}

/// A session to start for a user whose password was just checked.
#[derive(Debug, Clone)]
pub struct SessionStart<'a> {
    /// SHA-256 hex of the new session's token.
    pub token_hash: &'a str,
    /// Who signed in.
    pub user: Uuid,
    /// Now, UTC ms.
    pub now_ms: i64,
    /// When the session ends, UTC ms.
    pub expires_ms: i64,
    /// The sign-in name's failure key, cleared by the success.
    pub account_key: &'a str,
    /// The client's address, for the audit log.
    pub client: Option<IpAddr>,
    /// Where the sign-in came from (`console`, `api`), for the audit log.
    pub via: &'static str,
}

/// What a password change compares against.
#[derive(Debug, Clone)]
pub struct PasswordRecord {
    /// The sign-in name (a password may not contain it).
    pub login: String,
    /// The current argon2id PHC string.
    pub password_hash: String,
    /// Earlier PHC strings, newest first.
    pub history: Vec<String>,
}

/// A password change, checked already.
#[derive(Debug, Clone)]
pub struct PasswordChange<'a> {
    /// Whose.
    pub user: Uuid,
    /// The hash the check was made against: the change applies only if it is still current.
    pub old_hash: &'a str,
    /// The new argon2id PHC string.
    pub new_hash: &'a str,
    /// Now, UTC ms.
    pub now_ms: i64,
    /// The session that made the change, which stays; every other one ends.
    pub keep_session: &'a str,
    /// Earlier hashes to keep (the policy compares this many besides the current one).
    pub keep_history: u32,
    /// The client's address, for the audit log.
    pub client: Option<IpAddr>,
}

/// Storage for account security.
#[async_trait]
pub trait AccountDb: Send + Sync {
    /// Until when the sign-in name with this key is locked, if it is at `now_ms`.
    async fn login_locked_until(
        &self,
        account_key: &str,
        now_ms: i64,
    ) -> Result<Option<i64>, DbError>;

    /// Counts a failed sign-in of the key; the `max_failures`-th in a row locks it for
    /// `lock_ms`. A lock that has run out starts the count again.
    async fn record_login_failure(
        &self,
        account_key: &str,
        now_ms: i64,
        max_failures: u32,
        lock_ms: i64,
    ) -> Result<LoginFailure, DbError>;

    /// Starts a session in one transaction: ends the user's other live sessions (replaced),
    /// clears the name's failures, and writes `sign-in` (and `session-replaced` when
    /// sessions ended) to the audit log. Returns how many sessions it ended.
    async fn begin_session(&self, start: &SessionStart<'_>) -> Result<u64, DbError>;

    /// Why the session with this token hash ended, if it ended for a reason.
    async fn session_end_reason(&self, token_hash: &str) -> Result<Option<SessionEnd>, DbError>;

    /// The current password and its history, for an enabled user with a password.
    async fn password_record(&self, user: Uuid) -> Result<Option<PasswordRecord>, DbError>;

    /// Changes the password in one transaction: the new hash (if the old one is still
    /// current), the old one into the history (trimmed to `keep_history`), the user's other
    /// sessions ended, `password-changed` in the audit log. Returns `false`, changing
    /// nothing, when the password changed meanwhile.
    async fn change_password(&self, change: &PasswordChange<'_>) -> Result<bool, DbError>;
}

const RECORD_FAILURE: &str = "INSERT INTO login_failures \
     (account_key, failures, last_failed_ms, locked_until_ms) \
     VALUES ($1, 1, $2, CASE WHEN 1 >= $3 THEN $2 + $4 ELSE NULL END) \
     ON CONFLICT (account_key) DO UPDATE SET \
     failures = CASE WHEN login_failures.locked_until_ms IS NOT NULL \
         AND login_failures.locked_until_ms <= $2 THEN 1 \
         ELSE login_failures.failures + 1 END, \
     last_failed_ms = $2, \
     locked_until_ms = CASE \
         WHEN login_failures.locked_until_ms IS NOT NULL \
             AND login_failures.locked_until_ms > $2 THEN login_failures.locked_until_ms \
         WHEN login_failures.locked_until_ms IS NULL \
             AND login_failures.failures + 1 >= $3 THEN $2 + $4 \
         WHEN login_failures.locked_until_ms IS NOT NULL AND 1 >= $3 THEN $2 + $4 \
         ELSE NULL END \
     RETURNING CAST(failures AS BIGINT), locked_until_ms";

macro_rules! impl_account_db {
    ($db:ty) => {
        #[async_trait]
        impl AccountDb for $db {
            async fn login_locked_until(
                &self,
                account_key: &str,
                now_ms: i64,
            ) -> Result<Option<i64>, DbError> {
                Ok(sqlx::query_scalar(
                    "SELECT locked_until_ms FROM login_failures \
                     WHERE account_key = $1 AND locked_until_ms > $2",
                )
                .bind(account_key)
                .bind(now_ms)
                .fetch_optional(&self.pool)
                .await?)
            }

            async fn record_login_failure(
                &self,
                account_key: &str,
                now_ms: i64,
                max_failures: u32,
                lock_ms: i64,
            ) -> Result<LoginFailure, DbError> {
                let (failures, locked_until_ms): (i64, Option<i64>) =
                    sqlx::query_as(RECORD_FAILURE)
                        .bind(account_key)
                        .bind(now_ms)
                        .bind(i64::from(max_failures))
                        .bind(lock_ms)
                        .fetch_one(&self.pool)
                        .await?;
                Ok(LoginFailure {
                    failures,
                    locked_until_ms,
                    newly_locked: locked_until_ms == Some(now_ms + lock_ms),
                })
            }

            async fn begin_session(&self, start: &SessionStart<'_>) -> Result<u64, DbError> {
                let mut tx = self.pool.begin().await?;
                let user = start.user.to_string();
                // Written first, so SQLite takes its write lock before anything else.
                let replaced = sqlx::query(
                    "UPDATE sessions SET revoked_ms = $1, revoked_reason = 'replaced' \
                     WHERE user_id = $2 AND revoked_ms IS NULL AND expires_ms > $1",
                )
                .bind(start.now_ms)
                .bind(&user)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                sqlx::query(
                    "INSERT INTO sessions (token_hash, user_id, created_ms, expires_ms) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(start.token_hash)
                .bind(&user)
                .bind(start.now_ms)
                .bind(start.expires_ms)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM login_failures WHERE account_key = $1")
                    .bind(start.account_key)
                    .execute(&mut *tx)
                    .await?;
                let signed_in =
                    AuditEntry::about_user(start.now_ms, AuditAction::SignIn, Some(start.user))
                        .by(start.user)
                        .from_addr(start.client)
                        .detail(json!({"via": start.via, "replaced_sessions": replaced}));
                Self::append_audit_in(&mut tx, &signed_in).await?;
                if replaced > 0 {
                    let ended = AuditEntry::about_user(
                        start.now_ms,
                        AuditAction::SessionReplaced,
                        Some(start.user),
                    )
                    .by(start.user)
                    .from_addr(start.client)
                    .detail(json!({"sessions": replaced}));
                    Self::append_audit_in(&mut tx, &ended).await?;
                }
                tx.commit().await?;
                Ok(replaced)
            }

            async fn session_end_reason(
                &self,
                token_hash: &str,
            ) -> Result<Option<SessionEnd>, DbError> {
                let reason: Option<Option<String>> =
                    sqlx::query_scalar("SELECT revoked_reason FROM sessions WHERE token_hash = $1")
                        .bind(token_hash)
                        .fetch_optional(&self.pool)
                        .await?;
                reason
                    .flatten()
                    .map(|r| SessionEnd::parse(&r).ok_or(DbError::Corrupt("sessions.revoked_reason")))
                    .transpose()
            }

            async fn password_record(
                &self,
                user: Uuid,
            ) -> Result<Option<PasswordRecord>, DbError> {
                let row: Option<(String, Option<String>)> = sqlx::query_as(
                    "SELECT login, password_hash FROM users \
                     WHERE id = $1 AND disabled_ms IS NULL",
                )
                .bind(user.to_string())
                .fetch_optional(&self.pool)
                .await?;
                let Some((login, Some(password_hash))) = row else {
                    return Ok(None);
                };
                let history: Vec<String> = sqlx::query_scalar(
                    "SELECT password_hash FROM password_history WHERE user_id = $1 \
                     ORDER BY replaced_ms DESC",
                )
                .bind(user.to_string())
                .fetch_all(&self.pool)
                .await?;
                Ok(Some(PasswordRecord {
                    login,
                    password_hash,
                    history,
                }))
            }

            async fn change_password(&self, change: &PasswordChange<'_>) -> Result<bool, DbError> {
                let mut tx = self.pool.begin().await?;
                let user = change.user.to_string();
                let updated = sqlx::query(
                    "UPDATE users SET password_hash = $1, password_changed_ms = $2 \
                     WHERE id = $3 AND password_hash = $4 AND disabled_ms IS NULL",
                )
                .bind(change.new_hash)
                .bind(change.now_ms)
                .bind(&user)
                .bind(change.old_hash)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if updated != 1 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO password_history (user_id, password_hash, replaced_ms) \
                     VALUES ($1, $2, $3)",
                )
                .bind(&user)
                .bind(change.old_hash)
                .bind(change.now_ms)
                .execute(&mut *tx)
                .await?;
                // Older hashes than the policy compares are a liability, not a defence.
                sqlx::query(
                    "DELETE FROM password_history WHERE user_id = $1 AND password_hash NOT IN \
                     (SELECT password_hash FROM password_history WHERE user_id = $1 \
                      ORDER BY replaced_ms DESC LIMIT $2)",
                )
                .bind(&user)
                .bind(i64::from(change.keep_history))
                .execute(&mut *tx)
                .await?;
                let ended = sqlx::query(
                    "UPDATE sessions SET revoked_ms = $1, revoked_reason = 'password-changed' \
                     WHERE user_id = $2 AND revoked_ms IS NULL AND token_hash <> $3",
                )
                .bind(change.now_ms)
                .bind(&user)
                .bind(change.keep_session)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                let entry = AuditEntry::about_user(
                    change.now_ms,
                    AuditAction::PasswordChanged,
                    Some(change.user),
                )
                .by(change.user)
                .from_addr(change.client)
                .detail(json!({"ended_sessions": ended}));
                Self::append_audit_in(&mut tx, &entry).await?;
                tx.commit().await?;
                Ok(true)
            }
        }
    };
}

impl_account_db!(super::SqliteDb);
impl_account_db!(super::PgDb);
