//! The pipeline format: `pipelines/<name>.yaml` read into a validated
//! [`Pipeline`], with every problem reported as a [`Diagnostic`] that has a
//! `file:line:column` and, where one helps, a hint.
//!
//! Reading happens in two steps. `yaml.rs` deserializes the text into the
//! raw types of `raw.rs` (what the file looks like, with positions) under
//! strict resource limits; a syntax or structural error stops there and is
//! reported with its position. `validate.rs` (with `trigger.rs` and
//! `graph.rs`) then checks the meaning and builds the domain types below,
//! collecting every problem of the file instead of stopping at the first.
//! `project.rs` checks what spans files: `pipeline:` blocks and their cycles.
//!
//! Core does no I/O: callers read the files and pass their text.

mod block;
mod graph;
mod notify;
mod operations;
mod place;
mod project;
mod raw;
mod span;
mod suggest;
mod trigger;
mod validate;
mod yaml;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::num::NonZeroU32;

use serde::{Deserialize, Serialize};

use crate::duration::Duration;
use crate::expr::Expr;
use crate::template::Template;
use crate::vars::{ResolvedVariables, VariableLayer, VariablesError};

pub use self::notify::{ChannelSpec, NotifyEvent, NotifySpec, parse_smtp_url};
pub use self::operations::{DriftPolicy, RetentionPolicy};
pub use self::span::Position;
pub use self::suggest::closest;
pub use crate::schedule::{check_cron, cron_parser};

/// A problem in a pipeline file, at a 1-based line and column.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Diagnostic {
    /// The file as shown to the user, such as `pipelines/etl.yaml`.
    pub file: String,
    pub line: usize,
    pub column: usize,
    pub message: String,
    pub hint: Option<String>,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.column, self.message
        )?;
        if let Some(hint) = &self.hint {
            write!(f, "\n  hint: {hint}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Diagnostic {}

/// A validated pipeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    pub name: String,
    /// The file it was read from, as shown to the user.
    pub file: String,
    pub description: Option<String>,
    pub tags: Vec<String>,
    pub variables: BTreeMap<String, VariableSpec>,
    pub concurrency: Option<NonZeroU32>,
    pub on_limit: OnLimit,
    pub block_concurrency: Option<NonZeroU32>,
    pub timeout: Option<Duration>,
    pub timeout_status: TimeoutStatus,
    pub sla: Option<Duration>,
    pub priority: i32,
    /// The pipeline-wide policy; each block's `retries` already has it
    /// applied.
    pub retries: RetryPolicy,
    /// In topological order, ties broken by file order.
    pub blocks: Vec<Block>,
    pub triggers: Vec<TriggerSpec>,
    /// The duration baseline and the `slow` rule (`drift:`).
    pub drift: DriftPolicy,
    /// How long finished runs are kept (`retention:`); `None` leaves it to
    /// the server's default.
    pub retention: Option<RetentionPolicy>,
    /// Where notifications of its runs go (`notify:`).
    pub notify: NotifySpec,
}

/// A declared variable.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VariableSpec {
    pub default: Option<serde_json::Value>,
    pub secret: bool,
    pub required: bool,
    pub description: Option<String>,
}

/// One block of a pipeline.
#[derive(Clone, Debug, PartialEq)]
pub struct Block {
    pub id: String,
    pub kind: BlockKind,
    /// Direct upstream blocks, in file order, without duplicates.
    pub needs: Vec<String>,
    pub condition: Option<Expr>,
    /// The block's own policy, else the pipeline's, else none.
    pub retries: RetryPolicy,
    pub timeout: Option<Duration>,
    pub env: BTreeMap<String, String>,
    pub labels: BTreeMap<String, String>,
    /// Globs relative to the project directory.
    pub artifacts: Vec<String>,
    pub priority: Option<i32>,
    /// Where the block's id is written.
    pub position: Position,
    /// Where its `run`, `script` or `pipeline` value is written.
    pub kind_position: Position,
}

/// What a block does.
#[derive(Clone, Debug, PartialEq)]
pub enum BlockKind {
    /// A shell command.
    Run { command: Template },
    /// A script, relative to the project directory.
    Script { path: String },
    /// A child pipeline run, with values for its variables.
    Pipeline {
        name: String,
        variables: BTreeMap<String, Template>,
    },
}

/// Automatic retries of a block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Retries after the first try; 0 means none.
    pub count: u32,
    pub delay: Duration,
    pub backoff: Backoff,
    pub max_delay: Option<Duration>,
}

impl RetryPolicy {
    /// The delay used when a policy does not give one.
    pub const DEFAULT_DELAY: Duration = Duration(std::time::Duration::from_secs(10));
    /// The most retries a policy may have.
    pub const MAX_COUNT: u32 = 100;

    /// No retries.
    pub const NONE: RetryPolicy = RetryPolicy {
        count: 0,
        delay: Duration::ZERO,
        backoff: Backoff::Constant,
        max_delay: None,
    };

    /// How many tries a block run may have: the first and its retries.
    pub fn max_tries(&self) -> u32 {
        self.count.saturating_add(1)
    }

    /// How long to wait before try `try_number` (1-based): nothing before the
    /// first, `delay` before the second, then `delay` again (constant) or
    /// twice the previous wait (exponential), never more than `max_delay`.
    pub fn delay_before_try(&self, try_number: u32) -> std::time::Duration {
        if try_number <= 1 {
            return std::time::Duration::ZERO;
        }
        let base = self.delay.0;
        let delay = match self.backoff {
            Backoff::Constant => base,
            Backoff::Exponential => {
                let doublings = (try_number - 2).min(63);
                let factor = 1u64 << doublings;
                u32::try_from(factor)
                    .ok()
                    .and_then(|factor| base.checked_mul(factor))
                    .unwrap_or(std::time::Duration::MAX)
            }
        };
        match self.max_delay {
            Some(max) => delay.min(max.0),
            None => delay,
        }
    }
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy::NONE
    }
}

/// How the wait between retries grows.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    #[default]
    Constant,
    Exponential,
}

/// What happens to a new run when the concurrency limit is reached.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum OnLimit {
    /// The run waits in `initial` until a slot frees up.
    #[default]
    Wait,
    /// The run is cancelled at once.
    Skip,
}

/// How a run that exceeds its timeout ends.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum TimeoutStatus {
    #[default]
    Failed,
    Cancelled,
    /// The run goes on; it is only flagged as timed out.
    Warning,
}

/// What a schedule does about times missed while sluice was down.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Catchup {
    /// Missed times are skipped; only a fire that is on time runs.
    None,
    /// One run for the most recent missed time.
    #[default]
    Latest,
    /// One run for every missed time, up to `max_catchup` of the most
    /// recent ones.
    All,
}

/// How webhook requests are signed.
#[derive(
    Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum WebhookScheme {
    #[default]
    Standard,
    Github,
}

/// A trigger of a pipeline.
#[derive(Clone, Debug, PartialEq)]
pub struct TriggerSpec {
    pub name: String,
    pub kind: TriggerKind,
    pub variables: BTreeMap<String, serde_json::Value>,
    pub enabled: bool,
    pub start: Option<jiff::Timestamp>,
    pub end: Option<jiff::Timestamp>,
    pub catchup: Catchup,
    /// The most runs `catchup: all` creates at once for missed fires.
    pub max_catchup: u32,
    pub concurrency: Option<NonZeroU32>,
    pub on_limit: Option<OnLimit>,
    pub timeout: Option<Duration>,
    pub timeout_status: Option<TimeoutStatus>,
    pub sla: Option<Duration>,
    /// Merged over the pipeline's `notify:` for runs of this trigger.
    pub notify: NotifySpec,
    /// Variable name → JSON pointer into the request body.
    pub variables_from: BTreeMap<String, String>,
    /// Where the trigger's `name` is written.
    pub position: Position,
}

/// What starts runs. The timed kinds (`schedule`, `every`, `once`) become a
/// [`crate::schedule::Schedule`].
#[derive(Clone, Debug, PartialEq)]
pub enum TriggerKind {
    /// A cron pattern (already checked) in an IANA time zone (already
    /// checked).
    Schedule { cron: String, timezone: String },
    /// A fixed interval of real time (at least one second), in phase with
    /// `anchor` or else with the Unix epoch.
    Every {
        interval: Duration,
        anchor: Option<jiff::Timestamp>,
    },
    /// Exactly one run, at `at`.
    Once { at: jiff::Timestamp },
    /// One run at all times: the next starts `min_gap` after the previous
    /// one ends.
    AlwaysOn { min_gap: Option<Duration> },
    /// Runs started through the trigger's own API endpoint, which callers
    /// reach with the trigger's token: read from the server's environment
    /// variable `token_env`, or issued by the server when it is `None`.
    Api { token_env: Option<String> },
    /// Runs started by signed HTTP deliveries; exactly one of `secret_env`
    /// and `secret_file` is set.
    Webhook {
        scheme: WebhookScheme,
        secret_env: Option<String>,
        secret_file: Option<String>,
    },
}

impl TriggerKind {
    /// The key that selects this kind in a pipeline file.
    pub fn key(&self) -> &'static str {
        match self {
            TriggerKind::Schedule { .. } => "schedule",
            TriggerKind::Every { .. } => "every",
            TriggerKind::Once { .. } => "once",
            TriggerKind::AlwaysOn { .. } => "always_on",
            TriggerKind::Api { .. } => "api",
            TriggerKind::Webhook { .. } => "webhook",
        }
    }
}

impl Pipeline {
    /// The block with this id.
    pub fn block(&self, id: &str) -> Option<&Block> {
        self.blocks.iter().find(|block| block.id == id)
    }

    /// Every block `id` depends on, directly or not (without `id` itself).
    pub fn upstream_closure(&self, id: &str) -> BTreeSet<String> {
        graph::closure(self, id, graph::Direction::Upstream)
    }

    /// Every block that depends on `id`, directly or not (without `id`
    /// itself).
    pub fn downstream_closure(&self, id: &str) -> BTreeSet<String> {
        graph::closure(self, id, graph::Direction::Downstream)
    }

    /// The names of the secret variables.
    pub fn secret_variable_names(&self) -> BTreeSet<String> {
        self.variables
            .iter()
            .filter(|(_, spec)| spec.secret)
            .map(|(name, _)| name.clone())
            .collect()
    }

    /// The trigger with this name.
    pub fn trigger(&self, name: &str) -> Option<&TriggerSpec> {
        self.triggers.iter().find(|trigger| trigger.name == name)
    }

    /// Resolves a run's variables like [`crate::vars::resolve_variables`],
    /// naming this pipeline in errors.
    pub fn resolve_variables(
        &self,
        layers: &[(VariableLayer, &BTreeMap<String, serde_json::Value>)],
    ) -> Result<ResolvedVariables, VariablesError> {
        crate::vars::resolve_variables(&self.variables, layers)
            .map_err(|error| error.for_pipeline(&self.name))
    }
}

/// The most bytes a pipeline file may have. Real pipelines are far smaller;
/// the limit keeps a runaway or hostile file from costing memory and time.
pub const MAX_FILE_BYTES: usize = 4 * 1024 * 1024;

/// The most blocks a pipeline may have.
pub const MAX_BLOCKS: usize = 10_000;

/// Reads and validates one pipeline file. `name` is the pipeline's name (the
/// file name without `.yaml`), `file` the path shown in diagnostics, and
/// `source` the file's text. On error, every problem found is returned,
/// sorted by position.
pub fn parse_pipeline(name: &str, file: &str, source: &str) -> Result<Pipeline, Vec<Diagnostic>> {
    let raw = match yaml::parse(file, source) {
        Ok(raw) => raw,
        Err(diagnostic) => return Err(vec![*diagnostic]),
    };
    validate::pipeline(name, file, source, raw)
}

/// Checks what spans files: every `pipeline:` block names an existing
/// pipeline, passes only variables the child declares and every one it
/// requires, and no pipelines call each other in a cycle.
pub fn validate_project(pipelines: &[Pipeline]) -> Vec<Diagnostic> {
    project::validate(pipelines)
}

/// The JSON Schema of a pipeline file, generated from the types that read
/// it.
pub fn json_schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(raw::RawPipeline)).unwrap_or_default()
}
