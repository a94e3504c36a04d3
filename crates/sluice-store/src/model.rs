//! Records the store reads and writes: runs, attempts, block runs, tries,
//! log chunks, artifacts, audit events, executors and trigger states.
//!
//! Timestamps are `jiff::Timestamp` (UTC) in code; the backends store them as
//! integer microseconds since the Unix epoch so that indexes and keyset
//! pagination stay cheap.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sluice_core::ids::{AgentId, BlockRunId, ExecutorId, RunId, TryId};
use sluice_core::status::{BlockRunStatus, RunStatus};
use sluice_core::vars::ResolvedVariables;

/// What started a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvokedBy {
    /// `manual`, `schedule`, `api`, `webhook`, `parent`, `backfill` or `retry`.
    pub kind: String,
    /// The trigger's name, when a trigger started the run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Who: a user name, a token name, or `host:pid` for a CLI process.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_run_id: Option<RunId>,
}

/// A pipeline run as stored. `status` is the status of the run's latest
/// attempt; earlier attempts keep theirs in [`AttemptRecord`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: RunId,
    pub pipeline: String,
    pub status: RunStatus,
    pub attempt: u32,
    pub priority: i32,
    pub invoked_by: InvokedBy,
    pub tags: Vec<String>,
    pub variables: ResolvedVariables,
    /// SHA-256 of the pipeline file the run is pinned to.
    pub pipeline_version: String,
    /// The version of the project's files the run is pinned to (the
    /// SHA-256 of their manifest, see [`ProjectFile`]); `None` for a run
    /// recorded without one.
    pub project_version: Option<String>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub error: Option<String>,
    pub cancel_requested_at: Option<Timestamp>,
    pub cancel_requested_by: Option<String>,
    pub timed_out: bool,
    pub sla_missed: bool,
    /// When the run times out, counted from its start.
    pub timeout_at: Option<Timestamp>,
    /// When the run misses its SLA, counted from its creation.
    pub sla_at: Option<Timestamp>,
    /// When the run's estimated finish first passed `sla_at` while it was
    /// still running; `None` when it never did.
    pub sla_at_risk_at: Option<Timestamp>,
    pub idempotency_key: Option<String>,
    /// The executor driving the run in embedded mode (`sluice run`); `None`
    /// when a server drives it.
    pub owner: Option<ExecutorId>,
    /// Most block runs of this run that may run at once (`block_concurrency`).
    pub block_concurrency: Option<u32>,
    /// The fire and window of a run a schedule started; `None` otherwise.
    pub window: Option<RunWindow>,
    /// It completed slower than its baseline's p95 times `drift.factor`.
    pub slow: bool,
    /// The duration baseline recorded when the run finished.
    pub baseline: Option<RunBaseline>,
    /// The later attempt or run that completed what this failed run did not.
    pub resolved: Option<Resolution>,
}

/// The median and p95 of a set of durations, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurationStats {
    /// How many durations the figures are taken from.
    pub samples: u32,
    pub median_ms: u64,
    pub p95_ms: u64,
}

/// The durations of a pipeline's latest completed runs, as a run was judged
/// against them when it finished.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunBaseline {
    /// The whole run (its latest attempt, from start to finish).
    pub run: DurationStats,
    /// Each block that ran in those runs (reused block runs left out).
    pub blocks: BTreeMap<String, DurationStats>,
    /// The `drift.factor` the run was judged with.
    pub factor: f64,
}

/// What resolved a failed run: the run and attempt that completed later.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    pub at: Timestamp,
    pub run_id: RunId,
    pub attempt: u32,
}

/// The durations of one completed run, for baselines.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunDurations {
    pub run_id: RunId,
    /// The run's latest attempt, from start to finish, in milliseconds.
    pub run_ms: u64,
    /// Each block run of that attempt that completed by running (not
    /// reused), by block, in milliseconds.
    pub blocks: Vec<(String, u64)>,
}

/// A finished run that retention deleted, with the blobs its rows
/// referenced (each may still be referenced by another run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PurgedRun {
    pub id: RunId,
    pub blobs: Vec<String>,
}

/// The fire a scheduled run stands for and the window of time it covers
/// (see `sluice_core::schedule::Fire`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunWindow {
    pub scheduled_for: Timestamp,
    pub window_start: Timestamp,
    pub window_end: Timestamp,
}

/// What the scheduler keeps about one trigger between passes: its last fire
/// and whether an operator paused it. A trigger without a row has never
/// fired and is not paused.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerState {
    pub pipeline: String,
    pub trigger: String,
    /// The latest `scheduled_for` a run was created for (for `always_on`,
    /// the instant its latest run was due).
    pub last_fired_at: Option<Timestamp>,
    /// The run the latest fire created.
    pub last_run_id: Option<RunId>,
    pub paused: bool,
    pub paused_by: Option<String>,
    pub paused_at: Option<Timestamp>,
}

/// One attempt of a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub run_id: RunId,
    pub attempt: u32,
    pub status: RunStatus,
    /// `initial`, `incomplete`, `from_block` or `all`.
    pub mode: String,
    pub from_block: Option<String>,
    pub created_at: Timestamp,
    pub created_by: Option<String>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub error: Option<String>,
    /// The pipeline and project versions the attempt ran with; `None` for
    /// an attempt recorded before attempts kept them.
    pub pipeline_version: Option<String>,
    pub project_version: Option<String>,
}

/// One file of a project version. A version is the set of its files; its
/// SHA-256 is that of the manifest listing them (see
/// `sluice_engine::project`), and each file's content is a blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProjectFile {
    /// Relative to the project directory, `/`-separated.
    pub path: String,
    pub sha256: String,
    pub size: u64,
    /// Whether the file is executable (mode 0755 rather than 0644).
    pub executable: bool,
}

/// One block within one attempt.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BlockRunRecord {
    pub id: BlockRunId,
    pub run_id: RunId,
    pub attempt: u32,
    pub block: String,
    pub status: BlockRunStatus,
    pub priority: i32,
    pub max_tries: u32,
    /// Tries started so far.
    pub tries: u32,
    pub created_at: Timestamp,
    pub queued_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// A queued block run waiting out its retry backoff is not claimable
    /// before this time.
    pub retry_at: Option<Timestamp>,
    pub outputs: BTreeMap<String, String>,
    pub error: Option<String>,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub reused_from_attempt: Option<u32>,
    pub data: Option<DataRef>,
    pub labels: BTreeMap<String, String>,
    /// Stable across tries and attempts of the same block in the same run.
    pub idempotency_key: String,
}

/// A block run's data output, stored as a content-addressed blob.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataRef {
    pub sha256: String,
    /// `csv` or `jsonl`.
    pub format: String,
    pub size: u64,
}

/// The status of one try.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TryStatus {
    Running,
    Completed,
    Failed,
    Cancelled,
    /// Its executor disappeared (lease expired or process gone).
    Lost,
}

impl TryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            TryStatus::Running => "running",
            TryStatus::Completed => "completed",
            TryStatus::Failed => "failed",
            TryStatus::Cancelled => "cancelled",
            TryStatus::Lost => "lost",
        }
    }

    pub fn parse(s: &str) -> Option<TryStatus> {
        [
            TryStatus::Running,
            TryStatus::Completed,
            TryStatus::Failed,
            TryStatus::Cancelled,
            TryStatus::Lost,
        ]
        .into_iter()
        .find(|status| status.as_str() == s)
    }
}

/// One execution of a block run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TryRecord {
    pub id: TryId,
    pub block_run_id: BlockRunId,
    pub try_number: u32,
    pub status: TryStatus,
    pub executor: ExecutorId,
    pub lease_epoch: i64,
    pub lease_expires_at: Timestamp,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub timed_out: bool,
}

/// One line of a try's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogLine {
    pub at: Timestamp,
    /// `stdout`, `stderr`, or `sluice` for lines the executor adds.
    pub stream: String,
    pub text: String,
}

/// A numbered batch of log lines; `(try, seq)` is unique, so uploading the
/// same chunk twice is harmless.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogChunk {
    pub try_id: TryId,
    pub seq: u64,
    pub lines: Vec<LogLine>,
}

/// A file a block run left behind, stored content-addressed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactRecord {
    pub id: i64,
    pub run_id: RunId,
    pub block_run_id: BlockRunId,
    pub try_id: TryId,
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub created_at: Timestamp,
}

/// An entry of the audit log: who did what, to what, when.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEvent {
    pub id: i64,
    pub at: Timestamp,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub details: serde_json::Value,
}

/// A process that executes tries: `sluice run`, a server's built-in agent, or
/// a remote agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ExecutorRecord {
    pub id: ExecutorId,
    /// `embedded`, `server` or `agent`.
    pub kind: String,
    pub host: String,
    pub pid: u32,
    pub started_at: Timestamp,
    pub heartbeat_at: Timestamp,
    pub labels: BTreeMap<String, String>,
}

/// An API token as stored: never the token itself, only its SHA-256.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenRecord {
    pub name: String,
    /// `viewer`, `operator` or `admin`.
    pub role: String,
    pub sha256: String,
    pub created_at: Timestamp,
    pub created_by: Option<String>,
    pub revoked_at: Option<Timestamp>,
}

/// A remote agent as registered: each is also an executor with the same id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgentRecord {
    pub id: AgentId,
    pub name: String,
    pub version: String,
    pub registered_at: Timestamp,
}

/// A remote agent with its executor's facts, for listings.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AgentListing {
    pub agent: AgentRecord,
    pub host: String,
    pub labels: BTreeMap<String, String>,
    pub heartbeat_at: Timestamp,
    /// It said it stops claiming and finishes what it runs.
    pub draining: bool,
    /// Tries it runs now.
    pub running_tries: u32,
}

/// A queued block run, in claim order, with the facts of its run that
/// decide whether it can be claimed now.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueuedBlockRun {
    pub block_run: BlockRunRecord,
    pub pipeline: String,
    /// The executor that owns the run in embedded mode (`sluice run`).
    pub owner: Option<ExecutorId>,
    /// The run's `block_concurrency`.
    pub block_concurrency: Option<u32>,
    /// Block runs of the same attempt running now.
    pub running_in_attempt: u32,
}
