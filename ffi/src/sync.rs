//! The server connection, cancellation, and what a sync round reports.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tandem_core::sync::{
    HttpTransport, PushSummary, Request, Response, SyncError, SyncReport, SyncStatus, Timeouts,
    Transport,
};

/// The Tandem server this phone talks to (blocking HTTP; TLS in production).
#[derive(uniffi::Object)]
pub struct Server {
    transport: HttpTransport,
}

#[uniffi::export]
impl Server {
    /// A connection to `base_url` (`https://tandem.example`; tests: `http://127.0.0.1:PORT`),
    /// with the default timeouts (connect 10 s, read and write 30 s).
    #[uniffi::constructor]
    pub fn new(base_url: String) -> Arc<Self> {
        Arc::new(Self {
            transport: HttpTransport::new(&base_url, Timeouts::default()),
        })
    }

    /// A connection with explicit timeouts in milliseconds (a slow network, or tests).
    #[uniffi::constructor]
    pub fn with_timeouts(
        base_url: String,
        connect_ms: u64,
        read_ms: u64,
        write_ms: u64,
    ) -> Arc<Self> {
        let timeouts = Timeouts {
            connect: Duration::from_millis(connect_ms),
            read: Duration::from_millis(read_ms),
            write: Duration::from_millis(write_ms),
        };
        Arc::new(Self {
            transport: HttpTransport::new(&base_url, timeouts),
        })
    }

    /// The server's base URL.
    pub fn base_url(&self) -> String {
        self.transport.base().to_owned()
    }
}

impl Server {
    /// The transport, refusing to send once `cancel` is cancelled.
    pub(crate) fn transport<'a>(&'a self, cancel: Option<&'a CancelToken>) -> Cancellable<'a> {
        Cancellable {
            inner: &self.transport,
            cancel,
        }
    }
}

/// Cancels a long call from another thread (the user leaves the sync screen). Checked
/// before every request: between pages, uploads and upload chunks.
#[derive(Debug, Default, uniffi::Object)]
pub struct CancelToken {
    cancelled: AtomicBool,
}

#[uniffi::export]
impl CancelToken {
    /// A token not cancelled yet.
    #[uniffi::constructor]
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Cancels: the call using this token stops before its next request with
    /// `TandemError.Cancelled`. What was already confirmed by the server stays recorded.
    pub fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
    }

    /// Whether `cancel` was called.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }
}

/// A transport that checks the cancel token before each request.
pub(crate) struct Cancellable<'a> {
    inner: &'a dyn Transport,
    cancel: Option<&'a CancelToken>,
}

impl Transport for Cancellable<'_> {
    fn send(&self, request: &Request<'_>) -> Result<Response, SyncError> {
        if self.cancel.is_some_and(CancelToken::is_cancelled) {
            return Err(SyncError::Cancelled);
        }
        self.inner.send(request)
    }
}

/// What a pull applied.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PullReport {
    /// Policy versions kept.
    pub policies: u32,
    /// Visits newly assigned to this phone (ids).
    pub assignments: Vec<String>,
    /// Receipt-number ranges kept.
    pub ranges: u32,
    /// Revocations of teammates' phones kept.
    pub revocations: u32,
}

/// What a push sent and what the server acknowledged.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct PushReport {
    /// Bundles acknowledged by a verified server receipt.
    pub acknowledged: u32,
    /// Bundles the server quarantined or refused (kept on the phone, shown).
    pub quarantined: u32,
    /// Bundles that failed this time and wait for a retry.
    pub deferred: u32,
    /// Blob bytes sent.
    pub bytes_sent: u64,
    /// Blob bytes the server already had.
    pub bytes_skipped: u64,
}

impl From<PushSummary> for PushReport {
    fn from(p: PushSummary) -> Self {
        Self {
            acknowledged: p.acknowledged,
            quarantined: p.quarantined,
            deferred: p.deferred,
            bytes_sent: p.bytes_sent,
            bytes_skipped: p.bytes_skipped,
        }
    }
}

/// What the sync screen shows.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncState {
    /// Whether this phone is enrolled.
    pub enrolled: bool,
    /// Bundles still to send.
    pub pending: u32,
    /// Bundles the server refused (kept on the phone).
    pub quarantined: u32,
    /// Bundles acknowledged.
    pub acknowledged: u32,
    /// Bytes still to upload.
    pub bytes_left: u64,
    /// The most recent error of a pending bundle.
    pub last_error: Option<String>,
    /// The earliest moment a pending bundle will be tried again, UTC ms.
    pub next_attempt_ms: Option<i64>,
    /// The oldest pending bundle's seal time, UTC ms (E03 counts from it).
    pub oldest_pending_sealed_ms: Option<i64>,
    /// E03 warnings or blocks for sealed visits not yet uploaded.
    pub deadlines: Vec<crate::RuleViolation>,
}

impl From<SyncStatus> for SyncState {
    fn from(s: SyncStatus) -> Self {
        Self {
            enrolled: s.enrolled,
            pending: s.outbox.pending,
            quarantined: s.outbox.quarantined,
            acknowledged: s.outbox.done,
            bytes_left: s.outbox.bytes_left,
            last_error: s.outbox.last_error,
            next_attempt_ms: s.outbox.next_attempt_ms,
            oldest_pending_sealed_ms: s.outbox.oldest_pending_sealed_ms,
            deadlines: crate::records::violations(&s.deadlines),
        }
    }
}

/// What one sync round did, and where the phone stands after it.
#[derive(Debug, Clone, PartialEq, Eq, uniffi::Record)]
pub struct SyncRound {
    /// What the pull applied.
    pub pulled: PullReport,
    /// What the push did.
    pub pushed: PushReport,
    /// Visits whose local media were deleted after a verified server receipt (D01).
    pub purged_visits: u32,
    /// The outbox afterwards.
    pub status: SyncState,
}

impl From<SyncReport> for SyncRound {
    fn from(r: SyncReport) -> Self {
        Self {
            pulled: PullReport {
                policies: r.pulled.policies,
                assignments: r
                    .pulled
                    .assignments
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                ranges: r.pulled.ranges,
                revocations: r.pulled.revocations,
            },
            pushed: r.pushed.into(),
            purged_visits: r.purged_visits,
            status: r.status.into(),
        }
    }
}
