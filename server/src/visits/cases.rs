//! Cases: import from a bank's file, listing and reading (numbers masked, A01; per bank,
//! D03).

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tandem_core::model::{BankId, CaseId};
use tandem_core::text::visible;
use utoipa::{IntoParams, ToSchema};

use super::import::{self, ImportError, MAX_LISTED_ERRORS, RowError};
use crate::AppState;
use crate::audit::{AuditAction, AuditEntry};
use crate::auth::UserAuth;
use crate::db::Role;
use crate::db::visits::{CaseRecord, ImportOutcome};
use crate::error::{AppError, PROBLEM_BASE, Problem};

/// What an import stored.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportResponse {
    /// How many cases were stored.
    pub imported: usize,
    /// Each stored case's id with its reference, in file order.
    pub cases: Vec<ImportedRef>,
}

/// A stored case's id and reference.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ImportedRef {
    /// Case id.
    pub id: String,
    /// The bank's reference.
    pub case_ref: String,
}

/// An approved address.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct AddressView {
    /// Address id.
    pub id: String,
    /// The address text.
    pub text: String,
    /// Latitude, 1e-7 degrees.
    pub lat_e7: i32,
    /// Longitude, 1e-7 degrees.
    pub lon_e7: i32,
    /// `wgs84`, `gcj02` or `bd09`.
    pub datum: String,
}

/// A case as the console shows it: card and ID numbers masked, and direction controls in
/// the bank's text shown as their codes ([`tandem_core::text::visible`]); the record keeps
/// the text as given.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct CaseView {
    /// Case id.
    pub id: String,
    /// Bank.
    pub bank_id: String,
    /// The bank's reference.
    pub case_ref: String,
    /// `**** **** **** 1234`.
    pub card_masked: String,
    /// Debtor's name.
    pub debtor_name: String,
    /// ID number, all but the last four characters hidden.
    pub id_number_masked: String,
    /// Debtor's contact phone.
    pub debtor_phone: Option<String>,
    /// Arrears in fen.
    pub outstanding_fen: i64,
    /// `active`, `settled`, `dispute`, `complaint`, `vulnerability_review`.
    pub status: String,
    /// Entrustment start, UTC ms.
    pub entrustment_start_ms: i64,
    /// Entrustment end, UTC ms.
    pub entrustment_end_ms: i64,
    /// Approved addresses.
    pub addresses: Vec<AddressView>,
}

impl From<&CaseRecord> for CaseView {
    fn from(c: &CaseRecord) -> Self {
        Self {
            id: c.id.to_string(),
            bank_id: c.bank_id.to_string(),
            case_ref: visible(&c.case_ref).into_owned(),
            card_masked: c.card.as_str().to_owned(),
            debtor_name: visible(&c.debtor_name).into_owned(),
            id_number_masked: c.id_number.as_str().to_owned(),
            debtor_phone: c.debtor_phone.as_deref().map(|p| visible(p).into_owned()),
            outstanding_fen: c.outstanding_fen,
            status: if c.status == "open" {
                "active".into()
            } else {
                c.status.clone()
            },
            entrustment_start_ms: c.entrustment_start_ms,
            entrustment_end_ms: c.entrustment_end_ms,
            addresses: c
                .addresses
                .iter()
                .map(|a| AddressView {
                    id: a.id.to_string(),
                    text: visible(&a.text).into_owned(),
                    lat_e7: a.position.lat_e7(),
                    lon_e7: a.position.lon_e7(),
                    datum: a.position.datum().to_string(),
                })
                .collect(),
        }
    }
}

/// A bank id from the path; anything unparseable is a bank that does not exist.
pub(crate) fn bank_param(user: &UserAuth, raw: &str) -> Result<BankId, AppError> {
    let bank: BankId = raw.parse().map_err(|_| AppError::NotFound)?;
    user.check_bank(bank)?;
    Ok(bank)
}

/// 422 naming every bad row (the first [`MAX_LISTED_ERRORS`]), with the total.
fn rows_problem(errors: &[RowError]) -> Response {
    let body = serde_json::json!({
        "type": format!("{PROBLEM_BASE}import-rows-invalid"),
        "title": "Import refused",
        "status": 422,
        "detail": format!(
            "{} problem(s) in the file; nothing was imported. Each names its line or index \
             and field.",
            errors.len()
        ),
        "error_count": errors.len(),
        "errors": &errors[..errors.len().min(MAX_LISTED_ERRORS)],
    });
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        [(header::CONTENT_TYPE, "application/problem+json")],
        Json(body),
    )
        .into_response()
}

/// Imports cases into a bank (manager or admin): a JSON array, or CSV with the header
/// `case_ref,card_number,debtor_name,id_number,debtor_phone,outstanding_fen,
/// entrustment_start_ms,entrustment_end_ms,address_1,lat_e7_1,lon_e7_1,datum_1` (optional
/// `debtor_phone`, and `address_2…`, `address_3…` groups). All or nothing; card and ID
/// numbers are masked on the way in.
#[utoipa::path(post, path = "/v1/banks/{bank}/cases/import", tag = "cases",
    params(("bank" = String, Path, description = "Bank id")),
    request_body(content = String, description = "JSON array of cases (`application/json`), \
        CSV with the documented header (`text/csv`) or an XLSX workbook whose first sheet has \
        the same columns; at most 10,000 rows and 8 MiB"),
    security(("session" = [])),
    responses(
        (status = 201, description = "Every case stored", body = ImportResponse),
        (status = 400, description = "Not JSON / CSV", body = Problem,
            content_type = "application/problem+json"),
        (status = 404, description = "No such bank for this user", body = Problem,
            content_type = "application/problem+json"),
        (status = 413, description = "Over 10,000 rows or 8 MiB", body = Problem,
            content_type = "application/problem+json"),
        (status = 415, description = "Neither JSON, CSV nor XLSX", body = Problem,
            content_type = "application/problem+json"),
        (status = 422, description = "Rows with errors (`errors`: line or index, field, \
            problem); nothing stored", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn import_cases(
    State(state): State<AppState>,
    user: UserAuth,
    Path(bank): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, AppError> {
    user.require(&[Role::Manager, Role::Admin])?;
    let bank = bank_param(&user, &bank)?;
    let body = body.map_err(|r| {
        if r.status() == StatusCode::PAYLOAD_TOO_LARGE {
            AppError::problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "import-too-large",
                "Import too large",
                format!(
                    "An import is at most {} MiB; split the file.",
                    import::IMPORT_BODY_LIMIT >> 20
                ),
            )
        } else {
            AppError::Malformed("The body could not be read.".into())
        }
    })?;
    let media = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let format = match media.as_str() {
        "application/json" => ImportFormat::Json,
        "text/csv" => ImportFormat::Csv,
        XLSX_MEDIA_TYPE => ImportFormat::Xlsx,
        _ => {
            return Err(AppError::problem(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "import-media-type",
                "Unsupported media type",
                "Send application/json (an array of cases), text/csv or an XLSX workbook.",
            ));
        }
    };
    match import_file(&state, &user, bank, format, body).await? {
        Ok(stored) => Ok((
            StatusCode::CREATED,
            Json(ImportResponse {
                imported: stored.len(),
                cases: stored,
            }),
        )
            .into_response()),
        Err(errors) => Ok(rows_problem(&errors)),
    }
}

/// The media type of an XLSX workbook.
pub const XLSX_MEDIA_TYPE: &str =
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// The formats a bank's case file comes in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    /// A JSON array of cases.
    Json,
    /// CSV with the documented header.
    Csv,
    /// An XLSX workbook: its first sheet laid out as the CSV (dates may be date cells).
    Xlsx,
}

/// Imports a bank's case file (all or nothing): the stored cases in file order, or every
/// row error (nothing stored). What the JSON API and the console's upload form share; the
/// caller has checked the role and the bank.
pub(crate) async fn import_file(
    state: &AppState,
    user: &UserAuth,
    bank: BankId,
    format: ImportFormat,
    body: Bytes,
) -> Result<Result<Vec<ImportedRef>, Vec<RowError>>, AppError> {
    user.require(&[Role::Manager, Role::Admin])?;
    user.check_bank(bank)?;
    let zone = match super::policy::current(state, bank).await {
        Ok(view) => view.policy.time_zone.parse().ok(),
        Err(AppError::NotFound) => None,
        Err(e) => return Err(e),
    }
    .unwrap_or(chrono_tz::Asia::Shanghai);
    // Up to 8 MiB to read and check: off the async workers.
    let parsed = tokio::task::spawn_blocking(move || match format {
        ImportFormat::Json => import::parse_json(bank, &body),
        ImportFormat::Csv => import::parse_csv(bank, &body),
        ImportFormat::Xlsx => import::parse_xlsx(bank, &body, zone),
    })
    .await
    .map_err(|e| AppError::Internal(format!("import task: {e}")))?;
    let cases = match parsed {
        Ok(cases) => cases,
        Err(ImportError::Malformed(why)) => return Err(AppError::Malformed(why)),
        Err(ImportError::TooManyRows) => {
            return Err(AppError::problem(
                StatusCode::PAYLOAD_TOO_LARGE,
                "import-too-many-rows",
                "Too many rows",
                format!(
                    "An import holds at most {} cases; split the file.",
                    import::MAX_IMPORT_ROWS
                ),
            ));
        }
        Err(ImportError::Rows(errors)) => return Ok(Err(errors)),
    };
    let refs: Vec<String> = cases.iter().map(|c| c.case.case.case_ref.clone()).collect();
    let existing = state.db.existing_case_refs(bank, &refs).await?;
    let clashes = import::already_stored(&cases, &existing);
    if !clashes.is_empty() {
        return Ok(Err(clashes));
    }
    let to_store: Vec<_> = cases.into_iter().map(|c| c.case).collect();
    match state.db.import_cases(&to_store, state.now_ms()).await? {
        ImportOutcome::Imported(n) => {
            tracing::info!(bank = %bank, cases = n, "cases imported");
            let entry = AuditEntry::new(
                state.now_ms(),
                AuditAction::CasesImported,
                "bank",
                Some(bank.to_string()),
            )
            .by(user.user.user_id)
            .bank(bank)
            .detail(serde_json::json!({ "cases": n }));
            state.db.append_audit(&entry).await?;
            Ok(Ok(to_store
                .iter()
                .map(|c| ImportedRef {
                    id: c.case.id.to_string(),
                    case_ref: c.case.case_ref.clone(),
                })
                .collect()))
        }
        ImportOutcome::DuplicateRef => Err(AppError::conflict(
            "case-ref-taken",
            "A case reference in the file was stored meanwhile; nothing was imported.",
        )),
    }
}

/// Paging of the case list.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// At most this many (default 100, at most 1000).
    pub limit: Option<i64>,
    /// Skip this many (ordered by reference).
    pub offset: Option<i64>,
}

/// A bank's cases (manager, legal, admin of the bank), with their addresses.
#[utoipa::path(get, path = "/v1/banks/{bank}/cases", tag = "cases",
    params(("bank" = String, Path, description = "Bank id"), ListParams),
    security(("session" = [])),
    responses(
        (status = 200, description = "Cases by reference", body = [CaseView]),
        (status = 404, description = "No such bank for this user", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn list_cases(
    State(state): State<AppState>,
    user: UserAuth,
    Path(bank): Path<String>,
    Query(params): Query<ListParams>,
) -> Result<Json<Vec<CaseView>>, AppError> {
    user.require(&[Role::Manager, Role::Legal, Role::Admin])?;
    let bank = bank_param(&user, &bank)?;
    let limit = params.limit.unwrap_or(100).clamp(1, 1000);
    let offset = params.offset.unwrap_or(0).max(0);
    let cases = state.db.list_cases(bank, limit, offset).await?;
    Ok(Json(cases.iter().map(CaseView::from).collect()))
}

/// One case with its addresses (manager, legal, admin of its bank).
#[utoipa::path(get, path = "/v1/cases/{id}", tag = "cases",
    params(("id" = String, Path, description = "Case id")),
    security(("session" = [])),
    responses(
        (status = 200, description = "The case", body = CaseView),
        (status = 404, description = "No such case for this user", body = Problem,
            content_type = "application/problem+json"),
    ))]
pub async fn get_case(
    State(state): State<AppState>,
    user: UserAuth,
    Path(id): Path<String>,
) -> Result<Json<CaseView>, AppError> {
    user.require(&[Role::Manager, Role::Legal, Role::Admin])?;
    let id: CaseId = id.parse().map_err(|_| AppError::NotFound)?;
    let case = state.db.case(id).await?.ok_or(AppError::NotFound)?;
    user.check_bank(case.bank_id)?;
    Ok(Json(CaseView::from(&case)))
}
