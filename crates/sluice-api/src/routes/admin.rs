//! `/api/audit` and `/api/tokens`: the audit log and API tokens, for admins.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use sluice_engine::tokens::Role;
use sluice_proto::{AuditPage, CreateTokenRequest, CreatedToken, ErrorBody, TokenList};

use crate::AppState;
use crate::auth::Caller;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, QueryParams};

const DEFAULT_AUDIT_PAGE: u32 = 100;
const MAX_AUDIT_PAGE: u32 = 1_000;

/// The audit log, newest first: who did what, to what, when, from where.
#[utoipa::path(get, path = "/api/audit", tag = "admin",
    params(
        ("limit" = Option<u32>, Query, description = "Events per page, 1 to 1000 (default 100)"),
        ("before_id" = Option<i64>, Query, description = "Only events older than this one")),
    responses((status = 200, body = AuditPage), (status = 400, body = ErrorBody)))]
pub async fn audit(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<AuditPage>> {
    let mut params = QueryParams::parse(raw.as_deref())?;
    let limit = params.limit("limit", DEFAULT_AUDIT_PAGE, MAX_AUDIT_PAGE)?;
    let before_id = params.parsed::<i64>("before_id", "an audit event id")?;
    params.finish()?;
    let events = state.engine.list_audit(limit, before_id).await?;
    let next_before_id = if events.len() == limit as usize {
        events.last().map(|event| event.id)
    } else {
        None
    };
    Ok(Json(AuditPage {
        events: events.into_iter().map(convert::audit_event).collect(),
        next_before_id,
    }))
}

/// Every token by name, revoked ones included; never the tokens themselves.
#[utoipa::path(get, path = "/api/tokens", tag = "admin",
    responses((status = 200, body = TokenList)))]
pub async fn list_tokens(State(state): State<AppState>) -> ApiResult<Json<TokenList>> {
    let tokens = state.engine.list_tokens().await?;
    Ok(Json(TokenList {
        tokens: tokens.into_iter().map(convert::token).collect(),
    }))
}

/// Creates a token; the answer holds the token, shown this once.
#[utoipa::path(post, path = "/api/tokens", tag = "admin",
    request_body = CreateTokenRequest,
    responses(
        (status = 201, body = CreatedToken),
        (status = 409, description = "A token with this name exists", body = ErrorBody),
        (status = 422, description = "Bad name or role", body = ErrorBody)))]
pub async fn create_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<CreateTokenRequest>,
) -> ApiResult<(StatusCode, Json<CreatedToken>)> {
    let role: Role = body
        .role
        .parse()
        .map_err(|error: sluice_engine::tokens::UnknownRole| {
            ApiError::invalid(error.to_string())
        })?;
    let (record, token) =
        crate::tokens::create(&state.engine, &body.name, role, &caller.name).await?;
    Ok((
        StatusCode::CREATED,
        Json(CreatedToken {
            name: record.name,
            role: record.role,
            token,
        }),
    ))
}

/// Revokes a token; requests with it are refused from now on.
#[utoipa::path(delete, path = "/api/tokens/{name}", tag = "admin",
    params(("name" = String, Path, description = "The token's name")),
    responses(
        (status = 204, description = "Revoked (or already revoked)"),
        (status = 404, body = ErrorBody)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    state.engine.revoke_token(&name, &caller.name).await?;
    Ok(StatusCode::NO_CONTENT)
}
