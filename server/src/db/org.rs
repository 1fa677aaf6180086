//! The organisation itself: banks, their policies, users and their bank scope, agents with
//! enrollment codes, cases with addresses — seeded in one transaction — and the credentials
//! a sign-in checks. One SQL text with `$n` placeholders serves both backends (see
//! `db/mod.rs`).

use async_trait::async_trait;

use super::{
    COUNT_SQL, DbError, NewUser, OrgSeed, Role, TableCounts, UserCredentials, counts_from,
    parse_bank_ids,
};

/// Storage for the organisation.
#[async_trait]
pub trait OrgDb: Send + Sync {
    /// Checks the database answers.
    async fn ping(&self) -> Result<(), DbError>;
    /// Counts the rows of every table.
    async fn counts(&self) -> Result<TableCounts, DbError>;
    /// Creates a whole organisation in one transaction. Returns `false`, changing nothing,
    /// when a bank with the same code exists already.
    async fn seed_org(&self, seed: &OrgSeed) -> Result<bool, DbError>;
    /// The credentials of an enabled user, by login.
    async fn user_credentials(&self, login: &str) -> Result<Option<UserCredentials>, DbError>;
}

macro_rules! impl_org_db {
    ($db:ty, $conn:ty) => {
        impl $db {
            async fn insert_user(
                tx: &mut $conn,
                user: &NewUser,
                now_ms: i64,
            ) -> Result<(), DbError> {
                sqlx::query(
                    "INSERT INTO users (id, login, display_name, role, password_hash, created_ms) \
                     VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(user.id.to_string())
                .bind(&user.login)
                .bind(&user.display_name)
                .bind(user.role.as_str())
                .bind(user.password_hash.as_deref())
                .bind(now_ms)
                .execute(&mut *tx)
                .await?;
                for bank in &user.bank_ids {
                    sqlx::query("INSERT INTO user_banks (user_id, bank_id) VALUES ($1, $2)")
                        .bind(user.id.to_string())
                        .bind(bank.to_string())
                        .execute(&mut *tx)
                        .await?;
                }
                Ok(())
            }
        }

        #[async_trait]
        impl OrgDb for $db {
            async fn ping(&self) -> Result<(), DbError> {
                sqlx::query("SELECT 1").execute(&self.pool).await?;
                Ok(())
            }

            async fn counts(&self) -> Result<TableCounts, DbError> {
                let row: (i64, i64, i64, i64, i64, i64, i64, i64, i64) =
                    sqlx::query_as(COUNT_SQL).fetch_one(&self.pool).await?;
                Ok(counts_from([
                    row.0, row.1, row.2, row.3, row.4, row.5, row.6, row.7, row.8,
                ]))
            }

            async fn seed_org(&self, seed: &OrgSeed) -> Result<bool, DbError> {
                let mut tx = self.pool.begin().await?;
                let inserted = sqlx::query(
                    "INSERT INTO banks (id, code, name, created_ms) VALUES ($1, $2, $3, $4) \
                     ON CONFLICT (code) DO NOTHING",
                )
                .bind(seed.bank.id.to_string())
                .bind(&seed.bank.code)
                .bind(&seed.bank.name)
                .bind(seed.now_ms)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                sqlx::query(
                    "INSERT INTO policies (bank_id, version, body, created_ms) \
                     VALUES ($1, 1, $2, $3)",
                )
                .bind(seed.bank.id.to_string())
                .bind(&seed.policy_json)
                .bind(seed.now_ms)
                .execute(&mut *tx)
                .await?;
                for user in &seed.users {
                    Self::insert_user(&mut tx, user, seed.now_ms).await?;
                }
                for agent in &seed.agents {
                    Self::insert_user(&mut tx, &agent.user, seed.now_ms).await?;
                    sqlx::query(
                        "INSERT INTO agents (id, user_id, employee_no, created_ms) \
                         VALUES ($1, $2, $3, $4)",
                    )
                    .bind(agent.id.to_string())
                    .bind(agent.user.id.to_string())
                    .bind(&agent.employee_no)
                    .bind(seed.now_ms)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query(
                        "INSERT INTO enrollment_codes \
                         (id, agent_id, code_hash, created_ms, expires_ms) \
                         VALUES ($1, $2, $3, $4, $5)",
                    )
                    .bind(agent.enrollment.id.to_string())
                    .bind(agent.id.to_string())
                    .bind(&agent.enrollment.code_hash)
                    .bind(seed.now_ms)
                    .bind(agent.enrollment.expires_ms)
                    .execute(&mut *tx)
                    .await?;
                }
                for case in &seed.cases {
                    sqlx::query(
                        "INSERT INTO cases (id, bank_id, case_ref, card_masked, debtor_name, \
                         id_number_masked, outstanding_fen, status, entrustment_start_ms, \
                         entrustment_end_ms, created_ms) \
                         VALUES ($1, $2, $3, $4, $5, $6, $7, 'open', $8, $9, $10)",
                    )
                    .bind(case.id.to_string())
                    .bind(case.bank_id.to_string())
                    .bind(&case.case_ref)
                    .bind(case.card.as_str())
                    .bind(&case.debtor_name)
                    .bind(case.id_number.as_str())
                    .bind(case.outstanding_fen)
                    .bind(case.entrustment_start_ms)
                    .bind(case.entrustment_end_ms)
                    .bind(seed.now_ms)
                    .execute(&mut *tx)
                    .await?;
                    for a in &case.addresses {
                        sqlx::query(
                            "INSERT INTO case_addresses (id, case_id, text, lat_e7, lon_e7, datum) \
                             VALUES ($1, $2, $3, $4, $5, $6)",
                        )
                        .bind(a.id.to_string())
                        .bind(case.id.to_string())
                        .bind(&a.text)
                        .bind(a.position.lat_e7())
                        .bind(a.position.lon_e7())
                        .bind(a.position.datum().as_str())
                        .execute(&mut *tx)
                        .await?;
                    }
                }
                tx.commit().await?;
                Ok(true)
            }

            async fn user_credentials(
                &self,
                login: &str,
            ) -> Result<Option<UserCredentials>, DbError> {
                let row: Option<(String, String, Option<String>)> = sqlx::query_as(
                    "SELECT id, role, password_hash FROM users \
                     WHERE login = $1 AND disabled_ms IS NULL",
                )
                .bind(login)
                .fetch_optional(&self.pool)
                .await?;
                let Some((id, role, password_hash)) = row else {
                    return Ok(None);
                };
                let banks: Vec<String> = sqlx::query_scalar(
                    "SELECT bank_id FROM user_banks WHERE user_id = $1 ORDER BY bank_id",
                )
                .bind(&id)
                .fetch_all(&self.pool)
                .await?;
                Ok(Some(UserCredentials {
                    id: id.parse().map_err(|_| DbError::Corrupt("users.id"))?,
                    role: Role::parse(&role).ok_or(DbError::Corrupt("users.role"))?,
                    password_hash,
                    bank_ids: parse_bank_ids(banks)?,
                }))
            }
        }
    };
}

impl_org_db!(super::SqliteDb, sqlx::SqliteConnection);
impl_org_db!(super::PgDb, sqlx::PgConnection);
