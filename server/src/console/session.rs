//! Who is looking at a console page, in which language, and whether a form came from one
//! of our pages ([`Posted`]: every form a signed-in user posts).

use std::future::Future;
use std::marker::PhantomData;
use std::net::IpAddr;

use axum::Form;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Uri, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::de::DeserializeOwned;
use tandem_core::crypto::{sha256, to_hex};

use super::frame::{csrf_refused, error_page, to_sign_in};
use super::i18n::{LANG_COOKIE, Lang};
use crate::AppState;
pub(crate) use crate::auth::cookie;
use crate::auth::sessions::{secure_cookie, session_cookie_header};
use crate::auth::{SessionLookup, UserAuth, lookup_session};
use crate::db::Role;
use crate::throttle::ClientAddr;

/// The double-submit cookie of the sign-in form (before there is a session to bind to).
pub const CSRF_COOKIE: &str = "tandem_csrf";
/// The hidden field every console form carries its CSRF token in.
pub const CSRF_FIELD: &str = "csrf";

/// The page's language, from the browser's cookie or `Accept-Language`.
#[derive(Debug, Clone, Copy)]
pub struct PageLang(pub Lang);

impl<S: Send + Sync> FromRequestParts<S> for PageLang {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let accept = parts
            .headers
            .get(header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok());
        Ok(Self(Lang::negotiate(
            cookie(&parts.headers, LANG_COOKIE),
            accept,
        )))
    }
}

/// A signed-in console user, or `None`: pages send the signed-out to the sign-in form
/// instead of answering 401.
///
/// It also enforces A01 for every page that takes it, so a page added later needs no code
/// of its own: a user whose password expired is sent (303) to `/password`, and a browser
/// whose session a sign-in elsewhere ended is sent to the sign-in form saying so (its stale
/// cookie cleared). Only the password page and sign-out take [`SessionViewer`] instead
/// (their forms: [`Posters::EXPIRED_PASSWORD`]).
pub struct Viewer(pub Option<UserAuth>);

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let SessionViewer(viewer) = SessionViewer::from_request_parts(parts, state).await?;
        match viewer {
            Some(user) if user.password_expired(state) => {
                Err(Redirect::to(PASSWORD_PATH).into_response())
            }
            other => Ok(Self(other)),
        }
    }
}

/// Where a user whose password expired is sent.
pub(crate) const PASSWORD_PATH: &str = "/password";

/// A signed-in console user whatever the age of their password, or `None`: for the
/// password page and sign-out only (every other page takes [`Viewer`]).
pub struct SessionViewer(pub Option<UserAuth>);

impl FromRequestParts<AppState> for SessionViewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        match lookup_session(parts, state).await {
            Ok(SessionLookup::Live(user)) => Ok(Self(Some(user))),
            Ok(SessionLookup::None) => Ok(Self(None)),
            Ok(SessionLookup::Replaced) => {
                let secure = secure_cookie(&state.config, &parts.headers, &parts.uri);
                let mut response = Redirect::to("/login?why=elsewhere").into_response();
                let clear = session_cookie_header("", 0, secure);
                if let Ok(value) = HeaderValue::from_str(&clear) {
                    response.headers_mut().append(header::SET_COOKIE, value);
                }
                Err(response)
            }
            Err(e) => Err(e.into_response()),
        }
    }
}

/// The CSRF token of a signed-in user's forms: a digest of the session under its own
/// purpose. Only a page of this session can know it; it changes with every sign-in.
pub(crate) fn session_csrf(user: &UserAuth) -> String {
    let input = format!("tandem/console-csrf/v1\n{}", user.session_digest());
    to_hex(&sha256(input.as_bytes()).0)
}

/// Whether `sent` (a form's field) is `expected`. Their digests are compared, so the time
/// the comparison takes says nothing about how much of a guess was right.
pub(crate) fn csrf_matches(sent: &str, expected: &str) -> bool {
    !expected.is_empty() && sha256(sent.as_bytes()) == sha256(expected.as_bytes())
}

/// A form a signed-in console user posted from one of our pages, checked in this order:
/// the session (the signed-out are sent where `A` says, the sign-in form by default), the
/// form's CSRF token (a missing, unreadable or wrong one gets the "refused" page in the
/// page's language, before anything else is looked at), then the roles `A` allows (others
/// get the "forbidden" page).
pub struct Posted<F, A = SignedIn> {
    /// Who posted it.
    pub user: UserAuth,
    /// The form.
    pub form: F,
    /// The page's language.
    pub lang: Lang,
    /// The client's address (for the audit log).
    pub client: Option<IpAddr>,
    /// The request's headers.
    pub headers: HeaderMap,
    /// The request's address.
    pub uri: Uri,
    posters: PhantomData<A>,
}

/// Who may post a form (see [`Posted`]).
pub trait Posters {
    /// The roles allowed, checked after the form's token; empty: any signed-in user.
    const ROLES: &'static [Role] = &[];
    /// A user whose password expired may post it too (the password form and sign-out:
    /// every other form sends them to the password form, as [`Viewer`] does).
    const EXPIRED_PASSWORD: bool = false;

    /// The answer to a browser that is not signed in.
    fn signed_out(headers: &HeaderMap) -> Response {
        to_sign_in(headers)
    }
}

/// Any signed-in user whose password is current (what the service called allows is its
/// own check).
pub struct SignedIn;

impl Posters for SignedIn {}

/// A form of the console: the CSRF token it carries and how it is read from the body.
///
/// A form that serde reads (`axum::Form`) needs only [`HasCsrf`]; one read field by field
/// (repeated fields, an upload) implements this itself.
pub trait ConsoleForm: Sized + Send {
    /// The token the form carried (empty when none).
    fn csrf(&self) -> &str;

    /// The form from the request's body: `Ok(None)` when the body is not such a form
    /// (refused like a wrong token), `Err` with the answer when the body could not be read.
    fn read(
        req: Request,
        state: &AppState,
    ) -> impl Future<Output = Result<Option<Self>, Response>> + Send;
}

/// A form serde reads, with its CSRF token in a field.
pub trait HasCsrf {
    /// The token the form carried.
    fn csrf(&self) -> &str;
}

impl<T: DeserializeOwned + HasCsrf + Send> ConsoleForm for T {
    fn csrf(&self) -> &str {
        HasCsrf::csrf(self)
    }

    async fn read(req: Request, state: &AppState) -> Result<Option<Self>, Response> {
        Ok(Form::<T>::from_request(req, state)
            .await
            .ok()
            .map(|Form(form)| form))
    }
}

/// The body of a form read field by field; the answer when it could not be read.
pub(crate) async fn form_body(req: Request, state: &AppState) -> Result<Bytes, Response> {
    Bytes::from_request(req, state)
        .await
        .map_err(IntoResponse::into_response)
}

impl<F: ConsoleForm, A: Posters> FromRequest<AppState> for Posted<F, A> {
    type Rejection = Response;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Response> {
        let (mut parts, body) = req.into_parts();
        let Ok(PageLang(lang)) = PageLang::from_request_parts(&mut parts, state).await;
        let Ok(ClientAddr(client)) = ClientAddr::from_request_parts(&mut parts, state).await;
        let viewer = if A::EXPIRED_PASSWORD {
            SessionViewer::from_request_parts(&mut parts, state)
                .await?
                .0
        } else {
            Viewer::from_request_parts(&mut parts, state).await?.0
        };
        let (headers, uri) = (parts.headers.clone(), parts.uri.clone());
        let form = F::read(Request::from_parts(parts, body), state).await?;
        let Some(user) = viewer else {
            return Err(A::signed_out(&headers));
        };
        let Some(form) = form.filter(|f| csrf_matches(f.csrf(), &session_csrf(&user))) else {
            return Err(csrf_refused(lang, &uri));
        };
        if !A::ROLES.is_empty()
            && let Err(e) = user.require(A::ROLES)
        {
            return Err(error_page(lang, &uri, Some(&user), &e));
        }
        Ok(Self {
            user,
            form,
            lang,
            client,
            headers,
            uri,
            posters: PhantomData,
        })
    }
}
