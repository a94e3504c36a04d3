//! `/api/pipeline_runs`: the run ledger (filtered, keyset-paginated), one
//! run with everything recorded about it, cancel and retry (also in Mage's
//! `PUT` form).

use axum::extract::{Path, RawQuery, State};
use axum::{Extension, Json};
use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sluice_core::ids::RunId;
use sluice_core::status::RunStatus;
use sluice_engine::sluice_store::{Order, RunCursor, RunQuery};
use sluice_engine::{RetryMode, RetryRequest};
use sluice_proto::{
    ErrorBody, MageRunUpdateRequest, RetryRunRequest, RunDetails, RunEnvelope, RunFilter, RunList,
};

use crate::AppState;
use crate::auth::Caller;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, QueryParams, check_id};

/// The longest search text accepted.
const MAX_SEARCH_LEN: usize = 200;

/// The most runs one page holds.
pub const MAX_PAGE: u32 = 500;
const DEFAULT_PAGE: u32 = 50;

/// An opaque cursor: the last run of a page, as base64 of
/// `created_at_micros:id`.
pub fn encode_cursor(cursor: &RunCursor) -> String {
    URL_SAFE_NO_PAD.encode(format!(
        "{}:{}",
        cursor.created_at.as_microsecond(),
        cursor.id
    ))
}

pub fn decode_cursor(text: &str) -> ApiResult<RunCursor> {
    let bad = || {
        ApiError::bad_request("`next_cursor` is not a cursor this server made")
            .with_hint("pass the `next_cursor` of the previous page unchanged")
    };
    let bytes = URL_SAFE_NO_PAD.decode(text).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (micros, id) = text.split_once(':').ok_or_else(bad)?;
    let micros: i64 = micros.parse().map_err(|_| bad())?;
    let created_at = jiff::Timestamp::from_microsecond(micros).map_err(|_| bad())?;
    check_id("run id", id).map_err(|_| bad())?;
    Ok(RunCursor {
        created_at,
        id: RunId(id.to_owned()),
    })
}

pub fn parse_statuses(values: &[String]) -> ApiResult<Vec<RunStatus>> {
    values
        .iter()
        .map(|value| {
            value.parse::<RunStatus>().map_err(|error| {
                ApiError::bad_request(error.to_string())
                    .with_hint("statuses are: initial, running, completed, failed, cancelled")
            })
        })
        .collect()
}

/// The filters every run listing takes (`pipeline`, `status`, `tag`,
/// `trigger`, `after`, `before`), read from a query string.
pub fn query_filter(params: &mut QueryParams) -> ApiResult<RunFilter> {
    Ok(RunFilter {
        pipeline: params.all("pipeline"),
        status: params.all("status"),
        tag: params.one("tag")?,
        trigger: params.all("trigger"),
        after: params.timestamp("after")?,
        before: params.timestamp("before")?,
        started_after: params.timestamp("started_after")?,
        started_before: params.timestamp("started_before")?,
        finished_after: params.timestamp("finished_after")?,
        finished_before: params.timestamp("finished_before")?,
        q: params.one("q")?,
        slow: params.flag("slow")?,
        unresolved: params.flag("unresolved")?,
    })
}

/// A run query from filters; order, limit and cursor are left default.
pub fn run_query(filter: &RunFilter) -> ApiResult<RunQuery> {
    for pipeline in &filter.pipeline {
        check_id("pipeline name", pipeline)?;
    }
    for trigger in &filter.trigger {
        check_id("trigger kind", trigger)?;
    }
    if let Some(tag) = &filter.tag {
        check_id("tag", tag)?;
    }
    for (after, before, names) in [
        (
            filter.after,
            filter.before,
            "`after` must be earlier than `before`",
        ),
        (
            filter.started_after,
            filter.started_before,
            "`started_after` must be earlier than `started_before`",
        ),
        (
            filter.finished_after,
            filter.finished_before,
            "`finished_after` must be earlier than `finished_before`",
        ),
    ] {
        if let (Some(after), Some(before)) = (after, before)
            && after >= before
        {
            return Err(ApiError::bad_request(names));
        }
    }
    if let Some(text) = &filter.q
        && (text.trim().is_empty() || text.len() > MAX_SEARCH_LEN)
    {
        return Err(ApiError::bad_request(format!(
            "`q` must hold 1 to {MAX_SEARCH_LEN} characters"
        )));
    }
    Ok(RunQuery {
        pipelines: filter.pipeline.clone(),
        statuses: parse_statuses(&filter.status)?,
        tag: filter.tag.clone(),
        trigger_kinds: filter.trigger.clone(),
        created_after: filter.after,
        created_before: filter.before,
        started_after: filter.started_after,
        started_before: filter.started_before,
        finished_after: filter.finished_after,
        finished_before: filter.finished_before,
        text: filter.q.as_deref().map(str::trim).map(str::to_owned),
        slow: filter.slow,
        unresolved: filter.unresolved,
        order: Order::NewestFirst,
        limit: MAX_PAGE,
        cursor: None,
    })
}

/// `order=newest|oldest`.
pub fn parse_order(params: &mut QueryParams) -> ApiResult<Order> {
    match params.one("order")?.as_deref() {
        None | Some("newest") => Ok(Order::NewestFirst),
        Some("oldest") => Ok(Order::OldestFirst),
        Some(other) => Err(ApiError::bad_request(format!(
            "`order` is `{other}`, not `newest` or `oldest`"
        ))),
    }
}

/// Runs, newest first, filtered and paginated by key.
#[utoipa::path(get, path = "/api/pipeline_runs", tag = "runs",
    params(
        ("pipeline" = Option<Vec<String>>, Query, description = "Only these pipelines (repeat or comma-separate)"),
        ("status" = Option<Vec<String>>, Query, description = "Only these statuses"),
        ("tag" = Option<String>, Query, description = "Only runs with this tag"),
        ("trigger" = Option<Vec<String>>, Query, description = "Only these trigger kinds (`invoked_by.kind`)"),
        ("after" = Option<String>, Query, description = "Created at or after (RFC 3339)"),
        ("before" = Option<String>, Query, description = "Created before (RFC 3339)"),
        ("started_after" = Option<String>, Query, description = "Started at or after (RFC 3339)"),
        ("started_before" = Option<String>, Query, description = "Started before (RFC 3339)"),
        ("finished_after" = Option<String>, Query, description = "Finished at or after (RFC 3339)"),
        ("finished_before" = Option<String>, Query, description = "Finished before (RFC 3339)"),
        ("q" = Option<String>, Query, description = "Text in the run id, pipeline, error or a non-secret variable value (ASCII letters without case)"),
        ("slow" = Option<bool>, Query, description = "Only runs flagged `slow` (slower than their baseline's p95 times `drift.factor`)"),
        ("unresolved" = Option<bool>, Query, description = "Only failed runs that no later attempt or run of the same window resolved"),
        ("order" = Option<String>, Query, description = "`newest` (default) or `oldest`"),
        ("limit" = Option<u32>, Query, description = "Runs per page, 1 to 500 (default 50)"),
        ("next_cursor" = Option<String>, Query, description = "The `next_cursor` of the previous page"),
        ("summary" = Option<bool>, Query, description = "Also count the matching runs per status")),
    responses((status = 200, body = RunList), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<RunList>> {
    let mut params = QueryParams::parse(raw.as_deref())?;
    let filter = query_filter(&mut params)?;
    let mut query = run_query(&filter)?;
    query.order = parse_order(&mut params)?;
    query.limit = params.limit("limit", DEFAULT_PAGE, MAX_PAGE)?;
    query.cursor = params
        .one("next_cursor")?
        .map(|cursor| decode_cursor(&cursor))
        .transpose()?;
    let summary = params.flag("summary")?;
    params.finish()?;

    let page = state.engine.list_runs(&query).await?;
    let summary = if summary {
        Some(convert::summary(
            state.engine.count_runs_by_status(&query).await?,
        ))
    } else {
        None
    };
    Ok(Json(RunList {
        pipeline_runs: page.runs.into_iter().map(convert::run).collect(),
        next_cursor: page.next_cursor.as_ref().map(encode_cursor),
        summary,
    }))
}

fn run_id(id: String) -> ApiResult<RunId> {
    check_id("run id", &id)?;
    Ok(RunId(id))
}

/// A run with its attempts, block runs, tries, variables (with their layer;
/// secrets `***`) and artifacts.
#[utoipa::path(get, path = "/api/pipeline_runs/{id}", tag = "runs",
    params(("id" = String, Path, description = "The run's id")),
    responses((status = 200, body = RunDetails), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<RunDetails>> {
    let details = state.engine.run_details(&run_id(id)?).await?;
    Ok(Json(convert::run_details(details)))
}

/// Cancels a run: waiting block runs end at once, running tries are killed.
#[utoipa::path(post, path = "/api/pipeline_runs/{id}/cancel", tag = "runs",
    params(("id" = String, Path, description = "The run's id")),
    responses(
        (status = 200, body = RunEnvelope), (status = 404, body = ErrorBody),
        (status = 409, description = "The run already ended", body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> ApiResult<Json<RunEnvelope>> {
    let run = state.engine.cancel_run(&run_id(id)?, &caller.name).await?;
    Ok(Json(convert::envelope(run)))
}

/// The engine's retry mode for a request's `mode` and `block`.
pub fn retry_mode(mode: sluice_proto::RetryMode, block: Option<String>) -> ApiResult<RetryMode> {
    use sluice_proto::RetryMode as Wire;
    match (mode, block) {
        (Wire::FromBlock, Some(block)) => {
            check_id("block", &block)?;
            Ok(RetryMode::FromBlock(block))
        }
        (Wire::FromBlock, None) => Err(ApiError::invalid("mode `from_block` needs `block`")
            .with_hint(
                "name the block to retry from: {\"mode\": \"from_block\", \"block\": \"load\"}",
            )),
        (Wire::Incomplete | Wire::All, Some(_)) => Err(ApiError::invalid(
            "`block` is only taken with mode `from_block`",
        )),
        (Wire::Incomplete, None) => Ok(RetryMode::Incomplete),
        (Wire::All, None) => Ok(RetryMode::All),
    }
}

/// Retries a finished run as a new attempt.
#[utoipa::path(post, path = "/api/pipeline_runs/{id}/retry", tag = "runs",
    params(("id" = String, Path, description = "The run's id")),
    request_body = RetryRunRequest,
    responses(
        (status = 200, body = RunEnvelope), (status = 404, body = ErrorBody),
        (status = 409, description = "The run has not ended", body = ErrorBody),
        (status = 422, description = "Unknown block, or `block` missing", body = ErrorBody)))]
pub async fn retry(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<RetryRunRequest>,
) -> ApiResult<Json<RunEnvelope>> {
    let run_id = run_id(id)?;
    let mode = retry_mode(body.mode, body.block)?;
    let run = state
        .engine
        .retry_run(RetryRequest {
            run_id,
            mode,
            by: caller.name.clone(),
            owner: None,
            latest: body.latest,
        })
        .await?;
    Ok(Json(convert::envelope(run)))
}

/// Mage's form: `{"pipeline_run": {"status": "cancelled"}}` cancels;
/// `{"pipeline_run": {"pipeline_run_action": "retry_blocks",
/// "from_block_uuid": "..."}}` retries (the incomplete blocks without
/// `from_block_uuid`).
#[utoipa::path(put, path = "/api/pipeline_runs/{id}", tag = "runs",
    params(("id" = String, Path, description = "The run's id")),
    request_body = MageRunUpdateRequest,
    responses(
        (status = 200, body = RunEnvelope), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 422, body = ErrorBody)))]
pub async fn mage_update(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    ApiJson(body): ApiJson<MageRunUpdateRequest>,
) -> ApiResult<Json<RunEnvelope>> {
    let run_id = run_id(id)?;
    let update = body.pipeline_run;
    let run = match (
        update.status.as_deref(),
        update.pipeline_run_action.as_deref(),
    ) {
        (Some("cancelled"), None) if update.from_block_uuid.is_none() => {
            state.engine.cancel_run(&run_id, &caller.name).await?
        }
        (None, Some("retry_blocks")) => {
            let mode = match update.from_block_uuid {
                Some(block) => retry_mode(sluice_proto::RetryMode::FromBlock, Some(block))?,
                None => RetryMode::Incomplete,
            };
            state
                .engine
                .retry_run(RetryRequest {
                    run_id,
                    mode,
                    by: caller.name.clone(),
                    owner: None,
                    latest: false,
                })
                .await?
        }
        _ => {
            return Err(ApiError::invalid(
                "the update must be either {\"status\": \"cancelled\"} or {\"pipeline_run_action\": \"retry_blocks\"}",
            )
            .with_hint("retry from a block with \"from_block_uuid\": \"BLOCK\""));
        }
    };
    Ok(Json(convert::envelope(run)))
}
