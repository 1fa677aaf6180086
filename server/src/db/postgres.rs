//! The PostgreSQL backend: several servers can share one database.

use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::{PgPool, PgPoolOptions};

use super::{Backend, Db, DbError, migrator};

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
}
