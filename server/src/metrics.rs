//! Request counts and latencies by route, rendered in the Prometheus text format. Every
//! label comes from a closed set, so that anyone on the internet sending random methods and
//! paths to `/metrics`' neighbours cannot grow the registry: methods are the standard ones
//! or `other`, routes are the matched templates (`/v1/things/{id}`) or `unmatched` (never
//! raw paths, which would also carry identifiers), statuses are three-digit codes.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;

/// Methods kept as labels; anything else is counted as `other`.
const METHODS: [&str; 7] = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/// The label of a request method: one of [`METHODS`] or `other`.
pub fn method_label(method: &axum::http::Method) -> &'static str {
    METHODS
        .iter()
        .find(|m| **m == method.as_str())
        .copied()
        .unwrap_or("other")
}

/// Upper bounds of the latency buckets, seconds.
const BUCKETS: [f64; 10] = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

#[derive(Default)]
struct Latency {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

#[derive(Default)]
struct Inner {
    /// (method, route, status) → count.
    requests: BTreeMap<(&'static str, String, u16), u64>,
    /// (method, route) → latency histogram.
    latency: BTreeMap<(&'static str, String), Latency>,
}

/// The server's metrics registry.
#[derive(Default)]
pub struct Metrics {
    inner: Mutex<Inner>,
}

impl Metrics {
    /// Records one finished request (`method` from [`method_label`], `route` a matched
    /// template or `unmatched`).
    pub fn record(&self, method: &'static str, route: &str, status: u16, seconds: f64) {
        // A poisoned lock only means another request panicked mid-update: counts stay usable.
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        *inner
            .requests
            .entry((method, route.to_owned(), status))
            .or_default() += 1;
        let h = inner.latency.entry((method, route.to_owned())).or_default();
        for (bound, slot) in BUCKETS.iter().zip(h.buckets.iter_mut()) {
            if seconds <= *bound {
                *slot += 1;
            }
        }
        h.count += 1;
        h.sum_seconds += seconds;
    }

    /// The Prometheus text exposition (version 0.0.4).
    pub fn render(&self) -> String {
        let inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = String::new();
        out.push_str(
            "# HELP tandem_http_requests_total HTTP requests by method, route and status.\n",
        );
        out.push_str("# TYPE tandem_http_requests_total counter\n");
        for ((method, route, status), n) in &inner.requests {
            let _ = writeln!(
                out,
                "tandem_http_requests_total{{method=\"{method}\",route=\"{}\",status=\"{status}\"}} {n}",
                escape(route)
            );
        }
        out.push_str(
            "# HELP tandem_http_request_duration_seconds HTTP request latency by method and route.\n",
        );
        out.push_str("# TYPE tandem_http_request_duration_seconds histogram\n");
        for ((method, route), h) in &inner.latency {
            let labels = format!("method=\"{method}\",route=\"{}\"", escape(route));
            for (bound, n) in BUCKETS.iter().zip(h.buckets.iter()) {
                let _ = writeln!(
                    out,
                    "tandem_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {n}"
                );
            }
            let _ = writeln!(
                out,
                "tandem_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                h.count
            );
            let _ = writeln!(
                out,
                "tandem_http_request_duration_seconds_sum{{{labels}}} {}",
                h.sum_seconds
            );
            let _ = writeln!(
                out,
                "tandem_http_request_duration_seconds_count{{{labels}}} {}",
                h.count
            );
        }
        out
    }
}

fn escape(label: &str) -> String {
    label
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Middleware: times each request and records it under its route template.
pub async fn track(State(state): State<crate::AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = method_label(req.method());
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |p| p.as_str().to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16();
    let seconds = start.elapsed().as_secs_f64();
    tracing::info!(%method, %route, status, ms = seconds * 1e3, "request");
    state.metrics.record(method, &route, status, seconds);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_standard_methods_become_labels() {
        use axum::http::Method;
        assert_eq!(method_label(&Method::PATCH), "PATCH");
        let odd = Method::from_bytes(&[b'X'; 4000]).unwrap();
        assert_eq!(method_label(&odd), "other");
        assert_eq!(method_label(&Method::from_bytes(b"get").unwrap()), "other");
    }
}
