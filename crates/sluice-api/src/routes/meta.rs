//! Probes and the OpenAPI document.

use axum::Json;
use axum::extract::State;
use sluice_proto::{ErrorBody, Health};
use utoipa::OpenApi;

use crate::AppState;
use crate::error::ApiResult;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "meta",
    responses((status = 200, description = "The process is up", body = Health)))]
pub async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".to_owned(),
    })
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "meta", responses(
    (status = 200, description = "The database answers", body = Health),
    (status = 503, description = "The database is unavailable", body = ErrorBody)))]
pub async fn readyz(State(state): State<AppState>) -> ApiResult<Json<Health>> {
    state.engine.check_database().await?;
    Ok(Json(Health {
        status: "ok".to_owned(),
    }))
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::ApiDoc::openapi())
}
