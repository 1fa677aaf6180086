//! Retention, legal hold and destruction (E04) for legal and admin staff: each bank's
//! retention period, the holds in force (placed and lifted with a reason), the banks'
//! destruction requests with the second person's approval, and the signed certificates
//! with the server key to check them with `openssl`. Every action goes through
//! [`crate::retention`], which audits it; this module only reads forms and shows pages.
//!
//! Threats: a malicious insider deleting evidence early or alone (the service refuses,
//! naming E04; a second administrator approves); a web page forging a form (CSRF token on
//! every form); a user of another bank guessing ids (the "not found" of a random id).

use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tandem_core::crypto::Signer as _;
use tandem_core::model::{BankId, CaseId, VisitId};
use tandem_core::text::visible;

use super::admin::Fields;
use super::frame::{Page, Zones, error_page, local_time, render, to_sign_in};
use super::i18n::Lang;
use super::session::{PageLang, Posted, Posters, Viewer};
use crate::AppState;
use crate::auth::UserAuth;
use crate::db::Role;
use crate::error::AppError;
use crate::retention::{self as service, RetentionError, evidence_status, resolve_subject};

/// Rows shown per list.
const LIST_SIZE: i64 = 100;

/// The retention pages' routes.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/retention", get(overview))
        .route("/retention/holds", get(holds_page).post(place_hold))
        .route("/retention/holds/{id}/lift", post(lift_hold))
        .route("/retention/destructions", post(request_destruction))
        .route("/retention/destructions/{id}/approve", post(approve))
        .route("/retention/certificates/{file}", get(certificate_file))
        .route("/retention/server-key.pem", get(server_key))
}

/// A retention page as signed-in legal or admin staff ask for it; the signed-out are sent
/// to the sign-in form, other roles get the "forbidden" page.
pub struct RetentionPage {
    user: UserAuth,
    lang: Lang,
    uri: Uri,
}

impl FromRequestParts<AppState> for RetentionPage {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let Ok(PageLang(lang)) = PageLang::from_request_parts(parts, state).await;
        let Viewer(viewer) = Viewer::from_request_parts(parts, state).await?;
        let Some(user) = viewer else {
            return Err(to_sign_in(&parts.headers));
        };
        if let Err(e) = user.require(LegalStaff::ROLES) {
            return Err(error_page(lang, &parts.uri, Some(&user), &e));
        }
        Ok(Self {
            user,
            lang,
            uri: parts.uri.clone(),
        })
    }
}

/// A retention form posted by signed-in legal or admin staff, its CSRF token checked
/// before anything else.
pub type RetentionPost = Posted<Fields, LegalStaff>;

/// Legal and admin staff.
pub struct LegalStaff;

impl Posters for LegalStaff {
    const ROLES: &'static [Role] = &[Role::Legal, Role::Admin];
}

/// A bank's retention period.
pub struct BankRow {
    name: String,
    days: String,
    policy_href: Option<String>,
}

/// A hold in the lists.
pub struct HoldRow {
    id: String,
    case_ref: String,
    subject: String,
    reference: String,
    reason: String,
    placed: String,
    lifted: Option<String>,
}

/// A destruction request in the list.
pub struct RequestRow {
    id: String,
    case_ref: String,
    subject: String,
    bank_reference: String,
    reason: String,
    requested: String,
    state: String,
    badge: &'static str,
    refusal: Option<String>,
    decided: Option<String>,
    certificate: Option<String>,
    may_approve: bool,
}

/// What a form was sent with, shown again beside its error.
#[derive(Default)]
pub struct Typed {
    kind: String,
    subject: String,
    reference: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "console/retention_overview.html")]
struct OverviewPage {
    page: Page,
    notice: Option<String>,
    hold_error: Option<String>,
    hold_typed: Typed,
    destroy_error: Option<String>,
    destroy_typed: Typed,
    banks: Vec<BankRow>,
    holds: Vec<HoldRow>,
    requests: Vec<RequestRow>,
    fingerprint: String,
    may_approve: bool,
}

#[derive(Template)]
#[template(path = "console/retention_holds.html")]
struct HoldsPage {
    page: Page,
    holds: Vec<HoldRow>,
}

fn subject_text(lang: Lang, visit: Option<VisitId>) -> String {
    match visit {
        Some(v) => lang.t_args("retention-subject-visit", &[("id", v.to_string().into())]),
        None => lang.t("retention-subject-case"),
    }
}

async fn hold_rows(
    state: &AppState,
    user: &UserAuth,
    lang: Lang,
    active: bool,
) -> Result<Vec<HoldRow>, AppError> {
    let mut zones = Zones::default();
    let mut rows = Vec::new();
    for h in state
        .db
        .holds(&user.user.bank_ids, active, LIST_SIZE)
        .await?
    {
        let zone = zones.of(state, h.bank_id).await?;
        rows.push(HoldRow {
            id: h.id.to_string(),
            case_ref: visible(&h.case_ref).into_owned(),
            subject: subject_text(lang, h.visit_id),
            reference: visible(&h.reference).into_owned(),
            reason: visible(&h.reason).into_owned(),
            placed: lang.t_args(
                "retention-by-at",
                &[
                    ("name", visible(&h.placed_by).into_owned().into()),
                    ("at", local_time(h.placed_ms, zone).into()),
                ],
            ),
            lifted: match (h.lifted_ms, h.lifted_by, h.lift_reason) {
                (Some(at), Some(by), Some(why)) => Some(lang.t_args(
                    "retention-lifted-by",
                    &[
                        ("name", visible(&by).into_owned().into()),
                        ("at", local_time(at, zone).into()),
                        ("reason", visible(&why).into_owned().into()),
                    ],
                )),
                _ => None,
            },
        });
    }
    Ok(rows)
}

impl OverviewPage {
    async fn build(state: &AppState, user: &UserAuth, lang: Lang) -> Result<Self, AppError> {
        let is_admin = user.user.role == Role::Admin;
        let mut banks = Vec::new();
        for bank in state.db.bank_names(&user.user.bank_ids).await? {
            let days = match crate::visits::policy::current(state, bank.id).await {
                Ok(view) => view.policy.retention_days,
                Err(AppError::NotFound) => {
                    tandem_core::model::Policy::defaults(bank.id).retention_days
                }
                Err(e) => return Err(e),
            };
            banks.push(BankRow {
                name: visible(&bank.name).into_owned(),
                days: lang.t_args("retention-days", &[("days", days.into())]),
                policy_href: is_admin.then(|| format!("/admin/policy/{}", bank.id)),
            });
        }
        let mut zones = Zones::default();
        let mut requests = Vec::new();
        for r in state
            .db
            .destruction_requests(&user.user.bank_ids, LIST_SIZE)
            .await?
        {
            let zone = zones.of(state, r.bank_id).await?;
            let (state_id, badge) = match r.status.as_str() {
                "pending" => ("pending", "warn"),
                "destroyed" => ("destroyed", "ok"),
                _ => ("refused", "bad"),
            };
            requests.push(RequestRow {
                id: r.id.to_string(),
                case_ref: visible(&r.case_ref).into_owned(),
                subject: subject_text(lang, r.visit_id),
                bank_reference: visible(&r.bank_reference).into_owned(),
                reason: visible(&r.reason).into_owned(),
                requested: lang.t_args(
                    "retention-by-at",
                    &[
                        ("name", visible(&r.requested_by_name).into_owned().into()),
                        ("at", local_time(r.requested_ms, zone).into()),
                    ],
                ),
                state: lang.t(&format!("retention-state-{state_id}")),
                badge,
                refusal: r.refusal.as_deref().map(|t| refusal_of_stored(lang, t)),
                decided: match (r.decided_by_name, r.decided_ms) {
                    (Some(name), Some(at)) => Some(lang.t_args(
                        "retention-by-at",
                        &[
                            ("name", visible(&name).into_owned().into()),
                            ("at", local_time(at, zone).into()),
                        ],
                    )),
                    _ => None,
                },
                certificate: r.certificate_id.map(|c| c.to_string()),
                may_approve: is_admin
                    && r.status == "pending"
                    && r.requested_by != user.user.user_id,
            });
        }
        Ok(Self {
            page: Page::new(
                lang,
                "retention-title",
                &"/retention".parse().unwrap_or_default(),
            )
            .signed_in(user, "retention"),
            notice: None,
            hold_error: None,
            hold_typed: Typed {
                kind: "case".into(),
                ..Typed::default()
            },
            destroy_error: None,
            destroy_typed: Typed {
                kind: "visit".into(),
                ..Typed::default()
            },
            banks,
            holds: hold_rows(state, user, lang, true).await?,
            requests,
            fingerprint: state.signer.public_key().kid().to_string(),
            may_approve: is_admin,
        })
    }
}

/// A stored refusal (`E04: retention runs until 2029-03-01`, `E04: legal hold X`) in the
/// page's language.
fn refusal_of_stored(lang: Lang, text: &str) -> String {
    refusal_text(lang, &RetentionError::from_refusal(text))
        .unwrap_or_else(|| lang.t("retention-refused-nothing"))
}

/// A refusal or form error in the page's language; `None` for what is shown as an error
/// page instead (not found, forbidden, internal).
fn refusal_text(lang: Lang, e: &RetentionError) -> Option<String> {
    Some(match e {
        RetentionError::InsideRetention { until } => lang.t_args(
            "retention-refused-retention",
            &[("until", until.to_string().into())],
        ),
        RetentionError::UnderHold { reference } => lang.t_args(
            "retention-refused-hold",
            &[("reference", visible(reference).into_owned().into())],
        ),
        RetentionError::SamePerson => lang.t("retention-refused-same-person"),
        RetentionError::NothingToDestroy => lang.t("retention-refused-nothing"),
        RetentionError::NotPending => lang.t("retention-refused-decided"),
        RetentionError::HoldNotActive => lang.t("retention-refused-lifted"),
        RetentionError::Invalid { field } => lang.t(&format!("retention-invalid-{field}")),
        _ => return None,
    })
}

fn as_app(e: RetentionError) -> AppError {
    match e {
        RetentionError::NotFound => AppError::NotFound,
        RetentionError::Forbidden => AppError::Forbidden,
        RetentionError::App(e) => e,
        other => AppError::Internal(other.to_string()),
    }
}

/// What the overview was sent back with after a change.
#[derive(Debug, Deserialize)]
pub struct DoneQuery {
    #[serde(default)]
    done: Option<String>,
}

/// `GET /retention`: retention periods, holds in force, destruction requests, the key.
pub async fn overview(
    State(state): State<AppState>,
    Query(query): Query<DoneQuery>,
    RetentionPage { user, lang, uri }: RetentionPage,
) -> Response {
    match OverviewPage::build(&state, &user, lang).await {
        Ok(mut page) => {
            page.notice = match query.done.as_deref() {
                Some(d @ ("hold-placed" | "hold-lifted" | "requested" | "destroyed")) => {
                    Some(lang.t(&format!("retention-done-{d}")))
                }
                _ => None,
            };
            render(StatusCode::OK, &page)
        }
        Err(e) => error_page(lang, &uri, Some(&user), &e),
    }
}

/// `GET /retention/holds`: every hold of the user's banks, lifted ones too.
pub async fn holds_page(
    State(state): State<AppState>,
    RetentionPage { user, lang, uri }: RetentionPage,
) -> Response {
    match hold_rows(&state, &user, lang, false).await {
        Ok(holds) => render(
            StatusCode::OK,
            &HoldsPage {
                page: Page::new(lang, "retention-holds-title", &uri).signed_in(&user, "retention"),
                holds,
            },
        ),
        Err(e) => error_page(lang, &uri, Some(&user), &e),
    }
}

/// The answer to a retention form: back to the overview saying what was done, the
/// overview again with the form's error (422), or an error page (another bank's or an
/// unknown id: "not found").
async fn answer(
    state: &AppState,
    post: &RetentionPost,
    outcome: Result<&'static str, RetentionError>,
    hold_form: bool,
) -> Response {
    let RetentionPost {
        user,
        lang,
        uri,
        form,
        ..
    } = post;
    let error = match outcome {
        Ok(done) => return Redirect::to(&format!("/retention?done={done}")).into_response(),
        Err(e) => e,
    };
    let Some(text) = refusal_text(*lang, &error) else {
        return error_page(*lang, uri, Some(user), &as_app(error));
    };
    match OverviewPage::build(state, user, *lang).await {
        Ok(mut page) => {
            let typed = Typed {
                kind: form.get("kind").to_owned(),
                subject: form.get("subject").to_owned(),
                reference: form.get("reference").to_owned(),
                reason: form.get("reason").to_owned(),
            };
            if hold_form {
                page.hold_error = Some(text);
                page.hold_typed = typed;
            } else {
                page.destroy_error = Some(text);
                page.destroy_typed = typed;
            }
            render(StatusCode::UNPROCESSABLE_ENTITY, &page)
        }
        Err(e) => error_page(*lang, uri, Some(user), &e),
    }
}

/// `POST /retention/holds`: places a hold on a case or a visit.
pub async fn place_hold(State(state): State<AppState>, post: RetentionPost) -> Response {
    let outcome = async {
        let subject = resolve_subject(
            &state,
            &post.user,
            post.form.get("kind"),
            post.form.get("subject"),
        )
        .await?;
        service::place_hold(
            &state,
            &post.user,
            subject,
            post.form.get("reference"),
            post.form.get("reason"),
            post.client,
        )
        .await?;
        Ok("hold-placed")
    };
    let outcome = outcome.await;
    answer(&state, &post, outcome, true).await
}

/// `POST /retention/holds/{id}/lift`: lifts a hold, with a reason.
pub async fn lift_hold(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: RetentionPost,
) -> Response {
    let outcome = service::lift_hold(
        &state,
        &post.user,
        &id,
        post.form.get("reason"),
        post.client,
    )
    .await
    .map(|()| "hold-lifted");
    answer(&state, &post, outcome, true).await
}

/// `POST /retention/destructions`: the bank asks for a case's or visit's evidence to be
/// destroyed.
pub async fn request_destruction(State(state): State<AppState>, post: RetentionPost) -> Response {
    let outcome = async {
        let subject = resolve_subject(
            &state,
            &post.user,
            post.form.get("kind"),
            post.form.get("subject"),
        )
        .await?;
        service::request_destruction(
            &state,
            &post.user,
            subject,
            post.form.get("reference"),
            post.form.get("reason"),
            post.client,
        )
        .await?;
        Ok("requested")
    };
    let outcome = outcome.await;
    answer(&state, &post, outcome, false).await
}

/// `POST /retention/destructions/{id}/approve`: a second administrator approves.
pub async fn approve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    post: RetentionPost,
) -> Response {
    let outcome = service::approve_destruction(&state, &post.user, &id, post.client)
        .await
        .map(|_| "destroyed");
    answer(&state, &post, outcome, false).await
}

fn download(body: Vec<u8>, content_type: &'static str, name: &str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{name}\"")) {
        headers.insert(header::CONTENT_DISPOSITION, v);
    }
    super::secure_page_headers(headers);
    response
}

/// `GET /retention/certificates/{id}.json` (the document) or `{id}.sig` (the server key's
/// detached signature over it).
pub async fn certificate_file(
    State(state): State<AppState>,
    Path(file): Path<String>,
    RetentionPage { user, lang, uri }: RetentionPage,
) -> Response {
    let (id, json) = match (file.strip_suffix(".json"), file.strip_suffix(".sig")) {
        (Some(id), _) => (id, true),
        (None, Some(id)) => (id, false),
        _ => return error_page(lang, &uri, Some(&user), &AppError::NotFound),
    };
    match service::certificate(&state, &user, id).await {
        Ok(cert) if json => download(
            cert.document,
            "application/json",
            &format!("destruction-{}.json", cert.id),
        ),
        Ok(cert) => download(
            cert.signature,
            "application/octet-stream",
            &format!("destruction-{}.sig", cert.id),
        ),
        Err(e) => error_page(lang, &uri, Some(&user), &as_app(e)),
    }
}

/// `GET /retention/server-key.pem`: the server's public key for `openssl`.
pub async fn server_key(
    State(state): State<AppState>,
    RetentionPage { user, lang, uri }: RetentionPage,
) -> Response {
    match service::server_key_pem(&state) {
        Some(pem) => download(pem.into_bytes(), "application/x-pem-file", "server.pem"),
        None => error_page(lang, &uri, Some(&user), &AppError::NotFound),
    }
}

/// The lines a manager's visit or case page shows about retention: evidence destroyed
/// (when, which certificate) and holds in force. An error reading them leaves them out
/// (the page still shows the rest) and is logged.
pub(super) async fn evidence_notes(
    state: &AppState,
    lang: Lang,
    bank: BankId,
    case: CaseId,
    visit: Option<VisitId>,
) -> Vec<String> {
    let status = match evidence_status(state, case, visit).await {
        Ok(s) => s,
        Err(e) => {
            tracing::error!(error = %e, "retention status unreadable");
            return Vec::new();
        }
    };
    let zone = super::frame::bank_zone(state, bank)
        .await
        .unwrap_or(chrono_tz::Asia::Shanghai);
    let mut notes: Vec<String> = status
        .destroyed
        .iter()
        .map(|(visit_id, at, cert)| {
            let id = if visit.is_some() {
                "retention-note-destroyed"
            } else {
                "retention-note-visit-destroyed"
            };
            lang.t_args(
                id,
                &[
                    ("visit", visit_id.clone().into()),
                    ("at", local_time(*at, zone).into()),
                    ("certificate", cert.clone().into()),
                ],
            )
        })
        .collect();
    notes.extend(status.holds.iter().map(|reference| {
        lang.t_args(
            "retention-note-hold",
            &[("reference", visible(reference).into_owned().into())],
        )
    }));
    notes
}
