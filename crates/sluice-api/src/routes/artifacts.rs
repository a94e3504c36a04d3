//! `/api/artifacts`: files left by block runs, searchable across all runs,
//! and their download. A download re-checks the content's SHA-256 against
//! the recorded one and sends it as `X-Sluice-Sha256`, so a client can
//! verify what it received.

use axum::Json;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use sluice_core::ids::RunId;
use sluice_engine::sluice_store::ArtifactQuery;
use sluice_proto::{ArtifactList, ErrorBody};

use crate::AppState;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::extract::{QueryParams, check_id};

const DEFAULT_PAGE: u32 = 100;
const MAX_PAGE: u32 = 1_000;

/// The header carrying a downloaded artifact's SHA-256.
pub const SHA256_HEADER: &str = "x-sluice-sha256";

/// Artifacts matching every given filter, newest first.
#[utoipa::path(get, path = "/api/artifacts", tag = "artifacts",
    params(
        ("run" = Option<String>, Query, description = "Only artifacts of this run"),
        ("pipeline" = Option<String>, Query, description = "Only artifacts of this pipeline's runs"),
        ("name" = Option<String>, Query, description = "Only artifacts whose name contains this text"),
        ("before_id" = Option<i64>, Query, description = "Only artifacts older than this one (the previous page's `next_before_id`)"),
        ("limit" = Option<u32>, Query, description = "Artifacts per page, 1 to 1000 (default 100)")),
    responses((status = 200, body = ArtifactList), (status = 400, body = ErrorBody)))]
pub async fn list(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<Json<ArtifactList>> {
    let mut params = QueryParams::parse(raw.as_deref())?;
    let run = params.one("run")?;
    let pipeline = params.one("pipeline")?;
    let name = params.one("name")?;
    let before_id = params.parsed::<i64>("before_id", "an artifact id")?;
    let limit = params.limit("limit", DEFAULT_PAGE, MAX_PAGE)?;
    params.finish()?;
    if let Some(run) = &run {
        check_id("run id", run)?;
    }
    if let Some(pipeline) = &pipeline {
        check_id("pipeline name", pipeline)?;
    }
    if let Some(name) = &name {
        check_id("artifact name", name)?;
    }
    let artifacts = state
        .engine
        .search_artifacts(&ArtifactQuery {
            run: run.map(RunId),
            pipeline,
            name,
            before_id,
            limit,
        })
        .await?;
    let next_before_id = if artifacts.len() == limit as usize {
        artifacts.last().map(|artifact| artifact.id)
    } else {
        None
    };
    Ok(Json(ArtifactList {
        artifacts: artifacts.into_iter().map(convert::artifact).collect(),
        next_before_id,
    }))
}

/// An artifact's content, checked against its recorded SHA-256.
#[utoipa::path(get, path = "/api/artifacts/{id}/download", tag = "artifacts",
    params(("id" = i64, Path, description = "The artifact's id")),
    responses(
        (status = 200, description = "The file, with its SHA-256 in `X-Sluice-Sha256`", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 404, body = ErrorBody)))]
pub async fn download(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<Response> {
    let id: i64 = id.parse().map_err(|_| {
        ApiError::bad_request(format!("`{id}` is not an artifact id"))
            .with_hint("artifact ids are numbers; list them at /api/artifacts")
    })?;
    let (artifact, bytes) = state.engine.artifact_content(id).await?;
    let file: String = artifact
        .name
        .rsplit('/')
        .next()
        .unwrap_or("artifact")
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
        .collect();
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
            (
                header::HeaderName::from_static(SHA256_HEADER),
                artifact.sha256,
            ),
        ],
        bytes,
    )
        .into_response())
}
