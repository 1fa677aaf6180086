//! `tandem serve`: opens the database and key, optionally seeds the demo, and serves HTTP
//! until Ctrl-C or SIGTERM, through an accept loop ([`serve_listener`]) that bounds what a
//! client can hold without sending a request: a header-read timeout, an idle timeout, and
//! caps on connections per address and in all.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use clap::Args;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt as _;

use crate::clock::{ServerClock, ShiftedClock, SystemClock};
use crate::throttle::{LoginLimits, address_key};
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
    Blobs(#[from] crate::blobstore::BlobStoreError),
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
        upload_idle_timeout: std::time::Duration::from_millis(args.upload_idle_timeout_ms),
        upload_lease: std::time::Duration::from_millis(args.upload_lease_ms),
        secure_cookies: args.secure_cookies,
        trust_forwarded_proto: args.trust_forwarded_proto,
        login: args.login_limits(),
    };
    let state = AppState::new(db.clone(), signer, config)?.with_clock(clock);
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
    serve_listener(listener, app(state), &args.conn_limits(), shutdown_signal())
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

/// What one client, or all of them, may hold open (anyone on the internet holding idle or
/// slow connections to exhaust the server's sockets and memory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnLimits {
    /// Time to send a request's headers, counted from when the server awaits them (a new
    /// connection, or a kept-alive one after its last answer). A request's body does not
    /// count: long uploads stream for minutes, and their stalls are the uploads' own
    /// `upload_idle_timeout`.
    pub header_read_timeout: Duration,
    /// Time a connection may send and receive nothing at all before it is closed.
    pub idle_timeout: Duration,
    /// Connections one address (IPv6: one /64) may hold; more are closed at once.
    pub per_address: usize,
    /// Connections open at once; more are closed at once.
    pub total: usize,
}

impl Default for ConnLimits {
    fn default() -> Self {
        Self {
            header_read_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            per_address: 256,
            total: 4096,
        }
    }
}

/// Serves `app` on `listener` (HTTP/1.1; TLS and HTTP/2 are a proxy's job) until `shutdown`
/// resolves, then lets requests in progress finish. Handlers see the peer as
/// `ConnectInfo<SocketAddr>`.
pub async fn serve_listener<F>(
    listener: TcpListener,
    app: Router,
    limits: &ConnLimits,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let open = Arc::new(OpenConnections::default());
    let idle_timeout = limits.idle_timeout;
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    accept_error(e).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        // Refused connections are dropped (closed) before a byte is read: the cheapest
        // answer, and a client over its cap learns nothing else.
        let Some(slot) = OpenConnections::admit(&open, peer.ip(), limits) else {
            tracing::debug!("connection refused: over the connection cap");
            continue;
        };
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let io = TokioIo::new(Tracked {
            inner: stream,
            activity: Arc::clone(&activity),
        });
        let router = app.clone();
        let service =
            hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                router.clone().oneshot(req.map(axum::body::Body::new))
            });
        let connection = graceful.watch(http.serve_connection(io, service));
        tokio::spawn(async move {
            let _slot = slot;
            tokio::select! {
                result = connection => {
                    if let Err(e) = result {
                        tracing::debug!(error = %e, "connection ended with an error");
                    }
                }
                () = activity.silent_for(idle_timeout) => {
                    tracing::debug!("idle connection closed");
                }
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}

/// Like axum's own loop: errors of one connection (reset before accept) are skipped; others
/// (out of file descriptors) pause accepting for a moment instead of spinning.
async fn accept_error(e: std::io::Error) {
    use std::io::ErrorKind::{ConnectionAborted, ConnectionRefused, ConnectionReset};
    if matches!(
        e.kind(),
        ConnectionRefused | ConnectionAborted | ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept failed");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Open connections, per address key and in all.
#[derive(Default)]
struct OpenConnections {
    inner: Mutex<OpenInner>,
}

#[derive(Default)]
struct OpenInner {
    total: usize,
    /// Only addresses with open connections: at most `total` entries.
    per_address: HashMap<IpAddr, usize>,
}

impl OpenConnections {
    fn lock(&self) -> std::sync::MutexGuard<'_, OpenInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn admit(this: &Arc<Self>, ip: IpAddr, limits: &ConnLimits) -> Option<ConnSlot> {
        let key = address_key(ip);
        let mut inner = this.lock();
        let mine = inner.per_address.get(&key).copied().unwrap_or(0);
        if inner.total >= limits.total || mine >= limits.per_address {
            return None;
        }
        inner.total += 1;
        inner.per_address.insert(key, mine + 1);
        Some(ConnSlot {
            open: Arc::clone(this),
            key,
        })
    }
}

/// One admitted connection; frees its place when dropped.
struct ConnSlot {
    open: Arc<OpenConnections>,
    key: IpAddr,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut inner = self.open.lock();
        inner.total = inner.total.saturating_sub(1);
        if let Some(n) = inner.per_address.get_mut(&self.key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                inner.per_address.remove(&self.key);
            }
        }
    }
}

/// When a connection last moved a byte, in milliseconds since it opened.
struct Activity {
    opened: Instant,
    last_ms: AtomicU64,
}

impl Activity {
    fn new() -> Self {
        Self {
            opened: Instant::now(),
            last_ms: AtomicU64::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.opened.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// Resolves once nothing has moved for `limit`.
    async fn silent_for(&self, limit: Duration) {
        loop {
            let last = self.opened + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
            let deadline = last + limit;
            if Instant::now() >= deadline {
                return;
            }
            tokio::time::sleep_until(deadline.into()).await;
        }
    }
}

/// A TCP stream that notes each byte read or written in its [`Activity`].
struct Tracked {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for Tracked {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let poll = Pin::new(&mut self.inner).poll_read(cx, buf);
        if matches!(poll, Poll::Ready(Ok(()))) && buf.filled().len() > before {
            self.activity.touch();
        }
        poll
    }
}

impl AsyncWrite for Tracked {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(poll, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        poll
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
