//! The organisation itself: banks, their policies, users and their bank scope, agents with
//! enrollment codes, cases with addresses — seeded in one transaction — and the credentials
//! a sign-in checks. One SQL text with `$n` placeholders serves both backends (see
//! `db/mod.rs`).

use async_trait::async_trait;
use tandem_core::model::{AddressId, AgentId, BankId, CaseId, MaskedCardNumber, MaskedIdNumber};
use tandem_core::place::Coordinate;
use uuid::Uuid;

use super::DbError;

/// A user's role; what they may do is decided by the routes, who they may see by their banks.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Field agent; signs in with an enrolled phone.
    Agent,
    /// Reviews requests, approves visits, assigns teams.
    Manager,
    /// Searches visits, views evidence, exports bundles.
    Legal,
    /// Manages users, devices and banks.
    Admin,
}

impl Role {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Manager => "manager",
            Self::Legal => "legal",
            Self::Admin => "admin",
        }
    }

    /// Parses the stored name.
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "agent" => Self::Agent,
            "manager" => Self::Manager,
            "legal" => Self::Legal,
            "admin" => Self::Admin,
            _ => return None,
        })
    }
}

/// A bank to create.
#[derive(Debug, Clone)]
pub struct NewBank {
    /// Its id.
    pub id: BankId,
    /// Short unique code (`pujiang-cc`); what makes seeding idempotent.
    pub code: String,
    /// Display name.
    pub name: String,
}

/// A user to create, with the banks they are scoped to.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Its id.
    pub id: Uuid,
    /// Sign-in name.
    pub login: String,
    /// Name shown in the console.
    pub display_name: String,
    /// Role.
    pub role: Role,
    /// argon2id PHC string; `None` for agents (they sign in with their device).
    pub password_hash: Option<String>,
    /// Banks whose cases this user may see.
    pub bank_ids: Vec<BankId>,
}

/// An agent to create, with its user row and a first enrollment code.
#[derive(Debug, Clone)]
pub struct NewAgent {
    /// Its id.
    pub id: AgentId,
    /// Employee number, unique.
    pub employee_no: String,
    /// The user row (role agent).
    pub user: NewUser,
    /// A one-time enrollment code, stored hashed.
    pub enrollment: NewEnrollmentCode,
}

/// A one-time enrollment code, as stored.
#[derive(Debug, Clone)]
pub struct NewEnrollmentCode {
    /// Its id.
    pub id: Uuid,
    /// SHA-256 hex of the code.
    pub code_hash: String,
    /// Expiry, UTC ms.
    pub expires_ms: i64,
}

/// A case to create; card and ID numbers arrive masked and are stored masked.
#[derive(Debug, Clone)]
pub struct NewCase {
    /// Its id.
    pub id: CaseId,
    /// Entrusting bank.
    pub bank_id: BankId,
    /// The bank's reference.
    pub case_ref: String,
    /// The card, masked.
    pub card: MaskedCardNumber,
    /// Debtor's name.
    pub debtor_name: String,
    /// Debtor's ID number, masked.
    pub id_number: MaskedIdNumber,
    /// Arrears in fen.
    pub outstanding_fen: i64,
    /// Entrustment period, UTC ms.
    pub entrustment_start_ms: i64,
    /// End of the entrustment, UTC ms.
    pub entrustment_end_ms: i64,
    /// Approved addresses.
    pub addresses: Vec<NewAddress>,
}

/// An approved address of a case.
#[derive(Debug, Clone)]
pub struct NewAddress {
    /// Its id.
    pub id: AddressId,
    /// Address text as the bank gave it.
    pub text: String,
    /// Position with its datum (GCJ-02 as AMap gives it).
    pub position: Coordinate,
}

/// A whole organisation created in one transaction (the demo seed).
#[derive(Debug, Clone)]
pub struct OrgSeed {
    /// The bank.
    pub bank: NewBank,
    /// Its first policy as JSON.
    pub policy_json: String,
    /// Console users (manager, legal, admin).
    pub users: Vec<NewUser>,
    /// Agents with their codes.
    pub agents: Vec<NewAgent>,
    /// Cases with addresses.
    pub cases: Vec<NewCase>,
    /// Creation time, UTC ms.
    pub now_ms: i64,
}

/// A user as needed to check a password.
#[derive(Debug, Clone)]
pub struct UserCredentials {
    /// Its id.
    pub id: Uuid,
    /// Role.
    pub role: Role,
    /// argon2id PHC string, if the user has a password.
    pub password_hash: Option<String>,
    /// Banks the user is scoped to.
    pub bank_ids: Vec<BankId>,
    /// When the password was last set, UTC ms (A01: it expires).
    pub password_changed_ms: i64,
}

row_by_name! {
    /// Row counts of every table, for health views and tests (each read from the counting
    /// query's column of its name).
    #[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
    pub struct TableCounts {
        /// `banks`.
        pub banks: i64,
        /// `users`.
        pub users: i64,
        /// `user_banks`.
        pub user_banks: i64,
        /// `agents`.
        pub agents: i64,
        /// `enrollment_codes`.
        pub enrollment_codes: i64,
        /// `devices`.
        pub devices: i64,
        /// `cases`.
        pub cases: i64,
        /// `case_addresses`.
        pub case_addresses: i64,
        /// `policies`.
        pub policies: i64,
    }
}

/// The SQL that counts every table; the same text works on both backends.
const COUNT_SQL: &str = "SELECT \
    (SELECT COUNT(*) FROM banks) AS banks, (SELECT COUNT(*) FROM users) AS users, \
    (SELECT COUNT(*) FROM user_banks) AS user_banks, (SELECT COUNT(*) FROM agents) AS agents, \
    (SELECT COUNT(*) FROM enrollment_codes) AS enrollment_codes, \
    (SELECT COUNT(*) FROM devices) AS devices, (SELECT COUNT(*) FROM cases) AS cases, \
    (SELECT COUNT(*) FROM case_addresses) AS case_addresses, \
    (SELECT COUNT(*) FROM policies) AS policies";

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
                    "INSERT INTO users (id, login, display_name, role, password_hash, created_ms, \
                     password_changed_ms) VALUES ($1, $2, $3, $4, $5, $6, $6)",
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
                Ok(sqlx::query_as(COUNT_SQL).fetch_one(&self.pool).await?)
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
                let row: Option<(String, String, Option<String>, i64)> = sqlx::query_as(
                    "SELECT id, role, password_hash, password_changed_ms FROM users \
                     WHERE login = $1 AND disabled_ms IS NULL",
                )
                .bind(login)
                .fetch_optional(&self.pool)
                .await?;
                let Some((id, role, password_hash, password_changed_ms)) = row else {
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
                    password_changed_ms,
                }))
            }
        }
    };
}

impl_org_db!(super::SqliteDb, sqlx::SqliteConnection);
impl_org_db!(super::PgDb, sqlx::PgConnection);

/// Parses bank ids read back from the database.
pub(crate) fn parse_bank_ids(ids: Vec<String>) -> Result<Vec<BankId>, DbError> {
    ids.iter()
        .map(|s| {
            s.parse()
                .map_err(|_| DbError::Corrupt("user_banks.bank_id"))
        })
        .collect()
}
