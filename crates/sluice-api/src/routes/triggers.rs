//! `/api/triggers`: the project's triggers with their state and next fires,
//! the runs the timed ones will create, and pausing and resuming one.

use axum::extract::{Path, RawQuery, State};
use axum::{Extension, Json};
use sluice_proto::{ErrorBody, TriggerEnvelope, TriggerList, UpcomingList};

use crate::AppState;
use crate::auth::Caller;
use crate::convert;
use crate::error::ApiResult;
use crate::extract::{QueryParams, check_id};

/// Next fires listed per trigger by `GET /api/triggers` without `next`.
const DEFAULT_NEXT: u32 = 3;
/// Runs listed by `GET /api/triggers/upcoming` without `next`.
const DEFAULT_UPCOMING: u32 = 10;
/// The most of either.
const MAX_NEXT: u32 = 1_000;

/// Every trigger of the project's pipelines, with its state (enabled,
/// paused, last fire) and the next fires of the timed ones.
#[utoipa::path(get, path = "/api/triggers", tag = "triggers", operation_id = "list_triggers",
    params(("next" = Option<u32>, Query, description = "Next fires per trigger, 1 to 1000 (default 3)")),
    responses((status = 200, body = TriggerList), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<TriggerList>> {
    let mut params = QueryParams::parse(raw.as_deref())?;
    let next = params.limit("next", DEFAULT_NEXT, MAX_NEXT)?;
    params.finish()?;
    let triggers = state.engine.list_triggers(next as usize).await?;
    Ok(Json(TriggerList {
        triggers: triggers.into_iter().map(convert::trigger).collect(),
    }))
}

/// The runs the timed triggers will create, soonest first, across
/// pipelines, each with its window.
#[utoipa::path(get, path = "/api/triggers/upcoming", tag = "triggers", operation_id = "upcoming_fires",
    params(("next" = Option<u32>, Query, description = "How many, 1 to 1000 (default 10)")),
    responses((status = 200, body = UpcomingList), (status = 400, body = ErrorBody)))]
pub async fn upcoming(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<UpcomingList>> {
    let mut params = QueryParams::parse(raw.as_deref())?;
    let next = params.limit("next", DEFAULT_UPCOMING, MAX_NEXT)?;
    params.finish()?;
    let upcoming = state.engine.upcoming_fires(next as usize).await?;
    Ok(Json(UpcomingList {
        upcoming: upcoming.into_iter().map(convert::upcoming).collect(),
    }))
}

/// Pauses a trigger: the scheduler starts no runs for it until it is
/// resumed. Kept in the database; pausing a paused trigger changes nothing.
#[utoipa::path(post, path = "/api/triggers/{pipeline}/{trigger}/pause", tag = "triggers",
    operation_id = "pause_trigger",
    params(
        ("pipeline" = String, Path, description = "The pipeline's name"),
        ("trigger" = String, Path, description = "The trigger's name")),
    responses(
        (status = 200, body = TriggerEnvelope), (status = 404, body = ErrorBody),
        (status = 422, description = "A kind the scheduler does not fire", body = ErrorBody)))]
pub async fn pause(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((pipeline, trigger)): Path<(String, String)>,
) -> ApiResult<Json<TriggerEnvelope>> {
    check_id("pipeline name", &pipeline)?;
    check_id("trigger name", &trigger)?;
    let overview = state
        .engine
        .pause_trigger(&pipeline, &trigger, &caller.name)
        .await?;
    Ok(Json(TriggerEnvelope {
        trigger: convert::trigger(overview),
    }))
}

/// Resumes a paused trigger; `catchup` decides what happens to the fires
/// it missed. Resuming a trigger that is not paused changes nothing.
#[utoipa::path(post, path = "/api/triggers/{pipeline}/{trigger}/resume", tag = "triggers",
    operation_id = "resume_trigger",
    params(
        ("pipeline" = String, Path, description = "The pipeline's name"),
        ("trigger" = String, Path, description = "The trigger's name")),
    responses(
        (status = 200, body = TriggerEnvelope), (status = 404, body = ErrorBody),
        (status = 422, description = "A kind the scheduler does not fire", body = ErrorBody)))]
pub async fn resume(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path((pipeline, trigger)): Path<(String, String)>,
) -> ApiResult<Json<TriggerEnvelope>> {
    check_id("pipeline name", &pipeline)?;
    check_id("trigger name", &trigger)?;
    let overview = state
        .engine
        .resume_trigger(&pipeline, &trigger, &caller.name)
        .await?;
    Ok(Json(TriggerEnvelope {
        trigger: convert::trigger(overview),
    }))
}
