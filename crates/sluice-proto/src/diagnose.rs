//! Run diff and incident evidence.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::{Artifact, LogLine, Run};

/// One value of two runs compared.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct FieldDiff {
    /// `pipeline_version`, `project_version`, `status`, `invoked_by`, `error`, `vars.NAME`,
    /// `duration_ms`.
    pub field: String,
    pub a: serde_json::Value,
    pub b: serde_json::Value,
    pub differs: bool,
}

/// A block in the latest attempt of one run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BlockSide {
    pub status: String,
    pub duration_ms: Option<i64>,
    pub tries: u32,
    pub outputs: BTreeMap<String, String>,
    pub error: Option<String>,
}

/// One block compared; a side is absent where that run has no such block.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BlockDiff {
    pub block: String,
    pub a: Option<BlockSide>,
    pub b: Option<BlockSide>,
    /// Status, outputs or error differ (durations are shown, not compared).
    pub differs: bool,
}

/// `GET /api/pipeline_runs/diff?a=&b=`: differences first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunDiff {
    pub a: Run,
    pub b: Run,
    pub fields: Vec<FieldDiff>,
    pub blocks: Vec<BlockDiff>,
}

/// A block run of an attempt, as evidence lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceBlock {
    pub block: String,
    pub status: String,
    pub tries: u32,
    pub started_at: Option<jiff::Timestamp>,
    pub finished_at: Option<jiff::Timestamp>,
    pub error: Option<String>,
    pub reused_from_attempt: Option<u32>,
}

/// One attempt of the run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceAttempt {
    pub attempt: u32,
    pub status: String,
    pub mode: String,
    pub created_by: Option<String>,
    pub started_at: Option<jiff::Timestamp>,
    pub finished_at: Option<jiff::Timestamp>,
    pub error: Option<String>,
    pub blocks: Vec<EvidenceBlock>,
}

/// A failed block run with the last lines of its last try's log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EvidenceFailure {
    pub attempt: u32,
    pub block: String,
    pub error: Option<String>,
    pub try_id: Option<String>,
    pub log_tail: Vec<LogLine>,
}

/// `GET /api/pipeline_runs/{id}/evidence`: what an incident ticket needs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Evidence {
    /// The run: id, pipeline and pinned version, variables (masked),
    /// invoked-by, UTC timestamps, error.
    pub pipeline_run: Run,
    pub attempts: Vec<EvidenceAttempt>,
    pub failures: Vec<EvidenceFailure>,
    pub artifacts: Vec<Artifact>,
    /// What resolved the failure, such as `attempt 2`, if anything did.
    pub resolved_by: Option<String>,
}
