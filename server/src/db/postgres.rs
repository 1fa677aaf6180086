//! The PostgreSQL backend: several servers can share one database.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::{Backend, Db, DbError, SchemaState, migrator};

/// [`Db`] on PostgreSQL.
pub struct PgDb {
    pub(crate) pool: PgPool,
}

impl PgDb {
    /// Connects to a `postgres://` URL (without migrating).
    pub async fn connect(url: &str) -> Result<Self, DbError> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(5))
            .connect(url)
            .await?;
        Ok(Self { pool })
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
