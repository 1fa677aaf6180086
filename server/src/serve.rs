//! `tandem serve`: opens the database and key, optionally seeds the demo, and serves HTTP
//! until Ctrl-C or SIGTERM.

use std::net::SocketAddr;
use std::path::PathBuf;

use std::os::unix::fs::DirBuilderExt as _;

use clap::Args;

use crate::{AppState, Config, app, db, demo, key};

/// The data folder used when nothing is configured.
pub const DEFAULT_DATA_DIR: &str = "./tandem-data";

/// `tandem serve` options; each flag can also come from the environment.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Address and port to listen on.
    #[arg(long, env = "TANDEM_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Folder for the server key, the SQLite database and blobs.
    #[arg(long, env = "TANDEM_DATA_DIR", default_value = DEFAULT_DATA_DIR)]
    pub data_dir: PathBuf,
    /// `postgres://…` or `sqlite:…`; default: SQLite file `tandem.db` in the data folder.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// The server's Ed25519 PKCS#8 key; default: `server-key.p8` in the data folder,
    /// created on first start.
    #[arg(long, env = "TANDEM_KEY_FILE")]
    pub key_file: Option<PathBuf>,
    /// Seed a demo organisation on first start (printing its logins and codes once).
    #[arg(long)]
    pub demo: bool,
    /// Largest request body accepted, bytes.
    #[arg(long, env = "TANDEM_BODY_LIMIT", default_value_t = 1 << 20)]
    pub body_limit: usize,
    /// Largest blob a resumable upload may announce, bytes.
    #[arg(long, env = "TANDEM_UPLOAD_MAX_BYTES", default_value_t = crate::uploads::DEFAULT_MAX_BYTES)]
    pub upload_max_bytes: u64,
    /// Largest body of one upload PATCH, bytes.
    #[arg(long, env = "TANDEM_UPLOAD_PATCH_MAX_BYTES", default_value_t = crate::uploads::DEFAULT_MAX_BYTES)]
    pub upload_patch_max_bytes: u64,
    /// Milliseconds a PATCH body may stall before its upload is freed.
    #[arg(long, env = "TANDEM_UPLOAD_IDLE_TIMEOUT_MS", default_value_t = 5_000)]
    pub upload_idle_timeout_ms: u64,
    /// Milliseconds an upload lease outlives its last renewal (frees a crashed writer's upload).
    #[arg(long, env = "TANDEM_UPLOAD_LEASE_MS", default_value_t = 10_000)]
    pub upload_lease_ms: u64,
    /// Shifts the server's clock by this many milliseconds (demos and tests: a scripted day
    /// inside visiting hours). Never set in production.
    #[arg(long, env = "TANDEM_CLOCK_OFFSET_MS", default_value_t = 0, hide = true)]
    pub clock_offset_ms: i64,
}

/// Why the server stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The data folder could not be created.
    #[error("data folder {path}: {source}")]
    DataDir {
        /// The folder.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The database could not be opened or migrated.
    #[error(transparent)]
    Db(#[from] db::DbError),
    /// The server key could not be loaded or created.
    #[error(transparent)]
    Key(#[from] key::KeyError),
    /// Seeding the demo failed.
    #[error(transparent)]
    Demo(#[from] demo::DemoError),
    /// The blob folder could not be created.
    #[error(transparent)]
    Blobs(#[from] crate::blobstore::BlobStoreError),
    /// Binding or serving failed.
    #[error("listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// Runs the server until a shutdown signal.
pub async fn run(args: ServeArgs) -> Result<(), ServeError> {
    // The folder holds the key and personal data: only the server's user may enter it.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&args.data_dir)
        .map_err(|source| ServeError::DataDir {
            path: args.data_dir.clone(),
            source,
        })?;
    if args.clock_offset_ms != 0 {
        crate::set_clock_offset_ms(args.clock_offset_ms);
        tracing::warn!(
            offset_ms = args.clock_offset_ms,
            "server clock shifted (demo or test)"
        );
    }
    let db = match &args.database_url {
        Some(url) => db::open(url).await?,
        None => db::open_sqlite_file(&args.data_dir.join("tandem.db")).await?,
    };
    tracing::info!(backend = ?db.backend(), "database ready, migrations applied");
    let key_path = args
        .key_file
        .clone()
        .unwrap_or_else(|| args.data_dir.join("server-key.p8"));
    let signer = key::load_or_create(&key_path)?;
    if args.demo {
        match demo::seed(db.as_ref()).await? {
            Some(creds) => println!("{creds}"),
            None => tracing::info!("demo organisation present already; not seeded again"),
        }
    }
    let config = Config {
        body_limit_bytes: args.body_limit,
        data_dir: args.data_dir.clone(),
        upload_max_bytes: args.upload_max_bytes,
        upload_patch_max_bytes: args.upload_patch_max_bytes,
        upload_idle_timeout: std::time::Duration::from_millis(args.upload_idle_timeout_ms),
        upload_lease: std::time::Duration::from_millis(args.upload_lease_ms),
    };
    let state = AppState::new(db.clone(), signer, config)?;
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: args.listen,
            source,
        })?;
    let local = listener.local_addr().unwrap_or(args.listen);
    tracing::info!(addr = %local, "listening");
    // A readable line for people and scripts (tests wait for the port through /healthz).
    println!("tandem: listening on http://{local}");
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown_signal())
        .await
        .map_err(|source| ServeError::Listen {
            addr: local,
            source,
        })?;
    db.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutdown signal received; finishing requests");
}
