//! A real server in this process: its own tokio runtime, a listener on 127.0.0.1, the demo
//! organisation seeded, and the server's clock set to 10:00 Shanghai time today. Its
//! records in SQLite or PostgreSQL, its blobs in its data folder or in the bucket of a real
//! 3-node Garage cluster ([`tandem_server::testing::garage`]).

use std::path::Path;
use std::sync::{Arc, OnceLock};

use crate::Console;
use tandem_core::crypto::Digest;
use tandem_server::blobstore::BlobStore;
use tandem_server::clock::{ServerClock as _, ShiftedClock};
use tandem_server::demo::DemoCredentials;
use tandem_server::testing::TestBackend;
use tandem_server::testing::garage::{self, Garage};
use tandem_server::{AppState, db::Role};

/// Where a test server keeps its records and its evidence.
pub struct Backend {
    /// `sqlite`, `postgres` or `postgres+garage` (`sqlite+garage` outside CI without
    /// PostgreSQL), for assertion messages.
    pub label: &'static str,
    /// The database and the data folder.
    pub db: TestBackend,
    /// The cluster whose bucket holds the blobs; `None`: the data folder holds them.
    pub garage: Option<Garage>,
}

impl From<TestBackend> for Backend {
    fn from(db: TestBackend) -> Self {
        Backend {
            label: db.label,
            db,
            garage: None,
        }
    }
}

/// The backends to run against (SQLite always; PostgreSQL when configured, required in CI),
/// blobs in the data folder.
pub fn backends() -> Vec<Backend> {
    runtime()
        .block_on(tandem_server::testing::backends())
        .into_iter()
        .map(Backend::from)
        .collect()
}

/// [`backends`], then records in PostgreSQL (SQLite outside CI without one) and blobs in a
/// bucket of a fresh 3-node Garage cluster. Without Garage that last one is skipped with a
/// note, except under CI, where it fails the test.
pub fn backends_with_garage(test: &str) -> Vec<Backend> {
    let mut out = backends();
    if let Some(cluster) = garage_backend(test) {
        out.push(cluster);
    }
    out
}

/// Records in PostgreSQL (SQLite outside CI without one), blobs in a bucket of a fresh
/// 3-node Garage cluster; `None` (after a note) without Garage outside CI.
pub fn garage_backend(test: &str) -> Option<Backend> {
    let cluster = garage::start_or_skip(test)?;
    let db = runtime().block_on(tandem_server::testing::postgres_or_sqlite());
    let label = match db.label {
        "postgres" => "postgres+garage",
        _ => "sqlite+garage",
    };
    Some(Backend {
        label,
        db,
        garage: Some(cluster),
    })
}

/// One runtime for every server of the test binary (tests run on several threads; the
/// servers' tasks share these workers).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("tokio runtime")
    })
}

/// The shift that puts the server at 10:00 in Shanghai (02:00 UTC) on today's UTC date.
fn ten_in_shanghai_offset_ms() -> i64 {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
    let ten = now - now.rem_euclid(crate::DAY_MS) + 2 * crate::HOUR_MS;
    ten - now
}

/// A running server with the demo organisation.
pub struct Server {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    /// Its state (database, key, blobs).
    pub state: AppState,
    /// The demo's logins, passwords and enrollment codes.
    pub demo: DemoCredentials,
    /// Which backend, for assertion messages.
    pub label: &'static str,
    /// Its clock: 10:00 in Shanghai when it starts, moved on with its teams' phones.
    pub clock: Arc<ShiftedClock>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    backend: Backend,
}

impl Server {
    /// Starts a server on `backend` and seeds the demo organisation. Its key is the data
    /// folder's `server-key.p8` and its master key `master.key`, where `tandem serve` on
    /// the same folder finds them ([`crate::serve::ServeProcess`]).
    pub fn start(backend: Backend) -> Server {
        let label = backend.label;
        let clock = Arc::new(ShiftedClock::new(ten_in_shanghai_offset_ms()));
        let dir = backend.db.dir.path().to_owned();
        let mut state = runtime().block_on(async {
            let signer =
                tandem_server::key::load_or_create(&dir.join("server-key.p8")).expect("server key");
            backend
                .db
                .state_with(signer)
                .await
                .with_clock(clock.clone())
        });
        if let Some(cluster) = &backend.garage {
            let blobs = BlobStore::open_s3(
                dir.join("blobs"),
                &cluster.config(),
                state.blobs.keys().clone(),
            )
            .expect("blob store on the Garage bucket");
            // Blocking, outside the runtime: the store runs its requests on its own.
            garage::wait_writable(&blobs);
            state = state.with_blobs(blobs);
        }
        let (demo, listener) = runtime().block_on(async {
            let demo = tandem_server::demo::seed(state.db.as_ref(), clock.now_ms())
                .await
                .expect("seed demo")
                .expect("fresh database");
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind 127.0.0.1");
            (demo, listener)
        });
        let addr = listener.local_addr().expect("local address");
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = tandem_server::app(state.clone());
        runtime().spawn(async move {
            let _ = axum_serve(listener, app, rx).await;
        });
        Server {
            base: format!("http://{addr}"),
            state,
            demo,
            label,
            clock,
            shutdown: Some(tx),
            backend,
        }
    }

    /// The data folder (key files; the SQLite database; uploads in progress).
    pub fn data_dir(&self) -> &Path {
        self.backend.db.dir.path()
    }

    /// The database's URL.
    pub fn database_url(&self) -> &str {
        &self.backend.db.url
    }

    /// The Garage cluster holding the blobs, if they are in a bucket.
    pub fn garage(&self) -> Option<&Garage> {
        self.backend.garage.as_ref()
    }

    /// Reads a stored blob back through the server's store (its folder or its bucket) and
    /// checks it: the store's reader authenticates every record and the whole blob's
    /// SHA-256 against its address before the last bytes; the plaintext is hashed here
    /// again. Its size, or why it did not read back whole. Blocking: call it from the test.
    pub fn verify_blob(&self, digest: &Digest) -> Result<u64, String> {
        use std::io::Read as _;
        let mut reader = self
            .state
            .blobs
            .open_read(digest)
            .map_err(|e| format!("open {digest}: {e}"))?;
        let mut hasher = tandem_core::crypto::Sha256Stream::default();
        let mut buf = vec![0u8; 1 << 20];
        let mut size = 0u64;
        loop {
            let n = reader
                .read(&mut buf)
                .map_err(|e| format!("read {digest}: {e}"))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        let read = hasher.finish();
        if read == *digest {
            Ok(size)
        } else {
            Err(format!("{digest} read back as {read}"))
        }
    }

    /// Stops answering HTTP here; the state stays for the test's own checks. For a test
    /// whose traffic goes to another server on the same database and store from now on.
    pub fn stop_serving(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }

    /// The server's clock, UTC ms (shifted into visiting hours).
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    /// The demo's console user of `role`, signed in.
    pub fn console(&self, role: Role) -> Console {
        let (login, password) = self.user(role);
        Console::sign_in(&self.base, login, password)
    }

    /// A console user's login and password for `role`.
    pub fn user(&self, role: Role) -> (&str, &str) {
        self.demo
            .users
            .iter()
            .find(|(_, r, _)| *r == role)
            .map(|(login, _, password)| (login.as_str(), password.as_str()))
            .unwrap_or_else(|| panic!("the demo has no {role:?}"))
    }

    /// The enrollment code of the demo's agent `i`.
    pub fn code(&self, i: usize) -> &str {
        &self.demo.agents[i].2
    }

    /// Runs `f` on the server's runtime (database checks from a synchronous test).
    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        runtime().block_on(f)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn axum_serve(
    listener: tokio::net::TcpListener,
    app: axum::Router,
    stop: tokio::sync::oneshot::Receiver<()>,
) -> std::io::Result<()> {
    axum::serve(listener, app)
        .with_graceful_shutdown(async {
            let _ = stop.await;
        })
        .await
}
