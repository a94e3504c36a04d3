//! sluice's web UI: server-rendered pages (askama templates compiled into
//! the binary) and their small embedded JavaScript and CSS.
//!
//! Pages read through the engine's services and queries, never SQL; the
//! browser's script acts and follows live updates through the REST API and
//! its Server-Sent Events (`/api/...`), authenticated by the session cookie
//! this crate sets and the CSRF token every page carries (see
//! `sluice_engine::sessions`). `sluice up` serves these routes beside the
//! API; the binary composes the two.
//!
//! Every list is bounded: run tables are pages of [`PAGE`] rows with keyset
//! cursors, other lists are capped.

mod assets;
mod format;
mod pages;
mod session;
mod svg;

use axum::Router;
use axum::routing::{get, post};
use sluice_engine::Engine;

/// Rows per page of a run or artifact table.
pub const PAGE: u32 = 50;

/// What every page handler shares.
#[derive(Clone, Debug)]
pub struct WebState {
    pub engine: Engine,
    /// Whether the server needs a token (then pages need a session).
    pub auth: bool,
}

/// The web UI's routes: the pages, `/login`, `/logout` and `/assets/...`.
pub fn router(engine: Engine, auth: bool) -> Router {
    let state = WebState { engine, auth };
    let pages = Router::new()
        .route("/", get(pages::runs::page))
        .route("/pipelines", get(pages::pipelines::list))
        .route("/pipelines/{name}", get(pages::pipelines::page))
        .route("/pipelines/{name}/run", post(pages::pipelines::run_now))
        .route("/runs/{id}", get(pages::run::page))
        .route("/runs/{id}/panel", get(pages::run::panel))
        .route("/block_runs/{id}/log.txt", get(pages::run::raw_log))
        .route("/queue", get(pages::queue::page))
        .route("/artifacts", get(pages::artifacts::page))
        .route("/agents", get(pages::agents::page))
        .route("/triggers", get(pages::triggers::page))
        .route("/logout", post(session::logout))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            session::require,
        ));
    Router::new()
        .route("/login", get(session::login_page).post(session::login))
        .merge(pages)
        .route("/assets/app.js", get(assets::script))
        .route("/assets/app.css", get(assets::style))
        .route("/assets/favicon.svg", get(assets::icon))
        .layer(axum::middleware::from_fn(session::security_headers))
        .with_state(state)
}
