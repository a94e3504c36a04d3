//! The queue page (`/queue`): queued tries in claim order with why each
//! waits, reordered by drag and drop or the move buttons (persisted through
//! `POST /api/queue/move`), selected and cancelled, refreshed live; and the
//! runs waiting to be admitted.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;

use super::{Layout, PageError, render};
use crate::WebState;
use crate::format;
use crate::session::Viewer;

/// Queued block runs shown; the rest are counted.
const SHOWN: usize = 200;

#[derive(Clone, Debug)]
struct QueuedRow {
    position: u32,
    block_run_id: String,
    run_id: String,
    short_run: String,
    pipeline: String,
    block: String,
    attempt: u32,
    priority: i32,
    queued: String,
    reason: String,
}

#[derive(Clone, Debug)]
struct WaitingRow {
    run_id: String,
    short_run: String,
    pipeline: String,
    created: String,
    reason: String,
}

#[derive(Template)]
#[template(path = "queue.html")]
struct QueuePage {
    layout: Layout,
    queued: Vec<QueuedRow>,
    more: usize,
    waiting: Vec<WaitingRow>,
    more_waiting: usize,
}

/// `GET /queue`.
pub async fn page(
    State(state): State<WebState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Response, PageError> {
    let view = state.engine.queue().await?;
    let queued = view
        .block_runs
        .iter()
        .take(SHOWN)
        .map(|entry| {
            let block_run = &entry.queued.block_run;
            QueuedRow {
                position: entry.position,
                block_run_id: block_run.id.to_string(),
                run_id: block_run.run_id.to_string(),
                short_run: block_run.run_id.0.chars().take(8).collect(),
                pipeline: entry.queued.pipeline.clone(),
                block: block_run.block.clone(),
                attempt: block_run.attempt,
                priority: block_run.priority,
                queued: format::maybe_time(block_run.queued_at),
                reason: entry.reason.to_string(),
            }
        })
        .collect();
    let waiting = view
        .runs
        .iter()
        .take(SHOWN)
        .map(|waiting| WaitingRow {
            run_id: waiting.run.id.to_string(),
            short_run: waiting.run.id.0.chars().take(8).collect(),
            pipeline: waiting.run.pipeline.clone(),
            created: format::time(waiting.run.created_at),
            reason: waiting.reason.to_string(),
        })
        .collect();
    let page = QueuePage {
        layout: Layout::new("Queue", "queue", &viewer, &state),
        queued,
        more: view.block_runs.len().saturating_sub(SHOWN),
        waiting,
        more_waiting: view.runs.len().saturating_sub(SHOWN),
    };
    render(&page)
}
