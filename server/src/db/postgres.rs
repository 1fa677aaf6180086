//! The PostgreSQL backend: several servers can share one database.

use std::str::FromStr as _;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::{Backend, Db, DbError, SchemaState, migrator};

/// [`Db`] on PostgreSQL.
pub struct PgDb {
    pub(crate) pool: PgPool,
    /// Connections for upload bookkeeping (offsets, leases), committing asynchronously
    /// (`synchronous_commit = off`): the WAL writer, or the next durable commit, flushes
    /// them within a fraction of a second. A crash of the database can only move an
    /// upload's offset back, and the phone resends from `HEAD`; evidence and receipts
    /// commit on [`Self::pool`], durably. See docs/decisions.md.
    pub(crate) books: PgPool,
}

impl PgDb {
    /// Connects to a `postgres://` URL (without migrating).
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        let options = PgConnectOptions::from_str(url)?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect_with(options.clone())
            .await?;
        let books = PgPoolOptions::new()
            .max_connections(8)
            .acquire_timeout(Duration::from_secs(5))
            .connect_lazy_with(options.options([("synchronous_commit", "off")]));
        Ok(Self { pool, books })
    }
}

#[async_trait]
impl Db for PgDb {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }

    async fn migrate(&self) -> Result<(), DbError> {
        migrator(super::POSTGRES_MIGRATIONS).run(&self.pool).await?;
        Ok(())
    }

    async fn close(&self) {
        self.books.close().await;
        self.pool.close().await;
    }

    async fn schema_state(&self) -> Result<SchemaState, DbError> {
        let tables: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM pg_catalog.pg_tables WHERE tablename = '_sqlx_migrations' AND schemaname = ANY (current_schemas(false))",
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
        Ok(super::schema_state_of(super::POSTGRES_MIGRATIONS, &applied))
    }
}
