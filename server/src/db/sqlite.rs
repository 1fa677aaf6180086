//! The SQLite backend: one file, WAL, foreign keys on.

use std::path::Path;
use std::str::FromStr as _;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::{Backend, Db, DbError, SchemaState, migrator};

/// [`Db`] on a SQLite file.
pub struct SqliteDb {
    pub(crate) pool: SqlitePool,
    /// Connections for upload bookkeeping (offsets, leases), whose commits do not wait for
    /// their own fsync (`synchronous=NORMAL`): the WAL makes them durable with the next
    /// durable commit or checkpoint. A power cut can only move an upload's offset back,
    /// and the phone resends from `HEAD`; evidence and receipts commit on [`Self::pool`]
    /// (`synchronous=FULL`). See docs/decisions.md.
    pub(crate) books: SqlitePool,
}

impl SqliteDb {
    /// Connects to a `sqlite:` URL (without migrating).
    pub async fn connect_url(url: &str) -> Result<Self, DbError> {
        Self::connect_with(SqliteConnectOptions::from_str(url)?, true).await
    }

    /// Connects to (creating) the file at `path` (without migrating).
    pub async fn connect_file(path: &Path) -> Result<Self, DbError> {
        Self::connect_with(SqliteConnectOptions::new().filename(path), true).await
    }

    /// Connects to an existing database only (a `sqlite:` URL or a file), never creating
    /// one: for tools that check what a server stored.
    pub async fn connect_existing(options: SqliteConnectOptions) -> Result<Self, DbError> {
        Self::connect_with(options, false).await
    }

    async fn connect_with(options: SqliteConnectOptions, create: bool) -> Result<Self, DbError> {
        let options = options
            .create_if_missing(create)
            .journal_mode(SqliteJournalMode::Wal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let books = options.clone().synchronous(SqliteSynchronous::Normal);
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.synchronous(SqliteSynchronous::Full))
            .await?;
        // One connection: bookkeeping writes queue here, in order, rather than in SQLite's
        // busy handler, which sleeps in steps of up to 100 ms while another writer holds
        // the lock.
        let books = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_lazy_with(books);
        Ok(Self { pool, books })
    }
}

#[async_trait]
impl Db for SqliteDb {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> Result<(), DbError> {
        migrator(super::SQLITE_MIGRATIONS).run(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.books.close().await;
        self.pool.close().await;
    }

    async fn schema_state(&self) -> Result<SchemaState, DbError> {
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = '_sqlx_migrations'",
        )
        .fetch_one(&self.pool)
        .await?;
        let applied: Vec<(i64, Vec<u8>, bool)> = if tables == 0 {
            Vec::new()
        } else {
            sqlx::query_as(super::APPLIED_MIGRATIONS)
                .fetch_all(&self.pool)
                .await?
        };
        Ok(super::schema_state_of(super::SQLITE_MIGRATIONS, &applied))
    }
}
