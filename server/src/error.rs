//! One error type for every handler, answered as `application/problem+json` (RFC 9457).
//! Internal details are logged here, never sent.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use crate::db::DbError;

/// The base of every problem `type` URI; each kind has its own stable suffix.
pub const PROBLEM_BASE: &str = "https://tandem.example/problems/";

/// What a request can fail with, as the client is allowed to see it.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No route or no such resource.
    #[error("not found")]
    NotFound,
    /// The route exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The request could not be understood (bad JSON, path or query).
    #[error("malformed request: {0}")]
    Malformed(String),
    /// The body is larger than the server accepts.
    #[error("request body too large")]
    PayloadTooLarge,
    /// Credentials missing or wrong.
    #[error("unauthorized")]
    Unauthorized,
    /// Signed in, but this role may not do this.
    #[error("forbidden")]
    Forbidden,
    /// A problem particular to one area (uploads, ingest, visits…), with its own stable
    /// `type` suffix and, where a business rule applies, the rule id.
    #[error("{title}: {detail}")]
    Problem {
        /// HTTP status.
        status: StatusCode,
        /// Stable suffix of the problem `type` URI (`upload-offset-mismatch`).
        kind: &'static str,
        /// Short summary of the kind.
        title: &'static str,
        /// What went wrong with this request; must be safe to show (no personal data).
        detail: String,
        /// The rule id (DOMAIN.md), when one applies.
        rule: Option<&'static str>,
    },
    /// The database cannot be reached or answered with an error.
    #[error("database unavailable")]
    Unavailable(#[source] DbError),
    /// Anything else: logged with its cause, answered without it.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    /// An area's own problem, without a rule id.
    pub fn problem(
        status: StatusCode,
        kind: &'static str,
        title: &'static str,
        detail: impl Into<String>,
    ) -> Self {
        Self::Problem {
            status,
            kind,
            title,
            detail: detail.into(),
            rule: None,
        }
    }

    /// The same problem, naming the business rule (DOMAIN.md id) that applies.
    #[must_use]
    pub fn with_rule(self, id: &'static str) -> Self {
        match self {
            Self::Problem {
                status,
                kind,
                title,
                detail,
                ..
            } => Self::Problem {
                status,
                kind,
                title,
                detail,
                rule: Some(id),
            },
            other => other,
        }
    }

    /// 400 `text-invalid`: text holding a NUL character, which no field accepts (PostgreSQL
    /// cannot store one): as malformed as broken JSON, on every route and database alike.
    pub fn nul_in_text() -> Self {
        Self::problem(
            StatusCode::BAD_REQUEST,
            "text-invalid",
            "Malformed request",
            "A text field holds a NUL character (\\u0000), which no field accepts.",
        )
    }

    /// 409 Conflict with its own kind.
    pub fn conflict(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::problem(StatusCode::CONFLICT, kind, "Conflict", detail)
    }

    /// 422: the request is well-formed but its content is not acceptable.
    pub fn invalid(kind: &'static str, detail: impl Into<String>) -> Self {
        Self::problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            kind,
            "Unprocessable content",
            detail,
        )
    }

    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        self.kind().1
    }

    /// The stable suffix of the problem `type` URI, the status and the title.
    fn kind(&self) -> (&'static str, StatusCode, &'static str) {
        match self {
            Self::NotFound => ("not-found", StatusCode::NOT_FOUND, "Not found"),
            Self::MethodNotAllowed => (
                "method-not-allowed",
                StatusCode::METHOD_NOT_ALLOWED,
                "Method not allowed",
            ),
            Self::Malformed(_) => (
                "malformed-request",
                StatusCode::BAD_REQUEST,
                "Malformed request",
            ),
            Self::PayloadTooLarge => (
                "payload-too-large",
                StatusCode::PAYLOAD_TOO_LARGE,
                "Request body too large",
            ),
            Self::Unauthorized => ("unauthorized", StatusCode::UNAUTHORIZED, "Unauthorized"),
            Self::Forbidden => ("forbidden", StatusCode::FORBIDDEN, "Forbidden"),
            Self::Problem {
                status,
                kind,
                title,
                ..
            } => (kind, *status, title),
            Self::Unavailable(_) => (
                "unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                "Service unavailable",
            ),
            Self::Internal(_) => (
                "internal",
                StatusCode::INTERNAL_SERVER_ERROR,
                "Internal error",
            ),
        }
    }
}

/// The problem document (RFC 9457).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// Stable URI naming the kind of problem.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Short summary of the kind.
    pub title: String,
    /// The HTTP status.
    pub status: u16,
    /// What went wrong with this request, safe to show.
    pub detail: String,
    /// The business rule (DOMAIN.md id) that applies, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let (suffix, status, title) = self.kind();
        let detail = match &self {
            // The client's own mistake: telling it what was wrong is safe and useful.
            Self::Malformed(why) => why.clone(),
            Self::Unavailable(e) => {
                tracing::error!(error = %e, "database unavailable");
                "The service is temporarily unavailable.".to_owned()
            }
            Self::Internal(e) => {
                tracing::error!(error = %e, "internal error");
                "The server could not complete the request.".to_owned()
            }
            Self::NotFound => "Nothing is served at this path.".to_owned(),
            Self::MethodNotAllowed => "This path does not accept this method.".to_owned(),
            Self::PayloadTooLarge => {
                "The request body is larger than the server accepts.".to_owned()
            }
            Self::Unauthorized => "The credentials are missing or not valid.".to_owned(),
            Self::Forbidden => "Your role may not do this.".to_owned(),
            Self::Problem { detail, .. } => detail.clone(),
        };
        let rule = match &self {
            Self::Problem { rule, .. } => rule.map(str::to_owned),
            _ => None,
        };
        let body = Problem {
            type_uri: format!("{PROBLEM_BASE}{suffix}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            rule,
        };
        let mut headers = axum::http::HeaderMap::new();
        headers.insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("application/problem+json"),
        );
        if status == StatusCode::UNAUTHORIZED {
            headers.insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer"),
            );
        }
        (status, headers, Json(body)).into_response()
    }
}

impl From<DbError> for AppError {
    fn from(e: DbError) -> Self {
        if refused_text(&e) {
            // The client's text, not the database, is at fault: PostgreSQL stores no NUL
            // character (SQLSTATE 22021) nor one outside the encoding (22P05).
            return Self::nul_in_text();
        }
        if let DbError::Corrupt(what) = e {
            // A stored value the schema forbids is a bug or damage, not an outage.
            return Self::Internal(format!("stored value out of range: {what}"));
        }
        Self::Unavailable(e)
    }
}

/// Whether the database refused a text value the client sent.
fn refused_text(e: &DbError) -> bool {
    match e {
        DbError::Sqlx(sqlx::Error::Database(db)) => {
            matches!(db.code().as_deref(), Some("22021" | "22P05"))
        }
        _ => false,
    }
}

impl From<JsonRejection> for AppError {
    fn from(r: JsonRejection) -> Self {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return Self::PayloadTooLarge;
        }
        // serde's messages can quote values from the body (a password, a name): say only which
        // way the body was wrong.
        Self::Malformed(
            match r {
                JsonRejection::MissingJsonContentType(_) => {
                    "Expected a body with Content-Type: application/json."
                }
                JsonRejection::JsonSyntaxError(_) => "The body is not valid JSON.",
                JsonRejection::JsonDataError(_) => {
                    "The body does not have the expected fields and types."
                }
                _ => "The body could not be read.",
            }
            .to_owned(),
        )
    }
}

impl From<PathRejection> for AppError {
    fn from(r: PathRejection) -> Self {
        Self::Malformed(r.body_text())
    }
}

impl From<QueryRejection> for AppError {
    fn from(r: QueryRejection) -> Self {
        Self::Malformed(r.body_text())
    }
}
