//! Test support shared by the server's tests and the end-to-end tests (feature
//! `testing`): the database backends every test runs against. SQLite in a temp folder
//! always; PostgreSQL when `TANDEM_TEST_DATABASE_URL` is set (a fresh database per test,
//! dropped afterwards). In CI (`CI=true`) a missing PostgreSQL URL fails the test. And a
//! real 3-node Garage cluster for blobs in an S3 bucket ([`garage`]).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

pub mod console;
pub mod garage;
pub mod seed;

use std::sync::Arc;

use sqlx::Connection as _;
use tandem_core::crypto::{SignatureAlgorithm, SoftwareSigner};
use tempfile::TempDir;

use crate::db::{self, Db};
use crate::{AppState, Config};

/// Admin URL of a PostgreSQL cluster the tests may create databases on.
pub const PG_ENV: &str = "TANDEM_TEST_DATABASE_URL";

/// One database to run a test against.
pub struct TestBackend {
    /// `sqlite` or `postgres`, for assertion messages.
    pub label: &'static str,
    /// URL the server opens.
    pub url: String,
    /// A data folder for this test (key files, the SQLite file).
    pub dir: TempDir,
    /// For PostgreSQL: (admin URL, database name) to drop afterwards.
    pg: Option<(String, String)>,
}

impl TestBackend {
    /// Opens (and migrates) the database.
    pub async fn open(&self) -> Arc<dyn Db> {
        db::open(&self.url)
            .await
            .unwrap_or_else(|e| panic!("{}: open: {e}", self.label))
    }

    /// App state on this backend with a fresh server key.
    pub async fn state(&self) -> AppState {
        let (signer, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
        self.state_with(signer).await
    }

    /// App state on this backend signing with `signer` (a test world's server key).
    pub async fn state_with(&self, signer: SoftwareSigner) -> AppState {
        let config = Config {
            body_limit_bytes: 64 * 1024,
            data_dir: self.dir.path().to_owned(),
            ..Config::default()
        };
        AppState::new(self.open().await, signer, self.master_key(), config).unwrap()
    }

    /// The master key of this test's data folder (`master.key`, created on first use), as
    /// `tandem serve` keeps it by default.
    pub fn master_key(&self) -> Arc<dyn crate::blobstore::keys::MasterKey> {
        let path = self.dir.path().join("master.key");
        match crate::blobstore::keys::LocalMasterKey::load(&path) {
            Ok(key) => Arc::new(key),
            Err(_) => Arc::new(crate::blobstore::keys::LocalMasterKey::create(&path).unwrap()),
        }
    }
}

impl Drop for TestBackend {
    fn drop(&mut self) {
        let Some((admin, name)) = self.pg.take() else {
            return;
        };
        // Drop may run inside a runtime or while panicking: a thread with its own runtime
        // drops the database either way; FORCE ends pools that are still open.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async {
                if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                    let sql = format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)");
                    let _ = sqlx::query(sqlx::AssertSqlSafe(sql)).execute(&mut c).await;
                    let _ = c.close().await;
                }
            });
        })
        .join();
    }
}

/// The backends to run: SQLite always, PostgreSQL when configured (required in CI).
pub async fn backends() -> Vec<TestBackend> {
    let mut out = vec![sqlite()];
    if let Some(admin) = postgres_admin() {
        out.push(postgres(&admin).await);
    }
    out
}

/// PostgreSQL when configured (required in CI), else SQLite: the records of a variant that
/// differs in something else, such as where its blobs live.
pub async fn postgres_or_sqlite() -> TestBackend {
    match postgres_admin() {
        Some(admin) => postgres(&admin).await,
        None => sqlite(),
    }
}

/// The PostgreSQL admin URL, `None` (after a note) when it is not set outside CI.
fn postgres_admin() -> Option<String> {
    match std::env::var(PG_ENV) {
        Ok(admin) if !admin.is_empty() => Some(admin),
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "{PG_ENV} is not set but CI=true: the PostgreSQL variant must run in CI \
             (use scripts/with-postgres)"
        ),
        _ => {
            eprintln!("note: {PG_ENV} not set, PostgreSQL variant skipped (allowed outside CI)");
            None
        }
    }
}

/// A SQLite database in a fresh temp folder.
pub fn sqlite() -> TestBackend {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("tandem.db").display());
    TestBackend {
        label: "sqlite",
        url,
        dir,
        pg: None,
    }
}

async fn postgres(admin: &str) -> TestBackend {
    let name = format!("test_{}", uuid::Uuid::now_v7().simple());
    let mut c = sqlx::PgConnection::connect(admin)
        .await
        .unwrap_or_else(|e| panic!("connect to {PG_ENV}: {e}"));
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE \"{name}\"")))
        .execute(&mut c)
        .await
        .unwrap();
    c.close().await.unwrap();
    TestBackend {
        label: "postgres",
        url: with_database(admin, &name),
        dir: tempfile::tempdir().unwrap(),
        pg: Some((admin.to_owned(), name)),
    }
}

/// The admin URL with its database name replaced.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let (scheme, rest) = base.split_once("://").expect("postgres URL with ://");
    let authority = rest.split('/').next().unwrap_or_default();
    format!("{scheme}://{authority}/{name}{query}")
}
