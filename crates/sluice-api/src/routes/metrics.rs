//! `GET /metrics`: the process's metrics in the Prometheus text format, and
//! the layer that times every API request for it.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sluice_proto::ErrorBody;

use crate::AppState;
use crate::error::ApiResult;

/// The content type of the Prometheus text format.
const TEXT_FORMAT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Runs by pipeline and status, queue depth and wait, block-run durations,
/// lease expiries, retries, agents by status and API latency.
#[utoipa::path(get, path = "/metrics", tag = "meta",
    responses(
        (status = 200, description = "The metrics, in the Prometheus text format (version 0.0.4)", content_type = "text/plain", body = String),
        (status = 503, description = "The database is unavailable", body = ErrorBody)))]
pub async fn metrics(State(state): State<AppState>) -> ApiResult<Response> {
    let text = state.engine.render_metrics().await?;
    Ok(([(header::CONTENT_TYPE, TEXT_FORMAT)], text).into_response())
}

/// Times a request of a matched route, labelled by the route's template
/// (never the path itself, which may hold an id).
pub async fn timed(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    let method = request.method().as_str().to_owned();
    let started = Instant::now();
    let response = next.run(request).await;
    state.engine.metrics().observe_request(
        &route,
        &method,
        response.status().as_u16(),
        started.elapsed().as_secs_f64(),
    );
    response
}
