//! The artifacts page (`/artifacts`): every run's artifacts, newest first,
//! searched by name and pipeline, in pages with a cursor; each downloads
//! through the API, which checks its SHA-256.

use askama::Template;
use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::response::Response;
use sluice_engine::sluice_store::ArtifactQuery;

use super::{Layout, PageError, param, query_pairs, render};
use crate::WebState;
use crate::format;
use crate::session::Viewer;

#[derive(Clone, Debug)]
struct ArtifactRow {
    id: i64,
    name: String,
    size: String,
    bytes: u64,
    sha256: String,
    run_id: String,
    short_run: String,
    created: String,
}

#[derive(Template)]
#[template(path = "artifacts.html")]
struct ArtifactsPage {
    layout: Layout,
    q: String,
    pipeline: String,
    artifacts: Vec<ArtifactRow>,
    next_page: Option<String>,
}

/// `GET /artifacts?q=NAME&pipeline=P&before=ID`.
pub async fn page(
    State(state): State<WebState>,
    Extension(viewer): Extension<Viewer>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let pairs = query_pairs(raw.as_deref())?;
    let q = param(&pairs, "q").unwrap_or_default();
    let pipeline = param(&pairs, "pipeline").unwrap_or_default();
    let before_id = match param(&pairs, "before") {
        Some(text) => Some(text.parse::<i64>().map_err(|_| {
            PageError::BadRequest(format!("`before` is `{text}`, not an artifact id"))
        })?),
        None => None,
    };
    let found = state
        .engine
        .search_artifacts(&ArtifactQuery {
            run: None,
            pipeline: (!pipeline.is_empty()).then(|| pipeline.clone()),
            name: (!q.is_empty()).then(|| q.clone()),
            before_id,
            limit: crate::PAGE,
        })
        .await?;
    let next_page = (found.len() == crate::PAGE as usize)
        .then(|| found.last())
        .flatten()
        .map(|last| {
            let mut pairs = Vec::new();
            if !q.is_empty() {
                pairs.push(("q", q.clone()));
            }
            if !pipeline.is_empty() {
                pairs.push(("pipeline", pipeline.clone()));
            }
            pairs.push(("before", last.id.to_string()));
            serde_urlencoded::to_string(&pairs).unwrap_or_default()
        });
    let artifacts = found
        .iter()
        .map(|artifact| ArtifactRow {
            id: artifact.id,
            name: artifact.name.clone(),
            size: format::size(artifact.size),
            bytes: artifact.size,
            sha256: artifact.sha256.clone(),
            run_id: artifact.run_id.to_string(),
            short_run: artifact.run_id.0.chars().take(8).collect(),
            created: format::time(artifact.created_at),
        })
        .collect();
    let page = ArtifactsPage {
        layout: Layout::new("Artifacts", "artifacts", &viewer, &state),
        q,
        pipeline,
        artifacts,
        next_page,
    };
    render(&page)
}
