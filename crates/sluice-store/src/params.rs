//! Parameters of the store's write operations and queries.

use std::collections::BTreeMap;

use jiff::Timestamp;
use sluice_core::ids::{BlockRunId, ExecutorId, RunId, TryId};
use sluice_core::status::{BlockRunStatus, RunStatus};
use sluice_core::vars::ResolvedVariables;

use crate::model::{
    BlockRunRecord, DataRef, InvokedBy, RunRecord, RunWindow, TryRecord, TryStatus,
};

/// A run to create, with the block runs of its first attempt.
#[derive(Clone, Debug)]
pub struct NewRun {
    pub id: RunId,
    pub pipeline: String,
    pub pipeline_version: String,
    /// The project files' version (see [`crate::ProjectFile`]).
    pub project_version: Option<String>,
    /// `Initial`, or `Cancelled` for a run skipped by `on_limit: skip`.
    pub status: RunStatus,
    pub priority: i32,
    pub invoked_by: InvokedBy,
    pub tags: Vec<String>,
    pub variables: ResolvedVariables,
    pub created_at: Timestamp,
    pub sla_at: Option<Timestamp>,
    pub idempotency_key: Option<String>,
    pub owner: Option<ExecutorId>,
    pub block_concurrency: Option<u32>,
    pub error: Option<String>,
    /// The fire and window of a run a schedule starts.
    pub window: Option<RunWindow>,
    pub blocks: Vec<NewBlockRun>,
}

/// A block run to create within a new attempt.
#[derive(Clone, Debug)]
pub struct NewBlockRun {
    pub id: BlockRunId,
    pub block: String,
    /// `Initial`, `Completed` for a block reused from an earlier attempt, or
    /// `Cancelled` when the run itself is created cancelled.
    pub status: BlockRunStatus,
    pub priority: i32,
    pub max_tries: u32,
    pub labels: BTreeMap<String, String>,
    pub idempotency_key: String,
    pub outputs: BTreeMap<String, String>,
    pub reused_from_attempt: Option<u32>,
    pub data: Option<DataRef>,
}

/// The result of [`crate::Store::create_run`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CreatedRun {
    pub id: RunId,
    /// `false` when a run with the same idempotency key already existed; `id`
    /// is then that run's.
    pub created: bool,
}

/// A new attempt of a finished run (a retry).
#[derive(Clone, Debug)]
pub struct NewAttempt {
    pub run_id: RunId,
    /// The attempt the caller saw as the latest; the retry is refused if
    /// another writer already added one.
    pub previous_attempt: u32,
    pub mode: String,
    pub from_block: Option<String>,
    pub created_by: Option<String>,
    pub at: Timestamp,
    pub owner: Option<ExecutorId>,
    /// The versions the attempt runs: the run's own, or the latest ones
    /// when the retry asked for them; the run is pinned to them from now on.
    pub pipeline_version: String,
    pub project_version: Option<String>,
    pub blocks: Vec<NewBlockRun>,
}

/// A conditional status change of a run's latest attempt.
#[derive(Clone, Debug)]
pub struct RunTransition {
    pub id: RunId,
    pub attempt: u32,
    pub from: RunStatus,
    pub to: RunStatus,
    pub at: Timestamp,
    pub error: Option<String>,
    /// Set when the run starts running and has a timeout.
    pub timeout_at: Option<Timestamp>,
    /// Marks the run as ended by its timeout.
    pub timed_out: bool,
}

/// A conditional status change of a block run, for the changes that are not
/// a claim or a try's completion (those have their own operations).
#[derive(Clone, Debug)]
pub struct BlockRunTransition {
    pub id: BlockRunId,
    pub from: BlockRunStatus,
    pub to: BlockRunStatus,
    pub at: Timestamp,
    pub error: Option<String>,
}

/// A flag that can be raised on a run once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RunFlag {
    SlaMissed,
    /// A run timeout with `timeout_status: warning` only flags the run.
    TimedOut,
}

/// An executor asking for work.
#[derive(Clone, Debug)]
pub struct ClaimRequest {
    pub executor: ExecutorId,
    /// Only block runs of runs owned by this executor (embedded mode), or,
    /// when `None`, only block runs of runs no executor owns (a server).
    pub owner: Option<ExecutorId>,
    /// The labels the executor offers; a block run is claimable when its
    /// labels are a subset. `None` accepts every block run.
    pub labels: Option<BTreeMap<String, String>>,
    pub now: Timestamp,
    pub lease_expires_at: Timestamp,
}

/// A claimed try, with what the executor needs to run it.
#[derive(Clone, Debug)]
pub struct Claim {
    pub attempt_try: TryRecord,
    pub block_run: BlockRunRecord,
    pub run: RunRecord,
}

/// What the lease holder learns when renewing its lease.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LeaseState {
    /// The try should stop: its run has a cancellation request or has ended,
    /// or its block run was moved on by another writer.
    pub cancel_requested: bool,
}

/// How a block run goes on after one of its tries ended.
#[derive(Clone, Debug)]
pub enum BlockRunNext {
    /// Another try is due at `retry_at`: the block run goes back to `queued`.
    Retry { retry_at: Timestamp },
    /// The block run ends with this status.
    Finish { status: BlockRunStatus },
}

/// An artifact to record with a try's completion; its blob is already stored.
#[derive(Clone, Debug)]
pub struct NewArtifact {
    pub name: String,
    pub size: u64,
    pub sha256: String,
}

/// The end of a try, applied in one transaction with its block run's change.
#[derive(Clone, Debug)]
pub struct TryCompletion {
    pub try_id: TryId,
    pub block_run_id: BlockRunId,
    pub epoch: i64,
    pub status: TryStatus,
    pub at: Timestamp,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub timed_out: bool,
    pub outputs: BTreeMap<String, String>,
    pub data: Option<DataRef>,
    pub artifacts: Vec<NewArtifact>,
    pub next: BlockRunNext,
}

/// The order of a run listing (by creation time, then id).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    #[default]
    NewestFirst,
    OldestFirst,
}

/// A position in a run listing: the last run of the previous page.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunCursor {
    pub created_at: Timestamp,
    pub id: RunId,
}

/// Filters of a run listing. Every filter is backed by an index. An empty
/// list filters nothing; a run matches every filter that is given.
#[derive(Clone, Debug, Default)]
pub struct RunQuery {
    pub pipelines: Vec<String>,
    pub statuses: Vec<RunStatus>,
    pub tag: Option<String>,
    /// `invoked_by.kind` values.
    pub trigger_kinds: Vec<String>,
    /// Runs created at or after this instant.
    pub created_after: Option<Timestamp>,
    /// Runs created strictly before this instant.
    pub created_before: Option<Timestamp>,
    /// Runs that started at or after this instant.
    pub started_after: Option<Timestamp>,
    /// Runs that started strictly before this instant.
    pub started_before: Option<Timestamp>,
    /// Runs that finished at or after this instant.
    pub finished_after: Option<Timestamp>,
    /// Runs that finished strictly before this instant.
    pub finished_before: Option<Timestamp>,
    /// Runs whose id, pipeline, error or a non-secret variable value
    /// contains this text (ASCII letters compared without case).
    pub text: Option<String>,
    /// Only runs flagged `slow`.
    pub slow: bool,
    /// Only failed runs that no later attempt or run resolved.
    pub unresolved: bool,
    pub order: Order,
    /// Runs per page, between 1 and 1,000 (other values are clamped).
    pub limit: u32,
    /// Continue after this run: the `next_cursor` of the previous page.
    pub cursor: Option<RunCursor>,
}

/// One page of runs.
#[derive(Clone, Debug)]
pub struct RunPage {
    pub runs: Vec<RunRecord>,
    /// Present when there may be more runs after this page.
    pub next_cursor: Option<RunCursor>,
}

/// An audit event to append.
#[derive(Clone, Debug)]
pub struct NewAuditEvent {
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: serde_json::Value,
}

/// An API token to record.
#[derive(Clone, Debug)]
pub struct NewApiToken {
    pub name: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    /// Lowercase hex SHA-256 of the token.
    pub sha256: String,
    pub created_at: Timestamp,
    pub created_by: Option<String>,
}

/// Filters of an artifact search; a given filter must match.
#[derive(Clone, Debug, Default)]
pub struct ArtifactQuery {
    pub run: Option<RunId>,
    pub pipeline: Option<String>,
    pub name: Option<String>,
    /// Continue with artifacts whose id is below this one.
    pub before_id: Option<i64>,
    /// Between 1 and 1,000 (other values are clamped).
    pub limit: u32,
}

/// A fire of a trigger to record: its `last_fired_at` moves to `fired_at`
/// unless it is already later, so it never moves back.
#[derive(Clone, Debug)]
pub struct TriggerFire {
    pub pipeline: String,
    pub trigger: String,
    pub fired_at: Timestamp,
    /// The run the fire created; `None` when it could not create one (the
    /// fire is skipped for good and audited).
    pub run_id: Option<RunId>,
}

/// Pausing or resuming a trigger.
#[derive(Clone, Debug)]
pub struct TriggerPause {
    pub pipeline: String,
    pub trigger: String,
    /// `true` to pause, `false` to resume.
    pub paused: bool,
    pub by: String,
    pub at: Timestamp,
}

/// Where [`crate::Store::move_in_queue`] puts a queued block run. A move
/// keeps the block run among those of its priority.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum QueuePlace {
    /// The 1-based place in claim order, clamped to the block run's
    /// priority band.
    Position(u32),
    /// Just before another queued block run of the same priority.
    Before(BlockRunId),
}

/// A change of a queued block run's place in the claim order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueueMove {
    pub block_run: BlockRunId,
    pub place: QueuePlace,
}
