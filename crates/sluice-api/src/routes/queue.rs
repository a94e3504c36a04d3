//! `/api/queue`: queued block runs in claim order with the reason each is
//! not running yet, moving one (the drag-to-reorder backend), and
//! cancelling the runs whose queued block runs match a filter.

use axum::extract::State;
use axum::{Extension, Json};
use sluice_core::ids::{BlockRunId, RunId};
use sluice_engine::queue::{QueueCancel, QueueEntry, QueueView, WaitReason, WaitingRun};
use sluice_engine::sluice_store::{QueueMove, QueuePlace};
use sluice_proto::{ErrorBody, Queue, QueueCancelRequest, QueueCancelResponse, QueueMoveRequest};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, check_id};

/// Queued block runs in claim order and runs waiting to be admitted, each
/// with the reason it is not running yet.
#[utoipa::path(get, path = "/api/queue", tag = "queue", operation_id = "list_queue",
    responses((status = 200, body = Queue)))]
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<Queue>> {
    Ok(Json(queue_view(state.engine.queue().await?)))
}

/// Moves a queued block run to another place among those of its priority;
/// claims follow the new order.
#[utoipa::path(post, path = "/api/queue/move", tag = "queue", operation_id = "move_in_queue",
    request_body = QueueMoveRequest,
    responses(
        (status = 200, description = "The queue after the move", body = Queue),
        (status = 404, body = ErrorBody),
        (status = 409, description = "Not queued, or before one of another priority", body = ErrorBody),
        (status = 422, body = ErrorBody)))]
pub async fn move_block_run(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<QueueMoveRequest>,
) -> ApiResult<Json<Queue>> {
    check_id("block run id", &request.block_run_id)?;
    let place = match (request.to, request.before) {
        (Some(0), None) => {
            return Err(ApiError::invalid("`to` counts from 1"));
        }
        (Some(to), None) => QueuePlace::Position(to),
        (None, Some(before)) => {
            check_id("block run id", &before)?;
            QueuePlace::Before(BlockRunId(before))
        }
        _ => {
            return Err(ApiError::invalid("give exactly one of `to` and `before`"));
        }
    };
    let change = QueueMove {
        block_run: BlockRunId(request.block_run_id),
        place,
    };
    state.engine.move_in_queue(&change, &caller.name).await?;
    Ok(Json(queue_view(state.engine.queue().await?)))
}

/// Cancels every run with a queued block run matching all the filters, or
/// with `dry_run` only lists them.
#[utoipa::path(post, path = "/api/queue/cancel", tag = "queue", operation_id = "cancel_queued",
    request_body = QueueCancelRequest,
    responses((status = 200, body = QueueCancelResponse), (status = 422, body = ErrorBody)))]
pub async fn cancel(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<QueueCancelRequest>,
) -> ApiResult<Json<QueueCancelResponse>> {
    if let Some(pipeline) = &request.pipeline {
        check_id("pipeline name", pipeline)?;
    }
    let filter = QueueCancel {
        pipeline: request.pipeline,
        labels: request.labels,
        dry_run: request.dry_run,
    };
    let runs = state.engine.cancel_queued(&filter, &caller.name).await?;
    Ok(Json(QueueCancelResponse {
        run_ids: runs.into_iter().map(|run: RunId| run.0).collect(),
        dry_run: filter.dry_run,
    }))
}

/// The wire form of the engine's queue.
pub fn queue_view(view: QueueView) -> Queue {
    Queue {
        block_runs: view.block_runs.into_iter().map(queued).collect(),
        runs: view.runs.into_iter().map(waiting).collect(),
    }
}

fn queued(entry: QueueEntry) -> sluice_proto::QueuedBlockRun {
    let block_run = entry.queued.block_run;
    sluice_proto::QueuedBlockRun {
        position: entry.position,
        block_run_id: block_run.id.0,
        run_id: block_run.run_id.0,
        pipeline: entry.queued.pipeline,
        block: block_run.block,
        priority: block_run.priority,
        queued_at: block_run.queued_at,
        retry_at: block_run.retry_at,
        labels: block_run.labels,
        reason: wait_reason(entry.reason),
    }
}

fn waiting(waiting: WaitingRun) -> sluice_proto::WaitingRun {
    sluice_proto::WaitingRun {
        run_id: waiting.run.id.0,
        pipeline: waiting.run.pipeline,
        priority: waiting.run.priority,
        created_at: waiting.run.created_at,
        reason: wait_reason(waiting.reason),
    }
}

/// The wire form of a reason: its kind, its sentence and its facts.
pub fn wait_reason(reason: WaitReason) -> sluice_proto::WaitReason {
    let mut wire = sluice_proto::WaitReason {
        kind: String::new(),
        message: reason.to_string(),
        until: None,
        labels: None,
        limit: None,
        tries: None,
    };
    wire.kind = match reason {
        WaitReason::RetryBackoff { until } => {
            wire.until = Some(until);
            "retry_backoff"
        }
        WaitReason::Labels { labels } => {
            wire.labels = Some(labels);
            "labels"
        }
        WaitReason::BlockConcurrency { limit } => {
            wire.limit = Some(limit);
            "block_concurrency"
        }
        WaitReason::Behind { tries } => {
            wire.tries = Some(tries);
            "behind"
        }
        WaitReason::PipelineConcurrency { limit } => {
            wire.limit = Some(limit);
            "pipeline_concurrency"
        }
        WaitReason::MaxActiveRuns { limit } => {
            wire.limit = Some(limit);
            "max_active_runs"
        }
        WaitReason::Starting => "starting",
    }
    .to_owned();
    wire
}
