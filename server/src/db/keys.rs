//! Wrapped keys of the blobs at rest (`keyring`, `bank_keys`, `blob_keys`; see
//! [`crate::blobstore::keys`]). The database holds no key in the clear.

use async_trait::async_trait;
use tandem_core::crypto::Digest;

use super::DbError;

/// A wrapped key of one blob, with its holder's wrapped key when a bank holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobKeyGrant {
    /// The bank holding it; `None` while staged (wrapped by the master key).
    pub bank_id: Option<String>,
    /// The blob's key, wrapped.
    pub wrapped: String,
    /// The bank's key, wrapped by the master key; `None` for staged keys and for banks whose
    /// key is destroyed (or missing).
    pub bank_wrapped: Option<String>,
}

/// A bank's key row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankKeyRow {
    /// Wrapped by the master key; `None` once destroyed.
    pub wrapped: Option<String>,
    /// When it was created, UTC ms.
    pub created_ms: i64,
    /// When it was destroyed, UTC ms.
    pub destroyed_ms: Option<i64>,
}

/// Storage of wrapped keys.
#[async_trait]
pub trait KeysDb: Send + Sync {
    /// The master key's check value, when the keyring was set up.
    async fn keyring_check(&self) -> Result<Option<String>, DbError>;

    /// Sets up the keyring with `check` unless it is set up; returns the check value that
    /// stands (another server may have won).
    async fn init_keyring(&self, check: &str, now_ms: i64) -> Result<String, DbError>;

    /// Every wrapped key of a blob, staged or held by a bank.
    async fn blob_key_grants(&self, sha256: &Digest) -> Result<Vec<BlobKeyGrant>, DbError>;

    /// Every wrapped key of each of `digests` (in one query), with its blob.
    async fn blob_key_grants_of(
        &self,
        digests: &[Digest],
    ) -> Result<Vec<(Digest, BlobKeyGrant)>, DbError>;

    /// Keeps blobs' keys wrapped for `bank_id` (unless kept already) and drops the staged
    /// keys of `unstage`, in one transaction.
    async fn grant_blob_keys(
        &self,
        bank_id: &str,
        wrapped: &[(Digest, String)],
        unstage: &[Digest],
    ) -> Result<(), DbError>;

    /// Keeps a blob's key wrapped for `bank_id` (`None`: staged) unless one is kept for it.
    async fn put_blob_key(
        &self,
        sha256: &Digest,
        bank_id: Option<&str>,
        wrapped: &str,
    ) -> Result<(), DbError>;

    /// Drops a blob's staged key (once a bank holds it).
    async fn drop_staged_blob_key(&self, sha256: &Digest) -> Result<(), DbError>;

    /// Drops every key of a blob (its bytes are destroyed).
    async fn drop_blob_keys(&self, sha256: &Digest) -> Result<(), DbError>;

    /// A bank's key row.
    async fn bank_key(&self, bank_id: &str) -> Result<Option<BankKeyRow>, DbError>;

    /// Creates a bank's key unless it has one (live or destroyed); returns the row that stands.
    async fn create_bank_key(
        &self,
        bank_id: &str,
        wrapped: &str,
        now_ms: i64,
    ) -> Result<BankKeyRow, DbError>;

    /// Destroys a bank's key; `false` when it had none or it was destroyed already.
    async fn destroy_bank_key(&self, bank_id: &str, now_ms: i64) -> Result<bool, DbError>;

    /// The blobs whose keys a bank holds, each with whether no other holder has its key.
    async fn bank_blob_keys(&self, bank_id: &str) -> Result<Vec<(Digest, bool)>, DbError>;

    /// A bank's id and name by its code.
    async fn bank_by_code(&self, code: &str) -> Result<Option<(String, String)>, DbError>;

    /// When the bank's newest evidence was committed (or arrived, if never committed),
    /// UTC ms; `None` when it has none.
    async fn bank_newest_evidence_ms(&self, bank_id: &str) -> Result<Option<i64>, DbError>;
}

fn digest(hex: &str) -> Result<Digest, DbError> {
    hex.parse()
        .map_err(|_| DbError::Corrupt("blob_keys.sha256"))
}

macro_rules! impl_keys_db {
    ($db:ty) => {
        #[async_trait]
        impl KeysDb for $db {
            async fn keyring_check(&self) -> Result<Option<String>, DbError> {
                Ok(
                    sqlx::query_scalar("SELECT master_check FROM keyring WHERE id = 1")
                        .fetch_optional(&self.pool)
                        .await?,
                )
            }

            async fn init_keyring(&self, check: &str, now_ms: i64) -> Result<String, DbError> {
                sqlx::query(
                    "INSERT INTO keyring (id, master_check, created_ms) VALUES (1, $1, $2) \
                     ON CONFLICT (id) DO NOTHING",
                )
                .bind(check)
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
                self.keyring_check()
                    .await?
                    .ok_or(DbError::Corrupt("keyring"))
            }

            async fn blob_key_grants(&self, sha256: &Digest) -> Result<Vec<BlobKeyGrant>, DbError> {
                let rows: Vec<(String, String, Option<String>)> = sqlx::query_as(
                    "SELECT k.holder, k.wrapped, b.wrapped FROM blob_keys k \
                     LEFT JOIN bank_keys b ON b.bank_id = k.holder \
                     WHERE k.sha256 = $1 ORDER BY k.holder",
                )
                .bind(sha256.to_hex())
                .fetch_all(&self.pool)
                .await?;
                Ok(rows
                    .into_iter()
                    .map(|(holder, wrapped, bank_wrapped)| BlobKeyGrant {
                        bank_id: (!holder.is_empty()).then_some(holder),
                        wrapped,
                        bank_wrapped,
                    })
                    .collect())
            }

            async fn blob_key_grants_of(
                &self,
                digests: &[Digest],
            ) -> Result<Vec<(Digest, BlobKeyGrant)>, DbError> {
                let mut out = Vec::new();
                // Bounded statements: a visit lists tens of blobs, a bundle at most thousands.
                for part in digests.chunks(500) {
                    let marks: Vec<String> = (1..=part.len()).map(|i| format!("${i}")).collect();
                    let sql = format!(
                        "SELECT k.sha256, k.holder, k.wrapped, b.wrapped FROM blob_keys k \
                         LEFT JOIN bank_keys b ON b.bank_id = k.holder \
                         WHERE k.sha256 IN ({}) ORDER BY k.sha256, k.holder",
                        marks.join(", ")
                    );
                    let mut query = sqlx::query_as::<_, (String, String, String, Option<String>)>(
                        sqlx::AssertSqlSafe(sql),
                    );
                    for d in part {
                        query = query.bind(d.to_hex());
                    }
                    for (hex, holder, wrapped, bank_wrapped) in query.fetch_all(&self.pool).await? {
                        out.push((
                            digest(&hex)?,
                            BlobKeyGrant {
                                bank_id: (!holder.is_empty()).then_some(holder),
                                wrapped,
                                bank_wrapped,
                            },
                        ));
                    }
                }
                Ok(out)
            }

            async fn grant_blob_keys(
                &self,
                bank_id: &str,
                wrapped: &[(Digest, String)],
                unstage: &[Digest],
            ) -> Result<(), DbError> {
                let mut tx = self.pool.begin().await?;
                for (d, w) in wrapped {
                    sqlx::query(
                        "INSERT INTO blob_keys (sha256, holder, wrapped) VALUES ($1, $2, $3) \
                         ON CONFLICT (sha256, holder) DO NOTHING",
                    )
                    .bind(d.to_hex())
                    .bind(bank_id)
                    .bind(w)
                    .execute(&mut *tx)
                    .await?;
                }
                for d in unstage {
                    sqlx::query("DELETE FROM blob_keys WHERE sha256 = $1 AND holder = ''")
                        .bind(d.to_hex())
                        .execute(&mut *tx)
                        .await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn put_blob_key(
                &self,
                sha256: &Digest,
                bank_id: Option<&str>,
                wrapped: &str,
            ) -> Result<(), DbError> {
                sqlx::query(
                    "INSERT INTO blob_keys (sha256, holder, wrapped) VALUES ($1, $2, $3) \
                     ON CONFLICT (sha256, holder) DO NOTHING",
                )
                .bind(sha256.to_hex())
                .bind(bank_id.unwrap_or(""))
                .bind(wrapped)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn drop_staged_blob_key(&self, sha256: &Digest) -> Result<(), DbError> {
                sqlx::query("DELETE FROM blob_keys WHERE sha256 = $1 AND holder = ''")
                    .bind(sha256.to_hex())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn drop_blob_keys(&self, sha256: &Digest) -> Result<(), DbError> {
                sqlx::query("DELETE FROM blob_keys WHERE sha256 = $1")
                    .bind(sha256.to_hex())
                    .execute(&self.pool)
                    .await?;
                Ok(())
            }

            async fn bank_key(&self, bank_id: &str) -> Result<Option<BankKeyRow>, DbError> {
                let row: Option<(Option<String>, i64, Option<i64>)> = sqlx::query_as(
                    "SELECT wrapped, created_ms, destroyed_ms FROM bank_keys WHERE bank_id = $1",
                )
                .bind(bank_id)
                .fetch_optional(&self.pool)
                .await?;
                Ok(row.map(|(wrapped, created_ms, destroyed_ms)| BankKeyRow {
                    wrapped,
                    created_ms,
                    destroyed_ms,
                }))
            }

            async fn create_bank_key(
                &self,
                bank_id: &str,
                wrapped: &str,
                now_ms: i64,
            ) -> Result<BankKeyRow, DbError> {
                sqlx::query(
                    "INSERT INTO bank_keys (bank_id, wrapped, created_ms) VALUES ($1, $2, $3) \
                     ON CONFLICT (bank_id) DO NOTHING",
                )
                .bind(bank_id)
                .bind(wrapped)
                .bind(now_ms)
                .execute(&self.pool)
                .await?;
                self.bank_key(bank_id)
                    .await?
                    .ok_or(DbError::Corrupt("bank_keys"))
            }

            async fn destroy_bank_key(&self, bank_id: &str, now_ms: i64) -> Result<bool, DbError> {
                let done = sqlx::query(
                    "UPDATE bank_keys SET wrapped = NULL, destroyed_ms = $2 \
                     WHERE bank_id = $1 AND wrapped IS NOT NULL",
                )
                .bind(bank_id)
                .bind(now_ms)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(done == 1)
            }

            async fn bank_blob_keys(&self, bank_id: &str) -> Result<Vec<(Digest, bool)>, DbError> {
                let rows: Vec<(String, i64)> = sqlx::query_as(
                    "SELECT k.sha256, (SELECT COUNT(*) FROM blob_keys o \
                     WHERE o.sha256 = k.sha256 AND o.holder <> k.holder) \
                     FROM blob_keys k WHERE k.holder = $1 ORDER BY k.sha256",
                )
                .bind(bank_id)
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|(hex, others)| Ok((digest(&hex)?, others == 0)))
                    .collect()
            }

            async fn bank_by_code(&self, code: &str) -> Result<Option<(String, String)>, DbError> {
                Ok(sqlx::query_as("SELECT id, name FROM banks WHERE code = $1")
                    .bind(code)
                    .fetch_optional(&self.pool)
                    .await?)
            }

            async fn bank_newest_evidence_ms(&self, bank_id: &str) -> Result<Option<i64>, DbError> {
                Ok(sqlx::query_scalar(
                    "SELECT MAX(COALESCE(committed_ms, received_ms)) FROM bundles \
                     WHERE bank_id = $1",
                )
                .bind(bank_id)
                .fetch_one(&self.pool)
                .await?)
            }
        }
    };
}

impl_keys_db!(super::SqliteDb);
impl_keys_db!(super::PgDb);
