//! The server's storage: one [`Db`] trait, a SQLite and a PostgreSQL implementation, the
//! backend picked from the URL. Queries are built at run time, so no database is needed to
//! compile; each backend has its own migrations folder, embedded and applied at start.
//!
//! Each area of the server has its own trait in its own file (`auth.rs`: [`AuthDb`], …),
//! and [`Db`] is all of them together. An area writes its SQL once with `$n` placeholders,
//! which SQLite and PostgreSQL both accept, and implements its trait for both pools with
//! one `macro_rules!` invoked for [`SqliteDb`] and [`PgDb`]; only the migrations differ.

use std::borrow::Cow;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use sqlx::SqlSafeStr as _;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use tandem_core::model::{AddressId, AgentId, BankId, CaseId, MaskedCardNumber, MaskedIdNumber};
use tandem_core::place::Coordinate;
use uuid::Uuid;

pub mod auth;
pub mod ledger;
pub mod org;
mod postgres;
mod sqlite;
pub mod sync;
pub mod uploads;
pub mod visits;

pub use auth::AuthDb;
pub use ledger::LedgerDb;
pub use org::OrgDb;
pub use sync::SyncDb;
pub use uploads::UploadsDb;
pub use visits::VisitsDb;

pub use postgres::PgDb;
pub use sqlite::SqliteDb;

/// What the storage layer can fail with. Messages carry no personal data.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database answered with an error or could not be reached.
    #[error("database error: {0}")]
    Sqlx(#[from] sqlx::Error),
    /// A migration could not be applied (or the applied ones differ from the embedded ones).
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    /// The URL names no backend the server has.
    #[error("unsupported database URL scheme in {0:?}: use sqlite: or postgres://")]
    UnsupportedUrl(String),
    /// A stored value is not what the schema allows.
    #[error("stored value out of range: {0}")]
    Corrupt(&'static str),
    /// The transparency log's maths or signing failed (an incomplete store, a key error).
    #[error("transparency log: {0}")]
    Log(String),
}

/// Which implementation is behind the trait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite file (the default, for one server).
    Sqlite,
    /// PostgreSQL (several servers behind a load balancer).
    Postgres,
}

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
}

/// Row counts of every table, for health views and tests.
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

/// The SQL that counts every table; the same text works on both backends.
pub(crate) const COUNT_SQL: &str = "SELECT \
    (SELECT COUNT(*) FROM banks), (SELECT COUNT(*) FROM users), \
    (SELECT COUNT(*) FROM user_banks), (SELECT COUNT(*) FROM agents), \
    (SELECT COUNT(*) FROM enrollment_codes), (SELECT COUNT(*) FROM devices), \
    (SELECT COUNT(*) FROM cases), (SELECT COUNT(*) FROM case_addresses), \
    (SELECT COUNT(*) FROM policies)";

/// Storage used by the HTTP layer; one implementation per backend.
#[async_trait]
pub trait Db:
    OrgDb + AuthDb + UploadsDb + VisitsDb + SyncDb + LedgerDb + Send + Sync + 'static
{
    /// Which backend this is.
    fn backend(&self) -> Backend;
    /// Applies the embedded migrations not yet applied; a no-op when all are.
    async fn migrate(&self) -> Result<(), DbError>;
    /// Closes the pool, waiting for connections to be returned.
    async fn close(&self);
}

/// Opens the database named by the URL (`sqlite:` or `postgres://`), and migrates it.
pub async fn open(url: &str) -> Result<Arc<dyn Db>, DbError> {
    let db: Arc<dyn Db> = if url.starts_with("sqlite:") {
        Arc::new(SqliteDb::connect_url(url).await?)
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Arc::new(PgDb::connect(url).await?)
    } else {
        // Only the scheme: the rest may hold a password.
        let scheme = url.split(':').next().unwrap_or_default().to_owned();
        return Err(DbError::UnsupportedUrl(scheme));
    };
    db.migrate().await?;
    Ok(db)
}

/// Opens (creating if needed) the SQLite file at `path`, and migrates it.
pub async fn open_sqlite_file(path: &Path) -> Result<Arc<dyn Db>, DbError> {
    let db = SqliteDb::connect_file(path).await?;
    db.migrate().await?;
    Ok(Arc::new(db))
}

/// One embedded migration: version, description, SQL.
type Embedded = (i64, &'static str, &'static str);

const SQLITE_MIGRATIONS: &[Embedded] = &[
    (
        1,
        "foundation",
        include_str!("../../migrations/sqlite/0001_foundation.sql"),
    ),
    (
        2,
        "auth",
        include_str!("../../migrations/sqlite/0002_auth.sql"),
    ),
    (
        3,
        "uploads",
        include_str!("../../migrations/sqlite/0003_uploads.sql"),
    ),
    (
        4,
        "visits",
        include_str!("../../migrations/sqlite/0004_visits.sql"),
    ),
    (
        5,
        "ledger",
        include_str!("../../migrations/sqlite/0005_ledger.sql"),
    ),
    (
        6,
        "upload owners",
        include_str!("../../migrations/sqlite/0006_upload_owners.sql"),
    ),
];

const POSTGRES_MIGRATIONS: &[Embedded] = &[
    (
        1,
        "foundation",
        include_str!("../../migrations/postgres/0001_foundation.sql"),
    ),
    (
        2,
        "auth",
        include_str!("../../migrations/postgres/0002_auth.sql"),
    ),
    (
        3,
        "uploads",
        include_str!("../../migrations/postgres/0003_uploads.sql"),
    ),
    (
        4,
        "visits",
        include_str!("../../migrations/postgres/0004_visits.sql"),
    ),
    (
        5,
        "ledger",
        include_str!("../../migrations/postgres/0005_ledger.sql"),
    ),
    (
        6,
        "upload owners",
        include_str!("../../migrations/postgres/0006_upload_owners.sql"),
    ),
];

/// Builds a migrator from embedded files (sqlx's `migrate!` would need its macros feature,
/// which compiles both database drivers a second time for the build host).
fn migrator(files: &[Embedded]) -> Migrator {
    Migrator::with_migrations(
        files
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    Cow::Borrowed(description),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect(),
    )
}

/// Converts counted columns into [`TableCounts`].
pub(crate) fn counts_from(c: [i64; 9]) -> TableCounts {
    let [
        banks,
        users,
        user_banks,
        agents,
        enrollment_codes,
        devices,
        cases,
        case_addresses,
        policies,
    ] = c;
    TableCounts {
        banks,
        users,
        user_banks,
        agents,
        enrollment_codes,
        devices,
        cases,
        case_addresses,
        policies,
    }
}

/// Parses a case address's datum read back from the database.
pub(crate) fn parse_datum(s: &str) -> Result<tandem_core::place::Datum, DbError> {
    s.parse()
        .map_err(|_| DbError::Corrupt("case_addresses.datum"))
}

/// Parses bank ids read back from the database.
pub(crate) fn parse_bank_ids(ids: Vec<String>) -> Result<Vec<BankId>, DbError> {
    ids.iter()
        .map(|s| {
            s.parse()
                .map_err(|_| DbError::Corrupt("user_banks.bank_id"))
        })
        .collect()
}
