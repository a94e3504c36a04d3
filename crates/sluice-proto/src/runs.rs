//! Runs (`pipeline_run`): listings, details, and the requests that trigger,
//! cancel and retry them, one by one or in batches.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{Artifact, BlockRun, ErrorDetail};

/// What started a run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct InvokedBy {
    /// `manual`, `schedule`, `api`, `webhook`, `parent`, `backfill` or `retry`.
    pub kind: String,
    /// The trigger's name, when a trigger started the run.
    pub name: Option<String>,
    /// Who: a token name, a user, or `user@host` for the CLI.
    pub actor: Option<String>,
    pub parent_run_id: Option<String>,
}

/// A run's variable with the layer its value came from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Variable {
    /// `***` when the variable is secret.
    pub value: serde_json::Value,
    /// `default`, `trigger`, `backfill` or `run`.
    pub layer: String,
    pub secret: bool,
}

/// One run (`pipeline_run`). Its status is its latest attempt's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Run {
    pub id: String,
    pub pipeline: String,
    /// `initial`, `running`, `completed`, `failed` or `cancelled`.
    pub status: String,
    pub attempt: u32,
    pub priority: i32,
    pub invoked_by: InvokedBy,
    pub tags: Vec<String>,
    pub variables: BTreeMap<String, Variable>,
    /// SHA-256 of the pipeline file the run is pinned to.
    pub pipeline_version: String,
    /// The version of the project's files the run is pinned to: the SHA-256
    /// of their manifest (`GET /api/projects/{version}` lists them). `null`
    /// for a run recorded without one.
    pub project_version: Option<String>,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub error: Option<String>,
    pub cancel_requested_at: Option<Timestamp>,
    pub cancel_requested_by: Option<String>,
    pub timed_out: bool,
    pub sla_missed: bool,
    pub timeout_at: Option<Timestamp>,
    pub sla_at: Option<Timestamp>,
    /// While it was running, its estimated finish (from the history of its
    /// blocks) passed its SLA deadline.
    #[serde(default)]
    pub sla_at_risk: bool,
    /// When the estimate first passed the deadline.
    #[serde(default)]
    pub sla_at_risk_at: Option<Timestamp>,
    pub idempotency_key: Option<String>,
    /// For a run a schedule started: the fire it stands for.
    #[serde(default)]
    pub scheduled_for: Option<Timestamp>,
    /// For a run a schedule started: the start of the window of time it
    /// covers (the schedule's previous fire).
    #[serde(default)]
    pub window_start: Option<Timestamp>,
    /// For a run a schedule started: the end of its window (its fire).
    #[serde(default)]
    pub window_end: Option<Timestamp>,
    /// It completed slower than its baseline's p95 times `drift.factor`.
    #[serde(default)]
    pub slow: bool,
    /// The duration baseline the run was judged against when it finished:
    /// the median and p95 of the pipeline's latest completed runs and of
    /// each of their blocks. Absent before the run finishes, or when no
    /// earlier run completed.
    #[serde(default)]
    pub baseline: Option<RunBaseline>,
    /// For a failed run: the later attempt or run that completed its work.
    #[serde(default)]
    pub resolved: Option<Resolution>,
}

/// The median and p95 of some durations, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DurationStats {
    /// How many durations the figures are taken from.
    pub samples: u32,
    pub median_ms: u64,
    pub p95_ms: u64,
}

/// A run's duration baseline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunBaseline {
    /// The whole run (its latest attempt, from start to finish).
    pub run: DurationStats,
    /// Each block, by id (block runs reused from an earlier attempt are
    /// left out).
    pub blocks: BTreeMap<String, DurationStats>,
    /// The `drift.factor` the run was judged with.
    pub factor: f64,
}

/// What resolved a failed run.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Resolution {
    pub at: Timestamp,
    /// The run whose completion resolved it: itself (a later attempt) or a
    /// later run of the same pipeline and window.
    pub run_id: String,
    pub attempt: u32,
}

/// A single run in a response: `{"pipeline_run": {...}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunEnvelope {
    pub pipeline_run: Run,
}

/// `GET /api/pipeline_runs`: one page of runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunList {
    pub pipeline_runs: Vec<Run>,
    /// Pass as `next_cursor` to get the next page; absent on the last page.
    pub next_cursor: Option<String>,
    /// With `summary=true`: how many runs match the filters, per status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<BTreeMap<String, u64>>,
}

/// One attempt of a run with its block runs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Attempt {
    pub attempt: u32,
    pub status: String,
    /// `initial`, `incomplete`, `from_block` or `all`.
    pub mode: String,
    pub from_block: Option<String>,
    pub created_at: Timestamp,
    pub created_by: Option<String>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    pub error: Option<String>,
    /// The pipeline version this attempt ran with; `null` for an attempt
    /// recorded before attempts kept their versions.
    pub pipeline_version: Option<String>,
    /// The project files' version this attempt ran with; `null` when it
    /// ran without pinned files.
    pub project_version: Option<String>,
    pub block_runs: Vec<BlockRun>,
}

/// One notification of a run to one channel, with its sends.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Notification {
    /// `failed`, `completed`, `cancelled`, `sla_missed`, `sla_at_risk`,
    /// `timed_out`, `slow` or `recovered`.
    pub event: String,
    /// The run attempt the event belongs to; 0 for the events raised once
    /// per run (`sla_missed`, `sla_at_risk`, `timed_out`).
    pub attempt: u32,
    /// The channel's name in the pipeline's `notify:`.
    pub channel: String,
    /// `webhook`, `slack` or `email`.
    pub kind: String,
    /// Where it goes, secrets masked: `https://host/***` or
    /// `smtp://host:port`. Absent when the channel is no longer in the
    /// run's pipeline.
    pub target: Option<String>,
    /// `pending` (waiting for its next send), `delivered` or `failed`.
    pub status: String,
    /// Sends started so far.
    pub attempts: u32,
    pub max_attempts: u32,
    /// Why the latest send failed.
    pub last_error: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// When a pending notification is sent next.
    pub next_attempt_at: Option<Timestamp>,
    pub delivered_at: Option<Timestamp>,
}

/// `GET /api/pipeline_runs/{id}`: everything recorded about a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunDetails {
    pub pipeline_run: Run,
    pub attempts: Vec<Attempt>,
    pub artifacts: Vec<Artifact>,
    /// Its notifications, oldest first.
    #[serde(default)]
    pub notifications: Vec<Notification>,
}

/// `POST /api/pipelines/{name}/runs`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TriggerRunRequest {
    /// Values for this run: the top layer of its variables.
    #[serde(default)]
    pub variables: BTreeMap<String, serde_json::Value>,
    /// Higher runs first; the pipeline's priority when absent.
    #[serde(default)]
    pub priority: Option<i32>,
}

/// Which block runs a retry runs again.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RetryMode {
    /// Every block run that did not complete.
    #[default]
    Incomplete,
    /// `block` and everything downstream of it.
    FromBlock,
    /// Every block.
    All,
}

/// `POST /api/pipeline_runs/{id}/retry`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryRunRequest {
    #[serde(default)]
    pub mode: RetryMode,
    /// Required with `from_block`.
    #[serde(default)]
    pub block: Option<String>,
    /// Run the pipeline file and project files as they are now instead of
    /// the versions the run is pinned to (the default); the run is pinned to
    /// the new versions from this attempt on.
    #[serde(default)]
    pub latest: bool,
}

/// The body of Mage's `PUT /api/pipeline_runs/{id}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct MageRunUpdateRequest {
    pub pipeline_run: MageRunUpdate,
}

/// Either `{"status": "cancelled"}` or
/// `{"pipeline_run_action": "retry_blocks", "from_block_uuid": "..."}`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MageRunUpdate {
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub pipeline_run_action: Option<String>,
    /// Retry from this block; without it, the incomplete blocks are retried.
    #[serde(default)]
    pub from_block_uuid: Option<String>,
}

/// Run filters of a batch request; the same as the listing's.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunFilter {
    #[serde(default)]
    pub pipeline: Vec<String>,
    #[serde(default)]
    pub status: Vec<String>,
    #[serde(default)]
    pub tag: Option<String>,
    /// Trigger kinds (`invoked_by.kind`).
    #[serde(default)]
    pub trigger: Vec<String>,
    /// Runs created at or after this time.
    #[serde(default)]
    pub after: Option<Timestamp>,
    /// Runs created before this time.
    #[serde(default)]
    pub before: Option<Timestamp>,
    /// Started at or after (RFC 3339).
    #[serde(default)]
    pub started_after: Option<Timestamp>,
    /// Started before (RFC 3339).
    #[serde(default)]
    pub started_before: Option<Timestamp>,
    /// Finished at or after (RFC 3339).
    #[serde(default)]
    pub finished_after: Option<Timestamp>,
    /// Finished before (RFC 3339).
    #[serde(default)]
    pub finished_before: Option<Timestamp>,
    /// Text in the run id, pipeline, error or a non-secret variable value.
    #[serde(default)]
    pub q: Option<String>,
    /// Only runs flagged `slow`.
    #[serde(default)]
    pub slow: bool,
    /// Only failed runs that no later attempt or run resolved.
    #[serde(default)]
    pub unresolved: bool,
}

/// What a batch does to each run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchAction {
    Cancel,
    Retry,
}

/// `POST /api/pipeline_runs/batch`: by `ids` or by `filter`, not both.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub action: BatchAction,
    #[serde(default)]
    pub ids: Option<Vec<String>>,
    #[serde(default)]
    pub filter: Option<RunFilter>,
    /// Only say which runs would be touched.
    #[serde(default)]
    pub dry_run: bool,
    /// For `retry`: which block runs run again.
    #[serde(default)]
    pub mode: Option<RetryMode>,
    /// For `retry` with `from_block`.
    #[serde(default)]
    pub block: Option<String>,
}

/// One run of a batch and what happened to it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BatchItem {
    pub id: String,
    pub pipeline: String,
    /// The run's status when it was selected.
    pub status: String,
    /// `would_cancel`, `would_retry`, `cancelled`, `retried` or `failed`.
    pub outcome: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
}

/// The answer to a batch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BatchResponse {
    pub action: BatchAction,
    pub dry_run: bool,
    pub runs: Vec<BatchItem>,
    /// Runs the action was refused for without trying (finished runs for
    /// `cancel`, unfinished ones for `retry`), by id.
    pub skipped: Vec<String>,
}

/// `GET /api/projects/{version}` (and the agents' `GET
/// /api/agent/projects/{version}`): the files of a project version, by path.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProjectVersion {
    /// The SHA-256 of the manifest: one line `SHA256 SIZE MODE PATH` per
    /// file, sorted by path (bytes), MODE being `755` or `644`.
    pub version: String,
    pub files: Vec<ProjectFileEntry>,
}

/// One file of a project version.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ProjectFileEntry {
    /// Relative to the project directory, `/`-separated.
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub executable: bool,
}
