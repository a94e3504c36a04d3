//! Pipelines as the API shows them: what a project defines, with secret
//! defaults masked.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A pipeline in a listing.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PipelineSummary {
    pub name: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    /// SHA-256 of the pipeline file; runs are pinned to it.
    pub version: String,
    pub blocks: usize,
    pub triggers: usize,
    /// The newest run of the pipeline, if any.
    pub last_run: Option<LastRun>,
    /// When an enabled schedule of the pipeline fires next, if one does.
    pub next_fire_at: Option<jiff::Timestamp>,
}

/// The newest run of a pipeline, as a listing shows it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LastRun {
    pub id: String,
    pub status: String,
    pub created_at: jiff::Timestamp,
    pub finished_at: Option<jiff::Timestamp>,
}

/// `GET /api/pipelines`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PipelineList {
    pub pipelines: Vec<PipelineSummary>,
}

/// A declared variable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct VariableDeclaration {
    pub name: String,
    /// The default value; `***` for a secret.
    pub default: Option<serde_json::Value>,
    pub secret: bool,
    pub required: bool,
    pub description: Option<String>,
}

/// A block of a pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BlockDeclaration {
    pub id: String,
    /// `run`, `script` or `pipeline`.
    pub kind: String,
    pub needs: Vec<String>,
    /// The `if:` condition as written.
    pub condition: Option<String>,
    /// Tries a block run may have: the first and its retries.
    pub max_tries: u32,
    /// The block's timeout, like `10m`.
    pub timeout: Option<String>,
    pub labels: std::collections::BTreeMap<String, String>,
    pub artifacts: Vec<String>,
}

/// A trigger of a pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TriggerDeclaration {
    pub name: String,
    /// `schedule`, `every`, `once`, `always_on`, `api` or `webhook`.
    pub kind: String,
    pub enabled: bool,
    /// When it fires next (schedules, intervals and `once` only).
    pub next_fire_at: Option<jiff::Timestamp>,
}

/// `GET /api/pipelines/{name}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PipelineDetails {
    pub name: String,
    pub file: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub version: String,
    pub priority: i32,
    /// Most runs of this pipeline at once.
    pub concurrency: Option<u32>,
    pub block_concurrency: Option<u32>,
    pub timeout: Option<String>,
    pub sla: Option<String>,
    pub variables: Vec<VariableDeclaration>,
    /// In topological order.
    pub blocks: Vec<BlockDeclaration>,
    pub triggers: Vec<TriggerDeclaration>,
}
