//! The sync feed (server-signed documents phones pull), bank policies and receipt-number
//! ranges.
//!
//! Every feed row takes its `seq` from the one-row `feed_head`, moved forward inside the
//! writing transaction: the row lock (PostgreSQL) or the write lock (SQLite) is held until
//! commit, so rows become visible in `seq` order and a phone's cursor never passes a row
//! that commits later.

use async_trait::async_trait;
use tandem_core::model::{AgentId, ApprovalId, BankId, DeviceId};
use uuid::Uuid;

use super::DbError;

/// Moves the feed's sequence forward and returns the new value.
pub(crate) const NEXT_SEQ: &str =
    "UPDATE feed_head SET last_seq = last_seq + 1 WHERE id = 1 RETURNING last_seq";

/// Inserts a feed row; a document already announced (same kind and subject) is kept as it
/// was, so its bytes never change.
pub(crate) const INSERT_FEED: &str = "INSERT INTO sync_feed (seq, kind, subject, bank_id, \
    approval_id, device_id, payload, created_ms) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
    ON CONFLICT (kind, subject) DO NOTHING";

/// Binds a [`FeedRow`], its `seq` and time to a query of [`INSERT_FEED`].
macro_rules! bind_feed_row {
    ($q:expr, $row:expr, $seq:expr, $now:expr) => {
        $q.bind($seq)
            .bind($row.kind)
            .bind($row.subject.clone())
            .bind($row.bank_id.map(|b| b.to_string()))
            .bind($row.approval_id.map(|a| a.to_string()))
            .bind($row.device_id.map(|d| d.to_string()))
            .bind($row.payload.clone())
            .bind($now)
    };
}
pub(crate) use bind_feed_row;

/// One document for the feed.
#[derive(Debug, Clone)]
pub struct FeedRow {
    /// `policy`, `assignment`, `serial_range` or `revocation`.
    pub kind: &'static str,
    /// What it is about, unique per kind.
    pub subject: String,
    /// For `policy`: the bank whose agents see it.
    pub bank_id: Option<BankId>,
    /// For `assignment`: the approval whose team sees it.
    pub approval_id: Option<ApprovalId>,
    /// For `serial_range`: the device it was issued to; for `revocation`: the revoked one.
    pub device_id: Option<DeviceId>,
    /// The JSON answered as is.
    pub payload: String,
}

/// A row of the feed as a phone receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedEntry {
    /// Position in the feed.
    pub seq: i64,
    /// Kind of document.
    pub kind: String,
    /// The stored JSON.
    pub payload: String,
}

/// A revoked device that shares a team with the syncing one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevokedTeammate {
    /// The revoked device.
    pub device_id: DeviceId,
    /// Its agent.
    pub agent_id: AgentId,
    /// When it was revoked, UTC ms.
    pub revoked_at_ms: i64,
}

/// A bank's policy as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPolicy {
    /// Version.
    pub version: i64,
    /// `tandem_core::model::Policy` as JSON.
    pub body: String,
    /// When set, UTC ms.
    pub created_ms: i64,
}

/// A write that signs a document inside its transaction could not complete.
#[derive(Debug, thiserror::Error)]
pub enum FeedWriteError {
    /// The database refused.
    #[error(transparent)]
    Db(#[from] DbError),
    /// The document could not be signed (nothing was stored).
    #[error("signing failed: {0}")]
    Sign(String),
}

impl From<sqlx::Error> for FeedWriteError {
    fn from(e: sqlx::Error) -> Self {
        Self::Db(DbError::Sqlx(e))
    }
}

/// Builds the documents of a write once the transaction knows the values they hold.
pub type Build<'a, A, R> = &'a (dyn Fn(A) -> Result<R, String> + Send + Sync);

/// Storage of the feed, policies and receipt-number ranges.
#[async_trait]
pub trait SyncDb: Send + Sync {
    /// The newest policy of a bank.
    async fn latest_policy(&self, bank: BankId) -> Result<Option<StoredPolicy>, DbError>;
    /// Stores a new policy version (newest + 1) and its feed row in one transaction.
    /// `build(version)` gives the policy JSON and the signed payload. Returns the version.
    async fn put_policy(
        &self,
        bank: BankId,
        now_ms: i64,
        build: Build<'_, i64, (String, String)>,
    ) -> Result<i64, FeedWriteError>;
    /// Issues the next `count` receipt numbers of the server-wide series to a device and
    /// stores the signed range (`build((first, last))`) in the feed, in one transaction.
    async fn allocate_serial_range(
        &self,
        device: DeviceId,
        count: i64,
        issued_by: Uuid,
        now_ms: i64,
        build: Build<'_, (i64, i64), String>,
    ) -> Result<(i64, i64, String), FeedWriteError>;
    /// Whether the feed holds a document of this kind and subject.
    async fn feed_has(&self, kind: &str, subject: &str) -> Result<bool, DbError>;
    /// Appends a document unless one of the same kind and subject is there already.
    async fn append_feed(&self, row: &FeedRow, now_ms: i64) -> Result<(), DbError>;
    /// Revoked devices sharing an approved team with `device` whose revocation is not yet
    /// in the feed.
    async fn unannounced_revocations(
        &self,
        device: DeviceId,
    ) -> Result<Vec<RevokedTeammate>, DbError>;
    /// Up to `limit` feed rows after `after` that `device` (of `agent`) may see, in order.
    async fn feed_page(
        &self,
        device: DeviceId,
        agent: AgentId,
        after: i64,
        limit: i64,
    ) -> Result<Vec<FeedEntry>, DbError>;
}

/// Who sees what (the rules of `0004_visits.sql`): `$1` device, `$2` agent, `$3` after,
/// `$4` limit.
const FEED_PAGE: &str = "SELECT f.seq, f.kind, f.payload FROM sync_feed f WHERE f.seq > $3 AND (\
    (f.kind = 'policy' AND f.bank_id IN (SELECT ub.bank_id FROM agents a \
        JOIN user_banks ub ON ub.user_id = a.user_id WHERE a.id = $2)) \
    OR (f.kind = 'assignment' AND EXISTS (SELECT 1 FROM approval_team t \
        WHERE t.approval_id = f.approval_id AND t.device_id = $1)) \
    OR (f.kind = 'serial_range' AND f.device_id = $1) \
    OR (f.kind = 'revocation' AND EXISTS (SELECT 1 FROM approval_team t1 \
        JOIN approval_team t2 ON t2.approval_id = t1.approval_id \
        WHERE t1.device_id = f.device_id AND t2.device_id = $1))\
    ) ORDER BY f.seq LIMIT $4";

macro_rules! impl_sync_db {
    ($db:ty) => {
        #[async_trait]
        impl SyncDb for $db {
            async fn latest_policy(&self, bank: BankId) -> Result<Option<StoredPolicy>, DbError> {
                let row: Option<(i64, String, i64)> = sqlx::query_as(
                    "SELECT CAST(version AS BIGINT), body, created_ms FROM policies WHERE bank_id = $1 \
                     ORDER BY version DESC LIMIT 1",
                )
                .bind(bank.to_string())
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(version, body, created_ms)| StoredPolicy {
                    version,
                    body,
                    created_ms,
                }))
            }

            async fn put_policy(
                &self,
                bank: BankId,
                now_ms: i64,
                build: Build<'_, i64, (String, String)>,
            ) -> Result<i64, FeedWriteError> {
                let mut tx = self.pool.begin().await?;
                // The feed's lock first: policy writers of every bank queue here, so the
                // version read below cannot be taken by another writer meanwhile.
                let seq: i64 = sqlx::query_scalar(NEXT_SEQ).fetch_one(&mut *tx).await?;
                let latest: Option<i64> =
                    sqlx::query_scalar(
                        "SELECT CAST(MAX(version) AS BIGINT) FROM policies WHERE bank_id = $1",
                    )
                        .bind(bank.to_string())
                        .fetch_one(&mut *tx)
                        .await?;
                let version = latest.unwrap_or(0) + 1;
                let (body, payload) = build(version).map_err(FeedWriteError::Sign)?;
                sqlx::query(
                    "INSERT INTO policies (bank_id, version, body, created_ms) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(bank.to_string())
                .bind(version)
                .bind(body)
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                let row = FeedRow {
                    kind: "policy",
                    subject: format!("{bank}:{version}"),
                    bank_id: Some(bank),
                    approval_id: None,
                    device_id: None,
                    payload,
                };
                bind_feed_row!(sqlx::query(INSERT_FEED), row, seq, now_ms)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(version)
            }

            async fn allocate_serial_range(
                &self,
                device: DeviceId,
                count: i64,
                issued_by: Uuid,
                now_ms: i64,
                build: Build<'_, (i64, i64), String>,
            ) -> Result<(i64, i64, String), FeedWriteError> {
                let mut tx = self.pool.begin().await?;
                // Moving the series forward is the first write: concurrent allocations
                // queue on its lock, each taking the numbers right after the previous one.
                let next: i64 = sqlx::query_scalar(
                    "UPDATE serial_series SET next_serial = next_serial + $1 \
                     WHERE series = 'receipts' RETURNING next_serial",
                )
                .bind(count)
                .fetch_one(&mut *tx)
                .await?;
                let (first, last) = (next - count, next - 1);
                let payload = build((first, last)).map_err(FeedWriteError::Sign)?;
                sqlx::query(
                    "INSERT INTO serial_ranges (first_serial, last_serial, device_id, \
                     issued_by, issued_ms) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(first)
                .bind(last)
                .bind(device.to_string())
                .bind(issued_by.to_string())
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                let seq: i64 = sqlx::query_scalar(NEXT_SEQ).fetch_one(&mut *tx).await?;
                let row = FeedRow {
                    kind: "serial_range",
                    subject: first.to_string(),
                    bank_id: None,
                    approval_id: None,
                    device_id: Some(device),
                    payload: payload.clone(),
                };
                bind_feed_row!(sqlx::query(INSERT_FEED), row, seq, now_ms)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok((first, last, payload))
            }

            async fn feed_has(&self, kind: &str, subject: &str) -> Result<bool, DbError> {
                let n: i64 = sqlx::query_scalar(
                    "SELECT COUNT(*) FROM sync_feed WHERE kind = $1 AND subject = $2",
                )
                .bind(kind)
                .bind(subject)
                .fetch_one(&self.pool)
                .await?;
                Ok(n > 0)
            }

            async fn append_feed(&self, row: &FeedRow, now_ms: i64) -> Result<(), DbError> {
                let mut tx = self.pool.begin().await?;
                let seq: i64 = sqlx::query_scalar(NEXT_SEQ).fetch_one(&mut *tx).await?;
                bind_feed_row!(sqlx::query(INSERT_FEED), row, seq, now_ms)
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await?;
                Ok(())
            }

            async fn unannounced_revocations(
                &self,
                device: DeviceId,
            ) -> Result<Vec<RevokedTeammate>, DbError> {
                let rows: Vec<(String, String, i64)> = sqlx::query_as(
                    "SELECT DISTINCT d.id, d.agent_id, d.revoked_at_ms FROM approval_team t1 \
                     JOIN approval_team t2 ON t2.approval_id = t1.approval_id \
                     JOIN devices d ON d.id = t2.device_id \
                     WHERE t1.device_id = $1 AND d.revoked_at_ms IS NOT NULL \
                     AND NOT EXISTS (SELECT 1 FROM sync_feed f \
                         WHERE f.kind = 'revocation' AND f.subject = d.id) \
                     ORDER BY d.id",
                )
                .bind(device.to_string())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(d, a, at)| {
                        Ok(RevokedTeammate {
                            device_id: d.parse().map_err(|_| DbError::Corrupt("devices.id"))?,
                            agent_id: a
                                .parse()
                                .map_err(|_| DbError::Corrupt("devices.agent_id"))?,
                            revoked_at_ms: at,
                        })
                    })
                    .collect()
            }

            async fn feed_page(
                &self,
                device: DeviceId,
                agent: AgentId,
                after: i64,
                limit: i64,
            ) -> Result<Vec<FeedEntry>, DbError> {
                let rows: Vec<(i64, String, String)> = sqlx::query_as(FEED_PAGE)
                    .bind(device.to_string())
                    .bind(agent.to_string())
                    .bind(after)
                    .bind(limit)
                    .fetch_all(&self.pool)
                    .await?;
                Ok(rows
                    .into_iter()
                    .map(|(seq, kind, payload)| FeedEntry { seq, kind, payload })
                    .collect())
            }
        }
    };
}

impl_sync_db!(super::SqliteDb);
impl_sync_db!(super::PgDb);
