//! sluice's HTTP server: the REST API under `/api` (JSON, one error shape,
//! OpenAPI at `/api/openapi.json`), Server-Sent Events for live updates,
//! bearer-token auth with roles from one policy table, and the server loop
//! that reconciles and runs the built-in agent.
//!
//! Handlers are thin: they validate input, call the engine's services and
//! queries, and convert records to `sluice-proto` wire types. None touches
//! the database.

pub mod auth;
pub mod convert;
pub mod diagnose;
pub mod error;
pub mod extract;

/// The encodings of the run export (`/api/pipeline_runs/export`), public so
/// an export made without a server writes exactly the same bytes.
pub mod export {
    pub use crate::routes::export::{CSV_COLUMNS, csv_header, csv_line, jsonl_line};
}
pub mod openapi;
pub mod request;
mod routes;
pub mod serve;
pub mod tokens;
pub mod webhook;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use sluice_engine::Engine;
use tokio_util::sync::CancellationToken;

pub use error::{ApiError, ApiResult, Code};
pub use serve::{ServeError, ServeOptions, Server};

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    pub engine: Engine,
    /// Whether requests need a bearer token.
    pub auth: bool,
    /// Cancelled when the server shuts down; live streams end with it.
    pub shutdown: CancellationToken,
}

impl AppState {
    pub fn new(engine: Engine, auth: bool) -> AppState {
        AppState {
            engine,
            auth,
            shutdown: CancellationToken::new(),
        }
    }
}

/// The whole HTTP surface. Every route here has an entry in
/// [`auth::POLICY`] and in the OpenAPI document; a test checks both.
pub fn router(state: AppState) -> Router {
    use routes::*;
    let api = Router::new()
        .route("/healthz", get(meta::healthz))
        .route("/readyz", get(meta::readyz))
        .route("/metrics", get(metrics::metrics))
        .route("/api/openapi.json", get(meta::openapi_json))
        .route("/api/pipelines", get(pipelines::list))
        .route("/api/pipelines/{name}", get(pipelines::show))
        .route("/api/pipelines/{name}/runs", post(pipelines::trigger))
        .route("/api/projects/{version}", get(pipelines::project_version))
        .route("/api/pipeline_runs", get(runs::list))
        .route("/api/pipeline_runs/export", get(export::export))
        .route("/api/pipeline_runs/batch", post(batch::batch))
        .route("/api/pipeline_runs/diff", get(diagnose::diff))
        .route("/api/pipeline_runs/{id}/evidence", get(diagnose::evidence))
        .route(
            "/api/pipeline_runs/{id}",
            get(runs::show).put(runs::mage_update),
        )
        .route("/api/pipeline_runs/{id}/cancel", post(runs::cancel))
        .route("/api/pipeline_runs/{id}/retry", post(runs::retry))
        .route("/api/block_runs/{id}", get(blocks::show))
        .route("/api/block_runs/{id}/logs", get(blocks::logs))
        .route("/api/block_runs/{id}/logs/stream", get(live::log_stream))
        .route("/api/block_runs/{id}/outputs", get(blocks::outputs))
        .route("/api/block_runs/{id}/data.csv", get(blocks::data_csv))
        .route("/api/artifacts", get(artifacts::list))
        .route("/api/artifacts/{id}/download", get(artifacts::download))
        .route("/api/events", get(live::events))
        .route("/hooks/{pipeline}/{trigger}", post(hooks::webhook))
        .route(
            "/api/triggers/{pipeline}/{trigger}",
            post(hooks::api_trigger),
        )
        .route("/api/audit", get(admin::audit))
        .route(
            "/api/tokens",
            get(admin::list_tokens).post(admin::create_token),
        )
        .route(
            "/api/tokens/{name}",
            axum::routing::delete(admin::revoke_token),
        )
        .route("/api/agents", get(agent::list))
        .route("/api/agent/register", post(agent::register))
        .route("/api/agent/claim", post(agent::claim))
        .route("/api/agent/heartbeat", post(agent::heartbeat))
        .route(
            "/api/agent/projects/{version}",
            get(agent::agent_project_version),
        )
        .route(
            "/api/agent/projects/{version}/files/{sha256}",
            get(agent::agent_project_file),
        )
        .route("/api/agent/tries/{id}/logs", post(agent::logs))
        .route(
            "/api/agent/tries/{id}/files",
            axum::routing::put(agent::upload).layer(DefaultBodyLimit::max(agent::MAX_UPLOAD_BYTES)),
        )
        .route("/api/agent/tries/{id}/complete", post(agent::complete))
        .route("/api/queue", get(queue::list))
        .route("/api/queue/move", post(queue::move_block_run))
        .route("/api/queue/cancel", post(queue::cancel))
        .route("/api/triggers", get(triggers::list))
        .route("/api/triggers/upcoming", get(triggers::upcoming))
        .route(
            "/api/triggers/{pipeline}/{trigger}/pause",
            post(triggers::pause),
        )
        .route(
            "/api/triggers/{pipeline}/{trigger}/resume",
            post(triggers::resume),
        )
        .route(
            "/api/backfills",
            get(backfills::list).post(backfills::create),
        )
        .route("/api/backfills/{id}", get(backfills::show))
        .route("/api/backfills/{id}/pause", post(backfills::pause))
        .route("/api/backfills/{id}/resume", post(backfills::resume))
        .route("/api/backfills/{id}/cancel", post(backfills::cancel))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::guard,
        ))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::timed,
        ))
        .method_not_allowed_fallback(request::wrong_method)
        .fallback(request::no_route)
        .layer(DefaultBodyLimit::max(extract::MAX_BODY_BYTES))
        .layer(axum::middleware::from_fn(request::request_id));
    api.with_state(state)
}
