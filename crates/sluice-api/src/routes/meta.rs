//! Probes, the placeholder home page and the OpenAPI document.

use axum::Json;
use axum::extract::State;
use axum::response::Html;
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

/// A placeholder page until the web UI lands.
#[utoipa::path(get, path = "/", tag = "meta",
    responses((status = 200, description = "An HTML page", content_type = "text/html", body = String)))]
pub async fn index(State(state): State<AppState>) -> Html<String> {
    let project = state.engine.project();
    let pipelines: String = project
        .pipelines
        .keys()
        .map(|name| format!("<li><code>{}</code></li>", escape(name)))
        .collect();
    Html(format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>sluice</title></head>\n\
         <body><h1>sluice</h1>\n<p>The web UI is not here yet. The REST API is under \
         <a href=\"/api/pipeline_runs\"><code>/api</code></a>; its OpenAPI document is \
         <a href=\"/api/openapi.json\"><code>/api/openapi.json</code></a>.</p>\n\
         <h2>Pipelines</h2><ul>{pipelines}</ul></body></html>\n"
    ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// This document.
#[utoipa::path(get, path = "/api/openapi.json", tag = "meta",
    responses((status = 200, description = "The OpenAPI document", body = Object)))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(crate::openapi::ApiDoc::openapi())
}
