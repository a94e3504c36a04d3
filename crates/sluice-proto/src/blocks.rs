//! Block runs, their tries, logs, outputs and artifacts.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One execution of a block run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Try {
    pub id: String,
    pub try_number: u32,
    /// `running`, `completed`, `failed`, `cancelled` or `lost`.
    pub status: String,
    pub executor: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub lease_expires_at: Timestamp,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub timed_out: bool,
}

/// A block run's data output as stored.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DataInfo {
    /// `csv` or `jsonl`.
    pub format: String,
    pub size: u64,
    pub sha256: String,
}

/// One block within one attempt (`block_run`), with its tries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BlockRun {
    pub id: String,
    pub run_id: String,
    pub attempt: u32,
    pub block: String,
    /// `initial`, `queued`, `running`, `completed`, `failed`, `cancelled`,
    /// `upstream_failed` or `condition_failed`.
    pub status: String,
    pub priority: i32,
    pub max_tries: u32,
    pub created_at: Timestamp,
    pub queued_at: Option<Timestamp>,
    pub started_at: Option<Timestamp>,
    pub finished_at: Option<Timestamp>,
    /// A queued block run waiting out its retry backoff starts after this.
    pub retry_at: Option<Timestamp>,
    pub outputs: BTreeMap<String, String>,
    pub error: Option<String>,
    pub exit_code: Option<i32>,
    pub timed_out: bool,
    pub reused_from_attempt: Option<u32>,
    pub data: Option<DataInfo>,
    pub labels: BTreeMap<String, String>,
    pub idempotency_key: String,
    pub tries: Vec<Try>,
    /// Why a queued block run is not running yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_reason: Option<crate::WaitReason>,
}

/// One line of a try's log.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LogLine {
    /// The chunk the line belongs to; resume after it with `after_seq`.
    pub seq: u64,
    pub at: Timestamp,
    /// `stdout`, `stderr` or `sluice`.
    pub stream: String,
    pub text: String,
}

/// `GET /api/block_runs/{id}/logs`: a page of one try's log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct LogPage {
    pub block_run_id: String,
    /// Absent when the block run has no try (yet).
    pub try_id: Option<String>,
    pub try_number: Option<u32>,
    pub try_status: Option<String>,
    pub lines: Vec<LogLine>,
    /// Pass as `after_seq` to read on; absent when nothing more is stored
    /// yet.
    pub next_after_seq: Option<u64>,
}

/// A table sampled from a data output.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Whether rows were left out of the sample.
    pub truncated: bool,
}

/// `GET /api/block_runs/{id}/outputs`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BlockOutputs {
    pub block_run_id: String,
    pub block: String,
    pub outputs: BTreeMap<String, String>,
    pub data_format: Option<String>,
    pub data: Option<Table>,
}

/// A file a block run left behind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Artifact {
    pub id: i64,
    pub run_id: String,
    pub block_run_id: String,
    pub try_id: String,
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub created_at: Timestamp,
    /// Where to download it.
    pub download_url: String,
}

/// `GET /api/artifacts`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ArtifactList {
    pub artifacts: Vec<Artifact>,
    /// Pass as `before_id` to read on; absent on the last page.
    pub next_before_id: Option<i64>,
}

/// A live update on `GET /api/events` (the SSE event name is `type`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveEvent {
    /// A run changed status.
    Run { run_id: String, status: String },
    /// A block run changed status.
    BlockRun {
        run_id: String,
        block_run_id: String,
        block: String,
        attempt: u32,
        status: String,
    },
    /// A try of a block run started.
    TryStarted {
        run_id: String,
        block_run_id: String,
        block: String,
        try_id: String,
        try_number: u32,
    },
    /// A try stored log lines (read them with the logs endpoint).
    Log {
        run_id: String,
        try_id: String,
        seq: u64,
    },
    /// The server dropped events for this client, which was too slow:
    /// read the state again.
    Lagged { missed: u64 },
}
