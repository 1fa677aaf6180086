//! Shared test helpers: the backends (from `tandem_server::testing`), a real-HTTP server on
//! 127.0.0.1, the demo organisation and the problem+json check.

#![allow(dead_code)]

pub mod browser;
pub mod handset;

use tandem_core::crypto::{SignatureAlgorithm, SoftwareSigner};
use tandem_server::AppState;
use tandem_server::db::Db;
#[allow(unused_imports)]
pub use tandem_server::testing::{PG_ENV, TestBackend, backends, garage, sqlite};

/// A server on 127.0.0.1 (an ephemeral port) serving `state`, for real-HTTP tests. The
/// server task ends with the test's runtime.
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// A client for it.
    pub http: reqwest::Client,
    /// The state it serves (database, signer, config).
    pub state: AppState,
}

impl TestServer {
    /// Binds and serves through `tandem serve`'s own accept loop with its default limits.
    pub async fn start(state: AppState) -> Self {
        Self::start_with(state, tandem_server::serve::ConnLimits::default()).await
    }

    /// Binds and serves through `tandem serve`'s own accept loop with `limits`.
    pub async fn start_with(state: AppState, limits: tandem_server::serve::ConnLimits) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = tandem_server::app(state.clone());
        tokio::spawn(async move {
            tandem_server::serve::serve_listener(listener, app, &limits, std::future::pending())
                .await
                .unwrap();
        });
        Self {
            base: format!("http://{addr}"),
            http: reqwest::Client::new(),
            state,
        }
    }

    /// The full URL of a path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Signs a console user in; returns the session token.
    pub async fn login(&self, login: &str, password: &str) -> String {
        let resp = self
            .http
            .post(self.url("/v1/login"))
            .json(&serde_json::json!({"login": login, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "login {login}");
        let body: serde_json::Value = resp.json().await.unwrap();
        body["token"].as_str().unwrap().to_owned()
    }

    /// POSTs a JSON body with a bearer token.
    pub async fn post_json(
        &self,
        token: &str,
        path: &str,
        body: serde_json::Value,
    ) -> reqwest::Response {
        self.http
            .post(self.url(path))
            .bearer_auth(token)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Enrols a new phone key with `code`; returns the key and the enrollment answer.
    pub async fn enroll(
        &self,
        code: &str,
    ) -> (SoftwareSigner, tandem_server::auth::EnrollResponse) {
        let (signer, _) = SoftwareSigner::generate(SignatureAlgorithm::Ed25519).unwrap();
        let resp = self.enroll_with(&signer, code).await;
        assert_eq!(resp.status(), 201, "enroll");
        (signer, resp.json().await.unwrap())
    }

    /// Sends an enrollment request for `signer`'s key and answers as is.
    pub async fn enroll_with(&self, signer: &SoftwareSigner, code: &str) -> reqwest::Response {
        enroll_request(&self.http, &self.base, signer, code).await
    }
}

/// Checks a problem+json answer of `status`; returns its `type` suffix and body.
pub async fn problem(resp: reqwest::Response, status: u16) -> (String, serde_json::Value) {
    assert_eq!(resp.status(), status);
    assert_eq!(resp.headers()["content-type"], "application/problem+json");
    let body: serde_json::Value = resp.json().await.unwrap();
    let kind = body["type"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    (kind, body)
}

/// Sends an enrollment request for `signer`'s key to the server at `base`.
pub async fn enroll_request(
    http: &reqwest::Client,
    base: &str,
    signer: &SoftwareSigner,
    code: &str,
) -> reqwest::Response {
    use tandem_core::crypto::Signer as _;
    let proof = tandem_core::crypto::SignatureRecord::sign(
        signer,
        tandem_server::auth::ENROLL_PURPOSE,
        tandem_server::secrets::enrollment_code_hash(code).as_bytes(),
    )
    .unwrap();
    http.post(format!("{base}/v1/enroll"))
        .json(&serde_json::json!({
            "code": code,
            "public_key": signer.public_key(),
            "proof": proof,
        }))
        .send()
        .await
        .unwrap()
}

/// The demo organisation seeded into a database, with its secrets and ids.
pub struct Demo {
    /// What was stored (bank, users, agents with ids, cases with ids).
    pub seed: tandem_server::db::OrgSeed,
    /// Passwords and codes, in clear.
    pub creds: tandem_server::demo::DemoCredentials,
}

impl Demo {
    /// The password of a console user (`manager`, `legal`, `admin`).
    pub fn password(&self, login: &str) -> &str {
        &self
            .creds
            .users
            .iter()
            .find(|(l, _, _)| l == login)
            .unwrap_or_else(|| panic!("no demo user {login}"))
            .2
    }

    /// The enrollment code of agent `i` (0..4).
    pub fn code(&self, i: usize) -> &str {
        &self.creds.agents[i].2
    }

    /// The id of agent `i`.
    pub fn agent_id(&self, i: usize) -> tandem_core::model::AgentId {
        self.seed.agents[i].id
    }

    /// The bank.
    pub fn bank_id(&self) -> tandem_core::model::BankId {
        self.seed.bank.id
    }
}

/// Seeds a demo organisation (with `code` as its bank code, so two can coexist).
pub async fn seed_demo(db: &dyn Db, code: &str) -> Demo {
    let (mut seed, creds) =
        tandem_server::demo::build(tandem_server::clock::system_now_ms()).unwrap();
    seed.bank.code = code.to_owned();
    // Logins and employee numbers are unique server-wide: prefix them for a second org.
    if code != tandem_server::demo::DEMO_BANK_CODE {
        for u in &mut seed.users {
            u.login = format!("{code}-{}", u.login);
        }
        for a in &mut seed.agents {
            a.user.login = format!("{code}-{}", a.user.login);
            a.employee_no = format!("{code}-{}", a.employee_no);
        }
    }
    let mut creds = creds;
    if code != tandem_server::demo::DEMO_BANK_CODE {
        for u in &mut creds.users {
            u.0 = format!("{code}-{}", u.0);
        }
    }
    assert!(db.seed_org(&seed).await.unwrap(), "seeded");
    Demo { seed, creds }
}

/// The blob store `tandem serve --data-dir <data>` keeps on `db`: sealed under
/// `<data>/master.key`, created here when absent as the server would create it.
pub fn blob_store(
    data: &std::path::Path,
    db: std::sync::Arc<dyn Db>,
) -> tandem_server::blobstore::BlobStore {
    tandem_server::blobstore::BlobStore::open(data.join("blobs"), keyring(data, db)).unwrap()
}

/// The keys of the blobs of a server's data folder on `db` (see [`blob_store`]).
pub fn keyring(
    data: &std::path::Path,
    db: std::sync::Arc<dyn Db>,
) -> tandem_server::blobstore::Keyring {
    use tandem_server::blobstore::keys::LocalMasterKey;
    let path = data.join("master.key");
    let master = match LocalMasterKey::load(&path) {
        Ok(key) => key,
        Err(_) => {
            std::fs::create_dir_all(data).unwrap();
            LocalMasterKey::create(&path).unwrap()
        }
    };
    tandem_server::blobstore::Keyring::new(db, std::sync::Arc::new(master))
}

/// A stored blob's plaintext, every record authenticated and its digest checked (blocking:
/// a multi-threaded runtime's test body or a blocking thread).
pub fn read_blob(
    store: &tandem_server::blobstore::BlobStore,
    digest: &tandem_core::crypto::Digest,
) -> Vec<u8> {
    use std::io::Read as _;
    let mut out = Vec::new();
    store
        .open_read(digest)
        .unwrap_or_else(|e| panic!("blob {digest}: {e}"))
        .read_to_end(&mut out)
        .unwrap_or_else(|e| panic!("blob {digest}: {e}"));
    out
}

/// Keys on a scratch SQLite database in `dir`, for store tests without a server. Made on
/// the caller's runtime, which must outlive it.
pub async fn scratch_keyring(dir: &std::path::Path) -> tandem_server::blobstore::Keyring {
    std::fs::create_dir_all(dir).unwrap();
    let db = tandem_server::db::open_sqlite_file(&dir.join("keys.db"))
        .await
        .unwrap();
    keyring(dir, db)
}

/// The files under `root` in which `needle` (at least 64 bytes, taken from the middle of a
/// blob) occurs: stored evidence must never hold plaintext. A live SQLite database
/// (`*.db`, `*.db-wal`, `*.db-shm`) is skipped: opening and closing it here would drop this
/// process's POSIX locks on it under its open pool (SQLite's documented pitfall), and it
/// holds no blob anyway.
pub fn occurs_in_files(root: &std::path::Path, needle: &[u8]) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = path.file_name().unwrap_or_default().to_string_lossy();
            if name.ends_with(".db") || name.ends_with(".db-wal") || name.ends_with(".db-shm") {
                continue;
            }
            if path.is_dir() {
                stack.push(path);
            } else if std::fs::read(&path)
                .is_ok_and(|b| b.windows(needle.len()).any(|w| w == needle))
            {
                found.push(path);
            }
        }
    }
    found
}

/// A stored blob's plaintext, read through the store off the runtime's thread; `None` when
/// it is not stored. Its bytes at rest are checked first: sealed, never the plaintext.
pub async fn stored_plaintext(
    store: &tandem_server::blobstore::BlobStore,
    digest: tandem_core::crypto::Digest,
) -> Option<Vec<u8>> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        use std::io::Read as _;
        let (mut source, len) = store.open_sealed(&digest).ok()?;
        let mut raw = Vec::new();
        source.read_to_end(&mut raw).unwrap();
        assert_eq!(raw.len() as u64, len);
        assert!(
            raw.starts_with(b"TNDMBLOB"),
            "blob {digest} is stored sealed"
        );
        let plain = read_blob(&store, &digest);
        if plain.len() >= 64 {
            let middle = &plain[plain.len() / 2 - 32..plain.len() / 2 + 32];
            assert!(
                !raw.windows(64).any(|w| w == middle),
                "blob {digest}: no plaintext at rest"
            );
        }
        Some(plain)
    })
    .await
    .unwrap()
}

/// Runs SQL statements beside the server on `b`'s database, as an insider or an operator's
/// script would.
pub async fn raw_sql(b: &TestBackend, statements: &[String]) {
    use sqlx::Connection as _;
    if b.label == "postgres" {
        let mut c = sqlx::PgConnection::connect(&b.url).await.unwrap();
        for s in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(s.clone()))
                .execute(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{s}: {e}"));
        }
    } else {
        let mut c = sqlx::SqliteConnection::connect(&b.url).await.unwrap();
        for s in statements {
            sqlx::raw_sql(sqlx::AssertSqlSafe(s.clone()))
                .execute(&mut c)
                .await
                .unwrap_or_else(|e| panic!("{s}: {e}"));
        }
    }
}
