//! The audit log's storage (`audit_log`, append-only and hash-chained: see
//! `migrations/*/0007_*.sql` and `crate::audit::chain`), its head and its anchors in the
//! transparency log.
//!
//! [`AuditDb::append_audit`] appends on its own; an area that records a change in a
//! transaction appends in the same one with the backend's `append_audit_in`
//! (`SqliteDb::append_audit_in(&mut *tx, &entry)` in SQLite's implementation of its macro,
//! `PgDb::append_audit_in` in PostgreSQL's: `Self::append_audit_in` inside the macro), so
//! the entry commits or rolls back with what it records.

use async_trait::async_trait;
use tandem_core::crypto::{Digest, Signer};
use tandem_core::model::Signed;
use tandem_core::tlog::Checkpoint;

use super::DbError;
use super::audit_chain::{AuditChain, ChainPage};
use crate::audit::chain::StoredEntry;
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

    /// Up to `limit` rows after position `after`, in order, as stored, with their stored
    /// chain hash: what `tandem audit verify` reads.
    async fn audit_rows_after(
        &self,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(StoredEntry, String)>, DbError>;

    /// Every row after position `after`, in order, as stored, with its stored chain hash,
    /// in pages of up to `page` rows: what `tandem audit verify` reads
    /// (`super::audit_chain`). Rows appended meanwhile may or may not be included.
    async fn audit_chain(&self, after: i64, page: u32) -> Result<AuditChain, DbError>;

    /// The head: the newest position and its chain hash (0 and zeros when empty).
    async fn audit_head(&self) -> Result<(i64, String), DbError>;

    /// Every anchor of the audit log in the transparency log, oldest first.
    async fn audit_anchors(&self) -> Result<Vec<AuditAnchor>, DbError>;

    /// Appends the audit log's head to the transparency log, unless the newest anchor
    /// already holds it (then `None`): the leaf, its nodes, the new checkpoint and the
    /// anchor row in one transaction.
    async fn anchor_audit_head(
        &self,
        signer: &dyn Signer,
        now_ms: i64,
    ) -> Result<Option<(AuditAnchor, Signed<Checkpoint>)>, DbError>;
}

/// The audit log's head as appended to the transparency log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditAnchor {
    /// The log entry's index.
    pub log_index: u64,
    /// Position of the audit log's newest entry then.
    pub audit_seq: i64,
    /// Its chain hash (hex).
    pub head_hash: String,
    /// When, UTC ms.
    pub anchored_ms: i64,
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

const AUDIT_INSERT: &str = "INSERT INTO audit_log (seq, at_ms, actor_user_id, action, \
     subject_kind, subject_id, bank_id, detail, client_addr, purpose, entry_hash) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";

/// Takes the head (its row lock orders appends across servers) and the next position.
const AUDIT_TAKE_HEAD: &str =
    "UPDATE audit_head SET seq = seq + 1 WHERE id = 1 RETURNING seq, hash";

const AUDIT_ROWS_AFTER: &str = "SELECT seq, at_ms, actor_user_id, action, subject_kind, \
     subject_id, bank_id, detail, client_addr, purpose, entry_hash FROM audit_log \
     WHERE seq > $1 ORDER BY seq LIMIT $2";

fn chain_row(r: ChainRow) -> (StoredEntry, String) {
    (
        StoredEntry {
            seq: r.seq,
            at_ms: r.at_ms,
            actor_user_id: r.actor_user_id,
            action: r.action,
            subject_kind: r.subject_kind,
            subject_id: r.subject_id,
            bank_id: r.bank_id,
            detail: r.detail,
            client_addr: r.client_addr,
            purpose: r.purpose,
        },
        r.entry_hash,
    )
}

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

row_by_name! {
    /// An `audit_log` row with its chain hash.
    pub(super) struct ChainRow {
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
        entry_hash: String,
    }
}

fn anchor_of(
    (log_index, audit_seq, head_hash, anchored_ms): (i64, i64, String, i64),
) -> Result<AuditAnchor, DbError> {
    Ok(AuditAnchor {
        log_index: u64::try_from(log_index)
            .map_err(|_| DbError::Corrupt("audit_anchors.log_index"))?,
        audit_seq,
        head_hash,
        anchored_ms,
    })
}

macro_rules! impl_audit_db {
    ($db:ty, $conn:ty) => {
        impl $db {
            /// Appends `entry` on `conn`, inside the caller's transaction (which the head's
            /// row lock then orders with every other append); returns its position.
            pub async fn append_audit_in(
                conn: &mut $conn,
                entry: &AuditEntry,
            ) -> Result<i64, DbError> {
                let (seq, prev): (i64, String) = sqlx::query_as(AUDIT_TAKE_HEAD)
                    .fetch_one(&mut *conn)
                    .await?;
                let prev: Digest = prev
                    .parse()
                    .map_err(|_| DbError::Corrupt("audit_head.hash"))?;
                let stored = StoredEntry::of(seq, entry);
                let hash = stored.chain_hash(&prev).to_hex();
                sqlx::query(AUDIT_INSERT)
                    .bind(seq)
                    .bind(stored.at_ms)
                    .bind(&stored.actor_user_id)
                    .bind(&stored.action)
                    .bind(&stored.subject_kind)
                    .bind(&stored.subject_id)
                    .bind(&stored.bank_id)
                    .bind(&stored.detail)
                    .bind(&stored.client_addr)
                    .bind(&stored.purpose)
                    .bind(&hash)
                    .execute(&mut *conn)
                    .await?;
                sqlx::query("UPDATE audit_head SET hash = $1 WHERE id = 1")
                    .bind(&hash)
                    .execute(&mut *conn)
                    .await?;
                Ok(seq)
            }
        }

        impl $db {
            async fn chain_page(
                pool: &sqlx::Pool<<$conn as sqlx::Connection>::Database>,
                after: i64,
                limit: u32,
            ) -> Result<Vec<ChainRow>, DbError> {
                Ok(sqlx::query_as(AUDIT_ROWS_AFTER)
                    .bind(after)
                    .bind(i64::from(limit))
                    .fetch_all(pool)
                    .await?)
            }

            /// The rows through the pool, each page after the last position read (what
            /// the verifier read before rows on a SQLite file were read with rusqlite).
            fn audit_chain_through_pool(&self, after: i64, page: u32) -> AuditChain {
                let pool = self.pool.clone();
                AuditChain::through_pool(
                    after,
                    Box::new(move |after| {
                        let pool = pool.clone();
                        Box::pin(async move {
                            let rows = Self::chain_page(&pool, after, page).await?;
                            Ok(rows.into_iter().map(chain_row).collect::<ChainPage>())
                        })
                    }),
                )
            }
        }

        #[async_trait]
        impl AuditDb for $db {
            async fn append_audit(&self, entry: &AuditEntry) -> Result<i64, DbError> {
                let mut tx = self.pool.begin().await?;
                let seq = Self::append_audit_in(&mut tx, entry).await?;
                tx.commit().await?;
                Ok(seq)
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

            async fn audit_rows_after(
                &self,
                after: i64,
                limit: u32,
            ) -> Result<Vec<(StoredEntry, String)>, DbError> {
                Ok(Self::chain_page(&self.pool, after, limit)
                    .await?
                    .into_iter()
                    .map(chain_row)
                    .collect())
            }

            async fn audit_chain(&self, after: i64, page: u32) -> Result<AuditChain, DbError> {
                Ok(self.read_audit_chain(after, page))
            }

            async fn audit_head(&self) -> Result<(i64, String), DbError> {
                Ok(
                    sqlx::query_as("SELECT seq, hash FROM audit_head WHERE id = 1")
                        .fetch_one(&self.pool)
                        .await?,
                )
            }

            async fn audit_anchors(&self) -> Result<Vec<AuditAnchor>, DbError> {
                let rows: Vec<(i64, i64, String, i64)> = sqlx::query_as(
                    "SELECT log_index, audit_seq, head_hash, anchored_ms FROM audit_anchors \
                     ORDER BY log_index",
                )
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter().map(anchor_of).collect()
            }

            async fn anchor_audit_head(
                &self,
                signer: &dyn Signer,
                now_ms: i64,
            ) -> Result<Option<(AuditAnchor, Signed<Checkpoint>)>, DbError> {
                let mut tx = self.pool.begin().await?;
                // The head's row lock first: no append slips between reading it and
                // anchoring it, and two servers anchoring at once take turns.
                let (seq, hash): (i64, String) = sqlx::query_as(
                    "UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash",
                )
                .fetch_one(&mut *tx)
                .await?;
                let newest: Option<i64> =
                    sqlx::query_scalar("SELECT MAX(audit_seq) FROM audit_anchors")
                        .fetch_one(&mut *tx)
                        .await?;
                if seq == 0 || newest == Some(seq) {
                    tx.rollback().await?;
                    return Ok(None);
                }
                let head: Digest = hash
                    .parse()
                    .map_err(|_| DbError::Corrupt("audit_head.hash"))?;
                let leaf = tandem_core::tlog::audit_head_leaf_hash(
                    u64::try_from(seq).map_err(|_| DbError::Corrupt("audit_head.seq"))?,
                    &head,
                );
                let (appended, checkpoint) =
                    Self::append_leaf_in(&mut tx, leaf, signer, now_ms).await?;
                let log_index = i64::try_from(appended.index)
                    .map_err(|_| DbError::Corrupt("tlog_head.size"))?;
                sqlx::query(
                    "INSERT INTO audit_anchors (log_index, audit_seq, head_hash, anchored_ms) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(log_index)
                .bind(seq)
                .bind(&hash)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(Some((
                    AuditAnchor {
                        log_index: appended.index,
                        audit_seq: seq,
                        head_hash: hash,
                        anchored_ms: now_ms,
                    },
                    checkpoint,
                )))
            }
        }
    };
}

impl_audit_db!(super::SqliteDb, sqlx::SqliteConnection);
impl_audit_db!(super::PgDb, sqlx::PgConnection);

impl super::SqliteDb {
    /// With `rusqlite` on the file when there is one (see `super::audit_chain`).
    fn read_audit_chain(&self, after: i64, page: u32) -> AuditChain {
        match super::audit_chain::sqlite_file(&self.pool.connect_options()) {
            Some(path) => super::audit_chain::read_sqlite_file(path, after, page),
            None => self.audit_chain_through_pool(after, page),
        }
    }
}

impl super::PgDb {
    fn read_audit_chain(&self, after: i64, page: u32) -> AuditChain {
        self.audit_chain_through_pool(after, page)
    }
}
