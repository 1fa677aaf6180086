//! Tandem's server: the HTTP app ([`app`]), its state, storage behind the [`db::Db`] trait
//! (SQLite or PostgreSQL), the server key and the demo organisation.

use std::path::PathBuf;
use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::get;
use tandem_core::crypto::SoftwareSigner;

pub mod auth;
pub mod blobstore;
pub mod db;
pub mod demo;
pub mod error;
pub mod ingest;
pub mod key;
pub mod metrics;
pub mod routes;
pub mod secrets;
pub mod serve;
pub mod tlog;

/// Now, UTC milliseconds (the server's clock: what it signs in anchors and receipts).
pub fn now_ms() -> i64 {
    demo::now_ms()
}

/// Settings the handlers read.
#[derive(Debug, Clone)]
pub struct Config {
    /// Largest request body accepted, bytes.
    pub body_limit_bytes: usize,
    /// The data folder (key, SQLite file, blobs).
    pub data_dir: PathBuf,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            body_limit_bytes: 1 << 20,
            data_dir: PathBuf::from(serve::DEFAULT_DATA_DIR),
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
    /// Content-addressed blobs, under `<data_dir>/blobs`.
    pub blobs: Arc<blobstore::BlobStore>,
}

impl AppState {
    /// State with fresh metrics; opens (creating) the blob folder under the data folder.
    pub fn new(
        db: Arc<dyn db::Db>,
        signer: SoftwareSigner,
        config: Config,
    ) -> Result<Self, blobstore::BlobStoreError> {
        let blobs = blobstore::BlobStore::open(config.data_dir.join("blobs"))?;
        Ok(Self {
            db,
            signer: Arc::new(signer),
            config: Arc::new(config),
            metrics: Arc::default(),
            blobs: Arc::new(blobs),
        })
    }
}

/// The whole HTTP application; tests call it without a socket.
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(routes::healthz))
        .route("/metrics", get(routes::metrics))
        .route("/openapi.json", get(routes::openapi_json))
        .route("/v1/server-key", get(routes::server_key))
        .merge(auth::routes())
        .merge(ingest::routes())
        .merge(tlog::routes())
        .fallback(routes::not_found)
        .method_not_allowed_fallback(routes::method_not_allowed)
        .layer(DefaultBodyLimit::max(state.config.body_limit_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        .with_state(state)
}
