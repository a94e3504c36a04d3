//! `/api/pipeline_runs/diff` and `/api/pipeline_runs/{id}/evidence`.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use sluice_core::ids::RunId;
use sluice_proto::{ErrorBody, Evidence, RunDiff};

use crate::AppState;
use crate::diagnose;
use crate::error::{ApiError, ApiResult};
use crate::extract::{QueryParams, check_id};

fn run_id(what: &str, id: Option<String>) -> ApiResult<RunId> {
    let id = id.ok_or_else(|| {
        ApiError::bad_request(format!("`{what}` is required"))
            .with_hint("compare two runs: /api/pipeline_runs/diff?a=RUN&b=RUN")
    })?;
    check_id("run id", &id)?;
    Ok(RunId(id))
}

/// Two runs side by side: pinned version, variables (masked), invoked-by,
/// each block's status, duration and outputs, errors; differences first.
#[utoipa::path(get, path = "/api/pipeline_runs/diff", tag = "runs",
    params(
        ("a" = String, Query, description = "A run's id, such as the last good run"),
        ("b" = String, Query, description = "Another run's id, such as the failed one")),
    responses((status = 200, body = RunDiff), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
pub async fn diff(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<RunDiff>> {
    let mut params = QueryParams::parse(raw.as_deref())?;
    let a = run_id("a", params.one("a")?)?;
    let b = run_id("b", params.one("b")?)?;
    params.finish()?;
    let diff = state.engine.diff_runs(&a, &b).await?;
    Ok(Json(diagnose::run_diff(diff)))
}

/// A run's incident evidence, as JSON or (`format=md`) Markdown.
#[utoipa::path(get, path = "/api/pipeline_runs/{id}/evidence", tag = "runs",
    params(
        ("id" = String, Path, description = "The run's id"),
        ("format" = Option<String>, Query, description = "`json` (default) or `md`")),
    responses(
        (status = 200, description = "The evidence (Markdown with `format=md`)", body = Evidence),
        (status = 404, body = ErrorBody)))]
pub async fn evidence(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Response> {
    let mut params = QueryParams::parse(raw.as_deref())?;
    let format = params.one("format")?;
    params.finish()?;
    let id = run_id("id", Some(id))?;
    let evidence = diagnose::evidence(state.engine.run_evidence(&id).await?);
    match format.as_deref() {
        None | Some("json") => Ok(Json(evidence).into_response()),
        Some("md") => Ok((
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            diagnose::evidence_markdown(&evidence),
        )
            .into_response()),
        Some(other) => Err(ApiError::bad_request(format!(
            "`format` is `{other}`, not `json` or `md`"
        ))),
    }
}
