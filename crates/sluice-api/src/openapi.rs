//! The OpenAPI document, generated from the handlers' annotations and the
//! wire types of `sluice-proto`. A test compares it with a snapshot and with
//! the router's routes, so the spec cannot drift from the code.

use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};

use crate::routes::backfills;
use crate::routes::queue;
use crate::routes::triggers;
use crate::routes::{
    admin, agent, artifacts, batch, blocks, diagnose, export, hooks, live, meta, metrics,
    pipelines, runs,
};

/// The document served at `/api/openapi.json`.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "sluice",
        description = "The REST API of sluice, a pipeline orchestrator. Errors have one shape: \
            `{\"error\": {\"code\", \"message\", \"hint\"?}}`. With auth on, send \
            `Authorization: Bearer TOKEN`.",
    ),
    paths(
        meta::healthz,
        meta::readyz,
        metrics::metrics,
        meta::openapi_json,
        pipelines::list,
        pipelines::show,
        pipelines::trigger,
        pipelines::project_version,
        runs::list,
        runs::show,
        runs::mage_update,
        runs::cancel,
        runs::retry,
        export::export,
        batch::batch,
        diagnose::diff,
        diagnose::evidence,
        blocks::show,
        blocks::logs,
        blocks::outputs,
        blocks::data_csv,
        live::events,
        hooks::webhook,
        hooks::api_trigger,
        live::log_stream,
        artifacts::list,
        artifacts::download,
        admin::audit,
        admin::list_tokens,
        admin::create_token,
        admin::revoke_token,
        queue::list,
        queue::move_block_run,
        queue::cancel,
        triggers::list,
        triggers::upcoming,
        triggers::pause,
        triggers::resume,
        backfills::create,
        backfills::list,
        backfills::show,
        backfills::pause,
        backfills::resume,
        backfills::cancel,
        agent::list,
        agent::register,
        agent::claim,
        agent::heartbeat,
        agent::agent_project_version,
        agent::agent_project_file,
        agent::logs,
        agent::upload,
        agent::complete,
    ),
    modifiers(&BearerAuth),
    tags(
        (name = "meta", description = "Probes and this document"),
        (name = "pipelines", description = "The project's pipelines; triggering runs"),
        (name = "runs", description = "The run ledger: list, show, cancel, retry, batch, export"),
        (name = "block_runs", description = "Block runs: tries, logs, outputs, data"),
        (name = "live", description = "Server-Sent Events"),
        (name = "artifacts", description = "Files left by block runs"),
        (name = "admin", description = "Audit log and API tokens"),
        (name = "queue", description = "Queued block runs in claim order, why each waits; moving one; bulk cancel"),
        (name = "triggers", description = "Triggers: state, next fires, pause and resume; runs started by webhooks and API triggers"),
        (name = "backfills", description = "Backfills: one run per window of a timed trigger over a range; pause, resume, cancel"),
        (name = "agent", description = "The agent protocol of remote agents (`agent` tokens)"),
    )
)]
pub struct ApiDoc;

/// Declares the bearer-token scheme.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        openapi.security = Some(vec![utoipa::openapi::security::SecurityRequirement::new(
            "bearer",
            Vec::<String>::new(),
        )]);
    }
}
