//! The agents page (`/agents`): remote agents with their labels, status,
//! running tries, last heartbeat and version.

use askama::Template;
use axum::Extension;
use axum::extract::State;
use axum::response::Response;

use super::{Layout, PageError, render};
use crate::WebState;
use crate::format;
use crate::session::Viewer;

#[derive(Clone, Debug)]
struct AgentRow {
    name: String,
    host: String,
    labels: String,
    status: String,
    running: u32,
    heartbeat: String,
    version: String,
    registered: String,
}

#[derive(Template)]
#[template(path = "agents.html")]
struct AgentsPage {
    layout: Layout,
    agents: Vec<AgentRow>,
}

/// `GET /agents` (the engine caps the listing at 1,000 agents).
pub async fn page(
    State(state): State<WebState>,
    Extension(viewer): Extension<Viewer>,
) -> Result<Response, PageError> {
    let agents = state
        .engine
        .list_agents()
        .await?
        .into_iter()
        .map(|summary| {
            let listing = summary.listing;
            AgentRow {
                name: listing.agent.name.clone(),
                host: listing.host.clone(),
                labels: listing
                    .labels
                    .iter()
                    .map(|(key, value)| format!("{key}={value}"))
                    .collect::<Vec<_>>()
                    .join(", "),
                status: summary.status.as_str().to_owned(),
                running: listing.running_tries,
                heartbeat: format::time(listing.heartbeat_at),
                version: listing.agent.version.clone(),
                registered: format::time(listing.agent.registered_at),
            }
        })
        .collect();
    render(&AgentsPage {
        layout: Layout::new("Agents", "agents", &viewer, &state),
        agents,
    })
}
