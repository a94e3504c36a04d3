//! `/api/backfills`: one run per window of a timed trigger over a range,
//! grouped under one id; creating one (or only planning it), listing them,
//! reading one with its windows, and pausing, resuming or cancelling one.

use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use sluice_core::ids::BackfillId;
use sluice_engine::sluice_store::BackfillRecord;
use sluice_proto::{BackfillDetail, BackfillEnvelope, BackfillList, BackfillRequest, ErrorBody};

use crate::AppState;
use crate::auth::Caller;
use crate::convert;
use crate::error::ApiResult;
use crate::extract::{ApiJson, QueryParams, check_id};

/// Backfills listed without `limit`.
const DEFAULT_LIMIT: u32 = 50;
/// The most backfills one listing holds.
const MAX_LIMIT: u32 = 1_000;

/// Creates a backfill, whose runs the server then creates window by window;
/// with `dry_run`, only lists the windows and which would be skipped.
#[utoipa::path(post, path = "/api/backfills", tag = "backfills", operation_id = "create_backfill",
    request_body = BackfillRequest,
    responses(
        (status = 201, description = "Created", body = BackfillDetail),
        (status = 200, description = "A dry run: the windows, nothing created", body = BackfillDetail),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn create(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(body): ApiJson<BackfillRequest>,
) -> ApiResult<Response> {
    check_id("pipeline name", &body.pipeline)?;
    if let Some(trigger) = &body.trigger {
        check_id("trigger name", trigger)?;
    }
    let dry_run = body.dry_run;
    let request = sluice_engine::BackfillRequest {
        pipeline: body.pipeline,
        trigger: body.trigger,
        from: body.from,
        to: body.to,
        reverse: body.reverse,
        max_concurrent: body.max_concurrent,
        rerun_completed: body.rerun_completed,
        priority: body.priority,
        by: caller.name.clone(),
        owner: None,
    };
    if dry_run {
        let windows = state.engine.plan_backfill(&request).await?;
        let detail = BackfillDetail {
            backfill: None,
            windows: windows.into_iter().map(convert::backfill_window).collect(),
        };
        return Ok((StatusCode::OK, Json(detail)).into_response());
    }
    let backfill = state.engine.create_backfill(request).await?;
    let view = state.engine.get_backfill(&backfill.id).await?;
    Ok((StatusCode::CREATED, Json(convert::backfill_detail(view))).into_response())
}

/// Backfills, newest first.
#[utoipa::path(get, path = "/api/backfills", tag = "backfills", operation_id = "list_backfills",
    params(("limit" = Option<u32>, Query, description = "1 to 1000 (default 50)")),
    responses((status = 200, body = BackfillList), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<BackfillList>> {
    let mut params = QueryParams::parse(raw.as_deref())?;
    let limit = params.limit("limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    params.finish()?;
    let backfills = state.engine.list_backfills(limit).await?;
    Ok(Json(BackfillList {
        backfills: backfills.into_iter().map(convert::backfill).collect(),
    }))
}

/// A backfill with each of its windows: its run, or why it is skipped.
#[utoipa::path(get, path = "/api/backfills/{id}", tag = "backfills", operation_id = "get_backfill",
    params(("id" = String, Path, description = "The backfill's id")),
    responses((status = 200, body = BackfillDetail), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<BackfillDetail>> {
    check_id("backfill id", &id)?;
    let view = state.engine.get_backfill(&BackfillId(id)).await?;
    Ok(Json(convert::backfill_detail(view)))
}

/// Stops a running backfill from creating runs; its active runs go on.
#[utoipa::path(post, path = "/api/backfills/{id}/pause", tag = "backfills", operation_id = "pause_backfill",
    params(("id" = String, Path, description = "The backfill's id")),
    responses((status = 200, body = BackfillEnvelope), (status = 404, body = ErrorBody),
        (status = 409, description = "Not running", body = ErrorBody)))]
pub async fn pause(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<BackfillEnvelope>> {
    check_id("backfill id", &id)?;
    let backfill = state
        .engine
        .pause_backfill(&BackfillId(id), &caller.name)
        .await?;
    Ok(envelope(backfill))
}

/// Lets a paused backfill create runs again.
#[utoipa::path(post, path = "/api/backfills/{id}/resume", tag = "backfills", operation_id = "resume_backfill",
    params(("id" = String, Path, description = "The backfill's id")),
    responses((status = 200, body = BackfillEnvelope), (status = 404, body = ErrorBody),
        (status = 409, description = "Not paused", body = ErrorBody)))]
pub async fn resume(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<BackfillEnvelope>> {
    check_id("backfill id", &id)?;
    let backfill = state
        .engine
        .resume_backfill(&BackfillId(id), &caller.name)
        .await?;
    Ok(envelope(backfill))
}

/// Ends a backfill for good and cancels its active runs.
#[utoipa::path(post, path = "/api/backfills/{id}/cancel", tag = "backfills", operation_id = "cancel_backfill",
    params(("id" = String, Path, description = "The backfill's id")),
    responses((status = 200, body = BackfillEnvelope), (status = 404, body = ErrorBody),
        (status = 409, description = "Already ended", body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<BackfillEnvelope>> {
    check_id("backfill id", &id)?;
    let backfill = state
        .engine
        .cancel_backfill(&BackfillId(id), &caller.name)
        .await?;
    Ok(envelope(backfill))
}

fn envelope(backfill: BackfillRecord) -> Json<BackfillEnvelope> {
    Json(BackfillEnvelope {
        backfill: convert::backfill(backfill),
    })
}
