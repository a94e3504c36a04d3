//! The SQLite backend of the [`Store`]: one file in WAL mode, shared safely by
//! several processes (a `sluice up` and a `sluice run` on the same project).
//!
//! Concurrency model:
//! - Every write that reads before it writes runs in a `BEGIN IMMEDIATE`
//!   transaction, which takes SQLite's write lock up front, so two processes
//!   never interleave a claim or a transition. A transaction that is dropped
//!   before its commit rolls back. A write of one conditional statement runs
//!   on its own (SQLite makes each statement atomic).
//! - Within one process, writes also queue on an async mutex, so they wait
//!   for each other in order instead of spinning in SQLite's busy handler.
//! - Across processes, SQLite's `busy_timeout` makes a writer wait for the
//!   lock; an error that still says "busy" is retried a few times with a
//!   short backoff, then reported as [`Error::Unavailable`].

mod agents;
mod audit;
mod backfills;
mod blocks;
mod codec;
mod executors;
mod logs;
mod notify;
mod operations;
mod queue;
mod run_list;
mod runs;
mod server;
mod tries;
mod triggers;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use sluice_core::ids::{BlockRunId, ExecutorId, RunId, TryId};
use sluice_core::status::RunStatus;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use sqlx::{SqlSafeStr, Sqlite, Transaction};

use crate::{
    AttemptRecord, AuditEvent, BlockRunRecord, BlockRunTransition, Claim, ClaimRequest, CreatedRun,
    Error, ExecutorRecord, LeaseState, LogChunk, NewAttempt, NewAuditEvent, NewRun, ProjectFile,
    Result, RunFlag, RunPage, RunQuery, RunRecord, RunTransition, Store, TryCompletion, TryRecord,
};
use codec::DbResultExt;

/// The migrations of the SQLite schema, embedded in the binary.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/sqlite/0001_init.sql"),
    ),
    (
        2,
        "server",
        include_str!("../../migrations/sqlite/0002_server.sql"),
    ),
    (
        3,
        "agents",
        include_str!("../../migrations/sqlite/0003_agents.sql"),
    ),
    (
        4,
        "triggers",
        include_str!("../../migrations/sqlite/0004_triggers.sql"),
    ),
    (
        5,
        "backfills",
        include_str!("../../migrations/sqlite/0005_backfills.sql"),
    ),
    (
        6,
        "queue",
        include_str!("../../migrations/sqlite/0006_queue.sql"),
    ),
    (
        7,
        "notify",
        include_str!("../../migrations/sqlite/0007_notify.sql"),
    ),
    (
        8,
        "operations",
        include_str!("../../migrations/sqlite/0008_operations.sql"),
    ),
    (
        9,
        "server_secret",
        include_str!("../../migrations/sqlite/0009_server_secret.sql"),
    ),
    (
        10,
        "search_text",
        include_str!("../../migrations/sqlite/0010_search_text.sql"),
    ),
    (
        11,
        "project_version",
        include_str!("../../migrations/sqlite/0011_project_version.sql"),
    ),
];

/// How long one statement waits for another process's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a write that still found the database busy is tried again.
const BUSY_RETRIES: u32 = 4;
/// The first pause before such a retry; each further pause doubles it.
const BUSY_BACKOFF: Duration = Duration::from_millis(20);
/// Connections of the pool: one writer at a time plus a few readers.
const MAX_CONNECTIONS: u32 = 4;

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    pool: SqlitePool,
    /// Queues this process's writes; see the module documentation.
    write_lock: tokio::sync::Mutex<()>,
}

impl SqliteStore {
    /// Opens the database at `path`, creating the file and its parent
    /// directory when missing, and brings its schema up to date.
    pub async fn open(path: &Path) -> Result<SqliteStore> {
        if let Some(parent) = path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(|source| Error::Unavailable(sqlx::Error::Io(source)))?;
        }
        let options = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = connect(options).await?;
        let store = SqliteStore {
            pool,
            write_lock: tokio::sync::Mutex::new(()),
        };
        store.write(|| store.migrate()).await?;
        Ok(store)
    }

    /// Applies the pending migrations inside one `BEGIN IMMEDIATE`
    /// transaction, so that two processes opening a new file at once do not
    /// both try to create the schema (sqlx does not lock SQLite itself).
    async fn migrate(&self) -> Result<()> {
        let migrations = MIGRATIONS
            .iter()
            .map(|&(version, description, sql)| {
                Migration::new(
                    version,
                    description.into(),
                    MigrationType::Simple,
                    sql.into_sql_str(),
                    false,
                )
            })
            .collect();
        let migrator = Migrator::with_migrations(migrations);
        let mut tx = self.begin().await?;
        migrator
            .run(&mut *tx)
            .await
            .map_err(|error| Error::Database(sqlx::Error::Migrate(Box::new(error))))?;
        tx.commit().await.db()
    }

    /// Starts a transaction that holds the database's write lock from its
    /// first statement on. Dropping it without a commit rolls it back.
    async fn begin(&self) -> Result<Transaction<'static, Sqlite>> {
        self.pool.begin_with("BEGIN IMMEDIATE").await.db()
    }

    /// Runs a write: queued behind this process's other writes, and tried
    /// again with a growing pause while the database reports itself busy.
    async fn write<T, F, Fut>(&self, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut pause = BUSY_BACKOFF;
        let mut retries = 0;
        loop {
            let outcome = {
                let _queued = self.write_lock.lock().await;
                op().await
            };
            match outcome {
                Err(Error::Unavailable(error))
                    if retries < BUSY_RETRIES && codec::is_busy(&error) =>
                {
                    retries += 1;
                    tracing::debug!(retries, "database busy, trying the write again: {error}");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                outcome => return outcome,
            }
        }
    }
}

/// Opens the pool and its first connection. Turning a new file into WAL
/// mode needs an exclusive lock, and SQLite refuses it at once, without
/// waiting, when another process is creating the same file; so a busy
/// database is tried again here too.
async fn connect(options: SqliteConnectOptions) -> Result<SqlitePool> {
    let mut pause = BUSY_BACKOFF;
    let mut retries = 0;
    loop {
        let connected = SqlitePoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .min_connections(1)
            .acquire_timeout(Duration::from_secs(30))
            .test_before_acquire(false)
            .connect_with(options.clone())
            .await;
        match connected {
            Err(error) if retries < BUSY_RETRIES && codec::is_busy(&error) => {
                retries += 1;
                tracing::debug!(retries, "database busy, opening it again: {error}");
                tokio::time::sleep(pause).await;
                pause *= 2;
            }
            connected => return connected.db(),
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn put_pipeline_version(&self, sha256: &str, pipeline: &str, source: &str) -> Result<()> {
        runs::put_pipeline_version(self, sha256, pipeline, source).await
    }

    async fn get_pipeline_version(&self, sha256: &str) -> Result<Option<String>> {
        runs::get_pipeline_version(self, sha256).await
    }

    async fn put_project_version(&self, sha256: &str, files: &[ProjectFile]) -> Result<()> {
        runs::put_project_version(self, sha256, files).await
    }

    async fn get_project_version(&self, sha256: &str) -> Result<Option<Vec<ProjectFile>>> {
        runs::get_project_version(self, sha256).await
    }

    async fn project_file_held(&self, version: &str, sha256: &str) -> Result<bool> {
        runs::project_file_held(self, version, sha256).await
    }

    async fn create_run(&self, run: NewRun) -> Result<CreatedRun> {
        runs::create_run(self, &run).await
    }

    async fn get_run(&self, id: &RunId) -> Result<Option<RunRecord>> {
        runs::get_run(self, id).await
    }

    async fn list_runs(&self, query: &RunQuery) -> Result<RunPage> {
        run_list::list_runs(self, query).await
    }

    async fn active_runs(&self, limit: u32) -> Result<Vec<RunRecord>> {
        run_list::active_runs(self, limit).await
    }

    async fn count_runs(&self, pipeline: &str, statuses: &[RunStatus]) -> Result<u32> {
        run_list::count_runs(self, pipeline, statuses).await
    }

    async fn transition_run(&self, change: &RunTransition) -> Result<bool> {
        runs::transition_run(self, change, &[]).await
    }

    async fn request_cancel(&self, id: &RunId, by: &str, at: Timestamp) -> Result<bool> {
        runs::request_cancel(self, id, by, at).await
    }

    async fn flag_run(&self, id: &RunId, flag: RunFlag) -> Result<bool> {
        runs::flag_run(self, id, flag).await
    }

    async fn list_attempts(&self, id: &RunId) -> Result<Vec<AttemptRecord>> {
        runs::list_attempts(self, id).await
    }

    async fn start_attempt(&self, attempt: &NewAttempt) -> Result<()> {
        runs::start_attempt(self, attempt).await
    }

    async fn list_block_runs(
        &self,
        run: &RunId,
        attempt: Option<u32>,
    ) -> Result<Vec<BlockRunRecord>> {
        blocks::list_block_runs(self, run, attempt).await
    }

    async fn get_block_run(&self, id: &BlockRunId) -> Result<Option<BlockRunRecord>> {
        blocks::get_block_run(self, id).await
    }

    async fn transition_block_run(&self, change: &BlockRunTransition) -> Result<bool> {
        blocks::transition_block_run(self, change).await
    }

    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Claim>> {
        tries::claim(self, request).await
    }

    async fn renew_lease(
        &self,
        try_id: &TryId,
        epoch: i64,
        expires_at: Timestamp,
    ) -> Result<LeaseState> {
        tries::renew_lease(self, try_id, epoch, expires_at).await
    }

    async fn complete_try(&self, completion: &TryCompletion) -> Result<()> {
        tries::complete_try(self, completion).await
    }

    async fn expired_tries(&self, now: Timestamp, limit: u32) -> Result<Vec<TryRecord>> {
        tries::expired_tries(self, now, limit).await
    }

    async fn list_run_tries(&self, run: &RunId) -> Result<Vec<TryRecord>> {
        tries::list_run_tries(self, run).await
    }

    async fn list_tries(&self, block_run: &BlockRunId) -> Result<Vec<TryRecord>> {
        tries::list_tries(self, block_run).await
    }

    async fn get_try(&self, id: &TryId) -> Result<Option<TryRecord>> {
        tries::get_try(self, id).await
    }

    async fn list_queue(&self, limit: u32) -> Result<Vec<crate::QueuedBlockRun>> {
        queue::list_queue(self, limit).await
    }

    async fn move_in_queue(&self, change: &crate::QueueMove) -> Result<()> {
        queue::move_in_queue(self, change).await
    }

    async fn list_executors(&self, limit: u32) -> Result<Vec<ExecutorRecord>> {
        queue::list_executors(self, limit).await
    }

    async fn put_agent(&self, agent: &crate::AgentRecord) -> Result<()> {
        agents::put_agent(self, agent).await
    }

    async fn set_agent_draining(
        &self,
        id: &sluice_core::ids::AgentId,
        draining: bool,
    ) -> Result<()> {
        agents::set_agent_draining(self, id, draining).await
    }

    async fn list_agents(&self, limit: u32) -> Result<Vec<crate::AgentListing>> {
        agents::list_agents(self, limit).await
    }

    async fn append_log_chunk(&self, chunk: &LogChunk, epoch: i64) -> Result<()> {
        logs::append_log_chunk(self, chunk, epoch).await
    }

    async fn read_log(
        &self,
        try_id: &TryId,
        after_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<LogChunk>> {
        logs::read_log(self, try_id, after_seq, limit).await
    }

    async fn list_artifacts(&self, run: &RunId) -> Result<Vec<crate::ArtifactRecord>> {
        logs::list_artifacts(self, run).await
    }

    async fn append_audit(&self, event: &NewAuditEvent) -> Result<()> {
        audit::append_audit(self, event).await
    }

    async fn list_audit(&self, limit: u32, before_id: Option<i64>) -> Result<Vec<AuditEvent>> {
        audit::list_audit(self, limit, before_id).await
    }

    async fn register_executor(&self, executor: &ExecutorRecord) -> Result<()> {
        executors::register_executor(self, executor).await
    }

    async fn heartbeat_executor(&self, id: &ExecutorId, at: Timestamp) -> Result<()> {
        executors::heartbeat_executor(self, id, at).await
    }

    async fn get_executor(&self, id: &ExecutorId) -> Result<Option<ExecutorRecord>> {
        executors::get_executor(self, id).await
    }

    async fn remove_executor(&self, id: &ExecutorId) -> Result<()> {
        executors::remove_executor(self, id).await
    }

    async fn ping(&self) -> Result<()> {
        server::ping(self).await
    }

    async fn count_runs_by_status(&self, query: &RunQuery) -> Result<Vec<(RunStatus, u64)>> {
        server::count_runs_by_status(self, query).await
    }

    async fn search_artifacts(
        &self,
        query: &crate::ArtifactQuery,
    ) -> Result<Vec<crate::ArtifactRecord>> {
        server::search_artifacts(self, query).await
    }

    async fn get_artifact(&self, id: i64) -> Result<Option<crate::ArtifactRecord>> {
        server::get_artifact(self, id).await
    }

    async fn create_api_token(&self, token: &crate::NewApiToken) -> Result<()> {
        server::create_api_token(self, token).await
    }

    async fn find_api_token(&self, sha256: &str) -> Result<Option<crate::ApiTokenRecord>> {
        server::find_api_token(self, sha256).await
    }

    async fn list_api_tokens(&self, limit: u32) -> Result<Vec<crate::ApiTokenRecord>> {
        server::list_api_tokens(self, limit).await
    }

    async fn revoke_api_token(&self, name: &str, at: Timestamp) -> Result<bool> {
        server::revoke_api_token(self, name, at).await
    }

    async fn reserve_idempotency_key(
        &self,
        pipeline: &str,
        key: &str,
        request_hash: &str,
        at: Timestamp,
    ) -> Result<String> {
        server::reserve_idempotency_key(self, pipeline, key, request_hash, at).await
    }

    async fn reserve_server_secret(
        &self,
        name: &str,
        candidate: &str,
        at: Timestamp,
    ) -> Result<String> {
        server::reserve_server_secret(self, name, candidate, at).await
    }

    async fn list_trigger_states(&self) -> Result<Vec<crate::TriggerState>> {
        triggers::list_trigger_states(self).await
    }

    async fn get_trigger_state(
        &self,
        pipeline: &str,
        trigger: &str,
    ) -> Result<Option<crate::TriggerState>> {
        triggers::get_trigger_state(self, pipeline, trigger).await
    }

    async fn record_trigger_fire(&self, fire: &crate::TriggerFire) -> Result<bool> {
        triggers::record_trigger_fire(self, fire).await
    }

    async fn set_trigger_paused(&self, change: &crate::TriggerPause) -> Result<bool> {
        triggers::set_trigger_paused(self, change).await
    }

    async fn create_backfill(&self, backfill: &crate::BackfillRecord) -> Result<()> {
        backfills::create_backfill(self, backfill).await
    }

    async fn get_backfill(
        &self,
        id: &sluice_core::ids::BackfillId,
    ) -> Result<Option<crate::BackfillRecord>> {
        backfills::get_backfill(self, id).await
    }

    async fn list_backfills(
        &self,
        status: Option<crate::BackfillStatus>,
        limit: u32,
    ) -> Result<Vec<crate::BackfillRecord>> {
        backfills::list_backfills(self, status, limit).await
    }

    async fn set_backfill_status(&self, change: &crate::BackfillStatusChange) -> Result<bool> {
        backfills::set_backfill_status(self, change).await
    }

    async fn list_window_runs(&self, query: &crate::WindowRunQuery) -> Result<Vec<RunRecord>> {
        backfills::list_window_runs(self, query).await
    }

    async fn record_deliveries(&self, deliveries: &[crate::NewDelivery]) -> Result<u32> {
        notify::record_deliveries(self, deliveries).await
    }

    async fn transition_run_notifying(
        &self,
        change: &RunTransition,
        deliveries: &[crate::NewDelivery],
    ) -> Result<bool> {
        runs::transition_run(self, change, deliveries).await
    }

    async fn mark_sla_at_risk(&self, id: &RunId, at: Timestamp) -> Result<bool> {
        notify::mark_sla_at_risk(self, id, at).await
    }

    async fn claim_deliveries(
        &self,
        claim: &crate::DeliveryClaim,
    ) -> Result<Vec<crate::DeliveryRecord>> {
        notify::claim_deliveries(self, claim).await
    }

    async fn finish_delivery(&self, outcome: &crate::DeliveryOutcome) -> Result<bool> {
        notify::finish_delivery(self, outcome).await
    }

    async fn list_deliveries(&self, run: &RunId) -> Result<Vec<crate::DeliveryRecord>> {
        notify::list_deliveries(self, run).await
    }

    async fn completed_block_timings(
        &self,
        pipeline: &str,
        runs: u32,
    ) -> Result<Vec<crate::BlockTiming>> {
        notify::completed_block_timings(self, pipeline, runs).await
    }

    async fn duration_history(
        &self,
        query: &crate::DurationHistoryQuery,
    ) -> Result<Vec<crate::RunDurations>> {
        operations::duration_history(self, query).await
    }

    async fn record_baseline(&self, record: &crate::BaselineRecord) -> Result<bool> {
        operations::record_baseline(self, record).await
    }

    async fn resolve_failures(&self, resolving: &crate::ResolvingRun) -> Result<Vec<RunId>> {
        operations::resolve_failures(self, resolving).await
    }

    async fn expired_runs(&self, query: &crate::ExpiredRunQuery) -> Result<Vec<RunRecord>> {
        operations::expired_runs(self, query).await
    }

    async fn purge_run(&self, purge: &crate::RunPurge) -> Result<Option<crate::PurgedRun>> {
        operations::purge_run(self, purge).await
    }

    async fn blob_referenced(&self, sha256: &str) -> Result<bool> {
        operations::blob_referenced(self, sha256).await
    }
}
