//! How the phone's requests reach the server: the [`Transport`] trait (a platform's
//! background uploader may implement it), and [`HttpTransport`], the default blocking HTTP
//! client (TLS by rustls on ring; connect, read and write timeouts; no async runtime).

use std::time::Duration;

use super::SyncError;

/// One request. Bodies are small (JSON, or one upload chunk held in memory), so they are
/// plain bytes; a chunk is bounded by the upload's chunk size.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// `GET`, `HEAD`, `POST`, `PUT`, `PATCH`, `DELETE`.
    pub method: &'static str,
    /// Path and query, from the server's base URL (`/v1/sync?cursor=…`).
    pub path: String,
    /// Header names and values.
    pub headers: Vec<(&'static str, String)>,
    /// The body, empty for none.
    pub body: &'a [u8],
}

impl<'a> Request<'a> {
    /// A request without a body.
    pub fn new(method: &'static str, path: impl Into<String>) -> Self {
        Self {
            method,
            path: path.into(),
            headers: Vec::new(),
            body: &[],
        }
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Sets the body.
    #[must_use]
    pub fn body(mut self, body: &'a [u8]) -> Self {
        self.body = body;
        self
    }
}

/// One answer, whatever its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body (bounded by the transport's response limit).
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of a header, by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Carries requests to the server. Implementations must not retry by themselves: the
/// outbox decides when to try again.
pub trait Transport: Send + Sync {
    /// Sends one request and returns the server's answer (any status), or a
    /// [`SyncError::Network`] when no answer arrived.
    fn send(&self, request: &Request<'_>) -> Result<Response, SyncError>;
}

/// Timeouts of [`HttpTransport`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// To open the connection (TCP and TLS).
    pub connect: Duration,
    /// Between two reads of the answer: a stalled server frees the phone this fast.
    pub read: Duration,
    /// Between two writes of the body.
    pub write: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(30),
            write: Duration::from_secs(30),
        }
    }
}

/// Largest answer body read into memory (sync pages, receipts, problems).
pub const MAX_RESPONSE_BYTES: u64 = 16 << 20;

/// The default transport: blocking HTTP/1.1 over one connection pool.
pub struct HttpTransport {
    base: String,
    agent: ureq::Agent,
}

impl std::fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpTransport")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl HttpTransport {
    /// A transport to the server at `base` (`https://tandem.example` or, in tests,
    /// `http://127.0.0.1:PORT`), without a trailing slash.
    pub fn new(base: &str, timeouts: Timeouts) -> Self {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_connect(Some(timeouts.connect))
            .timeout_per_read(Some(timeouts.read))
            .timeout_per_write(Some(timeouts.write))
            .max_idle_connections_per_host(2)
            .build();
        Self {
            base: base.trim_end_matches('/').to_owned(),
            agent: config.new_agent(),
        }
    }

    /// The server's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }
}

impl Transport for HttpTransport {
    fn send(&self, request: &Request<'_>) -> Result<Response, SyncError> {
        let url = format!("{}{}", self.base, request.path);
        let mut builder = ureq::http::Request::builder()
            .method(request.method)
            .uri(&url);
        for (name, value) in &request.headers {
            builder = builder.header(*name, value.as_str());
        }
        let built = builder
            .body(request.body)
            .map_err(|e| SyncError::Network(format!("{} {}: {e}", request.method, request.path)))?;
        let mut answer = self
            .agent
            .run(built)
            .map_err(|e| SyncError::Network(format!("{} {}: {e}", request.method, request.path)))?;
        let status = answer.status().as_u16();
        let headers = answer
            .headers()
            .iter()
            .filter_map(|(n, v)| Some((n.as_str().to_owned(), v.to_str().ok()?.to_owned())))
            .collect();
        let body = if request.method == "HEAD" {
            Vec::new()
        } else {
            answer
                .body_mut()
                .with_config()
                .limit(MAX_RESPONSE_BYTES)
                .read_to_vec()
                .map_err(|e| {
                    SyncError::Network(format!(
                        "{} {}: reading the answer: {e}",
                        request.method, request.path
                    ))
                })?
        };
        Ok(Response {
            status,
            headers,
            body,
        })
    }
}
