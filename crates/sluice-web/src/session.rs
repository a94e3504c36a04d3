//! Signing in and out, the session every page needs, CSRF checks of form
//! posts, and the security headers of every UI response.
//!
//! With auth on, a page without a valid session redirects to `/login`.
//! With auth off, a browser gets an anonymous session on its first page, so
//! that its state-changing requests still carry a CSRF token bound to it.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use sluice_engine::sessions::{COOKIE_NAME, CSRF_FIELD, NewSession, SessionSubject};
use sluice_engine::tokens::Role;

use crate::WebState;
use crate::pages::{PageError, render};

/// Who is looking at a page, and the CSRF token of their session.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub name: String,
    pub role: Role,
    pub csrf: String,
    cookie: String,
}

impl Viewer {
    /// Whether action buttons (trigger, cancel, retry, reorder) are shown.
    pub fn can_operate(&self) -> bool {
        self.role.allows(Role::Operator)
    }
}

/// The session cookie of a request.
fn request_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(sluice_engine::sessions::cookie_in_header)
        .map(str::to_owned)
}

fn secure(headers: &HeaderMap) -> bool {
    headers
        .get("x-forwarded-proto")
        .is_some_and(|proto| proto.as_bytes().eq_ignore_ascii_case(b"https"))
}

/// `Set-Cookie` for a session: HttpOnly, SameSite=Strict, and Secure behind
/// a TLS-terminating proxy.
fn set_cookie(session: &NewSession, secure: bool, now: jiff::Timestamp) -> HeaderValue {
    let max_age = session.expires_at.as_second() - now.as_second();
    let value = format!(
        "{COOKIE_NAME}={}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{}",
        session.cookie,
        max_age.max(0),
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&value).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn clear_cookie() -> HeaderValue {
    HeaderValue::from_static("sluice_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict")
}

/// Every page's guard: finds (or, without auth, makes) the session and
/// hands the page its [`Viewer`].
pub async fn require(State(state): State<WebState>, mut request: Request, next: Next) -> Response {
    let cookie = request_cookie(request.headers());
    let subject = match &cookie {
        Some(cookie) => match state.engine.session(cookie).await {
            Ok(subject) => subject,
            Err(error) => return PageError::from(error).into_response(),
        },
        None => None,
    };
    let mut minted = None;
    let (name, role) = match subject {
        Some(SessionSubject::Token(owner)) if owner.role.allows(Role::Viewer) => {
            (owner.name, owner.role)
        }
        Some(SessionSubject::Anonymous) if !state.auth => {
            let subject = SessionSubject::Anonymous;
            (subject.name().to_owned(), subject.role())
        }
        _ if !state.auth => match state.engine.anonymous_session().await {
            Ok(session) => {
                minted = Some(session);
                let subject = SessionSubject::Anonymous;
                (subject.name().to_owned(), subject.role())
            }
            Err(error) => return PageError::from(error).into_response(),
        },
        _ => {
            return if matches!(*request.method(), Method::GET | Method::HEAD) {
                Redirect::to("/login").into_response()
            } else {
                PageError::Unauthorized.into_response()
            };
        }
    };
    let Some(cookie) = minted
        .as_ref()
        .map(|session| session.cookie.clone())
        .or(cookie)
    else {
        return PageError::Unauthorized.into_response();
    };
    let csrf = match state.engine.csrf_token(&cookie).await {
        Ok(csrf) => csrf,
        Err(error) => return PageError::from(error).into_response(),
    };
    let secure = secure(request.headers());
    request.extensions_mut().insert(Viewer {
        name,
        role,
        csrf,
        cookie,
    });
    let mut response = next.run(request).await;
    if let Some(session) = minted {
        let now = state.engine.clock().now();
        response
            .headers_mut()
            .append(header::SET_COOKIE, set_cookie(&session, secure, now));
    }
    response
}

/// The fields of a url-encoded form body.
pub fn form_fields(body: &[u8]) -> Result<Vec<(String, String)>, PageError> {
    serde_urlencoded::from_bytes(body)
        .map_err(|error| PageError::BadRequest(format!("the form could not be read: {error}")))
}

/// The value of a form field.
pub fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.as_str())
}

/// Refuses a form post without the session's CSRF token.
pub async fn check_csrf(
    state: &WebState,
    cookie: &str,
    fields: &[(String, String)],
) -> Result<(), PageError> {
    let presented = field(fields, CSRF_FIELD).unwrap_or_default();
    if state.engine.check_csrf(cookie, presented).await? {
        Ok(())
    } else {
        Err(PageError::Csrf)
    }
}

impl Viewer {
    /// Refuses a form post of this viewer without their CSRF token.
    pub async fn check_form(
        &self,
        state: &WebState,
        fields: &[(String, String)],
    ) -> Result<(), PageError> {
        check_csrf(state, &self.cookie, fields).await
    }
}

#[derive(Template)]
#[template(path = "login.html")]
struct LoginPage {
    csrf: String,
    error: Option<String>,
}

/// The sign-in form. It gets a session of its own (anonymous) so that the
/// form post carries a CSRF token too.
pub async fn login_page(
    State(state): State<WebState>,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    if !state.auth {
        return Ok(Redirect::to("/").into_response());
    }
    let cookie = request_cookie(&headers);
    if let Some(cookie) = &cookie
        && let Some(SessionSubject::Token(_)) = state.engine.session(cookie).await?
    {
        return Ok(Redirect::to("/").into_response());
    }
    login_form(&state, &headers, cookie, None, StatusCode::OK).await
}

async fn login_form(
    state: &WebState,
    headers: &HeaderMap,
    cookie: Option<String>,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let valid = match &cookie {
        Some(cookie) => state.engine.session(cookie).await?.is_some(),
        None => false,
    };
    let (cookie, minted) = match cookie {
        Some(cookie) if valid => (cookie, None),
        _ => {
            let session = state.engine.anonymous_session().await?;
            (session.cookie.clone(), Some(session))
        }
    };
    let csrf = state.engine.csrf_token(&cookie).await?;
    let mut response = render(&LoginPage { csrf, error })?;
    *response.status_mut() = status;
    if let Some(session) = minted {
        let now = state.engine.clock().now();
        response.headers_mut().append(
            header::SET_COOKIE,
            set_cookie(&session, secure(headers), now),
        );
    }
    Ok(response)
}

/// Signs in with an API token: sets the session cookie and goes home.
pub async fn login(
    State(state): State<WebState>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, PageError> {
    let fields = form_fields(&body)?;
    let Some(cookie) = request_cookie(&headers) else {
        return Err(PageError::Csrf);
    };
    check_csrf(&state, &cookie, &fields).await?;
    let token = field(&fields, "token").unwrap_or_default().trim();
    if token.is_empty() {
        let error = "Enter an API token (an admin makes one with `sluice token create`).";
        return login_form(
            &state,
            &headers,
            Some(cookie),
            Some(error.to_owned()),
            StatusCode::BAD_REQUEST,
        )
        .await;
    }
    match state.engine.sign_in(token).await? {
        Some((owner, session)) if owner.role.allows(Role::Viewer) => {
            let now = state.engine.clock().now();
            let mut response = Redirect::to("/").into_response();
            response.headers_mut().append(
                header::SET_COOKIE,
                set_cookie(&session, secure(&headers), now),
            );
            Ok(response)
        }
        Some((owner, _)) => {
            let error = format!(
                "The token `{}` has the role `{}`, which cannot use the web UI; sign in with a viewer, operator or admin token.",
                owner.name, owner.role
            );
            login_form(
                &state,
                &headers,
                Some(cookie),
                Some(error),
                StatusCode::FORBIDDEN,
            )
            .await
        }
        None => {
            let error =
                "That token is unknown or revoked; check it, or ask an admin for a new one.";
            login_form(
                &state,
                &headers,
                Some(cookie),
                Some(error.to_owned()),
                StatusCode::UNAUTHORIZED,
            )
            .await
        }
    }
}

/// Signs out: the session cookie is cleared.
pub async fn logout(
    State(state): State<WebState>,
    axum::Extension(viewer): axum::Extension<Viewer>,
    body: Bytes,
) -> Result<Response, PageError> {
    let fields = form_fields(&body)?;
    viewer.check_form(&state, &fields).await?;
    let target = if state.auth { "/login" } else { "/" };
    let mut response = Redirect::to(target).into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, clear_cookie());
    Ok(response)
}

/// A strict Content-Security-Policy (the pages load only their own script
/// and style sheet, and have no inline script or style) and friends.
pub async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'; form-action 'self'"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}
