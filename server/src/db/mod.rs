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

/// A struct read from a row column by column, each field from the column of its name, on
/// either pool: `sqlx::FromRow` for any row whose database decodes every field's type (what
/// sqlx's derive writes, without its macros crate). Defined before the areas' modules so
/// that each can use it.
macro_rules! row_by_name {
    (
        $(#[$meta:meta])*
        $vis:vis struct $name:ident {
            $($(#[$field_meta:meta])* $field_vis:vis $field:ident: $ty:ty,)*
        }
    ) => {
        $(#[$meta])*
        $vis struct $name {
            $($(#[$field_meta])* $field_vis $field: $ty,)*
        }

        impl<'r, R: sqlx::Row> sqlx::FromRow<'r, R> for $name
        where
            &'r str: sqlx::ColumnIndex<R>,
            $($ty: sqlx::Decode<'r, R::Database> + sqlx::Type<R::Database>,)*
        {
            fn from_row(row: &'r R) -> Result<Self, sqlx::Error> {
                Ok(Self {
                    $($field: row.try_get(stringify!($field))?,)*
                })
            }
        }
    };
}

pub mod account;
pub mod admin;
pub mod audit;
pub mod audit_chain;
pub mod auth;
pub mod complaints;
pub mod console;
pub mod dossier;
pub mod jobs;
pub mod keys;
pub mod ledger;
pub mod org;
mod postgres;
pub mod receipts;
pub mod retention;
mod sqlite;
pub mod sync;
pub mod uploads;
pub mod visits;

pub use account::AccountDb;
pub use admin::AdminDb;
pub use audit::AuditDb;
pub use auth::AuthDb;
pub use complaints::ComplaintsDb;
pub use console::ConsoleDb;
pub use dossier::DossierDb;
pub use jobs::JobsDb;
pub use keys::KeysDb;
pub use ledger::LedgerDb;
pub use org::{
    NewAddress, NewAgent, NewBank, NewCase, NewEnrollmentCode, NewUser, OrgDb, OrgSeed, Role,
    TableCounts, UserCredentials,
};
pub use receipts::ReceiptsDb;
pub use retention::RetentionDb;
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
    /// The SQLite file could not be read outside the pool (`tandem audit verify`'s reader).
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
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

/// Storage used by the HTTP layer; one implementation per backend.
#[async_trait]
pub trait Db:
    OrgDb
    + AuthDb
    + AccountDb
    + AuditDb
    + UploadsDb
    + VisitsDb
    + SyncDb
    + LedgerDb
    + ConsoleDb
    + ComplaintsDb
    + ReceiptsDb
    + AdminDb
    + DossierDb
    + RetentionDb
    + JobsDb
    + KeysDb
    + Send
    + Sync
    + 'static
{
    /// Which backend this is.
    fn backend(&self) -> Backend;
    /// Applies the embedded migrations not yet applied; a no-op when all are.
    async fn migrate(&self) -> Result<(), DbError>;
    /// Closes the pool, waiting for connections to be returned.
    async fn close(&self);
    /// How the schema stands against this binary's migrations, without changing anything
    /// (`tandem serve --check`).
    async fn schema_state(&self) -> Result<SchemaState, DbError>;
}

/// How a database's schema stands against the migrations embedded in this binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaState {
    /// Every embedded migration is applied, and nothing else.
    Current {
        /// How many are applied.
        applied: usize,
    },
    /// Some embedded migrations are not applied yet: the next start applies them.
    Pending {
        /// How many are applied.
        applied: usize,
        /// How many the next start applies.
        pending: usize,
    },
    /// A migration this binary does not know is applied: a newer server migrated it.
    Newer {
        /// The unknown version.
        version: i64,
    },
    /// An applied migration differs from the embedded one of its version, or failed half-way.
    Changed {
        /// Its version.
        version: i64,
    },
}

/// Compares applied migrations (version, checksum, success) with the embedded ones.
fn schema_state_of(files: &[Embedded], applied: &[(i64, Vec<u8>, bool)]) -> SchemaState {
    let embedded = migrator(files);
    for (version, checksum, success) in applied {
        match embedded.iter().find(|m| m.version == *version) {
            None => return SchemaState::Newer { version: *version },
            Some(m) if !*success || m.checksum.as_ref() != checksum.as_slice() => {
                return SchemaState::Changed { version: *version };
            }
            Some(_) => {}
        }
    }
    let pending = files.len().saturating_sub(applied.len());
    if pending == 0 {
        SchemaState::Current {
            applied: applied.len(),
        }
    } else {
        SchemaState::Pending {
            applied: applied.len(),
            pending,
        }
    }
}

/// The applied migrations as sqlx records them.
const APPLIED_MIGRATIONS: &str =
    "SELECT version, checksum, success FROM _sqlx_migrations ORDER BY version";

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

/// Opens an existing database named by the URL without creating or migrating it: for
/// tools that check what a server stored (`tandem audit verify`).
pub async fn open_existing(url: &str) -> Result<Arc<dyn Db>, DbError> {
    if url.starts_with("sqlite:") {
        let options = <sqlx::sqlite::SqliteConnectOptions as std::str::FromStr>::from_str(url)?;
        Ok(Arc::new(SqliteDb::connect_existing(options).await?))
    } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Ok(Arc::new(PgDb::connect(url).await?))
    } else {
        let scheme = url.split(':').next().unwrap_or_default().to_owned();
        Err(DbError::UnsupportedUrl(scheme))
    }
}

/// Opens the existing SQLite file at `path` without creating or migrating it.
pub async fn open_existing_sqlite_file(path: &Path) -> Result<Arc<dyn Db>, DbError> {
    let options = sqlx::sqlite::SqliteConnectOptions::new().filename(path);
    Ok(Arc::new(SqliteDb::connect_existing(options).await?))
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
    (
        7,
        "console accounts",
        include_str!("../../migrations/sqlite/0007_console_accounts.sql"),
    ),
    (
        8,
        "receipts",
        include_str!("../../migrations/sqlite/0008_receipts.sql"),
    ),
    (
        9,
        "complaints",
        include_str!("../../migrations/sqlite/0009_complaints.sql"),
    ),
    (
        10,
        "retention",
        include_str!("../../migrations/sqlite/0010_retention.sql"),
    ),
    (
        11,
        "dossier",
        include_str!("../../migrations/sqlite/0011_dossier.sql"),
    ),
    (
        12,
        "scheduled jobs",
        include_str!("../../migrations/sqlite/0012_scheduled_jobs.sql"),
    ),
    (
        13,
        "blob keys",
        include_str!("../../migrations/sqlite/0013_blob_keys.sql"),
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
    (
        7,
        "console accounts",
        include_str!("../../migrations/postgres/0007_console_accounts.sql"),
    ),
    (
        8,
        "receipts",
        include_str!("../../migrations/postgres/0008_receipts.sql"),
    ),
    (
        9,
        "complaints",
        include_str!("../../migrations/postgres/0009_complaints.sql"),
    ),
    (
        10,
        "retention",
        include_str!("../../migrations/postgres/0010_retention.sql"),
    ),
    (
        11,
        "dossier",
        include_str!("../../migrations/postgres/0011_dossier.sql"),
    ),
    (
        12,
        "scheduled jobs",
        include_str!("../../migrations/postgres/0012_scheduled_jobs.sql"),
    ),
    (
        13,
        "blob keys",
        include_str!("../../migrations/postgres/0013_blob_keys.sql"),
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

/// Parses a case address's datum read back from the database.
pub(crate) fn parse_datum(s: &str) -> Result<tandem_core::place::Datum, DbError> {
    s.parse()
        .map_err(|_| DbError::Corrupt("case_addresses.datum"))
}
