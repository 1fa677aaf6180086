//! The manager's cases: the list with search and filters, the import of a bank's case file
//! (CSV or XLSX, through an upload form: every row error shown with its line, nothing stored
//! on error), and each case's page with its visit history and the form to ask for a visit.
//! Every write goes through the JSON API's own services.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, Query, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use tandem_core::model::{BankId, CaseId};
use tandem_core::text::visible;

use super::frame::{
    Page, Zones, bank_zone, error_page, input_time, parse_local_time, problem_text, render,
    to_sign_in,
};
use super::i18n::Lang;
use super::manage::{CaseSummary, HistoryRow, case_summary, history_row};
use super::session::{ConsoleForm, HasCsrf, PageLang, Posted, Viewer, form_body};
use crate::AppState;
use crate::auth::UserAuth;
use crate::db::Role;
use crate::db::console::CaseQuery;
use crate::error::AppError;
use crate::visits::cases::{ImportFormat, ImportedRef, import_file};
use crate::visits::complaints;
use crate::visits::import::RowError;
use crate::visits::requests::{CreateRequest, new_request};

/// Cases shown per page of the list.
const PAGE_SIZE: i64 = 50;

/// The statuses the list can filter by, as stored.
const STATUSES: &[&str] = &[
    "active",
    "settled",
    "dispute",
    "complaint",
    "vulnerability_review",
];

/// One case in the list.
pub struct CaseRow {
    href: String,
    case_ref: String,
    debtor: String,
    card: String,
    outstanding: String,
    status: String,
    entrusted_until: String,
}

/// A choice of a `<select>`.
pub struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "console/cases.html")]
struct CasesPage {
    page: Page,
    text: String,
    statuses: Vec<Choice>,
    rows: Vec<CaseRow>,
    next_href: Option<String>,
}

/// The list's search.
#[derive(Debug, Deserialize)]
pub struct CasesQuery {
    #[serde(default)]
    q: Option<String>,
    #[serde(default)]
    status: Option<String>,
    #[serde(default)]
    after_ref: Option<String>,
    #[serde(default)]
    after_id: Option<String>,
}

/// `GET /cases`: the cases of the user's banks by reference, searched by reference or
/// debtor's name, filtered by status, 50 a page (keyset: the next page starts after the
/// last reference shown).
pub async fn cases(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(viewer): Viewer,
    Query(query): Query<CasesQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Some(user) = viewer else {
        return to_sign_in(&headers);
    };
    match cases_page(&state, &user, lang, &uri, query).await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => error_page(lang, &uri, Some(&user), &e),
    }
}

async fn cases_page(
    state: &AppState,
    user: &UserAuth,
    lang: Lang,
    uri: &Uri,
    query: CasesQuery,
) -> Result<CasesPage, AppError> {
    user.require(&[Role::Manager, Role::Admin])?;
    let text = query
        .q
        .as_deref()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .map(|t| t.chars().take(100).collect::<String>());
    let status = query.status.filter(|s| STATUSES.contains(&s.as_str()));
    let after = match (query.after_ref, query.after_id) {
        (Some(r), Some(i)) => Some((r, i)),
        _ => None,
    };
    let search = CaseQuery {
        text: text.clone(),
        status: status.clone(),
        after,
        limit: PAGE_SIZE + 1,
    };
    let mut found = state.db.search_cases(&user.user.bank_ids, &search).await?;
    let more = found.len() > PAGE_SIZE as usize;
    found.truncate(PAGE_SIZE as usize);
    let next_href = match (more, found.last()) {
        (true, Some(last)) => {
            let mut q = form_urlencoded::Serializer::new(String::new());
            if let Some(t) = &text {
                q.append_pair("q", t);
            }
            if let Some(s) = &status {
                q.append_pair("status", s);
            }
            q.append_pair("after_ref", &last.case_ref);
            q.append_pair("after_id", &last.id.to_string());
            Some(format!("/cases?{}", q.finish()))
        }
        _ => None,
    };
    let mut zones = Zones::default();
    let mut rows = Vec::with_capacity(found.len());
    for case in &found {
        let zone = zones.of(state, case.bank_id).await?;
        let summary = case_summary(lang, case, zone);
        rows.push(CaseRow {
            href: summary.href,
            case_ref: summary.case_ref,
            debtor: summary.debtor,
            card: summary.card,
            outstanding: summary.outstanding,
            status: summary.status,
            entrusted_until: summary.entrusted_until,
        });
    }
    let mut statuses = vec![Choice {
        value: String::new(),
        label: lang.t("cases-status-any"),
        selected: status.is_none(),
    }];
    statuses.extend(STATUSES.iter().map(|s| Choice {
        value: (*s).to_owned(),
        label: lang.t(&format!("case-status-{s}")),
        selected: status.as_deref() == Some(*s),
    }));
    Ok(CasesPage {
        page: Page::new(lang, "cases-title", uri).signed_in(user, "cases"),
        text: text.unwrap_or_default(),
        statuses,
        rows,
        next_href,
    })
}

/// One row error of a refused import, in the page's language.
pub struct ImportErrorRow {
    line: String,
    field: String,
    problem: String,
}

#[derive(Template)]
#[template(path = "console/import.html")]
struct ImportPage {
    page: Page,
    banks: Vec<Choice>,
    error: Option<String>,
    row_errors: Vec<ImportErrorRow>,
    error_count: usize,
    imported: Vec<ImportedRef>,
    imported_text: Option<String>,
}

impl ImportPage {
    async fn new(
        state: &AppState,
        user: &UserAuth,
        lang: Lang,
        uri: &Uri,
        chosen: Option<BankId>,
    ) -> Result<Self, AppError> {
        user.require(&[Role::Manager, Role::Admin])?;
        let banks = state
            .db
            .bank_names(&user.user.bank_ids)
            .await?
            .into_iter()
            .map(|b| Choice {
                value: b.id.to_string(),
                label: visible(&b.name).into_owned(),
                selected: chosen == Some(b.id),
            })
            .collect();
        Ok(Self {
            page: Page::new(lang, "import-title", uri).signed_in(user, "cases"),
            banks,
            error: None,
            row_errors: Vec::new(),
            error_count: 0,
            imported: Vec::new(),
            imported_text: None,
        })
    }
}

/// `GET /cases/import`: the upload form.
pub async fn import_form(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(viewer): Viewer,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Some(user) = viewer else {
        return to_sign_in(&headers);
    };
    match ImportPage::new(&state, &user, lang, &uri, None).await {
        Ok(page) => render(StatusCode::OK, &page),
        Err(e) => error_page(lang, &uri, Some(&user), &e),
    }
}

/// A row error's problem in the page's language: the importer's problems are fixed English
/// phrases, each with a message `import-problem-<slug>`; one without (never, while the
/// message files keep up) is shown as it is.
fn row_problem(lang: Lang, problem: &str) -> String {
    let id = row_problem_id(problem);
    if lang.has(&id) {
        lang.t(&id)
    } else {
        problem.to_owned()
    }
}

/// `import-problem-<slug>`: the message id of an importer's problem.
fn row_problem_id(problem: &str) -> String {
    let mut slug = String::new();
    for c in problem.to_lowercase().chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    format!("import-problem-{}", slug.trim_matches('-'))
}

/// What the upload form sent.
pub struct Upload {
    csrf: String,
    bank: String,
    file_name: String,
    content_type: String,
    body: Bytes,
}

impl ConsoleForm for Upload {
    fn csrf(&self) -> &str {
        &self.csrf
    }

    async fn read(req: Request, state: &AppState) -> Result<Option<Self>, Response> {
        Ok(match Multipart::from_request(req, state).await {
            Ok(multipart) => read_upload(multipart).await,
            Err(_) => None,
        })
    }
}

async fn read_upload(mut multipart: Multipart) -> Option<Upload> {
    let mut upload = Upload {
        csrf: String::new(),
        bank: String::new(),
        file_name: String::new(),
        content_type: String::new(),
        body: Bytes::new(),
    };
    while let Ok(Some(field)) = multipart.next_field().await {
        match field.name() {
            Some("csrf") => upload.csrf = field.text().await.ok()?,
            Some("bank") => upload.bank = field.text().await.ok()?,
            Some("file") => {
                upload.file_name = field.file_name().unwrap_or_default().to_lowercase();
                upload.content_type = field.content_type().unwrap_or_default().to_owned();
                upload.body = field.bytes().await.ok()?;
            }
            _ => {}
        }
    }
    Some(upload)
}

/// `POST /cases/import`: imports the uploaded file into the chosen bank, all or nothing;
/// row errors are listed with their line and field (never the value).
pub async fn import(
    State(state): State<AppState>,
    Posted {
        user,
        form: upload,
        lang,
        uri,
        ..
    }: Posted<Upload>,
) -> Response {
    match import_upload(&state, &user, lang, &uri, upload).await {
        Ok((status, page)) => render(status, &page),
        Err(e) => error_page(lang, &uri, Some(&user), &e),
    }
}

async fn import_upload(
    state: &AppState,
    user: &UserAuth,
    lang: Lang,
    uri: &Uri,
    upload: Upload,
) -> Result<(StatusCode, ImportPage), AppError> {
    let bank: Option<BankId> = upload.bank.parse().ok().filter(|b| user.sees(*b));
    let mut page = ImportPage::new(state, user, lang, uri, bank).await?;
    let Some(bank) = bank else {
        page.error = Some(lang.t("import-choose-bank"));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page));
    };
    let format = if upload.file_name.ends_with(".xlsx")
        || upload.content_type == crate::visits::cases::XLSX_MEDIA_TYPE
    {
        ImportFormat::Xlsx
    } else if upload.file_name.ends_with(".csv") || upload.content_type == "text/csv" {
        ImportFormat::Csv
    } else {
        page.error = Some(lang.t("import-choose-file"));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page));
    };
    if upload.body.is_empty() {
        page.error = Some(lang.t("import-choose-file"));
        return Ok((StatusCode::UNPROCESSABLE_ENTITY, page));
    }
    match import_file(state, user, bank, format, upload.body).await {
        Ok(Ok(stored)) => {
            page.imported_text =
                Some(lang.t_args("import-done", &[("count", stored.len().into())]));
            page.imported = stored;
            Ok((StatusCode::OK, page))
        }
        Ok(Err(errors)) => {
            page.error = Some(lang.t_args("import-refused", &[("count", errors.len().into())]));
            page.error_count = errors.len();
            page.row_errors = errors
                .iter()
                .take(crate::visits::import::MAX_LISTED_ERRORS)
                .map(|e: &RowError| ImportErrorRow {
                    line: e
                        .line
                        .map(|l| l.to_string())
                        .or(e.index.map(|i| format!("[{i}]")))
                        .unwrap_or_default(),
                    field: e.field.clone(),
                    problem: row_problem(lang, &e.problem),
                })
                .collect();
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(e @ (AppError::Problem { .. } | AppError::Malformed(_))) => {
            page.error = Some(match &e {
                AppError::Malformed(_) => lang.t("import-unreadable"),
                other => problem_text(lang, other),
            });
            Ok((StatusCode::UNPROCESSABLE_ENTITY, page))
        }
        Err(e) => Err(e),
    }
}

/// `GET /cases/import/template.csv`: the CSV header with one example row, for a bank's
/// staff to fill in.
pub async fn import_template() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"tandem-cases-template.csv\"",
            ),
        ],
        format!("\u{feff}{TEMPLATE_CSV}"),
    )
        .into_response()
}

/// The import template: the documented header and one example row (a made-up card and ID
/// number of the right shape).
const TEMPLATE_CSV: &str = "case_ref,card_number,debtor_name,id_number,debtor_phone,\
    outstanding_fen,entrustment_start_ms,entrustment_end_ms,address_1,lat_e7_1,lon_e7_1,datum_1\r\n\
    PJ-2026-0001,6222020200001234567,张三,110101199003071234,13800000000,1234567,\
    1796000000000,1811548800000,上海市浦东新区世纪大道100号,312345670,1215123450,gcj02\r\n";

/// An address the request form offers.
pub struct AddressOption {
    id: String,
    text: String,
    checked: bool,
}

#[derive(Template)]
#[template(path = "console/case.html")]
struct CasePage {
    page: Page,
    case: CaseSummary,
    history: Vec<HistoryRow>,
    may_request: bool,
    action: String,
    addresses: Vec<AddressOption>,
    wanted_from: String,
    wanted_until: String,
    purpose: String,
    request_error: Option<String>,
    complaint_error: Option<String>,
    complaint_note: String,
    notice: Option<String>,
    /// Evidence destroyed, legal holds in force (E04).
    retention_notes: Vec<String>,
}

impl CasePage {
    async fn load(
        state: &AppState,
        user: &UserAuth,
        lang: Lang,
        uri: &Uri,
        id: &str,
    ) -> Result<Self, AppError> {
        user.require(&[Role::Manager, Role::Admin])?;
        let id: CaseId = id.parse().map_err(|_| AppError::NotFound)?;
        let case = state.db.case(id).await?.ok_or(AppError::NotFound)?;
        user.check_bank(case.bank_id)?;
        let zone = bank_zone(state, case.bank_id).await?;
        let history = state.db.debtor_visits(&case, 100).await?;
        let now = state.now_ms();
        let retention_notes =
            super::retention::evidence_notes(state, lang, case.bank_id, case.id, None).await;
        Ok(Self {
            retention_notes,
            page: Page::new(lang, "case-title", uri).signed_in(user, "cases"),
            action: format!("/cases/{}/request", case.id),
            may_request: user.user.role == Role::Manager,
            addresses: case
                .addresses
                .iter()
                .map(|a| AddressOption {
                    id: a.id.to_string(),
                    text: visible(&a.text).into_owned(),
                    checked: true,
                })
                .collect(),
            wanted_from: input_time(now + 3_600_000, zone),
            wanted_until: input_time(now + 3 * 86_400_000, zone),
            purpose: String::new(),
            request_error: None,
            complaint_error: None,
            complaint_note: String::new(),
            notice: None,
            history: history
                .iter()
                .map(|h| history_row(lang, h, uuid::Uuid::nil(), zone))
                .collect(),
            case: case_summary(lang, &case, zone),
        })
    }
}

/// What a case's page was sent back with.
#[derive(Debug, Deserialize)]
pub struct CasePageQuery {
    #[serde(default)]
    done: Option<String>,
}

/// `GET /cases/{id}`: a case of the user's banks with its visit history (another bank's
/// case, or a random id, is the same "not found").
pub async fn case_page(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    Viewer(viewer): Viewer,
    Path(id): Path<String>,
    Query(query): Query<CasePageQuery>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Some(user) = viewer else {
        return to_sign_in(&headers);
    };
    match CasePage::load(&state, &user, lang, &uri, &id).await {
        Ok(mut page) => {
            if query.done.as_deref() == Some("complaint") {
                page.notice = Some(lang.t("complaint-recorded-notice"));
            }
            render(StatusCode::OK, &page)
        }
        Err(e) => error_page(lang, &uri, Some(&user), &e),
    }
}

/// The complaint form.
#[derive(Deserialize)]
pub struct ComplaintForm {
    csrf: String,
    #[serde(default)]
    note: String,
}

impl HasCsrf for ComplaintForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /cases/{id}/complaint`: records a complaint about the case (P01); the case is on
/// hold until it is resolved in the review queue.
pub async fn record_complaint(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted {
        user,
        form,
        lang,
        uri,
        ..
    }: Posted<ComplaintForm>,
) -> Response {
    let page_uri: Uri = format!("/cases/{id}").parse().unwrap_or(uri);
    let outcome = async {
        let case: CaseId = id.parse().map_err(|_| AppError::NotFound)?;
        let error = match complaints::record(&state, &user, case, &form.note).await {
            Ok(_) => return Ok(None),
            Err(e @ AppError::Problem { .. }) => problem_text(lang, &e),
            Err(e) => return Err(e),
        };
        let mut page = CasePage::load(&state, &user, lang, &page_uri, &id).await?;
        page.complaint_error = Some(error);
        page.complaint_note = form.note.clone();
        Ok::<_, AppError>(Some(page))
    };
    match outcome.await {
        Ok(None) => Redirect::to(&format!("/cases/{id}?done=complaint")).into_response(),
        Ok(Some(page)) => render(StatusCode::UNPROCESSABLE_ENTITY, &page),
        Err(e) => error_page(lang, &page_uri, Some(&user), &e),
    }
}

/// The visit request form as posted: repeated `address` fields, so read as pairs.
pub struct VisitRequestForm {
    csrf: String,
    from: String,
    until: String,
    purpose: String,
    addresses: Vec<String>,
}

impl ConsoleForm for VisitRequestForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }

    async fn read(req: Request, state: &AppState) -> Result<Option<Self>, Response> {
        let body = form_body(req, state).await?;
        let mut form = Self {
            csrf: String::new(),
            from: String::new(),
            until: String::new(),
            purpose: String::new(),
            addresses: Vec::new(),
        };
        for (k, v) in form_urlencoded::parse(&body) {
            let v = v.into_owned();
            match k.as_ref() {
                "csrf" => form.csrf = v,
                "wanted_from" => form.from = v,
                "wanted_until" => form.until = v,
                "purpose" => form.purpose = v,
                "address" => form.addresses.push(v),
                _ => {}
            }
        }
        Ok(Some(form))
    }
}

/// `POST /cases/{id}/request`: a manager asks for a visit to the case (the JSON API's
/// service: V01 and the window are checked there), then sees the new request's page.
pub async fn request_visit(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted {
        user,
        form,
        lang,
        uri,
        ..
    }: Posted<VisitRequestForm>,
) -> Response {
    let VisitRequestForm {
        from,
        until,
        purpose,
        addresses,
        ..
    } = form;
    let page_uri: Uri = format!("/cases/{id}").parse().unwrap_or(uri);
    let outcome = async {
        let mut page = CasePage::load(&state, &user, lang, &page_uri, &id).await?;
        user.require(&[Role::Manager])?;
        let case_id: CaseId = id.parse().map_err(|_| AppError::NotFound)?;
        let case = state.db.case(case_id).await?.ok_or(AppError::NotFound)?;
        let zone = bank_zone(&state, case.bank_id).await?;
        let times = (
            parse_local_time(&from, zone),
            parse_local_time(&until, zone),
        );
        let error = match times {
            (Some(wanted_from_ms), Some(wanted_until_ms)) => {
                let req = CreateRequest {
                    case_id: id.clone(),
                    address_ids: Some(addresses.clone()),
                    wanted_from_ms,
                    wanted_until_ms,
                    purpose: purpose.clone(),
                };
                match new_request(
                    &state,
                    &user.user.bank_ids,
                    None,
                    Some(user.user.user_id),
                    req,
                )
                .await
                {
                    Ok(stored) => return Ok(Err(stored.request.id)),
                    Err(e @ AppError::Problem { .. }) => problem_text(lang, &e),
                    Err(e) => return Err(e),
                }
            }
            _ => lang.t("form-bad-window"),
        };
        for a in &mut page.addresses {
            a.checked = addresses.contains(&a.id);
        }
        page.wanted_from = from.clone();
        page.wanted_until = until.clone();
        page.purpose = purpose.clone();
        page.request_error = Some(error);
        Ok::<_, AppError>(Ok(page))
    };
    match outcome.await {
        Ok(Err(request)) => Redirect::to(&format!("/requests/{request}")).into_response(),
        Ok(Ok(page)) => render(StatusCode::UNPROCESSABLE_ENTITY, &page),
        Err(e) => error_page(lang, &page_uri, Some(&user), &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every problem the importer states has its message in both languages.
    #[test]
    fn every_import_problem_is_translated() {
        let problems = [
            "a case with this reference exists already",
            "at least one address is required",
            "column given twice",
            "is larger than any card's arrears",
            "is required (wgs84, gcj02 or bd09)",
            "is required",
            "is too long",
            "may hold only digits, spaces, + and -",
            "must be text",
            "must be wgs84, gcj02 or bd09",
            "must not be negative",
            "must not hold control characters",
            "not a valid position",
            "required column missing",
            "the same case reference is earlier in the file",
            "unknown column name",
            "a card number has 12 to 19 digits",
            "an ID number has 15 or 18 characters, digits (the last may be X)",
            "latitude in 1e-7 degrees, within ±900000000",
            "longitude in 1e-7 degrees, within ±1800000000",
            "must be a time between the years 2000 and 2200, in UTC milliseconds",
            "must be after entrustment_start_ms",
            "must be an integer",
            "the first line must be the header naming the documented columns",
        ];
        for p in problems {
            for lang in Lang::ALL {
                assert!(lang.has(&row_problem_id(p)), "{} lacks {p}", lang.tag());
            }
        }
        assert_eq!(row_problem(Lang::ZhCn, "is required"), "必填");
        assert_eq!(row_problem(Lang::En, "something new"), "something new");
    }

    #[test]
    fn the_template_is_a_file_the_importer_accepts() {
        let parsed = crate::visits::import::parse_csv(BankId::new(), TEMPLATE_CSV.as_bytes());
        assert_eq!(parsed.map(|cases| cases.len()).ok(), Some(1));
    }
}
