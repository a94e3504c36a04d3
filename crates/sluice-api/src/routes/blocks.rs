//! `/api/block_runs/{id}`: a block run with its tries, a page of a try's
//! log, its outputs with a data sample, and its data output as CSV.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use sluice_core::ids::BlockRunId;
use sluice_engine::Engine;
use sluice_engine::sluice_store::{BlockRunRecord, TryRecord};
use sluice_proto::{BlockOutputs, BlockRun, ErrorBody, LogLine, LogPage};

use crate::AppState;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::extract::{QueryParams, check_id};

/// Log chunks per page.
const DEFAULT_CHUNKS: u32 = 100;
const MAX_CHUNKS: u32 = 1_000;
/// Rows of a data sample.
const DEFAULT_SAMPLE: u32 = 10;
const MAX_SAMPLE: u32 = 1_000;

pub fn block_run_id(id: String) -> ApiResult<BlockRunId> {
    check_id("block run id", &id)?;
    Ok(BlockRunId(id))
}

/// A block run with its tries.
#[utoipa::path(get, path = "/api/block_runs/{id}", tag = "block_runs",
    params(("id" = String, Path, description = "The block run's id")),
    responses((status = 200, body = BlockRun), (status = 404, body = ErrorBody)))]
pub async fn show(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Json<BlockRun>> {
    let details = state.engine.block_run_details(&block_run_id(id)?).await?;
    Ok(Json(convert::block_run_details(details)))
}

/// The try a log request is about: the block run of the same block in
/// `attempt` (this one's when absent), try number `try_number` (the latest
/// when absent). `None` when the block run has no try yet.
pub async fn chosen_try(
    engine: &Engine,
    block_run: &BlockRunRecord,
    attempt: Option<u32>,
    try_number: Option<u32>,
) -> ApiResult<(BlockRunRecord, Option<TryRecord>)> {
    let block_run = match attempt {
        Some(attempt) if attempt != block_run.attempt => {
            engine
                .block_run_in_attempt(&block_run.run_id, attempt, &block_run.block)
                .await?
        }
        _ => block_run.clone(),
    };
    let tries = engine.block_run_details(&block_run.id).await?.tries;
    let chosen = match try_number {
        Some(number) => Some(
            tries
                .into_iter()
                .find(|attempt_try| attempt_try.try_number == number)
                .ok_or_else(|| {
                    ApiError::not_found(format!("block run {} has no try {number}", block_run.id))
                })?,
        ),
        None => tries
            .into_iter()
            .max_by_key(|attempt_try| attempt_try.try_number),
    };
    Ok((block_run, chosen))
}

/// A page of one try's log (already masked by the executor).
#[utoipa::path(get, path = "/api/block_runs/{id}/logs", tag = "block_runs",
    params(
        ("id" = String, Path, description = "The block run's id"),
        ("attempt" = Option<u32>, Query, description = "The same block in this attempt of the run"),
        ("try" = Option<u32>, Query, description = "This try number (default: the latest)"),
        ("after_seq" = Option<u64>, Query, description = "Only chunks after this one"),
        ("limit" = Option<u32>, Query, description = "Chunks per page, 1 to 1000 (default 100)")),
    responses((status = 200, body = LogPage), (status = 404, body = ErrorBody)))]
pub async fn logs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<LogPage>> {
    let mut params = QueryParams::parse(raw.as_deref())?;
    let attempt = params.parsed::<u32>("attempt", "an attempt number")?;
    let try_number = params.parsed::<u32>("try", "a try number")?;
    let after_seq = params.parsed::<u64>("after_seq", "a chunk number")?;
    let limit = params.limit("limit", DEFAULT_CHUNKS, MAX_CHUNKS)?;
    params.finish()?;

    let block_run = state.engine.get_block_run(&block_run_id(id)?).await?;
    let (block_run, chosen) = chosen_try(&state.engine, &block_run, attempt, try_number).await?;
    let Some(attempt_try) = chosen else {
        return Ok(Json(LogPage {
            block_run_id: block_run.id.0,
            try_id: None,
            try_number: None,
            try_status: None,
            lines: Vec::new(),
            next_after_seq: None,
        }));
    };
    let chunks = state
        .engine
        .read_log(&attempt_try.id, after_seq, limit)
        .await?;
    let next_after_seq = chunks.last().map(|chunk| chunk.seq).or(after_seq);
    let lines = chunks
        .into_iter()
        .flat_map(|chunk| {
            let seq = chunk.seq;
            chunk.lines.into_iter().map(move |line| LogLine {
                seq,
                at: line.at,
                stream: line.stream,
                text: line.text,
            })
        })
        .collect();
    Ok(Json(LogPage {
        block_run_id: block_run.id.0,
        try_id: Some(attempt_try.id.0),
        try_number: Some(attempt_try.try_number),
        try_status: Some(attempt_try.status.as_str().to_owned()),
        lines,
        next_after_seq,
    }))
}

/// A block run's outputs and a sample of its data output.
#[utoipa::path(get, path = "/api/block_runs/{id}/outputs", tag = "block_runs",
    params(
        ("id" = String, Path, description = "The block run's id"),
        ("sample_count" = Option<u32>, Query, description = "Rows of the data sample, 1 to 1000 (default 10)")),
    responses((status = 200, body = BlockOutputs), (status = 404, body = ErrorBody)))]
pub async fn outputs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<BlockOutputs>> {
    let mut params = QueryParams::parse(raw.as_deref())?;
    let sample = params.limit("sample_count", DEFAULT_SAMPLE, MAX_SAMPLE)?;
    params.finish()?;
    let output = state
        .engine
        .block_output(&block_run_id(id)?, Some(sample as usize))
        .await?;
    Ok(Json(convert::block_outputs(output)))
}

/// A block run's whole data output as CSV.
#[utoipa::path(get, path = "/api/block_runs/{id}/data.csv", tag = "block_runs",
    params(("id" = String, Path, description = "The block run's id")),
    responses(
        (status = 200, description = "The table with a header line", content_type = "text/csv", body = String),
        (status = 404, description = "No such block run, or it wrote no data output", body = ErrorBody)))]
pub async fn data_csv(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id = block_run_id(id)?;
    let output = state.engine.block_output(&id, None).await?;
    let Some(table) = output.data else {
        return Err(
            ApiError::not_found(format!("block run {id} wrote no data output"))
                .with_hint(format!("its outputs are at /api/block_runs/{id}/outputs")),
        );
    };
    let csv = table.to_csv()?;
    let file: String = output
        .block
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}.csv\""),
            ),
        ],
        csv,
    )
        .into_response())
}
