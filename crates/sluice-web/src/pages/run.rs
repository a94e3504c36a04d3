//! The run page (`/runs/{id}`): errors first, the graph with each block's
//! live status, the attempt switcher, the Gantt timeline of the shown
//! attempt, variables with their layers, who invoked the run, its actions,
//! and the block run panel (tries, live log, outputs, data sample,
//! artifacts), also served alone for the script (`/runs/{id}/panel`).

use askama::Template;
use axum::Extension;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use sluice_core::ids::{BlockRunId, RunId};
use sluice_engine::queries::{AttemptDetails, BlockRunDetails, RunDetails};
use sluice_engine::sluice_store::ArtifactRecord;

use super::{Layout, PageError, param, query_pairs, render};
use crate::WebState;
use crate::format::{self, elapsed, maybe_time};
use crate::session::Viewer;
use crate::svg;

/// Rows of the data sample.
const SAMPLE_ROWS: usize = 20;
/// Log chunks read per page when the raw log is assembled.
const RAW_CHUNKS: u32 = 1_000;
/// The most bytes of a raw log download.
const RAW_MAX_BYTES: usize = 32 * 1024 * 1024;

#[derive(Clone, Debug)]
struct VariableRow {
    name: String,
    value: String,
    layer: String,
    secret: bool,
}

#[derive(Clone, Debug)]
struct AttemptLink {
    number: u32,
    status: String,
    current: bool,
}

#[derive(Clone, Debug)]
struct ErrorLine {
    source: String,
    message: String,
}

#[derive(Clone, Debug)]
struct TryRow {
    number: u32,
    status: String,
    started: String,
    finished: String,
    duration: String,
    exit_code: String,
    executor: String,
    error: String,
}

#[derive(Clone, Debug)]
struct ArtifactRow {
    id: i64,
    name: String,
    size: String,
    bytes: u64,
    sha256: String,
}

impl ArtifactRow {
    fn new(artifact: &ArtifactRecord) -> ArtifactRow {
        ArtifactRow {
            id: artifact.id,
            name: artifact.name.clone(),
            size: format::size(artifact.size),
            bytes: artifact.size,
            sha256: artifact.sha256.clone(),
        }
    }
}

/// The block run panel.
#[derive(Clone, Debug)]
pub struct BlockPanel {
    block: String,
    block_run_id: String,
    status: String,
    attempt: u32,
    reused_from: Option<u32>,
    wait_reason: Option<String>,
    error: Option<String>,
    tries: Vec<TryRow>,
    outputs: Vec<(String, String)>,
    data_error: Option<String>,
    data_format: Option<String>,
    data_columns: Vec<String>,
    data_rows: Vec<Vec<String>>,
    data_truncated: bool,
    artifacts: Vec<ArtifactRow>,
}

#[derive(Template)]
#[template(path = "run.html")]
struct RunPage {
    layout: Layout,
    id: String,
    pipeline: String,
    status: String,
    terminal: bool,
    shown_attempt: u32,
    latest_attempt: u32,
    attempt_mode: String,
    attempts: Vec<AttemptLink>,
    errors: Vec<ErrorLine>,
    dag: String,
    gantt: String,
    variables: Vec<VariableRow>,
    invoked_kind: String,
    invoked_name: String,
    invoked_actor: String,
    parent_run: Option<String>,
    tags: String,
    created: String,
    started: String,
    finished: String,
    duration: String,
    flags: Vec<&'static str>,
    panel: Option<BlockPanel>,
}

#[derive(Template)]
#[template(path = "panel.html")]
struct PanelFragment {
    panel: BlockPanel,
}

fn shown_attempt<'a>(
    details: &'a RunDetails,
    pairs: &[(String, String)],
) -> Result<&'a AttemptDetails, PageError> {
    let wanted = match param(pairs, "attempt") {
        Some(text) => text.parse::<u32>().map_err(|_| {
            PageError::BadRequest(format!("`attempt` is `{text}`, not an attempt number"))
        })?,
        None => details.run.attempt,
    };
    details
        .attempts
        .iter()
        .find(|attempt| attempt.attempt.attempt == wanted)
        .ok_or_else(|| {
            PageError::NotFound(format!(
                "run {} has no attempt {wanted}; it has {} attempt(s)",
                details.run.id, details.run.attempt
            ))
        })
}

async fn panel_of(
    state: &WebState,
    details: &RunDetails,
    attempt: &AttemptDetails,
    block: &str,
) -> Result<BlockPanel, PageError> {
    let block_run: &BlockRunDetails = attempt
        .block_runs
        .iter()
        .find(|block_run| block_run.block_run.block == block)
        .ok_or_else(|| {
            PageError::NotFound(format!(
                "attempt {} of run {} has no block `{block}`",
                attempt.attempt.attempt, details.run.id
            ))
        })?;
    let record = &block_run.block_run;
    let now = state.engine.clock().now();
    let tries = block_run
        .tries
        .iter()
        .map(|attempt_try| TryRow {
            number: attempt_try.try_number,
            status: attempt_try.status.as_str().to_owned(),
            started: format::time(attempt_try.started_at),
            finished: maybe_time(attempt_try.finished_at),
            duration: elapsed(Some(attempt_try.started_at), attempt_try.finished_at, now),
            exit_code: attempt_try
                .exit_code
                .map(|code| code.to_string())
                .unwrap_or_default(),
            executor: attempt_try.executor.to_string(),
            error: attempt_try.error.clone().unwrap_or_default(),
        })
        .collect();
    let (mut data_error, mut data_format, mut data_columns, mut data_rows, mut data_truncated) =
        (None, None, Vec::new(), Vec::new(), false);
    if record.data.is_some() {
        match state
            .engine
            .block_output(&record.id, Some(SAMPLE_ROWS))
            .await
        {
            Ok(output) => {
                data_format = output.data_format;
                if let Some(table) = output.data {
                    data_columns = table.columns;
                    data_rows = table.rows;
                    data_truncated = table.truncated;
                }
            }
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), block_run = %record.id, "the data sample could not be read");
                data_error = Some(format!("The data output could not be read: {error}"));
            }
        }
    }
    let artifacts = details
        .artifacts
        .iter()
        .filter(|artifact| artifact.block_run_id == record.id)
        .map(ArtifactRow::new)
        .collect();
    Ok(BlockPanel {
        block: record.block.clone(),
        block_run_id: record.id.to_string(),
        status: record.status.as_str().to_owned(),
        attempt: record.attempt,
        reused_from: record.reused_from_attempt,
        wait_reason: block_run.queue_reason.as_ref().map(ToString::to_string),
        error: record.error.clone(),
        tries,
        outputs: record
            .outputs
            .iter()
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect(),
        data_error,
        data_format,
        data_columns,
        data_rows,
        data_truncated,
        artifacts,
    })
}

fn errors_of(details: &RunDetails, attempt: &AttemptDetails) -> Vec<ErrorLine> {
    let mut errors = Vec::new();
    if let Some(error) = &details.run.error {
        errors.push(ErrorLine {
            source: "run".to_owned(),
            message: error.clone(),
        });
    }
    if let Some(error) = &attempt.attempt.error
        && details.run.error.as_ref() != Some(error)
    {
        errors.push(ErrorLine {
            source: format!("attempt {}", attempt.attempt.attempt),
            message: error.clone(),
        });
    }
    for block_run in &attempt.block_runs {
        if let Some(error) = &block_run.block_run.error {
            errors.push(ErrorLine {
                source: format!("block {}", block_run.block_run.block),
                message: error.clone(),
            });
        }
    }
    errors
}

/// `GET /runs/{id}`.
pub async fn page(
    State(state): State<WebState>,
    Extension(viewer): Extension<Viewer>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let pairs = query_pairs(raw.as_deref())?;
    let details = state.engine.run_details(&run_id(&id)?).await?;
    let attempt = shown_attempt(&details, &pairs)?;
    let run = &details.run;
    let now = state.engine.clock().now();

    // The graph comes from the pipeline version the run is pinned to; when
    // that version is gone, the block runs alone give the nodes.
    let spec = state
        .engine
        .pinned_pipeline(&run.pipeline, &run.pipeline_version)
        .await
        .ok();
    let status_of = |block: &str| {
        attempt
            .block_runs
            .iter()
            .find(|block_run| block_run.block_run.block == block)
            .map_or_else(
                || "none".to_owned(),
                |block_run| block_run.block_run.status.as_str().to_owned(),
            )
    };
    let nodes: Vec<svg::Node> = match &spec {
        Some(spec) => spec
            .blocks
            .iter()
            .map(|block| svg::Node {
                block: block.id.clone(),
                needs: block.needs.clone(),
                status: status_of(&block.id),
            })
            .collect(),
        None => attempt
            .block_runs
            .iter()
            .map(|block_run| svg::Node {
                block: block_run.block_run.block.clone(),
                needs: Vec::new(),
                status: block_run.block_run.status.as_str().to_owned(),
            })
            .collect(),
    };
    let selected = param(&pairs, "block");
    let bars: Vec<svg::Bar> = nodes
        .iter()
        .filter_map(|node| {
            attempt
                .block_runs
                .iter()
                .find(|block_run| block_run.block_run.block == node.block)
        })
        .map(|block_run| svg::Bar {
            block: block_run.block_run.block.clone(),
            status: block_run.block_run.status.as_str().to_owned(),
            started_at: block_run.block_run.started_at,
            finished_at: block_run.block_run.finished_at,
        })
        .collect();
    let panel = match &selected {
        Some(block) => Some(panel_of(&state, &details, attempt, block).await?),
        None => None,
    };
    let mut flags = Vec::new();
    if run.timed_out {
        flags.push("timed out");
    }
    if run.sla_missed {
        flags.push("SLA missed");
    }
    if run.cancel_requested_at.is_some() && !run.status.is_terminal() {
        flags.push("cancel requested");
    }
    let page = RunPage {
        layout: Layout::new(format!("Run {}", run.id), "runs", &viewer, &state),
        id: run.id.to_string(),
        pipeline: run.pipeline.clone(),
        status: run.status.as_str().to_owned(),
        terminal: run.status.is_terminal(),
        shown_attempt: attempt.attempt.attempt,
        latest_attempt: run.attempt,
        attempt_mode: match &attempt.attempt.from_block {
            Some(block) => format!("{} from {block}", attempt.attempt.mode),
            None => attempt.attempt.mode.clone(),
        },
        attempts: details
            .attempts
            .iter()
            .map(|other| AttemptLink {
                number: other.attempt.attempt,
                status: other.attempt.status.as_str().to_owned(),
                current: other.attempt.attempt == attempt.attempt.attempt,
            })
            .collect(),
        errors: errors_of(&details, attempt),
        dag: svg::dag(&nodes, selected.as_deref()),
        gantt: svg::gantt(&bars, now),
        variables: run
            .variables
            .0
            .iter()
            .map(|(name, variable)| VariableRow {
                name: name.clone(),
                value: format::value(&variable.value),
                layer: variable.layer.as_str().to_owned(),
                secret: variable.secret,
            })
            .collect(),
        invoked_kind: run.invoked_by.kind.clone(),
        invoked_name: run.invoked_by.name.clone().unwrap_or_default(),
        invoked_actor: run.invoked_by.actor.clone().unwrap_or_default(),
        parent_run: run
            .invoked_by
            .parent_run_id
            .as_ref()
            .map(ToString::to_string),
        tags: run.tags.join(", "),
        created: format::time(run.created_at),
        started: maybe_time(run.started_at),
        finished: maybe_time(run.finished_at),
        duration: elapsed(run.started_at, run.finished_at, now),
        flags,
        panel,
    };
    render(&page)
}

/// `GET /runs/{id}/panel?block=B&attempt=N`: the block run panel alone.
pub async fn panel(
    State(state): State<WebState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let pairs = query_pairs(raw.as_deref())?;
    let details = state.engine.run_details(&run_id(&id)?).await?;
    let attempt = shown_attempt(&details, &pairs)?;
    let block = param(&pairs, "block")
        .ok_or_else(|| PageError::BadRequest("name the block with `?block=NAME`".to_owned()))?;
    let panel = panel_of(&state, &details, attempt, &block).await?;
    render(&PanelFragment { panel })
}

/// `GET /block_runs/{id}/log.txt[?try=N]`: a try's whole log as text
/// (the latest try by default), capped at 32 MiB.
pub async fn raw_log(
    State(state): State<WebState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let pairs = query_pairs(raw.as_deref())?;
    if !valid_id(&id) {
        return Err(PageError::NotFound(format!("no block run with id `{id}`")));
    }
    let details = state
        .engine
        .block_run_details(&BlockRunId(id.clone()))
        .await?;
    let wanted =
        match param(&pairs, "try") {
            Some(text) => Some(text.parse::<u32>().map_err(|_| {
                PageError::BadRequest(format!("`try` is `{text}`, not a try number"))
            })?),
            None => None,
        };
    let chosen = match wanted {
        Some(number) => details
            .tries
            .iter()
            .find(|attempt_try| attempt_try.try_number == number),
        None => details
            .tries
            .iter()
            .max_by_key(|attempt_try| attempt_try.try_number),
    };
    let mut text = String::new();
    if let Some(attempt_try) = chosen {
        let mut after = None;
        'pages: loop {
            let chunks = state
                .engine
                .read_log(&attempt_try.id, after, RAW_CHUNKS)
                .await?;
            let Some(last) = chunks.last() else { break };
            after = Some(last.seq);
            let full = chunks.len() as u32 == RAW_CHUNKS;
            for chunk in chunks {
                for line in chunk.lines {
                    if text.len() + line.text.len() + 1 > RAW_MAX_BYTES {
                        text.push_str("[the log continues; this download stops at 32 MiB]\n");
                        break 'pages;
                    }
                    text.push_str(&line.text);
                    text.push('\n');
                }
            }
            if !full {
                break;
            }
        }
    } else if wanted.is_some() {
        return Err(PageError::NotFound(format!(
            "block run {id} has no such try"
        )));
    }
    let file = format!(
        "{}-{}.log",
        details.block_run.block.replace(
            |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_',
            "_"
        ),
        details.block_run.attempt
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        text,
    )
        .into_response())
}

fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 100
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn run_id(id: &str) -> Result<RunId, PageError> {
    if valid_id(id) {
        Ok(RunId(id.to_owned()))
    } else {
        Err(PageError::NotFound(format!("no run with id `{id}`")))
    }
}
