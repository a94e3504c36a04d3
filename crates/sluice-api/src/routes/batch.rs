//! `POST /api/pipeline_runs/batch`: cancel or retry many runs, chosen by id
//! or by filter. A dry run answers with exactly the runs the same request
//! would touch, because both go through the same selection.

use axum::extract::State;
use axum::{Extension, Json};
use sluice_core::ids::RunId;
use sluice_core::status::RunStatus;
use sluice_engine::RetryRequest;
use sluice_engine::sluice_store::{Order, RunRecord};
use sluice_proto::{BatchAction, BatchItem, BatchRequest, BatchResponse, ErrorBody};

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, check_id};
use crate::routes::runs::{retry_mode, run_query};

/// The most runs one batch may touch.
pub const MAX_BATCH: usize = 500;

/// Whether the action applies to a run in this status.
fn eligible(action: BatchAction, status: RunStatus) -> bool {
    match action {
        BatchAction::Cancel => !status.is_terminal(),
        BatchAction::Retry => status.is_terminal(),
    }
}

/// The runs a batch touches, and the ids it skips (unknown, or in a status
/// the action does not apply to).
async fn select(
    state: &AppState,
    request: &BatchRequest,
) -> ApiResult<(Vec<RunRecord>, Vec<String>)> {
    match (&request.ids, &request.filter) {
        (Some(ids), None) => {
            if ids.is_empty() || ids.len() > MAX_BATCH {
                return Err(ApiError::invalid(format!(
                    "`ids` has {} ids; give 1 to {MAX_BATCH}",
                    ids.len()
                )));
            }
            let mut runs = Vec::new();
            let mut skipped = Vec::new();
            for id in ids {
                check_id("run id", id)?;
                if runs.iter().any(|run: &RunRecord| run.id.as_str() == id)
                    || skipped.contains(id)
                {
                    continue;
                }
                match state.engine.get_run(&RunId(id.clone())).await {
                    Ok(run) if eligible(request.action, run.status) => runs.push(run),
                    Ok(_) | Err(sluice_engine::Error::NotFound(_)) => skipped.push(id.clone()),
                    Err(error) => return Err(error.into()),
                }
            }
            Ok((runs, skipped))
        }
        (None, Some(filter)) => {
            let mut query = run_query(filter)?;
            // A filter selects only the runs the action applies to.
            let applicable: Vec<RunStatus> = RunStatus::ALL
                .into_iter()
                .filter(|status| eligible(request.action, *status))
                .collect();
            query.statuses = if query.statuses.is_empty() {
                applicable
            } else {
                query
                    .statuses
                    .into_iter()
                    .filter(|status| applicable.contains(status))
                    .collect()
            };
            if query.statuses.is_empty() {
                return Ok((Vec::new(), Vec::new()));
            }
            query.order = Order::OldestFirst;
            query.limit = u32::try_from(MAX_BATCH + 1).unwrap_or(u32::MAX);
            let page = state.engine.list_runs(&query).await?;
            if page.runs.len() > MAX_BATCH {
                return Err(ApiError::invalid(format!(
                    "the filter matches more than {MAX_BATCH} runs"
                ))
                .with_hint("narrow it, for example with `after`/`before`, and send several batches"));
            }
            Ok((page.runs, Vec::new()))
        }
        _ => Err(
            ApiError::invalid("a batch takes either `ids` or `filter`, not both or neither")
                .with_hint("{\"action\": \"cancel\", \"ids\": [\"RUN_ID\"]} or {\"action\": \"cancel\", \"filter\": {\"pipeline\": [\"etl\"]}}"),
        ),
    }
}

/// Cancels or retries many runs; `dry_run` only says which.
#[utoipa::path(post, path = "/api/pipeline_runs/batch", tag = "runs",
    request_body = BatchRequest,
    responses(
        (status = 200, description = "What was (or would be) done to each run", body = BatchResponse),
        (status = 422, body = ErrorBody)))]
pub async fn batch(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    ApiJson(request): ApiJson<BatchRequest>,
) -> ApiResult<Json<BatchResponse>> {
    let mode = match request.action {
        BatchAction::Retry => Some(retry_mode(
            request.mode.unwrap_or_default(),
            request.block.clone(),
        )?),
        BatchAction::Cancel if request.mode.is_some() || request.block.is_some() => {
            return Err(ApiError::invalid(
                "`mode` and `block` are only taken with action `retry`",
            ));
        }
        BatchAction::Cancel => None,
    };
    let (runs, skipped) = select(&state, &request).await?;
    let mut items = Vec::with_capacity(runs.len());
    for run in runs {
        let mut item = BatchItem {
            id: run.id.to_string(),
            pipeline: run.pipeline.clone(),
            status: run.status.as_str().to_owned(),
            outcome: String::new(),
            error: None,
        };
        if request.dry_run {
            item.outcome = match request.action {
                BatchAction::Cancel => "would_cancel",
                BatchAction::Retry => "would_retry",
            }
            .to_owned();
            items.push(item);
            continue;
        }
        let done = match &mode {
            None => state
                .engine
                .cancel_run(&run.id, &caller.name)
                .await
                .map(|_| "cancelled"),
            Some(mode) => state
                .engine
                .retry_run(RetryRequest {
                    run_id: run.id.clone(),
                    mode: mode.clone(),
                    by: caller.name.clone(),
                    owner: None,
                    latest: false,
                })
                .await
                .map(|_| "retried"),
        };
        match done {
            Ok(outcome) => item.outcome = outcome.to_owned(),
            Err(error) => {
                let error = ApiError::from(error);
                if let Some(internal) = &error.internal {
                    tracing::error!(run = %run.id, "a batch action failed: {internal}");
                }
                item.outcome = "failed".to_owned();
                item.error = Some(error.detail());
            }
        }
        items.push(item);
    }
    Ok(Json(BatchResponse {
        action: request.action,
        dry_run: request.dry_run,
        runs: items,
        skipped,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cancel_applies_to_unfinished_runs_and_retry_to_finished_ones() {
        for status in RunStatus::ALL {
            assert_eq!(
                eligible(BatchAction::Cancel, status),
                !eligible(BatchAction::Retry, status)
            );
        }
        assert!(eligible(BatchAction::Cancel, RunStatus::Running));
        assert!(eligible(BatchAction::Retry, RunStatus::Failed));
    }
}
