//! The agent protocol (`/api/agent/...`): what a remote agent (`sluice
//! agent`) and the server exchange to register, claim tries by long poll,
//! renew leases, upload logs and files, and report a try's end, plus the
//! agent listing of `GET /api/agents`.
//!
//! Every write about a try carries the try's lease `epoch`; the server
//! answers a stale one with 409 `conflict`, and the agent must then stop
//! the try. Unlike the rest of the API, a claimed try carries its run's
//! secret values in the clear: the agent needs them to run the block and to
//! mask them in its logs.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/agent/register`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RegisterAgentRequest {
    /// A name for the agent, shown by `sluice agents list`: 1 to 64
    /// letters, digits, `_`, `-` or `.`.
    pub name: String,
    /// The labels the agent offers; it claims block runs whose labels are a
    /// subset of these.
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// The agent's sluice version.
    pub version: String,
    /// The host the agent runs on.
    pub host: String,
    /// The agent's process id on its host.
    pub pid: u32,
}

/// The answer to a registration.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct RegisteredAgent {
    /// Sent with every later request of this agent.
    pub agent_id: String,
    /// How long a lease lasts without a heartbeat, in milliseconds.
    pub lease_ttl_ms: u64,
}

/// `POST /api/agent/claim`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ClaimTryRequest {
    pub agent_id: String,
    /// How long the server may hold the request when nothing is claimable,
    /// in milliseconds (at most 25,000; the default).
    #[serde(default)]
    pub wait_ms: Option<u64>,
}

/// The answer to a claim: a try, or `null` when nothing became claimable
/// while the server held the request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClaimTryResponse {
    #[serde(rename = "try")]
    pub claimed: Option<ClaimedTry>,
}

/// A claimed try with everything needed to execute it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ClaimedTry {
    pub try_id: String,
    pub try_number: u32,
    pub block_run_id: String,
    pub run_id: String,
    pub pipeline: String,
    pub block: String,
    /// The project files the run is pinned to: the agent checks this version
    /// out (`GET /api/agent/projects/{version}`, each file by its SHA-256)
    /// and runs the try in a fresh copy of it. `null` for a run recorded
    /// without one: the try runs in the agent's `--project` directory.
    #[serde(default)]
    pub project_version: Option<String>,
    pub attempt: u32,
    /// Stable across tries and attempts of the block in the run.
    pub idempotency_key: String,
    /// The lease's fencing epoch; every write about the try carries it.
    pub epoch: i64,
    pub lease_expires_at: Timestamp,
    pub lease_ttl_ms: u64,
    /// What to execute, rendered by the server.
    pub command: AgentCommand,
    /// The run's variables, secret values included.
    #[schema(value_type = Object)]
    pub variables: BTreeMap<String, serde_json::Value>,
    /// Values to mask as `***` in logs, outputs and errors.
    pub secrets: Vec<String>,
    /// Upstream outputs: `{"block": {"key": "value"}}`.
    #[schema(value_type = Object)]
    pub inputs: serde_json::Value,
    /// The block's own `env:`.
    pub env: BTreeMap<String, String>,
    /// The block's artifact globs, relative to the try's working directory.
    pub artifact_globs: Vec<String>,
    /// The block's timeout in milliseconds, if it has one.
    pub timeout_ms: Option<u64>,
    /// Time between SIGTERM and SIGKILL when the try is stopped, in
    /// milliseconds.
    pub kill_grace_ms: u64,
}

/// What a try executes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AgentCommand {
    /// A shell script, its variables already substituted shell-quoted.
    Shell { script: String },
    /// A script file relative to the project directory.
    Script { path: String },
}

/// A try an agent holds, in a heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HeldTry {
    pub try_id: String,
    pub epoch: i64,
}

/// `POST /api/agent/heartbeat`: the agent is alive and renews the leases of
/// the tries it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatRequest {
    pub agent_id: String,
    #[serde(default)]
    pub tries: Vec<HeldTry>,
    /// The agent stopped claiming and finishes what it holds.
    #[serde(default)]
    pub draining: bool,
}

/// The answer to a heartbeat.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HeartbeatResponse {
    /// Tries to stop now: their run was cancelled or ended, or their block
    /// run was moved on.
    pub cancel: Vec<String>,
    /// Tries whose lease is no longer this agent's: stop them; their writes
    /// will be refused.
    pub lost: Vec<String>,
    /// The renewed leases last until this instant.
    pub lease_expires_at: Timestamp,
}

/// One line of a log chunk.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentLogLine {
    pub at: Timestamp,
    /// `stdout`, `stderr` or `sluice`.
    pub stream: String,
    pub text: String,
}

/// `POST /api/agent/tries/{id}/logs`: one numbered chunk of a try's log.
/// Sending a chunk again under the same `seq` changes nothing.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogChunkRequest {
    pub epoch: i64,
    pub seq: u64,
    pub lines: Vec<AgentLogLine>,
}

/// The query of `PUT /api/agent/tries/{id}/files`; the body is the file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadFileQuery {
    pub epoch: i64,
    /// The SHA-256 of the body as lowercase hex; the server checks it.
    pub sha256: String,
}

/// A file the server stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UploadedFile {
    pub sha256: String,
    pub size: u64,
}

/// An artifact of a completed try, uploaded before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CompletedArtifact {
    pub name: String,
    pub sha256: String,
    pub size: u64,
}

/// The data output of a completed try, uploaded before.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CompletedData {
    /// `csv` or `jsonl`.
    pub format: String,
    pub sha256: String,
    pub size: u64,
}

/// `POST /api/agent/tries/{id}/complete`: how a try ended. The server
/// decides whether the block run is retried or finished.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CompleteTryRequest {
    pub agent_id: String,
    pub epoch: i64,
    /// `completed`, `failed`, `timed_out`, `cancelled`, or `interrupted`
    /// (the agent shut down before the try ended: it runs again without
    /// using up a retry).
    pub result: String,
    #[serde(default)]
    pub exit_code: Option<i32>,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub outputs: BTreeMap<String, String>,
    #[serde(default)]
    pub data: Option<CompletedData>,
    #[serde(default)]
    pub artifacts: Vec<CompletedArtifact>,
}

/// The answer to a completion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CompletedTry {
    /// The block run's status after the completion (`queued` when it is
    /// retried).
    pub block_run_status: String,
}

/// An agent as `GET /api/agents` lists it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Agent {
    pub id: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// `online`, `busy`, `draining` or `offline`.
    pub status: String,
    pub running_tries: u32,
    pub last_heartbeat_at: Timestamp,
    pub version: String,
    pub host: String,
}

/// `GET /api/agents`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentList {
    pub agents: Vec<Agent>,
}
