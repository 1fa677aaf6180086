//! The audit log's storage (`audit_log`, append-only: see `migrations/*/0007_*.sql`).
//!
//! [`AuditDb::append_audit`] appends on its own; an area that records a change in a
//! transaction appends in the same one with the backend's `append_audit_in`
//! (`SqliteDb::append_audit_in(&mut *tx, &entry)` in SQLite's implementation of its macro,
//! `PgDb::append_audit_in` in PostgreSQL's: `Self::append_audit_in` inside the macro), so
//! the entry commits or rolls back with what it records.

use async_trait::async_trait;

use super::DbError;
use crate::audit::{AuditAction, AuditEntry, AuditFilter, AuditRecord};

/// Storage for the audit log.
#[async_trait]
pub trait AuditDb: Send + Sync {
    /// Appends an entry; returns its position.
    async fn append_audit(&self, entry: &AuditEntry) -> Result<i64, DbError>;

    /// Up to `limit` entries matching `filter`, newest first.
    async fn audit_entries(
        &self,
        filter: &AuditFilter,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, DbError>;
}

row_by_name! {
    /// An `audit_log` row as [`AUDIT_SELECT`] reads it.
    pub(super) struct AuditRow {
        seq: i64,
        at_ms: i64,
        actor_user_id: Option<String>,
        action: String,
        subject_kind: String,
        subject_id: Option<String>,
        bank_id: Option<String>,
        detail: String,
        client_addr: Option<String>,
        purpose: Option<String>,
    }
}

const AUDIT_INSERT: &str = "INSERT INTO audit_log (at_ms, actor_user_id, action, subject_kind, \
     subject_id, bank_id, detail, client_addr, purpose) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING seq";

/// Every condition is skipped when its value is NULL, so one text serves every filter.
const AUDIT_SELECT: &str = "SELECT seq, at_ms, actor_user_id, action, subject_kind, \
     subject_id, bank_id, detail, client_addr, purpose FROM audit_log \
     WHERE ($1 IS NULL OR actor_user_id = $1) AND ($2 IS NULL OR action = $2) \
     AND ($3 IS NULL OR subject_kind = $3) AND ($4 IS NULL OR subject_id = $4) \
     AND ($5 IS NULL OR bank_id = $5) AND ($6 IS NULL OR at_ms >= $6) \
     AND ($7 IS NULL OR seq < $7) ORDER BY seq DESC LIMIT $8";

pub(super) fn record(row: AuditRow) -> Result<AuditRecord, DbError> {
    Ok(AuditRecord {
        seq: row.seq,
        entry: AuditEntry {
            at_ms: row.at_ms,
            actor: row
                .actor_user_id
                .map(|s| s.parse())
                .transpose()
                .map_err(|_| DbError::Corrupt("audit_log.actor_user_id"))?,
            action: AuditAction::parse(&row.action).ok_or(DbError::Corrupt("audit_log.action"))?,
            subject_kind: row.subject_kind,
            subject_id: row.subject_id,
            bank_id: row
                .bank_id
                .map(|s| s.parse())
                .transpose()
                .map_err(|_| DbError::Corrupt("audit_log.bank_id"))?,
            detail: serde_json::from_str(&row.detail)
                .map_err(|_| DbError::Corrupt("audit_log.detail"))?,
            client_addr: row
                .client_addr
                .map(|s| s.parse())
                .transpose()
                .map_err(|_| DbError::Corrupt("audit_log.client_addr"))?,
            purpose: row.purpose,
        },
    })
}

macro_rules! impl_audit_db {
    ($db:ty, $conn:ty) => {
        impl $db {
            /// Appends `entry` on `conn`, inside the caller's transaction; returns its
            /// position.
            pub async fn append_audit_in(
                conn: &mut $conn,
                entry: &AuditEntry,
            ) -> Result<i64, DbError> {
                let seq: i64 = sqlx::query_scalar(AUDIT_INSERT)
                    .bind(entry.at_ms)
                    .bind(entry.actor.map(|u| u.to_string()))
                    .bind(entry.action.as_str())
                    .bind(&entry.subject_kind)
                    .bind(entry.subject_id.as_deref())
                    .bind(entry.bank_id.map(|b| b.to_string()))
                    .bind(entry.detail.to_string())
                    .bind(entry.client_addr.map(|a| a.to_string()))
                    .bind(entry.purpose.as_deref())
                    .fetch_one(&mut *conn)
                    .await?;
                Ok(seq)
            }
        }

        #[async_trait]
        impl AuditDb for $db {
            async fn append_audit(&self, entry: &AuditEntry) -> Result<i64, DbError> {
                let mut conn = self.pool.acquire().await?;
                Self::append_audit_in(&mut conn, entry).await
            }

            async fn audit_entries(
                &self,
                filter: &AuditFilter,
                limit: u32,
            ) -> Result<Vec<AuditRecord>, DbError> {
                let rows: Vec<AuditRow> = sqlx::query_as(AUDIT_SELECT)
                    .bind(filter.actor.map(|u| u.to_string()))
                    .bind(filter.action.map(AuditAction::as_str))
                    .bind(filter.subject_kind.as_deref())
                    .bind(filter.subject_id.as_deref())
                    .bind(filter.bank_id.map(|b| b.to_string()))
                    .bind(filter.since_ms)
                    .bind(filter.before_seq)
                    .bind(i64::from(limit))
                    .fetch_all(&self.pool)
                    .await?;
                rows.into_iter().map(record).collect()
            }
        }
    };
}

impl_audit_db!(super::SqliteDb, sqlx::SqliteConnection);
impl_audit_db!(super::PgDb, sqlx::PgConnection);
