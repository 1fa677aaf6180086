//! What every answer carries, whichever handler (or framework layer) produced it: one error
//! body (`application/problem+json`), `X-Content-Type-Options: nosniff`, and
//! `Cache-Control: no-store` unless a handler chose otherwise.
//!
//! Threats: anyone sending bad input (a malformed id must get the same kind of answer as
//! every other mistake, without the value echoed back); a thief of a shared computer or a
//! proxy cache (tokens and debtor data must never be stored by a browser or a proxy).

use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use crate::error::AppError;

/// The middleware: runs the request, then normalises the answer's error body and headers.
pub async fn harden(req: Request, next: Next) -> Response {
    let resp = next.run(req).await;
    let mut resp = as_problem(resp);
    let headers = resp.headers_mut();
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// An error answer that is not a problem document yet (the framework's own rejections of a
/// path or query it could not parse answer `text/plain`, quoting the input) becomes one,
/// keeping its status and its headers.
fn as_problem(resp: Response) -> Response {
    let status = resp.status();
    if !(status.is_client_error() || status.is_server_error()) || !is_plain(&resp) {
        return resp;
    }
    let error = match status {
        StatusCode::BAD_REQUEST => {
            AppError::Malformed("The path or query string is not valid for this route.".into())
        }
        StatusCode::NOT_FOUND => AppError::NotFound,
        StatusCode::METHOD_NOT_ALLOWED => AppError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => AppError::PayloadTooLarge,
        StatusCode::UNAUTHORIZED => AppError::Unauthorized,
        StatusCode::FORBIDDEN => AppError::Forbidden,
        StatusCode::UNSUPPORTED_MEDIA_TYPE => AppError::problem(
            status,
            "unsupported-media-type",
            "Unsupported media type",
            "The request body's Content-Type is not one this route reads.",
        ),
        s if s.is_server_error() => AppError::Internal(format!("a {s} answer without a body")),
        s => AppError::problem(
            s,
            "request-refused",
            "Request refused",
            "The request could not be served as sent.",
        ),
    };
    let (mut parts, _) = resp.into_parts();
    let mut fresh = error.into_response();
    // The problem's own type and length replace the old ones; anything else the answer
    // carried (Allow, Retry-After, Tus-Resumable…) stays.
    parts.headers.remove(header::CONTENT_LENGTH);
    for (name, value) in fresh.headers() {
        parts.headers.insert(name.clone(), value.clone());
    }
    *fresh.headers_mut() = parts.headers;
    *fresh.status_mut() = status;
    fresh
}

/// An answer with no body type or a plain-text one: what the framework's rejections send.
/// Structured answers (problem documents, and any JSON a handler chose) are left alone.
fn is_plain(resp: &Response) -> bool {
    match resp.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(v) => v.to_str().map_or(true, |v| v.starts_with("text/plain")),
    }
}

/// The answer to a request whose handler panicked: a 500 problem (the panic is a bug; the
/// connection, the server and every other request carry on). The panic's message was
/// printed by the panic hook already and is not repeated here.
pub fn panic_answer(_panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    AppError::Internal("a request handler panicked".to_owned()).into_response()
}
