//! The conformance suite every [`Store`] backend must pass.
//!
//! Each case is a public async function that takes a fresh, empty store and
//! panics when the backend misbehaves; a backend's test file runs each case
//! as its own test with its own database. [`run_all`] runs every
//! single-store case in turn. [`two_stores_never_double_claim`] needs two
//! stores over the *same* database (two processes), so a backend calls it
//! itself.
//!
//! The cases use fixed timestamps, never the wall clock, so they do not
//! depend on timing.

mod agents;
mod backfills;
pub mod blobs;
mod bulk;
mod changes;
mod claims;
mod fixtures;
mod logs;
mod notify;
mod operations;
mod queue;
mod runs;
pub mod s3_server;
mod server;
mod triggers;

use std::future::Future;
use std::sync::Arc;

use crate::Store;

pub use agents::agents;
pub use backfills::{backfills, window_runs};
pub use bulk::bulk_history;
pub use changes::changes_reach_other_stores;
pub use claims::{
    claim_order, claim_respects_limits, concurrent_claims_are_exclusive,
    concurrent_claims_respect_block_concurrency, expired_tries, lease_fencing, retry_then_reclaim,
    two_stores_never_double_claim,
};
pub use logs::{audit_paging, executors, log_chunks};
pub use notify::{
    completed_block_timings, concurrent_delivery_claims_are_exclusive, expired_delivery_claims,
    notification_deliveries, run_end_with_deliveries, sla_risk_marks,
};
pub use operations::{
    baselines_and_slow_runs, duration_history, resolved_failures, retention_purges,
};
pub use queue::{executor_listing, queue_moves};
pub use runs::{
    block_run_transitions, cancel_requests_and_flags, create_and_get_run, idempotent_create,
    keyset_pagination, project_versions, run_transitions, start_attempt_rules,
};
pub use server::{
    api_tokens, artifact_search, idempotency_keys, run_counts, run_search_and_windows,
    server_secrets,
};
pub use triggers::{trigger_fires, trigger_pauses};

/// Runs every case that needs one store, each on a fresh store from `make`.
pub async fn run_all<F, Fut>(make: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Arc<dyn Store>>,
{
    create_and_get_run(make().await).await;
    idempotent_create(make().await).await;
    run_transitions(make().await).await;
    block_run_transitions(make().await).await;
    cancel_requests_and_flags(make().await).await;
    start_attempt_rules(make().await).await;
    project_versions(make().await).await;
    keyset_pagination(make().await).await;
    claim_order(make().await).await;
    claim_respects_limits(make().await).await;
    concurrent_claims_are_exclusive(make().await).await;
    concurrent_claims_respect_block_concurrency(make().await).await;
    lease_fencing(make().await).await;
    retry_then_reclaim(make().await).await;
    expired_tries(make().await).await;
    log_chunks(make().await).await;
    audit_paging(make().await).await;
    executors(make().await).await;
    agents(make().await).await;
    run_counts(make().await).await;
    run_search_and_windows(make().await).await;
    artifact_search(make().await).await;
    api_tokens(make().await).await;
    idempotency_keys(make().await).await;
    server_secrets(make().await).await;
    notification_deliveries(make().await).await;
    expired_delivery_claims(make().await).await;
    concurrent_delivery_claims_are_exclusive(make().await).await;
    run_end_with_deliveries(make().await).await;
    sla_risk_marks(make().await).await;
    completed_block_timings(make().await).await;
    trigger_fires(make().await).await;
    trigger_pauses(make().await).await;
    backfills(make().await).await;
    window_runs(make().await).await;
    queue_moves(make().await).await;
    executor_listing(make().await).await;
    duration_history(make().await).await;
    baselines_and_slow_runs(make().await).await;
    resolved_failures(make().await).await;
    retention_purges(make().await).await;
}
