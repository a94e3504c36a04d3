//! The data a try is started with and the data it ends with.
//!
//! The outcome types derive serde because agents send them to the server;
//! the request's `Debug` is written by hand so that secret values never reach
//! a log line through `{:?}`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What to execute for a block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Command {
    /// Runs as `bash --noprofile --norc -eo pipefail -c <script>`.
    Shell { script: String },
    /// A file relative to the project directory; the interpreter is picked by
    /// extension (`.py` python3, `.sh` bash, `.js` node), anything else is
    /// executed directly and must be executable.
    Script { path: PathBuf },
}

/// Which try of which block this is; exported to the block as `SLUICE_*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockContext {
    pub run_id: String,
    pub pipeline: String,
    pub block: String,
    pub attempt: u32,
    pub try_number: u32,
    /// Stable across tries and attempts of the same block in the same run.
    pub idempotency_key: String,
}

/// Everything needed to run one try.
#[derive(Clone)]
pub struct TryRequest {
    pub command: Command,
    /// The process's working directory; scripts and artifact globs are
    /// relative to it.
    pub project_dir: PathBuf,
    /// A fresh directory for this try; the `SLUICE_*` files are created in it
    /// and the data file and artifacts returned in the outcome stay in it.
    pub scratch_dir: PathBuf,
    pub context: BlockContext,
    pub variables: BTreeMap<String, serde_json::Value>,
    /// Upstream outputs: `{"block_id": {"key": "value"}}`.
    pub inputs: serde_json::Value,
    /// The block's own `env:`, applied last.
    pub env: BTreeMap<String, String>,
    /// Values masked as `***` in logs, outputs and error messages.
    pub secrets: Vec<String>,
    /// Declared artifact globs, relative to the project directory.
    pub artifact_globs: Vec<String>,
    pub timeout: Option<Duration>,
    /// Time between SIGTERM and SIGKILL when the process group is stopped.
    pub kill_grace: Duration,
}

impl fmt::Debug for TryRequest {
    /// Shows variable and env names but never their values, which may be
    /// secret.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TryRequest")
            .field("command", &self.command)
            .field("project_dir", &self.project_dir)
            .field("scratch_dir", &self.scratch_dir)
            .field("context", &self.context)
            .field("variables", &self.variables.keys().collect::<Vec<_>>())
            .field("env", &self.env.keys().collect::<Vec<_>>())
            .field("secrets", &self.secrets.len())
            .field("artifact_globs", &self.artifact_globs)
            .field("timeout", &self.timeout)
            .field("kill_grace", &self.kill_grace)
            .finish_non_exhaustive()
    }
}

/// How a try ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TryResult {
    /// The process exited with code 0.
    Completed,
    /// Non-zero exit, death by a signal we did not send, or the process could
    /// not be started.
    Failed,
    /// The try's timeout expired and the process group was stopped.
    TimedOut,
    /// The cancellation token fired and the process group was stopped.
    Cancelled,
}

/// The result of one try.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TryOutcome {
    pub result: TryResult,
    pub exit_code: Option<i32>,
    pub signal: Option<i32>,
    /// A short masked sentence, e.g. `exit code 3`, `timed out after 5s`,
    /// `script not found: scripts/x.py`; `None` when completed.
    pub error: Option<String>,
    /// Parsed from `$SLUICE_OUTPUT`, masked.
    pub outputs: BTreeMap<String, String>,
    /// `$SLUICE_DATA` when the block wrote something to it.
    pub data: Option<DataFile>,
    /// Files left in `$SLUICE_ARTIFACTS` and files matching the declared
    /// globs, sorted by name.
    pub artifacts: Vec<ArtifactFile>,
}

impl TryOutcome {
    /// A failed try that produced nothing, e.g. one that could not start.
    pub fn failed(error: impl Into<String>) -> Self {
        Self::without_process(TryResult::Failed, error.into())
    }

    pub(crate) fn without_process(result: TryResult, error: String) -> Self {
        Self {
            result,
            exit_code: None,
            signal: None,
            error: Some(error),
            outputs: BTreeMap::new(),
            data: None,
            artifacts: Vec::new(),
        }
    }
}

/// The table a block wrote to `$SLUICE_DATA`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DataFile {
    pub path: PathBuf,
    pub format: DataFormat,
    pub size: u64,
}

/// The format of a data file, sniffed from its first non-blank character.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DataFormat {
    /// Comma-separated values with a header line.
    #[serde(rename = "csv")]
    Csv,
    /// One JSON object per line. Spelled `jsonl`, the name the store and the
    /// API use.
    #[serde(rename = "jsonl")]
    JsonLines,
}

impl DataFormat {
    /// The wire name: `csv` or `jsonl`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Csv => "csv",
            Self::JsonLines => "jsonl",
        }
    }
}

/// One file a try produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArtifactFile {
    /// Path relative to `$SLUICE_ARTIFACTS`, or to the project directory for
    /// glob matches, with `/` separators.
    pub name: String,
    /// Where the file is now, for uploading.
    pub path: PathBuf,
    pub size: u64,
    /// Lowercase hex SHA-256 of the content.
    pub sha256: String,
}
