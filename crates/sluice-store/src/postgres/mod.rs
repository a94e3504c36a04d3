//! The PostgreSQL backend of the [`Store`]: one database shared by several
//! servers, each with its own pool.
//!
//! Concurrency model:
//! - Transactions run at PostgreSQL's default isolation, READ COMMITTED.
//!   Every status change is one conditional `UPDATE … WHERE status = …`: a
//!   writer that waited for a concurrent one re-checks the condition on the
//!   row that writer committed, so the loser changes nothing.
//! - A write that reads before it writes locks the rows it decides on
//!   (`FOR UPDATE`), always in the same order (run, then attempt, then block
//!   runs), so two servers never interleave a retry or a claim.
//! - Claims take the first claimable block run with `FOR NO KEY UPDATE SKIP
//!   LOCKED`: claimers on different servers never wait for each other and
//!   never take the same block run. A run with a `block_concurrency` limit is
//!   locked as well while its running block runs are counted, so that two
//!   claimers cannot both take its last free slot.
//! - A transaction that still loses a race (a deadlock or serialization
//!   failure) is run again a few times with a short backoff; a database that
//!   stays unreachable is reported as [`Error::Unavailable`].
//!
//! Migrations take PostgreSQL's advisory lock (sqlx does this), so servers
//! starting at once do not both create the schema.

mod agents;
mod audit;
mod backfills;
mod blocks;
mod changes;
mod codec;
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
use std::str::FromStr;
use std::time::Duration;

use async_trait::async_trait;
use jiff::Timestamp;
use sluice_core::ids::{BlockRunId, ExecutorId, RunId, TryId};
use sluice_core::status::RunStatus;
use sqlx::migrate::{Migration, MigrationType, Migrator};
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::{Postgres, SqlSafeStr, Transaction};

use crate::{
    ApiTokenRecord, ArtifactQuery, ArtifactRecord, AttemptRecord, AuditEvent, BlockRunRecord,
    BlockRunTransition, Claim, ClaimRequest, CreatedRun, Error, ExecutorRecord, LeaseState,
    LogChunk, NewApiToken, NewAttempt, NewAuditEvent, NewRun, ProjectFile, Result, RunFlag,
    RunPage, RunQuery, RunRecord, RunTransition, Store, TryCompletion, TryRecord,
};
use codec::DbResultExt;

/// The migrations of the PostgreSQL schema, embedded in the binary. The
/// first one is the whole schema of SQLite's first two.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "init",
        include_str!("../../migrations/postgres/0001_init.sql"),
    ),
    (
        2,
        "agents",
        include_str!("../../migrations/postgres/0002_agents.sql"),
    ),
    (
        3,
        "triggers",
        include_str!("../../migrations/postgres/0003_triggers.sql"),
    ),
    (
        4,
        "backfills",
        include_str!("../../migrations/postgres/0004_backfills.sql"),
    ),
    (
        5,
        "queue",
        include_str!("../../migrations/postgres/0005_queue.sql"),
    ),
    (
        6,
        "notify",
        include_str!("../../migrations/postgres/0006_notify.sql"),
    ),
    (
        7,
        "operations",
        include_str!("../../migrations/postgres/0007_operations.sql"),
    ),
    (
        8,
        "server_secret",
        include_str!("../../migrations/postgres/0008_server_secret.sql"),
    ),
    (
        9,
        "search_text",
        include_str!("../../migrations/postgres/0009_search_text.sql"),
    ),
    (
        10,
        "project_version",
        include_str!("../../migrations/postgres/0010_project_version.sql"),
    ),
];

/// Connections of one store's pool.
const MAX_CONNECTIONS: u32 = 10;
/// How long a caller waits for a free connection before the database is
/// reported unavailable. While the database is away, every request waits
/// this long for its 503, so it stays short; the pool replaces broken
/// connections (it checks each before handing it out) once it is back.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a transaction that lost a race is run again.
const CONFLICT_RETRIES: u32 = 4;
/// The first pause before such a retry; each further pause doubles it.
const CONFLICT_BACKOFF: Duration = Duration::from_millis(10);

/// The PostgreSQL implementation of [`Store`].
pub struct PostgresStore {
    pool: PgPool,
    /// The channel of change announcements of this store's schema.
    channel: String,
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://…` or
    /// `postgresql://…`) and brings its schema up to date. The tables live
    /// in the first schema of the connection's search path; to keep them in
    /// a schema of their own, add `options=-c search_path=NAME` to the URL
    /// (`-c%20search_path%3DNAME` once URL-encoded).
    pub async fn connect(url: &str) -> Result<PostgresStore> {
        let options = PgConnectOptions::from_str(url).map_err(Error::Database)?;
        PostgresStore::connect_with(options).await
    }

    /// Connects with explicit options (for example a `search_path` that
    /// puts the store in its own schema) and brings the schema up to date.
    pub async fn connect_with(options: PgConnectOptions) -> Result<PostgresStore> {
        let pool = PgPoolOptions::new()
            .max_connections(MAX_CONNECTIONS)
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .connect_with(options)
            .await
            .db()?;
        let mut store = PostgresStore {
            pool,
            channel: String::new(),
        };
        store.migrate().await?;
        store.channel = changes::channel(&store.pool).await?;
        Ok(store)
    }

    /// Applies the pending migrations, each in its own transaction, under
    /// the advisory lock sqlx takes for the database.
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
        Migrator::with_migrations(migrations)
            .run(&self.pool)
            .await
            .map_err(|error| Error::Database(sqlx::Error::Migrate(Box::new(error))))
    }

    /// Starts a transaction; dropping it without a commit rolls it back.
    async fn begin(&self) -> Result<Transaction<'static, Postgres>> {
        self.pool.begin().await.db()
    }

    /// Runs a write, again with a growing pause while it loses races to
    /// other transactions (deadlocks, serialization failures).
    async fn write<T, F, Fut>(&self, mut op: F) -> Result<T>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T>>,
    {
        let mut pause = CONFLICT_BACKOFF;
        let mut retries = 0;
        loop {
            match op().await {
                Err(Error::Unavailable(error))
                    if retries < CONFLICT_RETRIES && codec::is_conflict(&error) =>
                {
                    retries += 1;
                    tracing::debug!(
                        retries,
                        "transaction lost a race, running it again: {error}"
                    );
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                outcome => return outcome,
            }
        }
    }
}

#[async_trait]
impl Store for PostgresStore {
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

    async fn list_artifacts(&self, run: &RunId) -> Result<Vec<ArtifactRecord>> {
        logs::list_artifacts(self, run).await
    }

    async fn append_audit(&self, event: &NewAuditEvent) -> Result<()> {
        audit::append_audit(self, event).await
    }

    async fn list_audit(&self, limit: u32, before_id: Option<i64>) -> Result<Vec<AuditEvent>> {
        audit::list_audit(self, limit, before_id).await
    }

    async fn register_executor(&self, executor: &ExecutorRecord) -> Result<()> {
        audit::register_executor(self, executor).await
    }

    async fn heartbeat_executor(&self, id: &ExecutorId, at: Timestamp) -> Result<()> {
        audit::heartbeat_executor(self, id, at).await
    }

    async fn get_executor(&self, id: &ExecutorId) -> Result<Option<ExecutorRecord>> {
        audit::get_executor(self, id).await
    }

    async fn remove_executor(&self, id: &ExecutorId) -> Result<()> {
        audit::remove_executor(self, id).await
    }

    async fn ping(&self) -> Result<()> {
        server::ping(self).await
    }

    async fn announce_change(&self) -> Result<()> {
        changes::announce(self).await
    }

    async fn listen_for_changes(&self) -> Result<Option<Box<dyn crate::ChangeListener>>> {
        changes::listen(self).await.map(Some)
    }

    async fn count_runs_by_status(&self, query: &RunQuery) -> Result<Vec<(RunStatus, u64)>> {
        run_list::count_runs_by_status(self, query).await
    }

    async fn search_artifacts(&self, query: &ArtifactQuery) -> Result<Vec<ArtifactRecord>> {
        server::search_artifacts(self, query).await
    }

    async fn get_artifact(&self, id: i64) -> Result<Option<ArtifactRecord>> {
        server::get_artifact(self, id).await
    }

    async fn create_api_token(&self, token: &NewApiToken) -> Result<()> {
        server::create_api_token(self, token).await
    }

    async fn find_api_token(&self, sha256: &str) -> Result<Option<ApiTokenRecord>> {
        server::find_api_token(self, sha256).await
    }

    async fn list_api_tokens(&self, limit: u32) -> Result<Vec<ApiTokenRecord>> {
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
