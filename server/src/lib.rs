//! Tandem's server: the HTTP app ([`app`]), its state, storage behind the [`db::Db`] trait
//! (SQLite or PostgreSQL), the server key and the demo organisation.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use tandem_core::crypto::SoftwareSigner;

pub mod audit;
pub mod auth;
pub mod blobstore;
pub mod clock;
pub mod console;
pub mod db;
pub mod demo;
pub mod error;
pub mod evidence;
pub mod headers;
pub mod ingest;
pub mod input;
pub mod key;
pub mod metrics;
pub mod receipts;
pub mod retention;
pub mod schedule;
pub mod secrets;
pub mod serve;
pub mod service;
pub mod sync;
#[cfg(feature = "testing")]
pub mod testing;
pub mod throttle;
pub mod tlog;
pub mod uploads;
pub mod visits;

/// Settings the handlers read.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest request body accepted, bytes.
    pub body_limit_bytes: usize,
    /// The data folder (key, SQLite file, blobs).
    pub data_dir: PathBuf,
    /// Largest blob a resumable upload may announce (`Tus-Max-Size`), bytes.
    pub upload_max_bytes: u64,
    /// Largest body of one upload PATCH, bytes (independent of `body_limit_bytes`).
    pub upload_patch_max_bytes: u64,
    /// How long a PATCH body may send nothing before the upload is freed.
    pub upload_idle_timeout: Duration,
    /// How long an upload's lease outlives its last renewal (a crashed writer's upload is
    /// free again after this).
    pub upload_lease: Duration,
    /// Session cookies always carry `Secure` (`tandem serve --secure-cookies`: TLS ends at a
    /// proxy in front).
    pub secure_cookies: bool,
    /// Believe `X-Forwarded-Proto: https` from the proxy in front (never set when clients
    /// reach the server directly: they could send the header themselves).
    pub trust_forwarded_proto: bool,
    /// Sign-in throttling: the hash pool and the failure backoff.
    pub login: throttle::LoginLimits,
    /// Account rules (A01): lockout, password age and policy.
    pub account: auth::AccountPolicy,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            body_limit_bytes: 1 << 20,
            data_dir: PathBuf::from(serve::DEFAULT_DATA_DIR),
            upload_max_bytes: uploads::DEFAULT_MAX_BYTES,
            upload_patch_max_bytes: uploads::DEFAULT_MAX_BYTES,
            upload_idle_timeout: uploads::DEFAULT_IDLE_TIMEOUT,
            upload_lease: uploads::DEFAULT_LEASE,
            secure_cookies: false,
            trust_forwarded_proto: false,
            login: throttle::LoginLimits::default(),
            account: auth::AccountPolicy::default(),
        }
    }
}

/// What every handler shares; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// Storage.
    pub db: Arc<dyn db::Db>,
    /// The server's signing key.
    pub signer: Arc<SoftwareSigner>,
    /// Settings.
    pub config: Arc<Config>,
    /// Request metrics.
    pub metrics: Arc<metrics::Metrics>,
    /// Content-addressed blobs, under `<data_dir>/blobs` or in a bucket (uploads in
    /// progress always under `<data_dir>/blobs/tmp`).
    pub blobs: Arc<blobstore::BlobStore>,
    /// Hash states of uploads this process is writing in order (so blobs are hashed once).
    pub upload_hashes: Arc<uploads::HashCache>,
    /// Sign-in throttling of this process (hash pool, failure counts).
    pub login_throttle: Arc<throttle::LoginThrottle>,
    /// The server's clock (the system's, shifted only in demos and tests).
    pub clock: Arc<dyn clock::ServerClock>,
}

impl AppState {
    /// State with fresh metrics; opens (creating) the blob folder under the data folder,
    /// its blobs sealed under keys wrapped by `master` (checked by
    /// [`blobstore::Keyring::check_master`] before serving).
    pub fn new(
        db: Arc<dyn db::Db>,
        signer: SoftwareSigner,
        master: Arc<dyn blobstore::keys::MasterKey>,
        config: Config,
    ) -> Result<Self, blobstore::BlobStoreError> {
        let keys = blobstore::Keyring::new(db.clone(), master);
        let blobs = blobstore::BlobStore::open(config.data_dir.join("blobs"), keys)?;
        let login_throttle = Arc::new(throttle::LoginThrottle::new(&config.login));
        Ok(Self {
            db,
            signer: Arc::new(signer),
            config: Arc::new(config),
            metrics: Arc::default(),
            blobs: Arc::new(blobs),
            upload_hashes: Arc::default(),
            login_throttle,
            clock: Arc::new(clock::SystemClock),
        })
    }

    /// The same state with its blobs in another store (a bucket: `tandem serve --s3-…`).
    #[must_use]
    pub fn with_blobs(mut self, blobs: blobstore::BlobStore) -> Self {
        self.blobs = Arc::new(blobs);
        self
    }

    /// The same state on another clock (demos and tests).
    #[must_use]
    pub fn with_clock(mut self, clock: Arc<dyn clock::ServerClock>) -> Self {
        self.clock = clock;
        self
    }

    /// Now, UTC ms, by the server's clock.
    pub fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }
}

/// The whole HTTP application; tests call it without a socket.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(service::healthz))
        .route("/metrics", get(service::metrics))
        .route("/openapi.json", get(service::openapi_json))
        .route("/v1/server-key", get(service::server_key))
        .merge(console::routes())
        .merge(auth::routes())
        .merge(uploads::routes())
        .merge(visits::routes())
        .merge(sync::routes())
        .merge(ingest::routes())
        .merge(evidence::routes())
        .merge(tlog::routes())
        .fallback(service::not_found)
        .method_not_allowed_fallback(service::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.body_limit_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            headers::refuse_nul_text,
        ))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            headers::panic_answer,
        ))
        .layer(axum::middleware::from_fn(headers::harden))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}
