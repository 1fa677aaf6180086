//! The phone's side of sync (DESIGN.md §8): how requests travel ([`transport`]), when to
//! try again ([`backoff`]), pulling the server's signed documents ([`pull`]), pushing
//! sealed visits ([`push`]) and resumable blob uploads ([`tus`]).

pub mod backoff;
pub mod pull;
pub mod push;
pub mod session;
pub mod transport;
pub mod tus;

pub use backoff::Backoff;
pub use pull::pull;
pub use push::{PushSummary, push};
pub use session::{
    SyncReport, SyncStatus, enroll, enrollment_code_hash, purge_acknowledged, sync_now,
};
pub use transport::{HttpTransport, Request, Response, Timeouts, Transport};
pub use tus::{TusClient, UploadStats};

/// What can go wrong talking to the server.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// No answer arrived (no network, connection cut, timeout): try again later.
    #[error("network: {0}")]
    Network(String),
    /// The server answered with an error.
    #[error("server refused {during} ({status} {kind}): {detail}")]
    Server {
        /// What the phone was doing.
        during: &'static str,
        /// HTTP status.
        status: u16,
        /// The problem's stable type suffix (`upload-offset-mismatch`), or empty.
        kind: String,
        /// The problem's detail, or the start of the body.
        detail: String,
    },
    /// The server answered something this client does not understand.
    #[error("unexpected answer: {0}")]
    Protocol(String),
    /// Reading local data failed.
    #[error("local data: {0}")]
    Local(String),
    /// The app cancelled the exchange (its transport refused to send): nothing is recorded
    /// as a failure, so the next round starts at once where this one stopped.
    #[error("cancelled")]
    Cancelled,
}

impl SyncError {
    /// Whether this is a server problem of the given `type` suffix.
    pub fn kind_is(&self, kind: &str) -> bool {
        matches!(self, SyncError::Server { kind: k, .. } if k == kind)
    }

    /// Whether trying again later may succeed (network trouble, server busy or down).
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Network(_) => true,
            Self::Server { status, .. } => matches!(status, 408 | 425 | 429 | 500..=599),
            Self::Protocol(_) | Self::Local(_) | Self::Cancelled => false,
        }
    }
}

/// Turns an error answer into a [`SyncError::Server`], reading a problem+json body.
pub(crate) fn problem_of(answer: &Response, during: &'static str) -> SyncError {
    let problem: Option<serde_json::Value> = serde_json::from_slice(&answer.body).ok();
    let field = |name: &str| {
        problem
            .as_ref()
            .and_then(|p| p.get(name))
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    };
    let kind = field("type")
        .map(|t| t.rsplit('/').next().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let detail = field("detail").unwrap_or_else(|| {
        String::from_utf8_lossy(&answer.body[..answer.body.len().min(200)]).into_owned()
    });
    SyncError::Server {
        during,
        status: answer.status,
        kind,
        detail,
    }
}
