//! The accept loop of `tandem serve` ([`serve_listener`]), which bounds what a client can
//! hold without sending a request: a header-read timeout, an idle timeout, and caps on
//! connections per address and in all. The command itself (its flags, opening the database
//! and key, the demo) is the `tandem` binary's.

use std::collections::HashMap;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt as _;

use crate::throttle::address_key;

/// The data folder used when nothing is configured.
pub const DEFAULT_DATA_DIR: &str = "./tandem-data";

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
