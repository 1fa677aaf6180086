//! Sign-in state: enrolled devices and their bearer tokens, console sessions, enrollment
//! codes and device revocation.
//!
//! The SQL is written once with `$n` placeholders, which both SQLite and PostgreSQL
//! accept, and one macro implements the trait for both pools (the pattern every area of
//! the database follows; see `db/mod.rs`).

use async_trait::async_trait;
use tandem_core::crypto::{Kid, PublicKey, SignatureAlgorithm};
use tandem_core::model::{AgentId, BankId, DeviceId};
use uuid::Uuid;

use super::org::parse_bank_ids;
use super::{DbError, NewEnrollmentCode, Role};

/// A device to bind to the agent an enrollment code was issued for.
#[derive(Debug, Clone)]
pub struct NewDevice {
    /// Its id.
    pub id: DeviceId,
    /// The device's public key.
    pub public_key: PublicKey,
    /// SHA-256 hex of the bearer token given to the device.
    pub token_hash: String,
}

/// What became of an enrollment attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnrollOutcome {
    /// The device is enrolled for this agent, scoped to these banks.
    Enrolled {
        /// The agent.
        agent_id: AgentId,
        /// The agent's banks.
        bank_ids: Vec<BankId>,
    },
    /// No code has this hash.
    UnknownCode,
    /// The code expired before it was used.
    Expired,
    /// The code was used already.
    Used,
    /// This public key is enrolled already (one key, one device).
    KeyTaken,
}

/// An enrolled device as the auth layer and the verifier need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceRecord {
    /// The device.
    pub device_id: DeviceId,
    /// Its agent.
    pub agent_id: AgentId,
    /// The agent's user row.
    pub user_id: Uuid,
    /// Banks the agent works for.
    pub bank_ids: Vec<BankId>,
    /// The device key.
    pub public_key: PublicKey,
    /// When it was enrolled, UTC ms.
    pub enrolled_ms: i64,
    /// When it was revoked, UTC ms.
    pub revoked_at_ms: Option<i64>,
}

/// A signed-in console user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    /// The user.
    pub user_id: Uuid,
    /// Role.
    pub role: Role,
    /// The name the console shows.
    pub display_name: String,
    /// Banks the user is scoped to.
    pub bank_ids: Vec<BankId>,
    /// When the session ends, UTC ms.
    pub expires_ms: i64,
    /// When the user's password was last set, UTC ms (A01: it expires).
    pub password_changed_ms: i64,
}

/// Storage for sign-in state.
#[async_trait]
pub trait AuthDb: Send + Sync {
    /// Binds a new device to the agent of an unused, unexpired code, marks the code used
    /// and stores the device's token hash, in one transaction. Any refusal changes nothing.
    async fn enroll_device(
        &self,
        code_hash: &str,
        device: &NewDevice,
        now_ms: i64,
    ) -> Result<EnrollOutcome, DbError>;

    /// The device holding this token (revoked devices included: the caller decides).
    async fn device_by_token(&self, token_hash: &str) -> Result<Option<DeviceRecord>, DbError>;

    /// A device by id.
    async fn device(&self, id: DeviceId) -> Result<Option<DeviceRecord>, DbError>;

    /// A device by key id.
    async fn device_by_kid(&self, kid: &Kid) -> Result<Option<DeviceRecord>, DbError>;

    /// Every device of an agent, newest first.
    async fn agent_devices(&self, agent: AgentId) -> Result<Vec<DeviceRecord>, DbError>;

    /// Revokes a device at `now_ms` (its token stops working; its signatures made from then
    /// on are rejected). Returns `false` when it was revoked already.
    async fn revoke_device(&self, id: DeviceId, now_ms: i64, reason: &str)
    -> Result<bool, DbError>;

    /// The banks of an agent, `None` when there is no such agent.
    async fn agent_banks(&self, agent: AgentId) -> Result<Option<Vec<BankId>>, DbError>;

    /// Stores a new one-time enrollment code for an agent.
    async fn add_enrollment_code(
        &self,
        agent: AgentId,
        code: &NewEnrollmentCode,
        now_ms: i64,
    ) -> Result<(), DbError>;

    /// Stores a console session.
    async fn create_session(
        &self,
        token_hash: &str,
        user: Uuid,
        now_ms: i64,
        expires_ms: i64,
    ) -> Result<(), DbError>;

    /// The user of a live session (not revoked, not expired, user enabled).
    async fn session_user(
        &self,
        token_hash: &str,
        now_ms: i64,
    ) -> Result<Option<SessionUser>, DbError>;

    /// Ends a session (signed out). Returns `false` when there was no live one.
    async fn end_session(&self, token_hash: &str, now_ms: i64) -> Result<bool, DbError>;
}

row_by_name! {
    /// A `devices` row with its agent's user, as [`DEVICE_SELECT`] reads it.
    struct DeviceRow {
        id: String,
        agent_id: String,
        user_id: String,
        alg: String,
        public_key: Vec<u8>,
        enrolled_ms: i64,
        revoked_at_ms: Option<i64>,
    }
}

const DEVICE_SELECT: &str = "SELECT d.id, d.agent_id, a.user_id, d.alg, d.public_key, \
     d.enrolled_ms, d.revoked_at_ms FROM devices d JOIN agents a ON a.id = d.agent_id";

fn parse_alg(s: &str) -> Result<SignatureAlgorithm, DbError> {
    serde_json::from_value(serde_json::Value::String(s.to_owned()))
        .map_err(|_| DbError::Corrupt("devices.alg"))
}

/// The stored name of an algorithm (as core serialises it).
pub(crate) fn alg_name(alg: SignatureAlgorithm) -> String {
    match serde_json::to_value(alg) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

fn device_record(row: DeviceRow, banks: Vec<String>) -> Result<DeviceRecord, DbError> {
    Ok(DeviceRecord {
        device_id: row.id.parse().map_err(|_| DbError::Corrupt("devices.id"))?,
        agent_id: row
            .agent_id
            .parse()
            .map_err(|_| DbError::Corrupt("devices.agent_id"))?,
        user_id: row
            .user_id
            .parse()
            .map_err(|_| DbError::Corrupt("agents.user_id"))?,
        bank_ids: parse_bank_ids(banks)?,
        public_key: PublicKey::new(parse_alg(&row.alg)?, row.public_key)
            .map_err(|_| DbError::Corrupt("devices.public_key"))?,
        enrolled_ms: row.enrolled_ms,
        revoked_at_ms: row.revoked_at_ms,
    })
}

macro_rules! impl_auth_db {
    ($db:ty) => {
        impl $db {
            async fn device_where(
                &self,
                condition: &'static str,
                value: String,
            ) -> Result<Vec<DeviceRecord>, DbError> {
                let sql = format!("{DEVICE_SELECT} WHERE {condition} ORDER BY d.enrolled_ms DESC");
                let rows: Vec<DeviceRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(value)
                    .fetch_all(&self.pool)
                    .await?;
                let mut out = Vec::with_capacity(rows.len());
                for row in rows {
                    let banks: Vec<String> = sqlx::query_scalar(
                        "SELECT ub.bank_id FROM user_banks ub WHERE ub.user_id = $1 \
                         ORDER BY ub.bank_id",
                    )
                    .bind(&row.user_id)
                    .fetch_all(&self.pool)
                    .await?;
                    out.push(device_record(row, banks)?);
                }
                Ok(out)
            }
        }

        #[async_trait]
        impl AuthDb for $db {
            async fn enroll_device(
                &self,
                code_hash: &str,
                device: &NewDevice,
                now_ms: i64,
            ) -> Result<EnrollOutcome, DbError> {
                let mut tx = self.pool.begin().await?;
                // Written first, so SQLite takes its write lock before anything is read and
                // two phones racing for one code cannot both pass the check.
                let kid = device.public_key.kid().to_string();
                let inserted = sqlx::query(
                    "INSERT INTO devices (id, agent_id, alg, public_key, kid, enrolled_ms) \
                     SELECT $1, c.agent_id, $2, $3, $4, $5 FROM enrollment_codes c \
                     WHERE c.code_hash = $6 AND c.used_ms IS NULL AND c.expires_ms > $5 \
                     ON CONFLICT (kid) DO NOTHING",
                )
                .bind(device.id.to_string())
                .bind(alg_name(device.public_key.alg))
                .bind(device.public_key.key.clone())
                .bind(&kid)
                .bind(now_ms)
                .bind(code_hash)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    let code: Option<(i64, Option<i64>)> = sqlx::query_as(
                        "SELECT expires_ms, used_ms FROM enrollment_codes WHERE code_hash = $1",
                    )
                    .bind(code_hash)
                    .fetch_optional(&mut *tx)
                    .await?;
                    tx.rollback().await?;
                    return Ok(match code {
                        None => EnrollOutcome::UnknownCode,
                        Some((_, Some(_))) => EnrollOutcome::Used,
                        Some((expires, None)) if expires <= now_ms => EnrollOutcome::Expired,
                        Some(_) => EnrollOutcome::KeyTaken,
                    });
                }
                let used = sqlx::query(
                    "UPDATE enrollment_codes SET used_ms = $1, device_id = $2 \
                     WHERE code_hash = $3 AND used_ms IS NULL",
                )
                .bind(now_ms)
                .bind(device.id.to_string())
                .bind(code_hash)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if used != 1 {
                    tx.rollback().await?;
                    return Ok(EnrollOutcome::Used);
                }
                sqlx::query(
                    "INSERT INTO device_tokens (token_hash, device_id, created_ms) \
                     VALUES ($1, $2, $3)",
                )
                .bind(&device.token_hash)
                .bind(device.id.to_string())
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                let (agent, user): (String, String) = sqlx::query_as(
                    "SELECT a.id, a.user_id FROM devices d JOIN agents a ON a.id = d.agent_id \
                     WHERE d.id = $1",
                )
                .bind(device.id.to_string())
                .fetch_one(&mut *tx)
                .await?;
                let banks: Vec<String> = sqlx::query_scalar(
                    "SELECT bank_id FROM user_banks WHERE user_id = $1 ORDER BY bank_id",
                )
                .bind(&user)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                Ok(EnrollOutcome::Enrolled {
                    agent_id: agent.parse().map_err(|_| DbError::Corrupt("agents.id"))?,
                    bank_ids: parse_bank_ids(banks)?,
                })
            }

            async fn device_by_token(
                &self,
                token_hash: &str,
            ) -> Result<Option<DeviceRecord>, DbError> {
                Ok(self
                    .device_where(
                        "d.id = (SELECT t.device_id FROM device_tokens t WHERE t.token_hash = $1)",
                        token_hash.to_owned(),
                    )
                    .await?
                    .pop())
            }

            async fn device(&self, id: DeviceId) -> Result<Option<DeviceRecord>, DbError> {
                Ok(self.device_where("d.id = $1", id.to_string()).await?.pop())
            }

            async fn device_by_kid(&self, kid: &Kid) -> Result<Option<DeviceRecord>, DbError> {
                Ok(self.device_where("d.kid = $1", kid.to_string()).await?.pop())
            }

            async fn agent_devices(&self, agent: AgentId) -> Result<Vec<DeviceRecord>, DbError> {
                self.device_where("d.agent_id = $1", agent.to_string()).await
            }

            async fn revoke_device(
                &self,
                id: DeviceId,
                now_ms: i64,
                reason: &str,
            ) -> Result<bool, DbError> {
                let n = sqlx::query(
                    "UPDATE devices SET revoked_at_ms = $1, revoked_reason = $2 \
                     WHERE id = $3 AND revoked_at_ms IS NULL",
                )
                .bind(now_ms)
                .bind(reason)
                .bind(id.to_string())
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(n == 1)
            }

            async fn agent_banks(&self, agent: AgentId) -> Result<Option<Vec<BankId>>, DbError> {
                let user: Option<String> =
                    sqlx::query_scalar("SELECT user_id FROM agents WHERE id = $1")
                        .bind(agent.to_string())
                        .fetch_optional(&self.pool)
                        .await?;
                let Some(user) = user else {
                    return Ok(None);
                };
                let banks: Vec<String> = sqlx::query_scalar(
                    "SELECT bank_id FROM user_banks WHERE user_id = $1 ORDER BY bank_id",
                )
                .bind(&user)
                .fetch_all(&self.pool)
                .await?;
                Ok(Some(parse_bank_ids(banks)?))
            }

            async fn add_enrollment_code(
                &self,
                agent: AgentId,
                code: &NewEnrollmentCode,
                now_ms: i64,
            ) -> Result<(), DbError> {
                sqlx::query(
                    "INSERT INTO enrollment_codes (id, agent_id, code_hash, created_ms, \
                     expires_ms) VALUES ($1, $2, $3, $4, $5)",
                )
                .bind(code.id.to_string())
                .bind(agent.to_string())
                .bind(&code.code_hash)
                .bind(now_ms)
                .bind(code.expires_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn create_session(
                &self,
                token_hash: &str,
                user: Uuid,
                now_ms: i64,
                expires_ms: i64,
            ) -> Result<(), DbError> {
                sqlx::query(
                    "INSERT INTO sessions (token_hash, user_id, created_ms, expires_ms) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(token_hash)
                .bind(user.to_string())
                .bind(now_ms)
                .bind(expires_ms)
                .execute(&self.pool)
                .await?;
                Ok(())
            }

            async fn session_user(
                &self,
                token_hash: &str,
                now_ms: i64,
            ) -> Result<Option<SessionUser>, DbError> {
                let row: Option<(String, String, String, i64, i64)> = sqlx::query_as(
                    "SELECT u.id, u.role, u.display_name, s.expires_ms, u.password_changed_ms \
                     FROM sessions s \
                     JOIN users u ON u.id = s.user_id \
                     WHERE s.token_hash = $1 AND s.revoked_ms IS NULL AND s.expires_ms > $2 \
                     AND u.disabled_ms IS NULL",
                )
                .bind(token_hash)
                .bind(now_ms)
                .fetch_optional(&self.pool)
                .await?;
                let Some((id, role, display_name, expires_ms, password_changed_ms)) = row else {
                    return Ok(None);
                };
                let banks: Vec<String> = sqlx::query_scalar(
                    "SELECT bank_id FROM user_banks WHERE user_id = $1 ORDER BY bank_id",
                )
                .bind(&id)
                .fetch_all(&self.pool)
                .await?;
                Ok(Some(SessionUser {
                    user_id: id.parse().map_err(|_| DbError::Corrupt("users.id"))?,
                    role: Role::parse(&role).ok_or(DbError::Corrupt("users.role"))?,
                    display_name,
                    bank_ids: parse_bank_ids(banks)?,
                    expires_ms,
                    password_changed_ms,
                }))
            }

            async fn end_session(&self, token_hash: &str, now_ms: i64) -> Result<bool, DbError> {
                let n = sqlx::query(
                    "UPDATE sessions SET revoked_ms = $1, revoked_reason = 'signed-out' \
                     WHERE token_hash = $2 AND revoked_ms IS NULL",
                )
                .bind(now_ms)
                .bind(token_hash)
                .execute(&self.pool)
                .await?
                .rows_affected();
                Ok(n == 1)
            }
        }
    };
}

impl_auth_db!(super::SqliteDb);
impl_auth_db!(super::PgDb);
