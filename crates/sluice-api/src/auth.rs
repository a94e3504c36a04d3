//! Who may call what. With auth on, every route but `/healthz` and
//! `/readyz` needs `Authorization: Bearer TOKEN`, and the caller's role must
//! reach the route's entry in [`POLICY`], the one table of access rules.
//! A request without a bearer token may instead carry the web UI's session
//! cookie (`sluice_session`, see `sluice_engine::sessions`); then every
//! state-changing request must also carry the session's CSRF token in
//! `X-CSRF-Token`, or it is refused (403), with auth on or off. Bearer
//! tokens need no CSRF token: a browser never sends one by itself.
//! Every state-changing request (allowed or not) is written to the audit
//! log: who (the token's name), what (method and route), when, from where
//! (the remote address), and how it ended.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, MatchedPath, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sluice_engine::requests::RequestAudit;
use sluice_engine::sessions::{CSRF_HEADER, SessionSubject, cookie_in_header};
use sluice_engine::tokens::Role;

use crate::AppState;
use crate::error::{ApiError, Code};
use crate::request::RequestId;

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// No token needed, even with auth on (probes).
    Public,
    /// A token with at least this role.
    Role(Role),
}

const VIEWER: Access = Access::Role(Role::Viewer);
const OPERATOR: Access = Access::Role(Role::Operator);
const ADMIN: Access = Access::Role(Role::Admin);
const AGENT: Access = Access::Role(Role::Agent);

/// The access rule of every route: method, route path, what it needs.
/// Viewers read; operators also trigger, cancel, retry and batch; admins
/// may do everything, and alone manage tokens and read the audit log.
/// Agents speak the agent protocol and nothing else.
pub const POLICY: &[(Method, &str, Access)] = &[
    (Method::GET, "/healthz", Access::Public),
    (Method::GET, "/readyz", Access::Public),
    // Metrics name pipelines and agents' states: a viewer's read.
    (Method::GET, "/metrics", VIEWER),
    (Method::GET, "/api/openapi.json", VIEWER),
    (Method::GET, "/api/pipelines", VIEWER),
    (Method::GET, "/api/pipelines/{name}", VIEWER),
    (Method::POST, "/api/pipelines/{name}/runs", OPERATOR),
    (Method::GET, "/api/pipeline_runs", VIEWER),
    (Method::GET, "/api/pipeline_runs/export", VIEWER),
    (Method::POST, "/api/pipeline_runs/batch", OPERATOR),
    (Method::GET, "/api/pipeline_runs/diff", VIEWER),
    (Method::GET, "/api/pipeline_runs/{id}/evidence", VIEWER),
    (Method::GET, "/api/pipeline_runs/{id}", VIEWER),
    (Method::PUT, "/api/pipeline_runs/{id}", OPERATOR),
    (Method::POST, "/api/pipeline_runs/{id}/cancel", OPERATOR),
    (Method::POST, "/api/pipeline_runs/{id}/retry", OPERATOR),
    (Method::GET, "/api/block_runs/{id}", VIEWER),
    (Method::GET, "/api/block_runs/{id}/logs", VIEWER),
    (Method::GET, "/api/block_runs/{id}/logs/stream", VIEWER),
    (Method::GET, "/api/block_runs/{id}/outputs", VIEWER),
    (Method::GET, "/api/block_runs/{id}/data.csv", VIEWER),
    (Method::GET, "/api/artifacts", VIEWER),
    (Method::GET, "/api/artifacts/{id}/download", VIEWER),
    (Method::GET, "/api/events", VIEWER),
    // Checked by the handler: a webhook by its signature, an API trigger
    // by its own token or an operator's API token.
    (Method::POST, "/hooks/{pipeline}/{trigger}", Access::Public),
    (
        Method::POST,
        "/api/triggers/{pipeline}/{trigger}",
        Access::Public,
    ),
    (Method::GET, "/api/audit", ADMIN),
    (Method::GET, "/api/tokens", ADMIN),
    (Method::POST, "/api/tokens", ADMIN),
    (Method::DELETE, "/api/tokens/{name}", ADMIN),
    (Method::GET, "/api/queue", VIEWER),
    (Method::POST, "/api/queue/move", OPERATOR),
    (Method::POST, "/api/queue/cancel", OPERATOR),
    (Method::GET, "/api/triggers", VIEWER),
    (Method::GET, "/api/triggers/upcoming", VIEWER),
    (
        Method::POST,
        "/api/triggers/{pipeline}/{trigger}/pause",
        OPERATOR,
    ),
    (
        Method::POST,
        "/api/triggers/{pipeline}/{trigger}/resume",
        OPERATOR,
    ),
    (Method::GET, "/api/backfills", VIEWER),
    (Method::POST, "/api/backfills", OPERATOR),
    (Method::GET, "/api/backfills/{id}", VIEWER),
    (Method::POST, "/api/backfills/{id}/pause", OPERATOR),
    (Method::POST, "/api/backfills/{id}/resume", OPERATOR),
    (Method::POST, "/api/backfills/{id}/cancel", OPERATOR),
    (Method::GET, "/api/agents", VIEWER),
    (Method::GET, "/api/projects/{version}", VIEWER),
    (Method::POST, "/api/agent/register", AGENT),
    (Method::POST, "/api/agent/claim", AGENT),
    (Method::POST, "/api/agent/heartbeat", AGENT),
    (Method::GET, "/api/agent/projects/{version}", AGENT),
    (
        Method::GET,
        "/api/agent/projects/{version}/files/{sha256}",
        AGENT,
    ),
    (Method::POST, "/api/agent/tries/{id}/logs", AGENT),
    (Method::PUT, "/api/agent/tries/{id}/files", AGENT),
    (Method::POST, "/api/agent/tries/{id}/complete", AGENT),
];

/// What a route needs; a route missing from the table needs `admin`, so a
/// forgotten entry fails closed.
pub fn access_for(method: &Method, route: &str) -> Access {
    let method = if method == Method::HEAD {
        &Method::GET
    } else {
        method
    };
    POLICY
        .iter()
        .find(|(m, path, _)| m == method && *path == route)
        .map_or(ADMIN, |(_, _, access)| *access)
}

/// The caller of a request, as handlers see it.
#[derive(Clone, Debug)]
pub struct Caller {
    /// The token's name, or `anonymous` when auth is off.
    pub name: String,
    pub role: Role,
    /// The remote address, when known.
    pub remote: Option<String>,
}

/// The name recorded for callers when auth is off.
pub const ANONYMOUS: &str = "anonymous";

fn bearer(request: &Request) -> Option<&str> {
    let value = request
        .headers()
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|token| !token.is_empty())
}

/// Authenticates, authorizes and audits one request of a matched route.
pub async fn guard(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(|path| path.as_str().to_owned())
        .unwrap_or_default();
    let method = request.method().clone();
    let target = request.uri().path().to_owned();
    let remote = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|info| info.0.to_string());
    let request_id = request.extensions().get::<RequestId>().cloned();
    let access = access_for(&method, &route);

    let anonymous = Caller {
        name: ANONYMOUS.to_owned(),
        role: Role::Admin,
        remote: remote.clone(),
    };
    let token = bearer(&request).map(str::to_owned);
    let cookie = session_cookie(&request);
    let decided = if access == Access::Public {
        Ok(anonymous)
    } else if let (None, Some(cookie)) = (&token, cookie) {
        let csrf = request
            .headers()
            .get(CSRF_HEADER)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned);
        let changes_state = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
        let presented = SessionRequest {
            cookie,
            csrf,
            changes_state,
        };
        authorize_session(&state, presented, access, anonymous).await
    } else if !state.auth {
        Ok(anonymous)
    } else {
        authorize(&state, token, access, remote.clone()).await
    };
    let (actor, response) = match decided {
        Ok(caller) => {
            let actor = caller.name.clone();
            request.extensions_mut().insert(caller);
            (actor, next.run(request).await)
        }
        Err((actor, error)) => (actor, error.into_response()),
    };

    let changes_state = !matches!(method, Method::GET | Method::HEAD | Method::OPTIONS);
    if changes_state {
        let record = RequestAudit {
            actor,
            action: format!("{method} {route}"),
            target,
            details: serde_json::json!({
                "remote_addr": remote,
                "status": response.status().as_u16(),
                "request_id": request_id.map(|id| id.0),
            }),
        };
        if let Err(error) = state.engine.record_request(record).await {
            tracing::error!(error = %format!("{error:#}"), "could not write the audit record of a request");
        }
    }
    response
}

fn session_cookie(request: &Request) -> Option<String> {
    request
        .headers()
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .find_map(cookie_in_header)
        .map(str::to_owned)
}

/// What a request presents when it comes from the web UI.
struct SessionRequest {
    cookie: String,
    csrf: Option<String>,
    changes_state: bool,
}

/// Checks a web UI session (and, for a state change, its CSRF token)
/// against `access`; `anonymous` is the caller when auth is off.
async fn authorize_session(
    state: &AppState,
    presented: SessionRequest,
    access: Access,
    anonymous: Caller,
) -> Result<Caller, (String, ApiError)> {
    let unauthenticated = "unauthenticated".to_owned();
    let subject = match state.engine.session(&presented.cookie).await {
        Ok(subject) => subject,
        Err(error) => return Err((unauthenticated, error.into())),
    };
    let caller = match subject {
        Some(SessionSubject::Token(owner)) => Caller {
            name: owner.name,
            role: owner.role,
            remote: anonymous.remote.clone(),
        },
        Some(SessionSubject::Anonymous) | None if !state.auth => anonymous,
        Some(SessionSubject::Anonymous) | None => {
            return Err((
                unauthenticated,
                ApiError::new(
                    Code::Unauthorized,
                    "the session has expired or is not valid",
                )
                .with_hint("sign in again at /login"),
            ));
        }
    };
    if presented.changes_state {
        let valid = match &presented.csrf {
            Some(csrf) => state
                .engine
                .check_csrf(&presented.cookie, csrf)
                .await
                .map_err(|error| (caller.name.clone(), ApiError::from(error)))?,
            None => false,
        };
        if !valid {
            return Err((
                caller.name,
                ApiError::new(
                    Code::Forbidden,
                    "a request with the session cookie must carry the session's CSRF token",
                )
                .with_hint("send the page's `csrf-token` meta value in the `X-CSRF-Token` header"),
            ));
        }
    }
    if state.auth
        && let Access::Role(needed) = access
        && !caller.role.allows(needed)
    {
        return Err((
            caller.name.clone(),
            ApiError::new(
                Code::Forbidden,
                format!(
                    "`{}` has the role `{}`; this needs `{needed}`",
                    caller.name, caller.role
                ),
            ),
        ));
    }
    Ok(caller)
}

/// Checks the bearer token against `access`; on refusal, who it was and
/// the error.
async fn authorize(
    state: &AppState,
    token: Option<String>,
    access: Access,
    remote: Option<String>,
) -> Result<Caller, (String, ApiError)> {
    let unauthenticated = "unauthenticated".to_owned();
    let Some(token) = token else {
        return Err((
            unauthenticated,
            ApiError::new(Code::Unauthorized, "this server needs an API token")
                .with_hint("send `Authorization: Bearer TOKEN`; an admin creates tokens with `sluice token create`"),
        ));
    };
    let owner = match state.engine.authenticate(&token).await {
        Ok(Some(owner)) => owner,
        Ok(None) => {
            return Err((
                unauthenticated,
                ApiError::new(Code::Unauthorized, "the API token is unknown or revoked"),
            ));
        }
        Err(error) => return Err((unauthenticated, error.into())),
    };
    if let Access::Role(needed) = access
        && !owner.role.allows(needed)
    {
        return Err((
            owner.name.clone(),
            ApiError::new(
                Code::Forbidden,
                format!(
                    "token `{}` has the role `{}`; this needs `{needed}`",
                    owner.name, owner.role
                ),
            ),
        ));
    }
    Ok(Caller {
        name: owner.name,
        role: owner.role,
        remote,
    })
}
