//! Resumable uploads: one row per (digest, length, device that created it), its committed
//! offset and the lease of the one PATCH allowed to append at a time.
//!
//! The committed offset is the truth after a crash (bytes are fsynced before the offset
//! covering them is committed). Every change of the offset is a conditional `UPDATE`: it
//! names the lease token and the offset the writer started from, so a writer that lost its
//! lease, or raced another server, changes nothing.

use async_trait::async_trait;
use tandem_core::crypto::Digest;
use tandem_core::model::DeviceId;
use uuid::Uuid;

use super::DbError;

/// An upload to create.
#[derive(Debug, Clone)]
pub struct NewUpload {
    /// Its id (the `Location` path segment).
    pub id: Uuid,
    /// The blob's address.
    pub sha256: Digest,
    /// The blob's size in bytes.
    pub length: u64,
    /// The device that asked for it.
    pub created_by: DeviceId,
    /// Now, UTC ms.
    pub now_ms: i64,
}

/// An upload as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadRow {
    /// Its id.
    pub id: Uuid,
    /// The blob's address.
    pub sha256: Digest,
    /// The blob's size in bytes.
    pub length: u64,
    /// Bytes received, fsynced and committed.
    pub offset: u64,
    /// The device that created it.
    pub created_by: DeviceId,
    /// When the whole blob was verified and installed, UTC ms.
    pub completed_ms: Option<i64>,
    /// Until when a PATCH holds the lease, UTC ms (`None`: nobody writes).
    pub lease_until_ms: Option<i64>,
}

impl UploadRow {
    /// Whether a PATCH holds a live lease at `now_ms`.
    pub fn leased_at(&self, now_ms: i64) -> bool {
        self.lease_until_ms.is_some_and(|until| until >= now_ms)
    }
}

/// Storage for resumable uploads.
#[async_trait]
pub trait UploadsDb: Send + Sync {
    /// Creates this device's upload for (digest, length), or returns the one it has already.
    /// Another device's upload of the same blob is never returned.
    async fn create_or_get_upload(&self, new: &NewUpload) -> Result<UploadRow, DbError>;

    /// An upload by id.
    async fn upload(&self, id: Uuid) -> Result<Option<UploadRow>, DbError>;

    /// Takes the lease for a writer starting at `offset`: only when the upload is
    /// unfinished, its committed offset is `offset` and nobody holds a live lease.
    async fn acquire_upload_lease(
        &self,
        id: Uuid,
        offset: u64,
        token: &str,
        now_ms: i64,
        until_ms: i64,
    ) -> Result<bool, DbError>;

    /// Extends a held lease; `false` when it was lost (taken over or the upload is gone).
    async fn renew_upload_lease(
        &self,
        id: Uuid,
        token: &str,
        until_ms: i64,
    ) -> Result<bool, DbError>;

    /// Moves the committed offset from `from` to `to` and releases the lease, only if the
    /// lease is still `token`'s. `false`: nothing changed.
    async fn commit_upload_offset(
        &self,
        id: Uuid,
        token: &str,
        from: u64,
        to: u64,
        now_ms: i64,
    ) -> Result<bool, DbError>;

    /// Marks an upload complete (its blob is installed and verified): the offset becomes
    /// the length and any lease ends. Idempotent.
    async fn complete_upload(&self, id: Uuid, now_ms: i64) -> Result<bool, DbError>;

    /// Starts a completed upload again from offset 0 (its blob is no longer stored).
    async fn reopen_upload(&self, id: Uuid, now_ms: i64) -> Result<bool, DbError>;

    /// Deletes an upload; with a token, only while that lease is held.
    async fn delete_upload(&self, id: Uuid, token: Option<&str>) -> Result<bool, DbError>;
}

row_by_name! {
    /// An `uploads` row as [`SELECT`] reads it.
    struct Row {
        id: String,
        sha256: String,
        length_bytes: i64,
        offset_bytes: i64,
        created_by: String,
        completed_ms: Option<i64>,
        lease_until_ms: Option<i64>,
    }
}

const SELECT: &str = "SELECT id, sha256, length_bytes, offset_bytes, created_by, completed_ms, \
     lease_until_ms FROM uploads";

fn to_i64(n: u64) -> Result<i64, DbError> {
    i64::try_from(n).map_err(|_| DbError::Corrupt("upload size beyond i64"))
}

fn upload_row(row: Row) -> Result<UploadRow, DbError> {
    Ok(UploadRow {
        id: row.id.parse().map_err(|_| DbError::Corrupt("uploads.id"))?,
        sha256: row
            .sha256
            .parse()
            .map_err(|_| DbError::Corrupt("uploads.sha256"))?,
        length: u64::try_from(row.length_bytes)
            .map_err(|_| DbError::Corrupt("uploads.length_bytes"))?,
        offset: u64::try_from(row.offset_bytes)
            .map_err(|_| DbError::Corrupt("uploads.offset_bytes"))?,
        created_by: row
            .created_by
            .parse()
            .map_err(|_| DbError::Corrupt("uploads.created_by"))?,
        completed_ms: row.completed_ms,
        lease_until_ms: row.lease_until_ms,
    })
}

macro_rules! impl_uploads_db {
    ($db:ty) => {
        #[async_trait]
        impl UploadsDb for $db {
            async fn create_or_get_upload(&self, new: &NewUpload) -> Result<UploadRow, DbError> {
                let mut tx = self.books.begin().await?;
                // Written first (SQLite takes its write lock before reading); two requests
                // of one device racing for one digest both end up with the one row.
                sqlx::query(
                    "INSERT INTO uploads (id, sha256, length_bytes, created_by, created_ms, \
                     updated_ms) VALUES ($1, $2, $3, $4, $5, $5) \
                     ON CONFLICT (sha256, length_bytes, created_by) DO NOTHING",
                )
                .bind(new.id.to_string())
                .bind(new.sha256.to_hex())
                .bind(to_i64(new.length)?)
                .bind(new.created_by.to_string())
                .bind(new.now_ms)
                .execute(&mut *tx)
                .await?;
                let sql =
                    format!("{SELECT} WHERE sha256 = $1 AND length_bytes = $2 AND created_by = $3");
                let row: Row = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(new.sha256.to_hex())
                    .bind(to_i64(new.length)?)
                    .bind(new.created_by.to_string())
                    .fetch_one(&mut *tx)
                    .await?;
                tx.commit().await?;
                upload_row(row)
            }

            async fn upload(&self, id: Uuid) -> Result<Option<UploadRow>, DbError> {
                let sql = format!("{SELECT} WHERE id = $1");
                let row: Option<Row> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(id.to_string())
                    .fetch_optional(&self.books)
                    .await?;
                row.map(upload_row).transpose()
            }

            async fn acquire_upload_lease(
                &self,
                id: Uuid,
                offset: u64,
                token: &str,
                now_ms: i64,
                until_ms: i64,
            ) -> Result<bool, DbError> {
                let n = sqlx::query(
                    "UPDATE uploads SET lease_token = $1, lease_until_ms = $2 \
                     WHERE id = $3 AND offset_bytes = $4 AND completed_ms IS NULL \
                     AND (lease_until_ms IS NULL OR lease_until_ms < $5)",
                )
                .bind(token)
                .bind(until_ms)
                .bind(id.to_string())
                .bind(to_i64(offset)?)
                .bind(now_ms)
                .execute(&self.books)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn renew_upload_lease(
                &self,
                id: Uuid,
                token: &str,
                until_ms: i64,
            ) -> Result<bool, DbError> {
                let n = sqlx::query(
                    "UPDATE uploads SET lease_until_ms = $1 WHERE id = $2 AND lease_token = $3",
                )
                .bind(until_ms)
                .bind(id.to_string())
                .bind(token)
                .execute(&self.books)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn commit_upload_offset(
                &self,
                id: Uuid,
                token: &str,
                from: u64,
                to: u64,
                now_ms: i64,
            ) -> Result<bool, DbError> {
                let n = sqlx::query(
                    "UPDATE uploads SET offset_bytes = $1, updated_ms = $2, lease_token = NULL, \
                     lease_until_ms = NULL \
                     WHERE id = $3 AND lease_token = $4 AND offset_bytes = $5 \
                     AND completed_ms IS NULL",
                )
                .bind(to_i64(to)?)
                .bind(now_ms)
                .bind(id.to_string())
                .bind(token)
                .bind(to_i64(from)?)
                .execute(&self.books)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn complete_upload(&self, id: Uuid, now_ms: i64) -> Result<bool, DbError> {
                let n = sqlx::query(
                    "UPDATE uploads SET offset_bytes = length_bytes, updated_ms = $1, \
                     completed_ms = COALESCE(completed_ms, $1), lease_token = NULL, \
                     lease_until_ms = NULL WHERE id = $2",
                )
                .bind(now_ms)
                .bind(id.to_string())
                .execute(&self.books)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn reopen_upload(&self, id: Uuid, now_ms: i64) -> Result<bool, DbError> {
                let n = sqlx::query(
                    "UPDATE uploads SET offset_bytes = 0, updated_ms = $1, completed_ms = NULL, \
                     lease_token = NULL, lease_until_ms = NULL \
                     WHERE id = $2 AND completed_ms IS NOT NULL",
                )
                .bind(now_ms)
                .bind(id.to_string())
                .execute(&self.books)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn delete_upload(&self, id: Uuid, token: Option<&str>) -> Result<bool, DbError> {
                let n = match token {
                    Some(token) => {
                        sqlx::query("DELETE FROM uploads WHERE id = $1 AND lease_token = $2")
                            .bind(id.to_string())
                            .bind(token)
                            .execute(&self.books)
                            .await?
                    }
                    None => {
                        sqlx::query("DELETE FROM uploads WHERE id = $1")
                            .bind(id.to_string())
                            .execute(&self.books)
                            .await?
                    }
                }
                .rows_affected();
                Ok(n == 1)
            }
        }
    };
}

impl_uploads_db!(super::SqliteDb);
impl_uploads_db!(super::PgDb);
