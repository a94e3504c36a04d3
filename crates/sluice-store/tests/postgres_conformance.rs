//! Runs the store conformance suite against PostgreSQL: each case as its own
//! test, in its own freshly created schema, dropped again at the end.
//!
//! The database is `SLUICE_TEST_DATABASE_URL`. Without it, or when it is
//! unreachable, every test says it is skipped and passes, unless
//! `SLUICE_REQUIRE_POSTGRES=1` (set by CI) makes that a failure.

use std::future::Future;
use std::panic::{AssertUnwindSafe, resume_unwind};
use std::str::FromStr;
use std::sync::{Arc, Mutex};

use futures_util::FutureExt;
use sluice_store::Store;
use sluice_store::conformance;
use sluice_store::postgres::PostgresStore;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor};

const URL_VARIABLE: &str = "SLUICE_TEST_DATABASE_URL";
const REQUIRE_VARIABLE: &str = "SLUICE_REQUIRE_POSTGRES";

/// The test database, with a connection for creating and dropping schemas.
struct Database {
    options: PgConnectOptions,
    admin: PgPool,
    /// The schemas this test created, dropped at its end.
    schemas: Mutex<Vec<String>>,
}

impl Database {
    /// Connects to the test database, or says why the test is skipped and
    /// returns `None`. Panics instead when PostgreSQL is required.
    async fn connect(test: &str) -> Option<Database> {
        let required = std::env::var(REQUIRE_VARIABLE).is_ok_and(|value| value == "1");
        let skip = |reason: String| {
            assert!(
                !required,
                "{test}: {reason}, and {REQUIRE_VARIABLE}=1 requires PostgreSQL"
            );
            eprintln!("skipped {test}: {reason} (set {REQUIRE_VARIABLE}=1 to make this fail)");
        };
        let Some(url) = std::env::var(URL_VARIABLE)
            .ok()
            .filter(|url| !url.is_empty())
        else {
            skip(format!("{URL_VARIABLE} is not set"));
            return None;
        };
        let options = match PgConnectOptions::from_str(&url) {
            Ok(options) => options,
            Err(error) => panic!("{URL_VARIABLE} is not a PostgreSQL URL: {error}"),
        };
        // One direct connection first: its error says why the database is
        // unreachable, where a pool would only say that it timed out.
        match options.connect().await {
            Ok(probe) => probe.close().await.expect("close the probe connection"),
            Err(error) => {
                skip(format!(
                    "PostgreSQL at {URL_VARIABLE} is unreachable: {error}"
                ));
                return None;
            }
        }
        let admin = PgPoolOptions::new()
            .max_connections(1)
            .connect_with(options.clone())
            .await
            .expect("connect to the test database");
        Some(Database {
            options,
            admin,
            schemas: Mutex::new(Vec::new()),
        })
    }

    /// Creates a new, uniquely named schema and returns its name.
    async fn create_schema(&self) -> String {
        let schema = format!("sluice_test_{}", uuid::Uuid::now_v7().simple());
        self.admin
            .execute(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .await
            .expect("create a test schema");
        self.schemas.lock().unwrap().push(schema.clone());
        schema
    }

    /// Opens a store whose connections work in `schema`.
    async fn open(&self, schema: &str) -> Arc<dyn Store> {
        let options = self.options.clone().options([("search_path", schema)]);
        Arc::new(
            PostgresStore::connect_with(options)
                .await
                .expect("open the PostgreSQL store"),
        )
    }

    /// Opens a store in a schema of its own.
    async fn fresh_store(&self) -> Arc<dyn Store> {
        let schema = self.create_schema().await;
        self.open(&schema).await
    }

    /// Runs a test body, drops every schema it created whether or not it
    /// passed, and then passes its panic on.
    async fn run<F, Fut>(self: Arc<Self>, body: F)
    where
        F: FnOnce(Arc<Database>) -> Fut,
        Fut: Future<Output = ()>,
    {
        let outcome = AssertUnwindSafe(body(self.clone())).catch_unwind().await;
        let schemas = std::mem::take(&mut *self.schemas.lock().unwrap());
        for schema in schemas {
            self.admin
                .execute(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                .await
                .expect("drop a test schema");
        }
        if let Err(panic) = outcome {
            resume_unwind(panic);
        }
    }
}

/// Runs `body` against the test database, or skips it.
async fn with_database<F, Fut>(test: &str, body: F)
where
    F: FnOnce(Arc<Database>) -> Fut,
    Fut: Future<Output = ()>,
{
    if let Some(database) = Database::connect(test).await {
        Arc::new(database).run(body).await;
    }
}

macro_rules! conformance_cases {
    ($($case:ident),* $(,)?) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() {
                with_database(stringify!($case), |database| async move {
                    conformance::$case(database.fresh_store().await).await;
                })
                .await;
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

/// Two stores, each with its own pool, on one schema stand for two servers
/// sharing a database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_stores_never_double_claim() {
    with_database("two_stores_never_double_claim", |database| async move {
        let schema = database.create_schema().await;
        let first = database.open(&schema).await;
        let second = database.open(&schema).await;
        conformance::two_stores_never_double_claim(first, second).await;
    })
    .await;
}

/// `run_all` itself, so that the entry point other backends use stays whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_all() {
    with_database("run_all", |database| async move {
        conformance::run_all(|| database.fresh_store()).await;
    })
    .await;
}

/// Reconnecting to a schema keeps its data (the migrations are not applied
/// twice), and two servers starting at once on a new schema both end up
/// with one schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_and_migrates_once() {
    with_database("reconnects_and_migrates_once", |database| async move {
        let schema = database.create_schema().await;
        let (first, second) = tokio::join!(database.open(&schema), database.open(&schema));
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
        drop((first, second));
        let again = database.open(&schema).await;
        assert_eq!(
            again
                .get_pipeline_version(&"ab".repeat(32))
                .await
                .unwrap()
                .as_deref(),
            Some("x")
        );
    })
    .await;
}

/// `sluice_store::open` picks PostgreSQL for a `postgres://` URL; the URL's
/// `options` parameter puts it in the test's schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn open_picks_postgres_for_its_url() {
    with_database("open_picks_postgres_for_its_url", |database| async move {
        let schema = database.create_schema().await;
        let url = std::env::var(URL_VARIABLE).expect("the URL is set when the database is");
        let separator = if url.contains('?') { '&' } else { '?' };
        let url = format!("{url}{separator}options=-c%20search_path%3D{schema}");
        let store = sluice_store::open(&url).await.expect("open by URL");
        store
            .put_pipeline_version(&"ab".repeat(32), "etl", "x")
            .await
            .unwrap();
        let stored: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
            "SELECT COUNT(*) FROM {schema}.pipeline_version"
        )))
        .fetch_one(&database.admin)
        .await
        .unwrap();
        assert_eq!(stored, 1);
    })
    .await;
}

/// History bulk-loaded into a schema reads back through the store.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bulk_history() {
    with_database("bulk_history", |database| async move {
        let schema = database.create_schema().await;
        let options = database.options.clone().options([("search_path", &schema)]);
        let loader = sluice_store::bulk::HistoryLoader::postgres(options)
            .await
            .expect("a history loader");
        conformance::bulk_history(database.open(&schema).await, loader).await;
    })
    .await;
}

/// A change announced by one server wakes the others on the same schema.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_reach_other_stores() {
    with_database("changes_reach_other_stores", |database| async move {
        let schema = database.create_schema().await;
        let first = database.open(&schema).await;
        let second = database.open(&schema).await;
        conformance::changes_reach_other_stores(first, second).await;
    })
    .await;
}
