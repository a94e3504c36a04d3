//! Runs the store conformance suite against SQLite: each case as its own
//! test, on its own database file in its own temporary directory.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use sluice_store::Store;
use sluice_store::conformance;
use sluice_store::sqlite::SqliteStore;

async fn open(path: &Path) -> Arc<dyn Store> {
    Arc::new(
        SqliteStore::open(path)
            .await
            .expect("open the SQLite store"),
    )
}

macro_rules! conformance_cases {
    ($($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                let dir = tempfile::tempdir().unwrap();
                conformance::$case(open(&dir.path().join("sluice.db")).await).await;
            }
        )*
    };
}

conformance_cases!(
    create_and_get_run,
    idempotent_create,
    run_transitions,
    block_run_transitions,
    cancel_requests_and_flags,
    start_attempt_rules,
    project_versions,
    keyset_pagination,
    claim_order,
    claim_respects_limits,
    concurrent_claims_are_exclusive,
    concurrent_claims_respect_block_concurrency,
    lease_fencing,
    retry_then_reclaim,
    expired_tries,
    log_chunks,
    audit_paging,
    executors,
    agents,
    run_counts,
    run_search_and_windows,
    artifact_search,
    api_tokens,
    idempotency_keys,
    server_secrets,
    notification_deliveries,
    expired_delivery_claims,
    concurrent_delivery_claims_are_exclusive,
    run_end_with_deliveries,
    sla_risk_marks,
    completed_block_timings,
    trigger_fires,
    trigger_pauses,
    backfills,
    window_runs,
    queue_moves,
    executor_listing,
    duration_history,
    baselines_and_slow_runs,
    resolved_failures,
    retention_purges,
);

/// Two stores on one file stand for a `sluice up` and a `sluice run`
/// sharing a project database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_never_double_claim() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.db");
    let first = open(&path).await;
    let second = open(&path).await;
    conformance::two_stores_never_double_claim(first, second).await;
}

/// `run_all` itself, so that the entry point other backends use stays whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all() {
    let dir = tempfile::tempdir().unwrap();
    let counter = AtomicUsize::new(0);
    conformance::run_all(|| {
        let path = dir.path().join(format!(
            "sluice-{}.db",
            counter.fetch_add(1, Ordering::Relaxed)
        ));
        async move { open(&path).await }
    })
    .await;
}

/// Opening creates missing parent directories, and reopening an existing
/// database keeps its data (the migrations are not applied twice).
#[tokio::test]
async fn reopens_an_existing_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("project/.sluice/sluice.db");
    let store = open(&path).await;
    store
        .put_pipeline_version(&"ab".repeat(32), "etl", "x")
        .await
        .unwrap();
    drop(store);
    let store = open(&path).await;
    assert_eq!(
        store
            .get_pipeline_version(&"ab".repeat(32))
            .await
            .unwrap()
            .as_deref(),
        Some("x")
    );
}

/// Two processes that create the same new database at once both end up with
/// one schema: the migrations run under the write lock.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opens_a_new_file_from_two_stores_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.db");
    let (first, second) = tokio::join!(SqliteStore::open(&path), SqliteStore::open(&path));
    let (first, second) = (first.unwrap(), second.unwrap());
    first
        .put_pipeline_version(&"ab".repeat(32), "etl", "x")
        .await
        .unwrap();
    assert!(
        second
            .get_pipeline_version(&"ab".repeat(32))
            .await
            .unwrap()
            .is_some()
    );
}

/// History bulk-loaded into the file reads back through the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_history() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.db");
    let loader = sluice_store::bulk::HistoryLoader::sqlite(&path)
        .await
        .expect("a history loader");
    conformance::bulk_history(open(&path).await, loader).await;
}

/// SQLite has no announcements between processes: they poll.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_other_stores() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sluice.db");
    let first = open(&path).await;
    let second = open(&path).await;
    conformance::changes_reach_other_stores(first, second).await;
}
