//! `tandem serve`: opens the database and key, optionally seeds the demo, and serves HTTP
//! until Ctrl-C or SIGTERM through the library's accept loop
//! ([`tandem_server::serve::serve_listener`]).

use std::net::SocketAddr;
use std::os::unix::fs::DirBuilderExt as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use clap::Args;
use tandem_server::clock::{ServerClock, ShiftedClock, SystemClock};
use tandem_server::serve::{ConnLimits, DEFAULT_DATA_DIR, serve_listener};
use tandem_server::throttle::LoginLimits;
use tandem_server::{AppState, Config, app, db, demo, key};

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
    /// The master key (32 random bytes in base64) that wraps the keys blobs are sealed
    /// under; default: `master.key` in the data folder, created on first start of a new
    /// database. Keep it out of the data folder's backups in production (docs/deploy.md).
    /// `TANDEM_MASTER_KEY` may carry the key itself instead.
    #[arg(long, env = "TANDEM_MASTER_KEY_FILE")]
    pub master_key_file: Option<PathBuf>,
    /// Seed a demo organisation on first start (printing its logins and codes once).
    #[arg(long)]
    pub demo: bool,
    /// Largest request body accepted, bytes.
    #[arg(long, env = "TANDEM_BODY_LIMIT", default_value_t = 1 << 20)]
    pub body_limit: usize,
    /// Largest blob a resumable upload may announce, bytes.
    #[arg(long, env = "TANDEM_UPLOAD_MAX_BYTES", default_value_t = tandem_server::uploads::DEFAULT_MAX_BYTES)]
    pub upload_max_bytes: u64,
    /// Largest body of one upload PATCH, bytes.
    #[arg(long, env = "TANDEM_UPLOAD_PATCH_MAX_BYTES", default_value_t = tandem_server::uploads::DEFAULT_MAX_BYTES)]
    pub upload_patch_max_bytes: u64,
    /// Milliseconds a PATCH body may stall before its upload is freed.
    #[arg(long, env = "TANDEM_UPLOAD_IDLE_TIMEOUT_MS", default_value_t = 5_000)]
    pub upload_idle_timeout_ms: u64,
    /// Milliseconds an upload lease outlives its last renewal (frees a crashed writer's upload).
    #[arg(long, env = "TANDEM_UPLOAD_LEASE_MS", default_value_t = 10_000)]
    pub upload_lease_ms: u64,
    /// Shifts the server's clock by this many milliseconds (demos: a scripted day inside
    /// visiting hours). Refused without --demo; every time anchor signed says so.
    #[arg(long, env = "TANDEM_CLOCK_OFFSET_MS", default_value_t = 0, hide = true)]
    pub clock_offset_ms: i64,
    /// Milliseconds a client has to send a request's headers (counted from the first byte
    /// it is awaited; a request's body is not counted).
    #[arg(long, env = "TANDEM_HEADER_READ_TIMEOUT_MS", default_value_t = 10_000)]
    pub header_read_timeout_ms: u64,
    /// Milliseconds a connection may send and receive nothing before it is closed.
    #[arg(long, env = "TANDEM_IDLE_TIMEOUT_MS", default_value_t = 60_000)]
    pub idle_timeout_ms: u64,
    /// Connections one client address may hold open (IPv6: per /64); more are closed at once.
    #[arg(
        long,
        env = "TANDEM_MAX_CONNECTIONS_PER_ADDRESS",
        default_value_t = 256
    )]
    pub max_connections_per_address: usize,
    /// Connections open at once; more are closed at once.
    #[arg(long, env = "TANDEM_MAX_CONNECTIONS", default_value_t = 4096)]
    pub max_connections: usize,
    /// Seconds between two runs of the deposit check (C03: receipts not deposited by their
    /// deadline are flagged overdue). Of several servers on one database, one runs it per period.
    #[arg(long, env = "TANDEM_DEPOSIT_CHECK_SECS", default_value_t = 300)]
    pub deposit_check_secs: u64,
    /// Seconds between two anchorings of the audit log's head in the transparency log
    /// (at most an hour). Of several servers on one database, one anchors per period.
    #[arg(long, env = "TANDEM_AUDIT_ANCHOR_SECS", default_value_t = 3_600,
        value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub audit_anchor_secs: u64,
    /// Mark the session cookie `Secure` on every answer (TLS ends at a proxy in front).
    #[arg(long, env = "TANDEM_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Believe `X-Forwarded-Proto: https` (only behind a proxy that sets it).
    #[arg(long, env = "TANDEM_TRUST_FORWARDED_PROTO")]
    pub trust_forwarded_proto: bool,
    /// Password checks run at once (default: half the cores).
    #[arg(long, env = "TANDEM_LOGIN_HASH_WORKERS")]
    pub login_hash_workers: Option<usize>,
    /// Sign-ins that may wait for a password check; beyond this the answer is 503
    /// (default: 16 per worker).
    #[arg(long, env = "TANDEM_LOGIN_HASH_QUEUE")]
    pub login_hash_queue: Option<usize>,
    /// Failed sign-ins an account may have before each further one waits (doubling).
    #[arg(
        long,
        env = "TANDEM_LOGIN_FREE_FAILURES_PER_ACCOUNT",
        default_value_t = 5
    )]
    pub login_free_failures_per_account: u32,
    /// Failed sign-ins a client address may have before each further one waits (doubling).
    #[arg(
        long,
        env = "TANDEM_LOGIN_FREE_FAILURES_PER_ADDRESS",
        default_value_t = 30
    )]
    pub login_free_failures_per_address: u32,

    // Several instances (issue 16).
    /// Check the configuration (database reachable and migrated or migratable, key file
    /// readable and the log's signer, data folder writable, listen address free), print
    /// one line and exit: 0 when it would start, 1 naming what is wrong. Changes nothing.
    #[arg(long)]
    pub check: bool,

    /// Evidence in an S3-compatible bucket (`--s3-bucket` and the rest).
    #[command(flatten)]
    pub s3: crate::blobs::S3Args,
}

impl ServeArgs {
    /// The connection limits these options set.
    pub fn conn_limits(&self) -> ConnLimits {
        ConnLimits {
            header_read_timeout: Duration::from_millis(self.header_read_timeout_ms),
            idle_timeout: Duration::from_millis(self.idle_timeout_ms),
            per_address: self.max_connections_per_address,
            total: self.max_connections,
        }
    }

    /// The sign-in throttling these options set.
    pub fn login_limits(&self) -> LoginLimits {
        let mut limits = LoginLimits::default();
        if let Some(workers) = self.login_hash_workers {
            limits.hash_workers = workers.max(1);
            limits.hash_queue = 16 * limits.hash_workers;
        }
        if let Some(queue) = self.login_hash_queue {
            limits.hash_queue = queue;
        }
        limits.per_account.free_failures = self.login_free_failures_per_account;
        limits.per_address.free_failures = self.login_free_failures_per_address;
        limits
    }
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
    Blobs(#[from] tandem_server::blobstore::BlobStoreError),
    /// The master key is missing, malformed or not this database's.
    #[error(transparent)]
    Keys(#[from] tandem_server::blobstore::KeyringError),
    /// `--clock-offset-ms` (or `TANDEM_CLOCK_OFFSET_MS`) without `--demo`.
    #[error(
        "--clock-offset-ms (TANDEM_CLOCK_OFFSET_MS) shifts the server's clock and is allowed \
         only with --demo"
    )]
    ShiftedClock,
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
    // A shifted clock is for demos only: production cannot be started on one by an
    // environment variable left behind.
    let clock: Arc<dyn ServerClock> = match (args.clock_offset_ms, args.demo) {
        (0, _) => Arc::new(SystemClock),
        (offset_ms, true) => {
            tracing::warn!(offset_ms, "server clock shifted (demo)");
            Arc::new(ShiftedClock::new(offset_ms))
        }
        (_, false) => return Err(ServeError::ShiftedClock),
    };
    // The folder holds the key and personal data: only the server's user may enter it.
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&args.data_dir)
        .map_err(|source| ServeError::DataDir {
            path: args.data_dir.clone(),
            source,
        })?;
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
    let master = tandem_server::blobstore::keys::resolve_master(
        args.master_key_file.as_deref(),
        &args.data_dir.join("master.key"),
        db.as_ref(),
    )
    .await?;
    tandem_server::blobstore::Keyring::new(db.clone(), master.clone())
        .check_master(clock.now_ms())
        .await?;
    if args.demo {
        match demo::seed(db.as_ref(), clock.now_ms()).await? {
            Some(creds) => println!("{creds}"),
            None => tracing::info!("demo organisation present already; not seeded again"),
        }
    }
    let config = Config {
        body_limit_bytes: args.body_limit,
        data_dir: args.data_dir.clone(),
        upload_max_bytes: args.upload_max_bytes,
        upload_patch_max_bytes: args.upload_patch_max_bytes,
        upload_idle_timeout: Duration::from_millis(args.upload_idle_timeout_ms),
        upload_lease: Duration::from_millis(args.upload_lease_ms),
        secure_cookies: args.secure_cookies,
        trust_forwarded_proto: args.trust_forwarded_proto,
        login: args.login_limits(),
        // A01's values (DOMAIN.md): 5 failures lock for 15 minutes, 30-day passwords.
        account: tandem_server::auth::AccountPolicy::default(),
    };
    let mut state = AppState::new(db.clone(), signer, master, config)?.with_clock(clock);
    if let Some(s3) = args.s3.config() {
        let blobs = tandem_server::blobstore::BlobStore::open_s3(
            args.data_dir.join("blobs"),
            &s3,
            state.blobs.keys().clone(),
        )?;
        // A wrong endpoint, key or bucket stops the start, not the first upload.
        if let Some(bucket) = blobs.bucket() {
            bucket.probe().await?;
        }
        tracing::info!(bucket = %s3.bucket, "evidence in an S3 bucket");
        state = state.with_blobs(blobs);
    }
    // Visits committed before commits wrote their search row themselves, and whose write
    // after the commit failed: found by legal staff from now on.
    match tandem_server::ingest::index_unindexed_evidence(&state).await {
        Ok(0) => {}
        Ok(written) => tracing::info!(written, "evidence search rows written for older visits"),
        Err(e) => tracing::error!(error = %e, "evidence search rows of older visits not written"),
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .map_err(|source| ServeError::Listen {
            addr: args.listen,
            source,
        })?;
    let local = listener.local_addr().unwrap_or(args.listen);
    // What the audit log holds at start is anchored before the first request is served, so
    // a client that sees the server up sees that anchor in the log.
    tandem_server::audit::anchor_logged(&state).await;
    tracing::info!(addr = %local, "listening");
    // A readable line for people and scripts (tests wait for the port through /healthz).
    println!("tandem: listening on http://{local}");
    // The deposit check runs beside the server and stops with it.
    let (stop_checks, checks_stopped) = tokio::sync::oneshot::channel::<()>();
    let checks = tokio::spawn(tandem_server::receipts::run_deposit_checks(
        state.clone(),
        Duration::from_secs(args.deposit_check_secs),
        async move {
            let _ = checks_stopped.await;
        },
    ));
    let (stop_anchoring, anchoring_stopped) = tokio::sync::oneshot::channel::<()>();
    let anchoring = tokio::spawn(tandem_server::audit::run_anchoring(
        state.clone(),
        Duration::from_secs(args.audit_anchor_secs),
        async move {
            let _ = anchoring_stopped.await;
        },
    ));
    let served = serve_listener(listener, app(state), &args.conn_limits(), shutdown_signal())
        .await
        .map_err(|source| ServeError::Listen {
            addr: local,
            source,
        });
    let _ = stop_checks.send(());
    let _ = checks.await;
    let _ = stop_anchoring.send(());
    let _ = anchoring.await;
    served?;
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
