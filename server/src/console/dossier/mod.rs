//! Legal staff's evidence (A03): the search over visits with committed evidence, and a
//! visit's evidence page — timeline, photos, audio, positions, receipts and every check,
//! with the bundle verified again on demand — behind a purpose stated once per session and
//! visit. Every search and every read (page, thumbnail, original, audio) goes to the audit
//! log with that purpose and the client's address.
//!
//! Threats (THREATS.md): a user of another bank, or a role without need (D03: only legal
//! staff and admins of the visit's bank; another bank's visit, a random id and a manager
//! asking for a blob all get the same "not found"); a malicious insider who would read
//! evidence unseen (A03: purpose first, every read audited) or rewrite it after the fact
//! (the stored blobs verified again, the log's inclusion and consistency proofs checked
//! against the newest checkpoint); a web attacker (CSRF tokens, every value escaped, blobs
//! served `nosniff` with their manifest's media type).

mod blob;
pub(crate) mod model;
pub(crate) mod plot;
pub(crate) mod report;
mod search;

use askama::Template;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use tandem_core::bundle::BlobRole;
use tandem_core::crypto::Digest;

use super::frame::{Page, error_page, render, to_sign_in};
use super::i18n::Lang;
use super::session::{HasCsrf, PageLang, Posted, Viewer};
use crate::AppState;
use crate::audit::{AuditAction, AuditEntry};
use crate::auth::UserAuth;
use crate::db::Role;
use crate::db::dossier::EvidenceHit;
use crate::error::AppError;
use crate::evidence::PURPOSE_CHARS;
use crate::throttle::ClientAddr;
pub(crate) use model::{CheckRow, Dossier, load};
pub(crate) use plot::positions_svg;

/// Who reads evidence here: legal staff, and admins supporting them (A03).
const READERS: &[Role] = &[Role::Legal, Role::Admin];
/// Who takes evidence out: the same, never a manager reviewing a complaint (P01).
const EXPORTERS: &[Role] = READERS;
/// The subject kind of the audit entries about a visit's evidence.
const SUBJECT_VISIT: &str = "visit";
/// The subject kind of the audit entries about one blob.
const SUBJECT_BLOB: &str = "blob";
/// The purposes offered (each with its message `dossier-purpose-<kind>`).
const PURPOSE_KINDS: [&str; 4] = ["litigation", "complaint", "audit", "other"];

/// The routes of legal staff's evidence pages.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
        .route("/evidence", get(search::search))
        .route("/evidence/visits/{id}", get(visit_page))
        .route("/evidence/visits/{id}/purpose", post(state_purpose))
        .route("/evidence/visits/{id}/verify", post(verify_again))
        .route("/evidence/visits/{id}/export", post(export))
        .route("/evidence/visits/{id}/blobs/{digest}", get(blob_route))
}

/// The visit, when the user may read its evidence: legal or admin of its bank. Anything
/// else — a random id, another bank's visit, a visit without committed evidence — is the
/// same "not found".
pub(crate) async fn find(
    state: &AppState,
    user: &UserAuth,
    id: &str,
) -> Result<EvidenceHit, AppError> {
    let id: uuid::Uuid = id.parse().map_err(|_| AppError::NotFound)?;
    let hit = state
        .db
        .evidence_visit(id)
        .await?
        .ok_or(AppError::NotFound)?;
    user.check_bank(hit.bank_id)?;
    Ok(hit)
}

/// What a user who may not read a visit's evidence gets.
#[derive(Clone, Copy)]
enum Refusal {
    /// A page: the forbidden page a role without need gets.
    Page,
    /// A blob: "not found", so nothing is learnt of it.
    Blob,
}

/// The visit, when `user` may read its evidence now: legal staff or an admin of its bank,
/// or — for the 24 hours after a complaint about it (P01) — a manager of its bank, for
/// quality review.
async fn readable(
    state: &AppState,
    user: &UserAuth,
    id: &str,
    refusal: Refusal,
) -> Result<EvidenceHit, AppError> {
    let refused = |e: AppError| match refusal {
        Refusal::Page => e,
        Refusal::Blob => AppError::NotFound,
    };
    let Err(denied) = user.require(READERS) else {
        return find(state, user, id).await;
    };
    if user.user.role != Role::Manager {
        return Err(refused(denied));
    }
    let hit = find(state, user, id).await?;
    if state
        .db
        .complaint_review_open(hit.visit_id, state.now_ms())
        .await?
    {
        Ok(hit)
    } else {
        Err(refused(denied))
    }
}

/// The visit's evidence page.
fn visit_path(hit: &EvidenceHit) -> String {
    format!("/evidence/visits/{}", hit.visit_id)
}

/// The address of the visit's evidence page, for a page rendered in answer to one of its
/// forms (its language switch leads back there); `fallback` if it will not parse.
fn visit_uri(hit: &EvidenceHit, fallback: &Uri) -> Uri {
    visit_path(hit).parse().unwrap_or_else(|_| fallback.clone())
}

/// Writes an audit entry about the visit's evidence, with the purpose and the client.
async fn audit(
    (state, user, client): (&AppState, &UserAuth, Option<std::net::IpAddr>),
    action: AuditAction,
    subject: (&str, String),
    hit: &EvidenceHit,
    purpose: &str,
    detail: serde_json::Value,
) -> Result<(), AppError> {
    let entry = AuditEntry::new(state.now_ms(), action, subject.0, Some(subject.1))
        .by(user.user.user_id)
        .bank(hit.bank_id)
        .from_addr(client)
        .purpose(purpose)
        .detail(detail);
    state.db.append_audit(&entry).await?;
    Ok(())
}

/// A purpose's kind offered in the form.
pub struct PurposeKind {
    value: &'static str,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "console/dossier_purpose.html")]
struct PurposePage {
    page: Page,
    action: String,
    case_ref: String,
    kinds: Vec<PurposeKind>,
    text: String,
    error: Option<String>,
}

fn purpose_page(
    lang: Lang,
    uri: &Uri,
    user: &UserAuth,
    hit: &EvidenceHit,
    form: Option<&PurposeForm>,
    error: Option<String>,
) -> PurposePage {
    let chosen = form.map_or("litigation", |f| f.kind.as_str());
    PurposePage {
        page: Page::new(lang, "dossier-purpose-title", uri).signed_in(user, "evidence"),
        action: format!("/evidence/visits/{}/purpose", hit.visit_id),
        case_ref: hit
            .case_ref
            .as_deref()
            .map(|r| tandem_core::text::visible(r).into_owned())
            .unwrap_or_default(),
        kinds: purpose_kinds(lang, chosen),
        text: form.map(|f| f.text.clone()).unwrap_or_default(),
        error,
    }
}

/// The purposes offered, `chosen` selected.
fn purpose_kinds(lang: Lang, chosen: &str) -> Vec<PurposeKind> {
    PURPOSE_KINDS
        .iter()
        .map(|k| PurposeKind {
            value: k,
            label: lang.t(&format!("dossier-purpose-{k}")),
            selected: *k == chosen,
        })
        .collect()
}

/// A stated purpose's problem, if it has one: a kind not offered, or a text not of 5–500
/// characters. Returns the message id.
fn purpose_problem(form: &PurposeForm) -> Option<&'static str> {
    if !PURPOSE_KINDS.contains(&form.kind.as_str()) {
        Some("dossier-purpose-kind-missing")
    } else if !PURPOSE_CHARS.contains(&form.text.trim().chars().count()) {
        Some("dossier-purpose-length")
    } else {
        None
    }
}

#[derive(Template)]
#[template(path = "console/dossier_visit.html")]
struct VisitPage {
    page: Page,
    d: Dossier,
    /// The purpose as stored and audited: `<kind>: <text>`.
    purpose: String,
    /// The purpose as the page shows it, its kind in the page's language.
    purpose_shown: String,
    plot_svg: String,
    verify_action: String,
    reverify: Option<Reverify>,
    /// The export form, for legal staff and admins.
    export: Option<ExportForm>,
}

/// The export form on the visit page: the purpose, the session's as a start.
pub struct ExportForm {
    action: String,
    kinds: Vec<PurposeKind>,
    text: String,
    error: Option<String>,
}

/// The outcome of verifying the bundle again.
pub struct Reverify {
    valid: bool,
    checks: Vec<CheckRow>,
}

/// Who is asking: the signed-in user (or where to send a browser that is not), and the
/// client's address for the audit log.
pub(crate) struct Asker {
    user: Result<UserAuth, Response>,
    client: Option<std::net::IpAddr>,
}

impl axum::extract::FromRequestParts<AppState> for Asker {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Response> {
        let Viewer(viewer) = Viewer::from_request_parts(parts, state).await?;
        let Ok(ClientAddr(client)) = ClientAddr::from_request_parts(parts, state).await;
        Ok(Self {
            user: viewer.ok_or_else(|| to_sign_in(&parts.headers)),
            client,
        })
    }
}

/// `GET /evidence/visits/{id}`: the purpose form first, then the visit's evidence.
async fn visit_page(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    asker: Asker,
    Path(id): Path<String>,
    uri: Uri,
) -> Response {
    let Asker { user, client } = asker;
    let user = match user {
        Ok(u) => u,
        Err(r) => return r,
    };
    let outcome = async {
        let hit = readable(&state, &user, &id, Refusal::Page).await?;
        let purpose = state
            .db
            .stated_purpose(user.session_digest(), hit.visit_id, state.now_ms())
            .await?;
        let Some(purpose) = purpose else {
            return Ok(render(
                StatusCode::OK,
                &purpose_page(lang, &uri, &user, &hit, None, None),
            ));
        };
        let page = visit_view(&state, &user, lang, &uri, &hit, purpose, None).await?;
        audit(
            (&state, &user, client),
            AuditAction::EvidenceViewed,
            (SUBJECT_VISIT, hit.visit_id.to_string()),
            &hit,
            &page.purpose,
            serde_json::json!({"bundle": page.d.bundle_id}),
        )
        .await?;
        Ok::<_, AppError>(render(StatusCode::OK, &page))
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(lang, &uri, Some(&user), &e))
}

async fn visit_view(
    state: &AppState,
    user: &UserAuth,
    lang: Lang,
    uri: &Uri,
    hit: &EvidenceHit,
    purpose: String,
    reverify: Option<Reverify>,
) -> Result<VisitPage, AppError> {
    let d = load(state, hit, lang).await?;
    let export = user.require(EXPORTERS).is_ok().then(|| {
        let (kind, text) = purpose.split_once(": ").unwrap_or(("other", &purpose));
        ExportForm {
            action: format!("/evidence/visits/{}/export", hit.visit_id),
            kinds: purpose_kinds(lang, kind),
            text: text.to_owned(),
            error: None,
        }
    });
    Ok(VisitPage {
        page: Page::new(lang, "dossier-visit-title", uri).signed_in(user, "evidence"),
        plot_svg: positions_svg(&d.plot, lang),
        verify_action: format!("/evidence/visits/{}/verify", hit.visit_id),
        d,
        purpose_shown: purpose_shown(lang, &purpose),
        purpose,
        reverify,
        export,
    })
}

/// A stated purpose (`<kind>: <text>`) as a reader reads it: the kind in `lang`.
pub(crate) fn purpose_shown(lang: Lang, purpose: &str) -> String {
    match purpose.split_once(": ") {
        Some((kind, text)) if PURPOSE_KINDS.contains(&kind) => lang.t_args(
            "dossier-purpose-shown",
            &[
                ("kind", lang.t(&format!("dossier-purpose-{kind}")).into()),
                ("text", text.to_owned().into()),
            ],
        ),
        _ => purpose.to_owned(),
    }
}

/// The purpose form.
#[derive(Debug, Deserialize)]
pub struct PurposeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    text: String,
}

/// `POST /evidence/visits/{id}/purpose`: states why the evidence is read (A03); refused
/// without a kind offered and a text of 5–500 characters.
async fn state_purpose(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted {
        user,
        form,
        lang,
        client,
        uri,
        ..
    }: Posted<PurposeForm>,
) -> Response {
    let outcome = async {
        let hit = readable(&state, &user, &id, Refusal::Page).await?;
        let text = form.text.trim();
        if let Some(id) = purpose_problem(&form) {
            return Ok(render(
                StatusCode::UNPROCESSABLE_ENTITY,
                &purpose_page(lang, &uri, &user, &hit, Some(&form), Some(lang.t(id))),
            ));
        }
        let purpose = format!("{}: {text}", form.kind);
        state
            .db
            .state_purpose(
                user.session_digest(),
                hit.visit_id,
                &purpose,
                state.now_ms(),
            )
            .await?;
        audit(
            (&state, &user, client),
            AuditAction::EvidenceAccessOpened,
            (SUBJECT_VISIT, hit.visit_id.to_string()),
            &hit,
            &purpose,
            serde_json::json!({"kind": form.kind}),
        )
        .await?;
        Ok::<_, AppError>(Redirect::to(&visit_path(&hit)).into_response())
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(lang, &uri, Some(&user), &e))
}

impl HasCsrf for PurposeForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// A form with only its token.
#[derive(Debug, Deserialize)]
pub struct TokenForm {
    #[serde(default)]
    csrf: String,
}

impl HasCsrf for TokenForm {
    fn csrf(&self) -> &str {
        &self.csrf
    }
}

/// `POST /evidence/visits/{id}/verify`: core's verification run again on the stored
/// manifest, signatures and blobs, shown check by check and audited with its outcome.
async fn verify_again(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted {
        user,
        lang,
        client,
        uri,
        ..
    }: Posted<TokenForm>,
) -> Response {
    let outcome = async {
        let hit = readable(&state, &user, &id, Refusal::Page).await?;
        let Some(purpose) = state
            .db
            .stated_purpose(user.session_digest(), hit.visit_id, state.now_ms())
            .await?
        else {
            return Ok(Redirect::to(&visit_path(&hit)).into_response());
        };
        let (bundle, manifest) = model::committed_bundle(&state, &hit).await?;
        let report =
            crate::ingest::verify_stored(&state, &bundle, manifest, crate::ingest::Reading::Rehash)
                .await?;
        let failed = report.failed();
        let json = serde_json::to_value(&report).map_err(model::bad)?;
        let checks = model::check_rows(lang, &json);
        audit(
            (&state, &user, client),
            AuditAction::EvidenceVerified,
            (SUBJECT_VISIT, hit.visit_id.to_string()),
            &hit,
            &purpose,
            serde_json::json!({"bundle": bundle.id.to_string(), "valid": failed.is_empty(),
                "failed": failed}),
        )
        .await?;
        let reverify = Reverify {
            valid: failed.is_empty(),
            checks,
        };
        let page_uri = visit_uri(&hit, &uri);
        let page = visit_view(
            &state,
            &user,
            lang,
            &page_uri,
            &hit,
            purpose,
            Some(reverify),
        )
        .await?;
        Ok::<_, AppError>(render(StatusCode::OK, &page))
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(lang, &uri, Some(&user), &e))
}

/// `POST /evidence/visits/{id}/export`: the visit's bundle as a ZIP with `report.html` in
/// the page's language and the server's signed note naming the user, the purpose given
/// here and the time; audited. Legal staff and admins of the visit's bank only, after the
/// session stated a purpose for the visit: anyone else gets "not found", a manager
/// reviewing a complaint included (P01 opens the evidence to review, not to export).
async fn export(
    State(state): State<AppState>,
    Path(id): Path<String>,
    Posted {
        user,
        form,
        lang,
        client,
        uri,
        ..
    }: Posted<PurposeForm>,
) -> Response {
    let outcome = async {
        if user.require(EXPORTERS).is_err() {
            return Err(AppError::NotFound);
        }
        let hit = find(&state, &user, &id).await?;
        let Some(stated) = state
            .db
            .stated_purpose(user.session_digest(), hit.visit_id, state.now_ms())
            .await?
        else {
            return Ok(Redirect::to(&visit_path(&hit)).into_response());
        };
        if let Some(problem) = purpose_problem(&form) {
            let page_uri = visit_uri(&hit, &uri);
            let mut page = visit_view(&state, &user, lang, &page_uri, &hit, stated, None).await?;
            if let Some(export) = page.export.as_mut() {
                export.kinds = purpose_kinds(lang, &form.kind);
                export.text = form.text.clone();
                export.error = Some(format!(
                    "{} {}",
                    lang.t("dossier-export-error"),
                    lang.t(problem)
                ));
            }
            return Ok(render(StatusCode::UNPROCESSABLE_ENTITY, &page));
        }
        let purpose = format!("{}: {}", form.kind, form.text.trim());
        let (bundle, _) = model::committed_bundle(&state, &hit).await?;
        let attachment = report::attachment(&state, &hit, &user, &purpose, lang).await?;
        crate::evidence::audit_export(&state, &user, client, &hit, &purpose, &attachment).await?;
        crate::evidence::stream_export(&state, bundle, Some(attachment)).await
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(lang, &uri, Some(&user), &e))
}

/// `GET /evidence/visits/{id}/blobs/{digest}`: one blob of the visit's committed bundle,
/// only after a purpose was stated for the visit in this session. A manager, another
/// bank's visit, a digest the manifest does not list, or no purpose yet: "not found".
async fn blob_route(
    State(state): State<AppState>,
    PageLang(lang): PageLang,
    asker: Asker,
    Path((id, digest)): Path<(String, String)>,
    headers: HeaderMap,
    uri: Uri,
) -> Response {
    let Asker { user, client } = asker;
    let user = match user {
        Ok(u) => u,
        Err(r) => return r,
    };
    let outcome = async {
        // Not even "forbidden": a role without need learns nothing of the blob.
        let hit = readable(&state, &user, &id, Refusal::Blob).await?;
        let purpose = state
            .db
            .stated_purpose(user.session_digest(), hit.visit_id, state.now_ms())
            .await?
            .ok_or(AppError::NotFound)?;
        let digest: Digest = digest.parse().map_err(|_| AppError::NotFound)?;
        let (_, manifest) = model::committed_bundle(&state, &hit).await?;
        let entry = manifest.blob(&digest).ok_or(AppError::NotFound)?.clone();
        let action = match entry.role {
            BlobRole::Derived => AuditAction::ThumbnailViewed,
            BlobRole::Audio => AuditAction::AudioPlayed,
            _ => AuditAction::OriginalViewed,
        };
        let size = match state.blobs.stat(&digest).await {
            Ok(Some(size)) => size,
            Ok(None) => {
                tracing::error!("a committed bundle's blob is not stored");
                return Err(AppError::NotFound);
            }
            Err(e) => {
                tracing::error!(error = %e, "a committed bundle's blob is not readable");
                return Err(AppError::NotFound);
            }
        };
        let range = headers
            .get(header::RANGE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        audit(
            (&state, &user, client),
            action,
            (SUBJECT_BLOB, digest.to_hex()),
            &hit,
            &purpose,
            serde_json::json!({"visit": hit.visit_id.to_string(), "range": range}),
        )
        .await?;
        Ok::<_, AppError>(
            blob::serve(
                &state.blobs,
                &digest,
                size,
                &entry.media_type,
                range.as_deref(),
            )
            .await,
        )
    }
    .await;
    outcome.unwrap_or_else(|e| error_page(lang, &uri, Some(&user), &e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stylesheet_closes_every_block() {
        // An unclosed block in console.css once swallowed every rule after it, this file's
        // among them (CSS nesting made them apply only on narrow screens).
        let mut depth = 0i32;
        let mut rest = super::super::CSS;
        while let Some(start) = rest.find("/*") {
            let (code, comment) = rest.split_at(start);
            depth += code.matches('{').count() as i32 - code.matches('}').count() as i32;
            assert!(depth >= 0);
            rest = comment.split_once("*/").map_or("", |(_, after)| after);
        }
        depth += rest.matches('{').count() as i32 - rest.matches('}').count() as i32;
        assert_eq!(depth, 0, "every {{ of the stylesheet closed");
    }

    #[test]
    fn a_purpose_is_shown_with_its_kind_in_the_language() {
        assert_eq!(
            purpose_shown(Lang::En, "litigation: Suit 1234"),
            "Litigation: Suit 1234"
        );
        assert_eq!(
            purpose_shown(Lang::ZhCn, "audit: 年度审计"),
            "内部审计：年度审计"
        );
        assert_eq!(purpose_shown(Lang::En, "odd: text"), "odd: text");
    }
}
