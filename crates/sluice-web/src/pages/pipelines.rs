//! The pipelines page (`/pipelines`: each with its last status, next fire
//! time and a duration sparkline) and a pipeline's page
//! (`/pipelines/{name}`: its graph, triggers with upcoming fires, its runs
//! with batch actions, and the "Run now" form).

use std::collections::BTreeMap;

use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use sluice_engine::sluice_store::{InvokedBy, RunQuery};
use sluice_engine::{LoadedPipeline, TriggerRequest};

use super::{Layout, PageError, RunFilters, RunRow, query_pairs, render};
use crate::WebState;
use crate::format::{self, maybe_time};
use crate::session::{Viewer, form_fields};
use crate::svg;

/// Runs a sparkline shows.
const SPARK_RUNS: u32 = 20;
/// Pipelines listed at most.
const MAX_PIPELINES: usize = 500;
/// Upcoming fires shown per trigger.
const NEXT_FIRES: usize = 3;

#[derive(Clone, Debug)]
struct PipelineRow {
    name: String,
    description: String,
    blocks: usize,
    last_status: String,
    last_run: Option<String>,
    last_created: String,
    next_fire: String,
    sparkline: String,
}

#[derive(Template)]
#[template(path = "pipelines.html")]
struct PipelinesPage {
    layout: Layout,
    pipelines: Vec<PipelineRow>,
    more: usize,
}

/// `GET /pipelines`.
pub async fn list(
    State(state): State<WebState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Response, PageError> {
    let project = state.engine.project();
    let triggers = state.engine.list_triggers(1).await?;
    let mut next_fires: BTreeMap<&str, jiff::Timestamp> = BTreeMap::new();
    for trigger in triggers.iter().filter(|t| t.enabled && !t.paused) {
        if let Some(fire) = trigger.next_fires.first() {
            let entry = next_fires
                .entry(trigger.pipeline.as_str())
                .or_insert(fire.scheduled_for);
            *entry = (*entry).min(fire.scheduled_for);
        }
    }
    let mut pipelines = Vec::new();
    for loaded in project.pipelines.values().take(MAX_PIPELINES) {
        let spec = &loaded.spec;
        let recent = state
            .engine
            .list_runs(&RunQuery {
                pipelines: vec![spec.name.clone()],
                limit: SPARK_RUNS,
                ..RunQuery::default()
            })
            .await?;
        let last = recent.runs.first();
        let durations: Vec<i64> = recent
            .runs
            .iter()
            .rev()
            .filter_map(|run| {
                Some(run.finished_at?.duration_since(run.started_at?).as_millis() as i64)
            })
            .collect();
        pipelines.push(PipelineRow {
            name: spec.name.clone(),
            description: spec.description.clone().unwrap_or_default(),
            blocks: spec.blocks.len(),
            last_status: last
                .map_or_else(|| "none".to_owned(), |run| run.status.as_str().to_owned()),
            last_run: last.map(|run| run.id.to_string()),
            last_created: maybe_time(last.map(|run| run.created_at)),
            next_fire: maybe_time(next_fires.get(spec.name.as_str()).copied()),
            sparkline: svg::sparkline(
                &durations,
                &format!(
                    "Durations of the last {} finished runs of {}",
                    durations.len(),
                    spec.name
                ),
            ),
        });
    }
    let page = PipelinesPage {
        layout: Layout::new("Pipelines", "pipelines", &viewer, &state),
        more: project.pipelines.len().saturating_sub(MAX_PIPELINES),
        pipelines,
    };
    render(&page)
}

#[derive(Clone, Debug)]
struct TriggerRow {
    name: String,
    kind: String,
    state: String,
    last_fired: String,
    next_fires: Vec<String>,
}

#[derive(Clone, Debug)]
struct VariableField {
    name: String,
    default: String,
    required: bool,
    secret: bool,
    description: String,
}

#[derive(Template)]
#[template(path = "pipeline.html")]
struct PipelinePage {
    layout: Layout,
    name: String,
    description: String,
    file: String,
    dag: String,
    triggers: Vec<TriggerRow>,
    variables: Vec<VariableField>,
    runs: Vec<RunRow>,
    next_page: Option<String>,
    error: Option<String>,
}

fn find(state: &WebState, name: &str) -> Result<LoadedPipeline, PageError> {
    let project = state.engine.project();
    project.pipeline(name).cloned().ok_or_else(|| {
        PageError::NotFound(format!(
            "no pipeline named `{name}`; the pipelines are listed at /pipelines"
        ))
    })
}

async fn pipeline_page(
    state: &WebState,
    viewer: &Viewer,
    name: &str,
    raw: Option<&str>,
    error: Option<String>,
) -> Result<Response, PageError> {
    let loaded = find(state, name)?;
    let spec = &loaded.spec;
    let pairs = query_pairs(raw)?;
    let mut filters = RunFilters::from_pairs(&pairs);
    filters.pipeline = spec.name.clone();
    let query = filters.query().map_err(PageError::BadRequest)?;
    let now = state.engine.clock().now();
    let page = state.engine.list_runs(&query).await?;
    let nodes: Vec<svg::Node> = spec
        .blocks
        .iter()
        .map(|block| svg::Node {
            block: block.id.clone(),
            needs: block.needs.clone(),
            status: "none".to_owned(),
        })
        .collect();
    let triggers = state
        .engine
        .list_triggers(NEXT_FIRES)
        .await?
        .into_iter()
        .filter(|trigger| trigger.pipeline == spec.name)
        .map(|trigger| TriggerRow {
            state: if !trigger.enabled {
                "disabled".to_owned()
            } else if trigger.paused {
                "paused".to_owned()
            } else {
                "active".to_owned()
            },
            name: trigger.trigger,
            kind: trigger.kind,
            last_fired: maybe_time(trigger.last_fired_at),
            next_fires: trigger
                .next_fires
                .iter()
                .map(|fire| format::time(fire.scheduled_for))
                .collect(),
        })
        .collect();
    let variables = spec
        .variables
        .iter()
        .map(|(name, variable)| VariableField {
            name: name.clone(),
            default: if variable.secret {
                String::new()
            } else {
                variable
                    .default
                    .as_ref()
                    .map(format::value)
                    .unwrap_or_default()
            },
            required: variable.required,
            secret: variable.secret,
            description: variable.description.clone().unwrap_or_default(),
        })
        .collect();
    let failed = error.is_some();
    let page = PipelinePage {
        layout: Layout::new(
            format!("Pipeline {}", spec.name),
            "pipelines",
            viewer,
            state,
        ),
        name: spec.name.clone(),
        description: spec.description.clone().unwrap_or_default(),
        file: spec.file.clone(),
        dag: svg::dag(&nodes, None),
        triggers,
        variables,
        runs: page.runs.iter().map(|run| RunRow::new(run, now)).collect(),
        next_page: page.next_cursor.as_ref().map(|cursor| {
            let mut own = filters.clone();
            own.pipeline.clear();
            own.next_page(cursor)
        }),
        error,
    };
    let mut response = render(&page)?;
    if failed {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    Ok(response)
}

/// `GET /pipelines/{name}`.
pub async fn page(
    State(state): State<WebState>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    pipeline_page(&state, &viewer, &name, raw.as_deref(), None).await
}

/// `POST /pipelines/{name}/run`: the "Run now" form. Starts a run with the
/// form's variables (each `var-NAME`; an empty field leaves the default)
/// and goes to the new run's page.
pub async fn run_now(
    State(state): State<WebState>,
    Extension(viewer): Extension<Viewer>,
    Path(name): Path<String>,
    body: Bytes,
) -> Result<Response, PageError> {
    let fields = form_fields(&body)?;
    viewer.check_form(&state, &fields).await?;
    if state.auth && !viewer.can_operate() {
        return Err(PageError::Forbidden(format!(
            "`{}` has the role `{}`; starting a run needs `operator`",
            viewer.name, viewer.role
        )));
    }
    let loaded = find(&state, &name)?;
    let mut variables = BTreeMap::new();
    for (key, value) in &fields {
        let Some(variable) = key.strip_prefix("var-") else {
            continue;
        };
        if value.is_empty() {
            continue;
        }
        let Some(declared) = loaded.spec.variables.get(variable) else {
            return Err(PageError::BadRequest(format!(
                "pipeline `{name}` has no variable `{variable}`"
            )));
        };
        // A value is typed like its default: numbers and booleans stay
        // numbers and booleans when they parse as such.
        let typed = match &declared.default {
            Some(serde_json::Value::Number(_)) | Some(serde_json::Value::Bool(_)) => {
                serde_json::from_str(value)
                    .unwrap_or_else(|_| serde_json::Value::String(value.clone()))
            }
            _ => serde_json::Value::String(value.clone()),
        };
        variables.insert(variable.to_owned(), typed);
    }
    let created = state
        .engine
        .trigger_run(TriggerRequest {
            pipeline: name.clone(),
            variables,
            trigger_variables: BTreeMap::new(),
            priority: None,
            invoked_by: InvokedBy {
                kind: "manual".to_owned(),
                name: Some("web".to_owned()),
                actor: Some(viewer.name.clone()),
                parent_run_id: None,
            },
            idempotency_key: None,
            owner: None,
        })
        .await;
    match created {
        Ok(run_id) => {
            state.engine.wake();
            Ok(Redirect::to(&format!("/runs/{run_id}")).into_response())
        }
        Err(error) => {
            let error = PageError::from(error);
            match error {
                PageError::BadRequest(message) | PageError::Conflict(message) => {
                    pipeline_page(&state, &viewer, &name, None, Some(message)).await
                }
                other => Err(other),
            }
        }
    }
}
