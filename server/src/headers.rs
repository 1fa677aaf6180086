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

/// Refuses a JSON body that carries a NUL character in a string (`\u0000`) with 400
/// `text-invalid` (a body no route accepts, like malformed JSON),
/// before any handler reads it: PostgreSQL cannot store one (it answered 503 before), and
/// SQLite would keep a name that ends early in every C-based tool. One answer on both.
///
/// Only bodies the route would read anyway are buffered: up to the server's body limit (the
/// case import's own limit on its route); a larger one goes on unscanned to be refused by
/// its route, so this adds no way to make the server hold more memory.
///
/// Threat: anyone sending bad input.
pub async fn refuse_nul_text(
    axum::extract::State(state): axum::extract::State<crate::AppState>,
    req: Request,
    next: Next,
) -> Response {
    let limit = if req.uri().path().ends_with("/cases/import") {
        crate::visits::import::IMPORT_BODY_LIMIT
    } else {
        state.config.body_limit_bytes
    };
    let json = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    let length = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if !json || length.is_none_or(|l| l > limit as u64) {
        return next.run(req).await;
    }
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, limit).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return AppError::Malformed("The body could not be read.".into()).into_response();
        }
    };
    if has_escaped_nul(&bytes) {
        return AppError::nul_in_text().into_response();
    }
    next.run(Request::from_parts(parts, axum::body::Body::from(bytes)))
        .await
}

/// Whether JSON text holds the escape `\u0000` (a backslash that is not itself escaped).
fn has_escaped_nul(json: &[u8]) -> bool {
    json.windows(6).enumerate().any(|(i, w)| {
        w == b"\\u0000" && {
            let before = json[..i].iter().rev().take_while(|&&b| b == b'\\').count();
            before % 2 == 0
        }
    })
}

#[cfg(test)]
mod tests {
    use super::has_escaped_nul;

    #[test]
    fn only_an_unescaped_nul_escape_counts() {
        assert!(has_escaped_nul(br#"{"reason":"a\u0000b"}"#));
        assert!(has_escaped_nul(br#"{"reason":"\\\u0000"}"#));
        assert!(!has_escaped_nul(br#"{"reason":"\\u0000"}"#));
        assert!(!has_escaped_nul(br#"{"reason":"u0000"}"#));
    }
}
