//! `/api/pipelines`: the project's pipelines, and triggering a run of one.

use std::collections::BTreeMap;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use sluice_core::schedule::Schedule;
use sluice_core::spec::{BlockKind, Pipeline, TriggerSpec};
use sluice_engine::project::sha256_hex;
use sluice_engine::sluice_store::{InvokedBy, RunQuery};
use sluice_engine::{LoadedPipeline, TriggerRequest};
use sluice_proto::{
    BlockDeclaration, ErrorBody, LastRun, PipelineDetails, PipelineList, PipelineSummary,
    ProjectFileEntry, ProjectVersion, RunEnvelope, TriggerDeclaration, TriggerRunRequest,
    VariableDeclaration,
};

use crate::AppState;
use crate::auth::Caller;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, check_id};

/// The header that makes triggering a run idempotent.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
const MAX_IDEMPOTENCY_KEY_LEN: usize = 255;

/// When an enabled trigger with a schedule (`schedule`, `every`, `once`)
/// fires next after `now`, within its `start`/`end`.
pub fn trigger_next_fire(trigger: &TriggerSpec, now: jiff::Timestamp) -> Option<jiff::Timestamp> {
    if !trigger.enabled {
        return None;
    }
    let schedule = Schedule::from_kind(&trigger.kind).ok().flatten()?;
    let next = match trigger.start {
        Some(start) if start > now => schedule.at_or_after(start)?,
        _ => schedule.next_after(now)?,
    };
    match trigger.end {
        Some(end) if next > end => None,
        _ => Some(next),
    }
}

/// When the pipeline's first enabled schedule fires next.
pub fn next_fire_at(spec: &Pipeline, now: jiff::Timestamp) -> Option<jiff::Timestamp> {
    spec.triggers
        .iter()
        .filter_map(|trigger| trigger_next_fire(trigger, now))
        .min()
}

fn summary(
    loaded: &LoadedPipeline,
    last_run: Option<LastRun>,
    now: jiff::Timestamp,
) -> PipelineSummary {
    let spec = &loaded.spec;
    PipelineSummary {
        last_run,
        next_fire_at: next_fire_at(spec, now),
        name: spec.name.clone(),
        description: spec.description.clone(),
        tags: spec.tags.clone(),
        version: loaded.version.clone(),
        blocks: spec.blocks.len(),
        triggers: spec.triggers.len(),
    }
}

fn details(loaded: &LoadedPipeline, now: jiff::Timestamp) -> PipelineDetails {
    let spec: &Pipeline = &loaded.spec;
    PipelineDetails {
        name: spec.name.clone(),
        file: spec.file.clone(),
        description: spec.description.clone(),
        tags: spec.tags.clone(),
        version: loaded.version.clone(),
        priority: spec.priority,
        concurrency: spec.concurrency.map(|limit| limit.get()),
        block_concurrency: spec.block_concurrency.map(|limit| limit.get()),
        timeout: spec.timeout.map(|timeout| timeout.to_string()),
        sla: spec.sla.map(|sla| sla.to_string()),
        variables: spec
            .variables
            .iter()
            .map(|(name, variable)| VariableDeclaration {
                name: name.clone(),
                default: match (&variable.default, variable.secret) {
                    (Some(_), true) => Some(serde_json::Value::String(
                        sluice_core::vars::MASK.to_owned(),
                    )),
                    (default, false) => default.clone(),
                    (None, true) => None,
                },
                secret: variable.secret,
                required: variable.required,
                description: variable.description.clone(),
            })
            .collect(),
        blocks: spec
            .blocks
            .iter()
            .map(|block| BlockDeclaration {
                id: block.id.clone(),
                kind: match block.kind {
                    BlockKind::Run { .. } => "run",
                    BlockKind::Script { .. } => "script",
                    BlockKind::Pipeline { .. } => "pipeline",
                }
                .to_owned(),
                needs: block.needs.clone(),
                condition: block.condition.as_ref().map(ToString::to_string),
                max_tries: block.retries.max_tries(),
                timeout: block.timeout.map(|timeout| timeout.to_string()),
                labels: block.labels.clone(),
                artifacts: block.artifacts.clone(),
            })
            .collect(),
        triggers: spec
            .triggers
            .iter()
            .map(|trigger| TriggerDeclaration {
                name: trigger.name.clone(),
                kind: trigger.kind.key().to_owned(),
                enabled: trigger.enabled,
                next_fire_at: trigger_next_fire(trigger, now),
            })
            .collect(),
    }
}

fn find(state: &AppState, name: &str) -> ApiResult<LoadedPipeline> {
    check_id("pipeline name", name)?;
    let project = state.engine.project();
    project.pipeline(name).cloned().ok_or_else(|| {
        let known: Vec<&str> = project.pipelines.keys().map(String::as_str).collect();
        ApiError::not_found(format!("no pipeline named `{name}`")).with_hint(format!(
            "the pipelines are: {}",
            if known.is_empty() {
                "none".to_owned()
            } else {
                known.join(", ")
            }
        ))
    })
}

/// The project's pipelines, by name.
#[utoipa::path(get, path = "/api/pipelines", tag = "pipelines", responses(
    (status = 200, body = PipelineList),
    (status = 401, body = ErrorBody), (status = 403, body = ErrorBody)))]
pub async fn list(State(state): State<AppState>) -> ApiResult<Json<PipelineList>> {
    let project = state.engine.project();
    let mut pipelines = Vec::with_capacity(project.pipelines.len());
    for loaded in project.pipelines.values() {
        let newest = state
            .engine
            .list_runs(&RunQuery {
                pipelines: vec![loaded.spec.name.clone()],
                limit: 1,
                ..RunQuery::default()
            })
            .await?;
        let last_run = newest.runs.into_iter().next().map(|run| LastRun {
            id: run.id.0,
            status: run.status.as_str().to_owned(),
            created_at: run.created_at,
            finished_at: run.finished_at,
        });
        pipelines.push(summary(loaded, last_run, state.engine.clock().now()));
    }
    Ok(Json(PipelineList { pipelines }))
}

/// One pipeline: variables (secret defaults masked), blocks, triggers.
#[utoipa::path(get, path = "/api/pipelines/{name}", tag = "pipelines",
    params(("name" = String, Path, description = "The pipeline's name")),
    responses((status = 200, body = PipelineDetails), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<Json<PipelineDetails>> {
    Ok(Json(details(
        &find(&state, &name)?,
        state.engine.clock().now(),
    )))
}

/// The files of a project version (what a run is pinned to), by path.
#[utoipa::path(get, path = "/api/projects/{version}", tag = "pipelines",
    params(("version" = String, Path, description = "The version: a run's `project_version`")),
    responses((status = 200, body = ProjectVersion), (status = 404, body = ErrorBody)))]
pub async fn project_version(
    State(state): State<AppState>,
    Path(version): Path<String>,
) -> ApiResult<Json<ProjectVersion>> {
    Ok(Json(project_files(&state, &version).await?))
}

/// A project version as the API shows it.
pub async fn project_files(state: &AppState, version: &str) -> ApiResult<ProjectVersion> {
    check_digest("project version", version)?;
    let files = state.engine.project_files(version).await?;
    Ok(ProjectVersion {
        version: version.to_owned(),
        files: files
            .into_iter()
            .map(|file| ProjectFileEntry {
                path: file.path,
                sha256: file.sha256,
                size: file.size,
                executable: file.executable,
            })
            .collect(),
    })
}

/// Refuses anything but a lowercase hex SHA-256 with a 400 saying so.
pub fn check_digest(what: &str, text: &str) -> ApiResult<()> {
    let valid = text.len() == 64
        && text
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
    if valid {
        Ok(())
    } else {
        Err(ApiError::bad_request(format!(
            "`{text}` is not a {what}: expected 64 lowercase hex digits (a SHA-256)"
        )))
    }
}

/// Starts a run. With an `Idempotency-Key`, a replay of the same request
/// returns the same run; the same key with another body is refused (422).
#[utoipa::path(post, path = "/api/pipelines/{name}/runs", tag = "pipelines",
    params(
        ("name" = String, Path, description = "The pipeline's name"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes the request safe to repeat")),
    request_body = TriggerRunRequest,
    responses(
        (status = 201, description = "The run (the same run on a replay)", body = RunEnvelope),
        (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 422, description = "Unknown or missing variables, or a reused key", body = ErrorBody)))]
pub async fn trigger(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
    headers: HeaderMap,
    ApiJson(body): ApiJson<TriggerRunRequest>,
) -> ApiResult<Response> {
    find(&state, &name)?;
    let key = idempotency_key(&headers)?;
    if let Some(key) = &key {
        // The parsed request, re-serialized with sorted keys, so a replay
        // that only differs in whitespace or key order is the same request.
        let canonical = serde_json::to_vec(&body)
            .map_err(|error| ApiError::internal(format!("cannot encode the request: {error}")))?;
        state
            .engine
            .reserve_idempotency_key(&name, key, &sha256_hex(&canonical))
            .await?;
    }
    let run_id = state
        .engine
        .trigger_run(TriggerRequest {
            pipeline: name,
            variables: body.variables.into_iter().collect::<BTreeMap<_, _>>(),
            trigger_variables: BTreeMap::new(),
            priority: body.priority,
            invoked_by: InvokedBy {
                kind: "api".to_owned(),
                name: None,
                actor: Some(caller.name.clone()),
                parent_run_id: None,
            },
            idempotency_key: key,
            owner: None,
        })
        .await?;
    let run = state.engine.get_run(&run_id).await?;
    let location = format!("/api/pipeline_runs/{run_id}");
    let mut response = (StatusCode::CREATED, Json(convert::envelope(run))).into_response();
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

pub fn idempotency_key(headers: &HeaderMap) -> ApiResult<Option<String>> {
    let Some(value) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .ok()
        .map(str::trim)
        .filter(|key| {
            !key.is_empty()
                && key.len() <= MAX_IDEMPOTENCY_KEY_LEN
                && key.chars().all(|c| c.is_ascii_graphic())
        })
        .ok_or_else(|| {
            ApiError::bad_request("the Idempotency-Key header is not a valid key").with_hint(
                format!("use 1 to {MAX_IDEMPOTENCY_KEY_LEN} printable ASCII characters without spaces, such as a UUID"),
            )
        })?;
    Ok(Some(key.to_owned()))
}
