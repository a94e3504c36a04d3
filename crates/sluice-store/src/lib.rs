//! The run ledger's storage: one [`Store`] interface with an SQLite backend
//! (the embedded default) and a PostgreSQL backend (several servers on one
//! database), [`open`] to pick one from a URL or a path, a content-addressed
//! blob directory, and a conformance suite every backend must pass.
//!
//! Architecture invariant: every status change is a conditional update on the
//! expected current status (checked against `sluice_core::status` first), and
//! every executor write carries its lease epoch; a racing or stale writer gets
//! `false` or [`Error::StaleLease`], never a silent overwrite.

mod backfill;
pub mod blobs;
pub mod bulk;
pub mod conformance;
mod encoding;
pub mod model;
mod notify;
mod open;
mod operations;
pub mod params;
pub mod postgres;
mod queue;
pub mod sqlite;

use async_trait::async_trait;
use jiff::Timestamp;
use sluice_core::ids::{AgentId, BackfillId, BlockRunId, ExecutorId, RunId, TryId};
use sluice_core::status::{RunStatus, TransitionError};

pub use backfill::*;
pub use model::*;
pub use notify::*;
pub use open::{Location, open};
pub use operations::*;
pub use params::*;

/// A store error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Transition(#[from] TransitionError),
    /// The lease epoch of an executor write is not the try's current one, or
    /// the try is no longer running.
    #[error("the lease of try `{0}` is no longer held by this executor")]
    StaleLease(TryId),
    /// The write conflicts with the current state (for example, a retry of a
    /// run that is not finished).
    #[error("{0}")]
    Conflict(String),
    #[error("not found: {0}")]
    NotFound(String),
    /// The database is unreachable or busy beyond the retry budget.
    #[error("database unavailable")]
    Unavailable(#[source] sqlx::Error),
    #[error("database error")]
    Database(#[source] sqlx::Error),
    #[error("corrupt record: {0}")]
    Corrupt(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Changes announced by other processes sharing the database (see
/// [`Store::listen_for_changes`]).
#[async_trait]
pub trait ChangeListener: Send {
    /// Waits for the next announcement. It also returns when the listener
    /// had to reconnect, since announcements made meanwhile were missed; an
    /// error (the database is away) is worth a pause and another call,
    /// which reconnects.
    async fn next(&mut self) -> Result<()>;
}

/// The storage interface of the engine. Implementations must be safe to use
/// from several processes at once (see the crate invariant).
///
/// Listings without a `limit` of their own (a run's attempts, block runs,
/// tries and artifacts) are still bounded: they return at most 10,000 rows.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // Pipeline versions: the exact pipeline file a run is pinned to.
    async fn put_pipeline_version(&self, sha256: &str, pipeline: &str, source: &str) -> Result<()>;
    async fn get_pipeline_version(&self, sha256: &str) -> Result<Option<String>>;
    /// Records a version of the project's files (idempotent per digest).
    /// The files' contents must already be blobs. Versions are never
    /// deleted, so their blobs stay referenced.
    async fn put_project_version(&self, sha256: &str, files: &[ProjectFile]) -> Result<()>;
    /// The files of a project version, by path, or `None` if unknown.
    async fn get_project_version(&self, sha256: &str) -> Result<Option<Vec<ProjectFile>>>;
    /// Whether project version `version` holds a file whose content has
    /// this digest (one indexed lookup, for serving files to agents).
    async fn project_file_held(&self, version: &str, sha256: &str) -> Result<bool>;

    // Runs.
    /// Creates a run with its first attempt and block runs in one
    /// transaction; idempotent per `(pipeline, idempotency_key)`.
    async fn create_run(&self, run: NewRun) -> Result<CreatedRun>;
    async fn get_run(&self, id: &RunId) -> Result<Option<RunRecord>>;
    async fn list_runs(&self, query: &RunQuery) -> Result<RunPage>;
    /// Runs whose status is `initial` or `running`, oldest first, at most `limit`.
    async fn active_runs(&self, limit: u32) -> Result<Vec<RunRecord>>;
    /// How many runs of `pipeline` have one of `statuses`.
    async fn count_runs(&self, pipeline: &str, statuses: &[RunStatus]) -> Result<u32>;
    /// Applies a status change if the run's latest attempt is still `attempt`
    /// with status `from`; returns whether it was applied.
    async fn transition_run(&self, change: &RunTransition) -> Result<bool>;
    /// Records a cancellation request once; returns whether this call set it
    /// (`false` as well for a finished run). [`Error::NotFound`] for an
    /// unknown run.
    async fn request_cancel(&self, id: &RunId, by: &str, at: Timestamp) -> Result<bool>;
    /// Raises a flag once; returns whether this call set it.
    /// [`Error::NotFound`] for an unknown run.
    async fn flag_run(&self, id: &RunId, flag: RunFlag) -> Result<bool>;
    async fn list_attempts(&self, id: &RunId) -> Result<Vec<AttemptRecord>>;
    /// Opens a new attempt of a finished run with its block runs. Fails with
    /// [`Error::Conflict`] if the run is not finished or another attempt was
    /// added meanwhile.
    async fn start_attempt(&self, attempt: &NewAttempt) -> Result<()>;

    // Block runs.
    /// The block runs of a run's attempt (the latest when `None`), in creation order.
    async fn list_block_runs(
        &self,
        run: &RunId,
        attempt: Option<u32>,
    ) -> Result<Vec<BlockRunRecord>>;
    async fn get_block_run(&self, id: &BlockRunId) -> Result<Option<BlockRunRecord>>;
    async fn transition_block_run(&self, change: &BlockRunTransition) -> Result<bool>;

    // Tries and leases.
    /// Claims the first claimable queued block run (highest priority, then
    /// oldest) and starts a try with a new lease.
    async fn claim(&self, request: &ClaimRequest) -> Result<Option<Claim>>;
    /// Extends a lease; [`Error::StaleLease`] if the try is not running
    /// under this epoch. The reply asks the executor to stop the try when
    /// its run has a cancellation request or has ended, or when another
    /// writer already moved its block run on.
    async fn renew_lease(
        &self,
        try_id: &TryId,
        epoch: i64,
        expires_at: Timestamp,
    ) -> Result<LeaseState>;
    /// Ends a try and moves its block run on, in one transaction, fenced by
    /// the lease epoch ([`Error::StaleLease`]). The block-run change is
    /// checked against the transition table first ([`Error::Transition`]).
    /// If another writer already moved the block run on (a cancellation, a
    /// timeout), the try's end and artifacts are still recorded and the
    /// block run keeps its status.
    async fn complete_try(&self, completion: &TryCompletion) -> Result<()>;
    /// Running tries whose lease expired before `now`.
    async fn expired_tries(&self, now: Timestamp, limit: u32) -> Result<Vec<TryRecord>>;
    /// Every try of every block run of a run (all attempts), in start order.
    async fn list_run_tries(&self, run: &RunId) -> Result<Vec<TryRecord>>;
    async fn list_tries(&self, block_run: &BlockRunId) -> Result<Vec<TryRecord>>;
    async fn get_try(&self, id: &TryId) -> Result<Option<TryRecord>>;

    // The queue.
    /// Queued block runs of running runs' current attempts (without a
    /// cancellation request), in claim order, at most `limit`.
    async fn list_queue(&self, limit: u32) -> Result<Vec<QueuedBlockRun>>;
    /// Moves a queued block run to another place among those of its
    /// priority; later claims follow the new order. [`Error::Conflict`] when
    /// it (or the one to move it before) is not in the queue, or when the
    /// other one has another priority.
    async fn move_in_queue(&self, change: &QueueMove) -> Result<()>;

    // Logs.
    /// Stores a chunk; a chunk already stored under the same `(try, seq)` is
    /// left as it is. Fenced by the lease epoch: a new chunk needs the try to
    /// be running under `epoch`, while a re-upload of a stored chunk is
    /// accepted after the try ended, as long as `epoch` is the try's.
    async fn append_log_chunk(&self, chunk: &LogChunk, epoch: i64) -> Result<()>;
    /// Chunks with `seq > after_seq` (all when `None`), in order, at most `limit`.
    async fn read_log(
        &self,
        try_id: &TryId,
        after_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<LogChunk>>;

    // Artifacts.
    async fn list_artifacts(&self, run: &RunId) -> Result<Vec<ArtifactRecord>>;

    // Audit.
    async fn append_audit(&self, event: &NewAuditEvent) -> Result<()>;
    /// Newest first, at most `limit`, with ids below `before_id` when given.
    async fn list_audit(&self, limit: u32, before_id: Option<i64>) -> Result<Vec<AuditEvent>>;

    // Executors.
    /// Records an executor, replacing the record of one with the same id.
    async fn register_executor(&self, executor: &ExecutorRecord) -> Result<()>;
    /// [`Error::NotFound`] for an executor that is not registered.
    async fn heartbeat_executor(&self, id: &ExecutorId, at: Timestamp) -> Result<()>;
    async fn get_executor(&self, id: &ExecutorId) -> Result<Option<ExecutorRecord>>;
    /// Removing an executor that is not registered does nothing.
    async fn remove_executor(&self, id: &ExecutorId) -> Result<()>;
    /// Executors (built-in agents and remote ones) by id, at most `limit`.
    async fn list_executors(&self, limit: u32) -> Result<Vec<ExecutorRecord>>;

    // Remote agents.
    /// Records an agent whose executor is registered, replacing the record
    /// of one with the same id.
    async fn put_agent(&self, agent: &AgentRecord) -> Result<()>;
    /// Records whether an agent drains; [`Error::NotFound`] for an unknown
    /// agent.
    async fn set_agent_draining(&self, id: &AgentId, draining: bool) -> Result<()>;
    /// Agents by name, at most `limit`, with how many tries each runs.
    async fn list_agents(&self, limit: u32) -> Result<Vec<AgentListing>>;

    // What a server needs besides the ledger.
    /// Succeeds when the database answers a trivial query.
    async fn ping(&self) -> Result<()>;
    /// Tells the other processes sharing this database that its state
    /// changed in a way that may make work claimable or move a run
    /// (PostgreSQL: `NOTIFY` on the schema's channel). Backends without
    /// such notifications do nothing; their processes poll.
    async fn announce_change(&self) -> Result<()> {
        Ok(())
    }
    /// Listens for the changes other processes announce; `None` when the
    /// backend has no such notifications (SQLite).
    async fn listen_for_changes(&self) -> Result<Option<Box<dyn ChangeListener>>> {
        Ok(None)
    }
    /// How many runs match the query's filters, per status (statuses with
    /// no run are left out). The cursor, order and limit are ignored.
    async fn count_runs_by_status(&self, query: &RunQuery) -> Result<Vec<(RunStatus, u64)>>;
    /// Artifacts matching every given filter, newest first, at most
    /// `query.limit` (at most 1,000).
    async fn search_artifacts(&self, query: &ArtifactQuery) -> Result<Vec<ArtifactRecord>>;
    async fn get_artifact(&self, id: i64) -> Result<Option<ArtifactRecord>>;
    /// [`Error::Conflict`] when a token with this name or hash exists.
    async fn create_api_token(&self, token: &NewApiToken) -> Result<()>;
    /// The token with this SHA-256, revoked or not.
    async fn find_api_token(&self, sha256: &str) -> Result<Option<ApiTokenRecord>>;
    /// Tokens by name, at most `limit`.
    async fn list_api_tokens(&self, limit: u32) -> Result<Vec<ApiTokenRecord>>;
    /// Revokes a token once; returns whether this call revoked it.
    /// [`Error::NotFound`] for an unknown name.
    async fn revoke_api_token(&self, name: &str, at: Timestamp) -> Result<bool>;
    /// Records `request_hash` as the request behind `(pipeline, key)` unless
    /// one is recorded already; returns the hash on record (the caller's when
    /// it was the first).
    async fn reserve_idempotency_key(
        &self,
        pipeline: &str,
        key: &str,
        request_hash: &str,
        at: Timestamp,
    ) -> Result<String>;
    /// Records `candidate` as the server secret `name` unless one is
    /// recorded already; returns the secret on record (the caller's when it
    /// was the first). Every server of a database thus shares one value.
    async fn reserve_server_secret(
        &self,
        name: &str,
        candidate: &str,
        at: Timestamp,
    ) -> Result<String>;

    // Trigger states (the scheduler's memory between passes).
    /// Every recorded trigger state, by pipeline and trigger (at most 10,000).
    async fn list_trigger_states(&self) -> Result<Vec<TriggerState>>;
    async fn get_trigger_state(
        &self,
        pipeline: &str,
        trigger: &str,
    ) -> Result<Option<TriggerState>>;
    /// Moves the trigger's last fire to `fire.fired_at` (and its last run to
    /// `fire.run_id`) unless the recorded one is later; returns whether it
    /// was applied. Recording the same fire twice applies both times.
    async fn record_trigger_fire(&self, fire: &TriggerFire) -> Result<bool>;
    /// Pauses or resumes a trigger; returns whether this call changed it.
    async fn set_trigger_paused(&self, change: &TriggerPause) -> Result<bool>;

    // Backfills.
    /// [`Error::Conflict`] when a backfill with this id exists.
    async fn create_backfill(&self, backfill: &BackfillRecord) -> Result<()>;
    async fn get_backfill(&self, id: &BackfillId) -> Result<Option<BackfillRecord>>;
    /// Newest first, only those with `status` when given, at most `limit`
    /// (at most 10,000).
    async fn list_backfills(
        &self,
        status: Option<BackfillStatus>,
        limit: u32,
    ) -> Result<Vec<BackfillRecord>>;
    /// Applies a status change if the backfill is still `change.from`;
    /// returns whether it was applied.
    async fn set_backfill_status(&self, change: &BackfillStatusChange) -> Result<bool>;
    /// Runs of a pipeline whose window ends in the query's range, by window
    /// end then creation (at most 10,000).
    async fn list_window_runs(&self, query: &WindowRunQuery) -> Result<Vec<RunRecord>>;

    // Notifications and SLA risk.
    /// Records deliveries of notification events in one transaction; a
    /// delivery already recorded under the same `(run, attempt, event,
    /// channel)` is left as it is. Returns how many this call added.
    async fn record_deliveries(&self, deliveries: &[NewDelivery]) -> Result<u32>;
    /// Applies a run's status change like [`Store::transition_run`] and,
    /// only when it is applied, records `deliveries` in the same
    /// transaction, so a run never ends without the notifications of its
    /// end.
    async fn transition_run_notifying(
        &self,
        change: &RunTransition,
        deliveries: &[NewDelivery],
    ) -> Result<bool>;
    /// Sets the run's `sla_at_risk_at` once; returns whether this call set
    /// it. [`Error::NotFound`] for an unknown run.
    async fn mark_sla_at_risk(&self, id: &RunId, at: Timestamp) -> Result<bool>;
    /// Claims pending deliveries due at `claim.now` that no live claim
    /// holds, oldest due first, at most `claim.limit`: each is held until
    /// `claim.claimed_until` and its `attempts` goes up by one. A delivery
    /// is claimed by one caller only, whatever the number of servers.
    async fn claim_deliveries(&self, claim: &DeliveryClaim) -> Result<Vec<DeliveryRecord>>;
    /// Records how a send ended, if the delivery is still pending with the
    /// `attempts` of the caller's claim; returns whether it was applied.
    async fn finish_delivery(&self, outcome: &DeliveryOutcome) -> Result<bool>;
    /// The deliveries of a run (all attempts), in creation order (at most
    /// 10,000).
    async fn list_deliveries(&self, run: &RunId) -> Result<Vec<DeliveryRecord>>;
    /// How long each completed block run took in the latest `runs` completed
    /// runs of `pipeline` (newest first; blocks reused from an earlier
    /// attempt are left out): the history the SLA estimate is made from.
    async fn completed_block_timings(&self, pipeline: &str, runs: u32) -> Result<Vec<BlockTiming>>;

    // Duration baselines, resolved failures and retention.
    /// The latest completed runs of a pipeline that finished at or before
    /// `query.finished_before` (without `query.exclude`), newest first, with
    /// the duration of their latest attempt and of each block run of it
    /// that completed by running.
    async fn duration_history(&self, query: &DurationHistoryQuery) -> Result<Vec<RunDurations>>;
    /// Records a finished run's baseline and `slow` verdict while
    /// `record.attempt` is still its latest attempt; returns whether it was
    /// recorded.
    async fn record_baseline(&self, record: &BaselineRecord) -> Result<bool>;
    /// Marks the failures a completed run resolves: the run itself when an
    /// earlier attempt of it failed, and the failed runs of the same
    /// pipeline and window that finished before it. A run already resolved
    /// keeps its resolution. Returns the runs this call marked.
    async fn resolve_failures(&self, resolving: &ResolvingRun) -> Result<Vec<RunId>>;
    /// Finished runs of a pipeline created before `query.created_before`,
    /// leaving out its latest `query.keep_last` runs, oldest first.
    async fn expired_runs(&self, query: &ExpiredRunQuery) -> Result<Vec<RunRecord>>;
    /// Deletes a finished run with its attempts, block runs, tries, log
    /// chunks, artifacts and notification deliveries, and appends
    /// `purge.audit`, in one transaction. Pipeline and project versions are
    /// kept (their files are shared by content). Returns the digests of the blobs its rows referenced, or `None` when the run does not exist or is not
    /// finished (then nothing is written).
    async fn purge_run(&self, purge: &RunPurge) -> Result<Option<PurgedRun>>;
    /// Whether an artifact, a block run's data output or a project file
    /// references the blob.
    async fn blob_referenced(&self, sha256: &str) -> Result<bool>;
}
