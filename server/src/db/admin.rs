//! What the administrators' pages read and change: the console users and agents of a set
//! of banks, an agent's phones, the banks' names, and the audit log of those banks. Every
//! change writes its audit entries in the same transaction, so a change is never without
//! its record (nor a record without its change). One SQL text with `$n` placeholders
//! serves both backends (see `db/mod.rs`); a list of banks becomes `$k, $k+1, …`.

use async_trait::async_trait;
use tandem_core::model::{AgentId, BankId, DeviceId};
use uuid::Uuid;

use super::org::parse_bank_ids;
use super::{DbError, NewUser, Role};
use crate::audit::{AuditAction, AuditEntry, AuditRecord};

/// A user as the administrators' pages show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    /// The user.
    pub id: Uuid,
    /// Sign-in name.
    pub login: String,
    /// The name the console shows.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// Every bank the user is scoped to (the caller shows only its own).
    pub bank_ids: Vec<BankId>,
    /// When disabled, UTC ms.
    pub disabled_ms: Option<i64>,
    /// When the password was last set, UTC ms (0: never, must change at first sign-in).
    pub password_changed_ms: i64,
}

/// An agent as the administrators' pages show them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentRecord {
    /// The agent.
    pub id: AgentId,
    /// Its user row.
    pub user: UserRecord,
    /// Employee number.
    pub employee_no: String,
}

/// One of an agent's phones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PhoneRecord {
    /// The device.
    pub id: DeviceId,
    /// Its key's algorithm (`ed25519`, `ecdsa-p256-sha256`).
    pub alg: String,
    /// Its key id.
    pub kid: String,
    /// When enrolled, UTC ms.
    pub enrolled_ms: i64,
    /// When revoked, UTC ms.
    pub revoked_at_ms: Option<i64>,
    /// Why (no personal data).
    pub revoked_reason: Option<String>,
}

/// A bank's id and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BankName {
    /// The bank.
    pub id: BankId,
    /// Its name.
    pub name: String,
}

/// Which audit entries of a set of banks to read.
#[derive(Debug, Clone, Default)]
pub struct BankAuditQuery {
    /// Of this action.
    pub action: Option<AuditAction>,
    /// At or after, UTC ms.
    pub since_ms: Option<i64>,
    /// Before, UTC ms.
    pub until_ms: Option<i64>,
    /// Before this position (the next page, newest first).
    pub before_seq: Option<i64>,
}

/// What became of a new user or agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Created {
    /// Created.
    Created,
    /// The sign-in name is taken.
    LoginTaken,
    /// The employee number is taken.
    EmployeeNoTaken,
}

/// Storage for the administrators' pages.
#[async_trait]
pub trait AdminDb: Send + Sync {
    /// The names of these banks, by name.
    async fn bank_names(&self, banks: &[BankId]) -> Result<Vec<BankName>, DbError>;

    /// The console users (not agents) scoped to any of these banks, by sign-in name.
    async fn users_of_banks(&self, banks: &[BankId]) -> Result<Vec<UserRecord>, DbError>;

    /// A user by id (agents included).
    async fn user_record(&self, id: Uuid) -> Result<Option<UserRecord>, DbError>;

    /// Creates a console user whose password must be changed at the first sign-in
    /// (`password_changed_ms` 0), with `audit` in the same transaction.
    async fn create_user(
        &self,
        user: &NewUser,
        now_ms: i64,
        audit: &[AuditEntry],
    ) -> Result<Created, DbError>;

    /// Disables (`Some(at)`) or enables (`None`) a user, with `audit`; disabling ends every
    /// session of theirs at once. Returns `false`, changing nothing, when the user was so
    /// already.
    async fn set_user_disabled(
        &self,
        id: Uuid,
        disabled_ms: Option<i64>,
        now_ms: i64,
        audit: &[AuditEntry],
    ) -> Result<bool, DbError>;

    /// Sets a user's role and banks (the whole list), with `audit`.
    async fn set_user_access(
        &self,
        id: Uuid,
        role: Role,
        banks: &[BankId],
        audit: &[AuditEntry],
    ) -> Result<(), DbError>;

    /// The agents of any of these banks, by employee number.
    async fn agents_of_banks(&self, banks: &[BankId]) -> Result<Vec<AgentRecord>, DbError>;

    /// An agent by id.
    async fn agent_record(&self, id: AgentId) -> Result<Option<AgentRecord>, DbError>;

    /// Creates an agent (its user row has no password: agents sign in with their phone),
    /// with `audit`.
    async fn create_agent(
        &self,
        id: AgentId,
        employee_no: &str,
        user: &NewUser,
        now_ms: i64,
        audit: &[AuditEntry],
    ) -> Result<Created, DbError>;

    /// Every phone of an agent, newest first, revoked ones included.
    async fn agent_phones(&self, agent: AgentId) -> Result<Vec<PhoneRecord>, DbError>;

    /// Up to `limit` audit entries concerning any of these banks, newest first.
    async fn bank_audit(
        &self,
        banks: &[BankId],
        query: &BankAuditQuery,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, DbError>;
}

/// `$from, $from+1, …` for `n` values: the only text a query here is built from besides
/// its constant SQL, so every dynamic query stays safe from injection.
fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

row_by_name! {
    struct UserRow {
        id: String,
        login: String,
        display_name: String,
        role: String,
        disabled_ms: Option<i64>,
        password_changed_ms: i64,
    }
}

row_by_name! {
    struct AgentRow {
        agent_id: String,
        employee_no: String,
        id: String,
        login: String,
        display_name: String,
        role: String,
        disabled_ms: Option<i64>,
        password_changed_ms: i64,
    }
}

row_by_name! {
    struct PhoneRow {
        id: String,
        alg: String,
        kid: String,
        enrolled_ms: i64,
        revoked_at_ms: Option<i64>,
        revoked_reason: Option<String>,
    }
}

const USER_COLUMNS: &str =
    "u.id, u.login, u.display_name, u.role, u.disabled_ms, u.password_changed_ms";

fn user_record(row: UserRow, banks: Vec<String>) -> Result<UserRecord, DbError> {
    Ok(UserRecord {
        id: row.id.parse().map_err(|_| DbError::Corrupt("users.id"))?,
        login: row.login,
        display_name: row.display_name,
        role: Role::parse(&row.role).ok_or(DbError::Corrupt("users.role"))?,
        bank_ids: parse_bank_ids(banks)?,
        disabled_ms: row.disabled_ms,
        password_changed_ms: row.password_changed_ms,
    })
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.is_unique_violation())
}

macro_rules! impl_admin_db {
    ($db:ty) => {
        impl $db {
            /// The banks of each of these users, in the users' order.
            async fn banks_of(&self, users: &[String]) -> Result<Vec<Vec<String>>, DbError> {
                if users.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT user_id, bank_id FROM user_banks WHERE user_id IN ({}) \
                     ORDER BY bank_id",
                    placeholders(1, users.len())
                );
                let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
                for u in users {
                    query = query.bind(u);
                }
                let rows = query.fetch_all(&self.pool).await?;
                Ok(users
                    .iter()
                    .map(|u| {
                        rows.iter()
                            .filter(|(user, _)| user == u)
                            .map(|(_, bank)| bank.clone())
                            .collect()
                    })
                    .collect())
            }

            async fn agent_rows(
                &self,
                condition: &str,
                binds: &[String],
            ) -> Result<Vec<AgentRecord>, DbError> {
                let sql = format!(
                    "SELECT a.id AS agent_id, a.employee_no, {USER_COLUMNS} FROM agents a \
                     JOIN users u ON u.id = a.user_id WHERE {condition} ORDER BY a.employee_no"
                );
                let mut query = sqlx::query_as::<_, AgentRow>(sqlx::AssertSqlSafe(sql));
                for b in binds {
                    query = query.bind(b);
                }
                let rows = query.fetch_all(&self.pool).await?;
                let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
                let banks = self.banks_of(&ids).await?;
                rows.into_iter()
                    .zip(banks)
                    .map(|(r, banks)| {
                        Ok(AgentRecord {
                            id: r
                                .agent_id
                                .parse()
                                .map_err(|_| DbError::Corrupt("agents.id"))?,
                            employee_no: r.employee_no,
                            user: user_record(
                                UserRow {
                                    id: r.id,
                                    login: r.login,
                                    display_name: r.display_name,
                                    role: r.role,
                                    disabled_ms: r.disabled_ms,
                                    password_changed_ms: r.password_changed_ms,
                                },
                                banks,
                            )?,
                        })
                    })
                    .collect()
            }
        }

        #[async_trait]
        impl AdminDb for $db {
            async fn bank_names(&self, banks: &[BankId]) -> Result<Vec<BankName>, DbError> {
                if banks.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT id, name FROM banks WHERE id IN ({}) ORDER BY name, id",
                    placeholders(1, banks.len())
                );
                let mut query = sqlx::query_as::<_, (String, String)>(sqlx::AssertSqlSafe(sql));
                for b in banks {
                    query = query.bind(b.to_string());
                }
                query
                    .fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(|(id, name)| {
                        Ok(BankName {
                            id: id.parse().map_err(|_| DbError::Corrupt("banks.id"))?,
                            name,
                        })
                    })
                    .collect()
            }

            async fn users_of_banks(&self, banks: &[BankId]) -> Result<Vec<UserRecord>, DbError> {
                if banks.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT {USER_COLUMNS} FROM users u WHERE u.role <> 'agent' AND u.id IN \
                     (SELECT user_id FROM user_banks WHERE bank_id IN ({})) ORDER BY u.login",
                    placeholders(1, banks.len())
                );
                let mut query = sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(sql));
                for b in banks {
                    query = query.bind(b.to_string());
                }
                let rows = query.fetch_all(&self.pool).await?;
                let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
                let banks = self.banks_of(&ids).await?;
                rows.into_iter()
                    .zip(banks)
                    .map(|(r, b)| user_record(r, b))
                    .collect()
            }

            async fn user_record(&self, id: Uuid) -> Result<Option<UserRecord>, DbError> {
                let sql = format!("SELECT {USER_COLUMNS} FROM users u WHERE u.id = $1");
                let Some(row) = sqlx::query_as::<_, UserRow>(sqlx::AssertSqlSafe(sql))
                    .bind(id.to_string())
                    .fetch_optional(&self.pool)
                    .await?
                else {
                    return Ok(None);
                };
                let banks = self.banks_of(std::slice::from_ref(&row.id)).await?;
                Ok(Some(user_record(
                    row,
                    banks.into_iter().next().unwrap_or_default(),
                )?))
            }

            async fn create_user(
                &self,
                user: &NewUser,
                now_ms: i64,
                audit: &[AuditEntry],
            ) -> Result<Created, DbError> {
                let mut tx = self.pool.begin().await?;
                let inserted = sqlx::query(
                    "INSERT INTO users (id, login, display_name, role, password_hash, \
                     created_ms, password_changed_ms) VALUES ($1, $2, $3, $4, $5, $6, 0)",
                )
                .bind(user.id.to_string())
                .bind(&user.login)
                .bind(&user.display_name)
                .bind(user.role.as_str())
                .bind(user.password_hash.as_deref())
                .bind(now_ms)
                .execute(&mut *tx)
                .await;
                match inserted {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => return Ok(Created::LoginTaken),
                    Err(e) => return Err(e.into()),
                }
                for bank in &user.bank_ids {
                    sqlx::query("INSERT INTO user_banks (user_id, bank_id) VALUES ($1, $2)")
                        .bind(user.id.to_string())
                        .bind(bank.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                for entry in audit {
                    Self::append_audit_in(&mut tx, entry).await?;
                }
                tx.commit().await?;
                Ok(Created::Created)
            }

            async fn set_user_disabled(
                &self,
                id: Uuid,
                disabled_ms: Option<i64>,
                now_ms: i64,
                audit: &[AuditEntry],
            ) -> Result<bool, DbError> {
                let mut tx = self.pool.begin().await?;
                let sql = if disabled_ms.is_some() {
                    "UPDATE users SET disabled_ms = $1 WHERE id = $2 AND disabled_ms IS NULL"
                } else {
                    "UPDATE users SET disabled_ms = $1 WHERE id = $2 AND disabled_ms IS NOT NULL"
                };
                let changed = sqlx::query(sql)
                    .bind(disabled_ms)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                if changed == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                if disabled_ms.is_some() {
                    // Ended, without a reason the browser is told: it is sent to sign in,
                    // and the sign-in is refused. Enabling again revives none of them.
                    sqlx::query(
                        "UPDATE sessions SET revoked_ms = $1 \
                         WHERE user_id = $2 AND revoked_ms IS NULL",
                    )
                    .bind(now_ms)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                }
                for entry in audit {
                    Self::append_audit_in(&mut tx, entry).await?;
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn set_user_access(
                &self,
                id: Uuid,
                role: Role,
                banks: &[BankId],
                audit: &[AuditEntry],
            ) -> Result<(), DbError> {
                let mut tx = self.pool.begin().await?;
                sqlx::query("UPDATE users SET role = $1 WHERE id = $2")
                    .bind(role.as_str())
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM user_banks WHERE user_id = $1")
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
                for bank in banks {
                    sqlx::query("INSERT INTO user_banks (user_id, bank_id) VALUES ($1, $2)")
                        .bind(id.to_string())
                        .bind(bank.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                for entry in audit {
                    Self::append_audit_in(&mut tx, entry).await?;
                }
                tx.commit().await?;
                Ok(())
            }

            async fn agents_of_banks(
                &self,
                banks: &[BankId],
            ) -> Result<Vec<AgentRecord>, DbError> {
                if banks.is_empty() {
                    return Ok(Vec::new());
                }
                let condition = format!(
                    "u.id IN (SELECT user_id FROM user_banks WHERE bank_id IN ({}))",
                    placeholders(1, banks.len())
                );
                let binds: Vec<String> = banks.iter().map(ToString::to_string).collect();
                self.agent_rows(&condition, &binds).await
            }

            async fn agent_record(&self, id: AgentId) -> Result<Option<AgentRecord>, DbError> {
                Ok(self
                    .agent_rows("a.id = $1", &[id.to_string()])
                    .await?
                    .into_iter()
                    .next())
            }

            async fn create_agent(
                &self,
                id: AgentId,
                employee_no: &str,
                user: &NewUser,
                now_ms: i64,
                audit: &[AuditEntry],
            ) -> Result<Created, DbError> {
                let mut tx = self.pool.begin().await?;
                let taken: Option<String> =
                    sqlx::query_scalar("SELECT id FROM agents WHERE employee_no = $1")
                        .bind(employee_no)
                        .fetch_optional(&mut *tx)
                        .await?;
                if taken.is_some() {
                    tx.rollback().await?;
                    return Ok(Created::EmployeeNoTaken);
                }
                let inserted = sqlx::query(
                    "INSERT INTO users (id, login, display_name, role, password_hash, \
                     created_ms, password_changed_ms) VALUES ($1, $2, $3, 'agent', NULL, $4, $4)",
                )
                .bind(user.id.to_string())
                .bind(&user.login)
                .bind(&user.display_name)
                .bind(now_ms)
                .execute(&mut *tx)
                .await;
                match inserted {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => return Ok(Created::LoginTaken),
                    Err(e) => return Err(e.into()),
                }
                for bank in &user.bank_ids {
                    sqlx::query("INSERT INTO user_banks (user_id, bank_id) VALUES ($1, $2)")
                        .bind(user.id.to_string())
                        .bind(bank.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                let inserted = sqlx::query(
                    "INSERT INTO agents (id, user_id, employee_no, created_ms) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(id.to_string())
                .bind(user.id.to_string())
                .bind(employee_no)
                .bind(now_ms)
                .execute(&mut *tx)
                .await;
                match inserted {
                    Ok(_) => {}
                    Err(e) if is_unique_violation(&e) => return Ok(Created::EmployeeNoTaken),
                    Err(e) => return Err(e.into()),
                }
                for entry in audit {
                    Self::append_audit_in(&mut tx, entry).await?;
                }
                tx.commit().await?;
                Ok(Created::Created)
            }

            async fn agent_phones(&self, agent: AgentId) -> Result<Vec<PhoneRecord>, DbError> {
                let rows: Vec<PhoneRow> = sqlx::query_as(
                    "SELECT id, alg, kid, enrolled_ms, revoked_at_ms, revoked_reason \
                     FROM devices WHERE agent_id = $1 ORDER BY enrolled_ms DESC, id",
                )
                .bind(agent.to_string())
                .fetch_all(&self.pool)
                .await?;
                rows.into_iter()
                    .map(|r| {
                        Ok(PhoneRecord {
                            id: r.id.parse().map_err(|_| DbError::Corrupt("devices.id"))?,
                            alg: r.alg,
                            kid: r.kid,
                            enrolled_ms: r.enrolled_ms,
                            revoked_at_ms: r.revoked_at_ms,
                            revoked_reason: r.revoked_reason,
                        })
                    })
                    .collect()
            }

            async fn bank_audit(
                &self,
                banks: &[BankId],
                query: &BankAuditQuery,
                limit: u32,
            ) -> Result<Vec<AuditRecord>, DbError> {
                if banks.is_empty() {
                    return Ok(Vec::new());
                }
                let sql = format!(
                    "SELECT seq, at_ms, actor_user_id, action, subject_kind, subject_id, \
                     bank_id, detail, client_addr, purpose FROM audit_log \
                     WHERE bank_id IN ({}) \
                     AND ($1 IS NULL OR action = $1) AND ($2 IS NULL OR at_ms >= $2) \
                     AND ($3 IS NULL OR at_ms < $3) AND ($4 IS NULL OR seq < $4) \
                     ORDER BY seq DESC LIMIT $5",
                    placeholders(6, banks.len())
                );
                let mut q = sqlx::query_as::<_, super::audit::AuditRow>(sqlx::AssertSqlSafe(sql))
                    .bind(query.action.map(AuditAction::as_str))
                    .bind(query.since_ms)
                    .bind(query.until_ms)
                    .bind(query.before_seq)
                    .bind(i64::from(limit));
                for b in banks {
                    q = q.bind(b.to_string());
                }
                q.fetch_all(&self.pool)
                    .await?
                    .into_iter()
                    .map(super::audit::record)
                    .collect()
            }
        }
    };
}

impl_admin_db!(super::SqliteDb);
impl_admin_db!(super::PgDb);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_follow_the_fixed_ones() {
        assert_eq!(placeholders(6, 3), "$6, $7, $8");
        assert_eq!(placeholders(1, 1), "$1");
    }
}
