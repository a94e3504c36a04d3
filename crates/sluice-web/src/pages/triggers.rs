//! The triggers page (`/triggers`): every trigger with its state, last fire
//! and next fire times, and the newest backfills.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;

use super::{Layout, PageError, render};
use crate::WebState;
use crate::format::{self, maybe_time};
use crate::session::Viewer;

/// Next fires shown per trigger.
const NEXT_FIRES: usize = 3;
/// Backfills listed, newest first.
const BACKFILLS: u32 = 50;

#[derive(Clone, Debug)]
struct TriggerRow {
    pipeline: String,
    name: String,
    kind: String,
    state: String,
    last_fired: String,
    last_run: Option<String>,
    next_fires: Vec<String>,
}

#[derive(Clone, Debug)]
struct BackfillRow {
    id: String,
    pipeline: String,
    trigger: String,
    from: String,
    to: String,
    status: String,
    max_concurrent: u32,
    created: String,
    created_by: String,
}

#[derive(Template)]
#[template(path = "triggers.html")]
struct TriggersPage {
    layout: Layout,
    triggers: Vec<TriggerRow>,
    backfills: Vec<BackfillRow>,
}

/// `GET /triggers`.
pub async fn page(
    State(state): State<WebState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Response, PageError> {
    let triggers = state
        .engine
        .list_triggers(NEXT_FIRES)
        .await?
        .into_iter()
        .map(|trigger| TriggerRow {
            state: if !trigger.enabled {
                "disabled".to_owned()
            } else if trigger.paused {
                format!(
                    "paused{}",
                    trigger
                        .paused_by
                        .as_deref()
                        .map(|by| format!(" by {by}"))
                        .unwrap_or_default()
                )
            } else {
                "active".to_owned()
            },
            pipeline: trigger.pipeline,
            name: trigger.trigger,
            kind: trigger.kind,
            last_fired: maybe_time(trigger.last_fired_at),
            last_run: trigger.last_run_id,
            next_fires: trigger
                .next_fires
                .iter()
                .map(|fire| format::time(fire.scheduled_for))
                .collect(),
        })
        .collect();
    let backfills = state
        .engine
        .list_backfills(BACKFILLS)
        .await?
        .into_iter()
        .map(|backfill| BackfillRow {
            id: backfill.id.to_string(),
            pipeline: backfill.pipeline,
            trigger: backfill.trigger,
            from: format::time(backfill.from),
            to: format::time(backfill.to),
            status: backfill.status.as_str().to_owned(),
            max_concurrent: backfill.max_concurrent,
            created: format::time(backfill.created_at),
            created_by: backfill.created_by,
        })
        .collect();
    render(&TriggersPage {
        layout: Layout::new("Triggers", "triggers", &viewer, &state),
        triggers,
        backfills,
    })
}
