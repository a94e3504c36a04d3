//! What an operator needs after a failure: the difference between two runs
//! (the last good one and this failed one), and the evidence of one run for
//! an incident ticket. Both are built from `run_details`, so secrets are
//! already masked.

use std::collections::{BTreeMap, BTreeSet};

use sluice_core::ids::{RunId, TryId};
use sluice_core::status::{BlockRunStatus, RunStatus};
use sluice_store::{BlockRunRecord, LogLine, RunRecord};

use crate::queries::{BlockRunDetails, RunDetails};
use crate::{Engine, Result};

/// One compared value of two runs.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldDiff {
    /// `pipeline_version`, `project_version`, `status`, `vars.region`, ...
    pub field: String,
    pub a: serde_json::Value,
    pub b: serde_json::Value,
}

impl FieldDiff {
    pub fn differs(&self) -> bool {
        self.a != self.b
    }
}

/// One block in the latest attempt of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockSide {
    pub status: BlockRunStatus,
    pub duration_ms: Option<i64>,
    pub tries: u32,
    pub outputs: BTreeMap<String, String>,
    pub error: Option<String>,
}

/// One block compared across two runs; `None` where a run has no such block.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockDiff {
    pub block: String,
    pub a: Option<BlockSide>,
    pub b: Option<BlockSide>,
}

impl BlockDiff {
    /// Whether the block ended differently (status, outputs or error;
    /// durations always differ a little and are shown, not compared).
    pub fn differs(&self) -> bool {
        match (&self.a, &self.b) {
            (Some(a), Some(b)) => {
                a.status != b.status || a.outputs != b.outputs || a.error != b.error
            }
            _ => true,
        }
    }
}

/// Two runs side by side, differences first.
#[derive(Clone, Debug)]
pub struct RunDiff {
    pub a: RunRecord,
    pub b: RunRecord,
    pub fields: Vec<FieldDiff>,
    pub blocks: Vec<BlockDiff>,
}

/// How a failed run was resolved.
#[derive(Clone, Debug, PartialEq)]
pub enum Resolution {
    /// A later attempt of the same run completed.
    Attempt(u32),
}

/// The last log lines of a failed block run's last try.
#[derive(Clone, Debug)]
pub struct FailureEvidence {
    pub attempt: u32,
    pub block: String,
    pub error: Option<String>,
    pub try_id: Option<TryId>,
    pub log_tail: Vec<LogLine>,
}

/// A run's evidence for an incident.
#[derive(Clone, Debug)]
pub struct Evidence {
    pub details: RunDetails,
    pub failures: Vec<FailureEvidence>,
    pub resolved_by: Option<Resolution>,
}

/// How many log lines of a failing block the evidence keeps.
pub const LOG_TAIL_LINES: usize = 20;

fn duration_ms(block_run: &BlockRunRecord) -> Option<i64> {
    match (block_run.started_at, block_run.finished_at) {
        (Some(start), Some(end)) => Some(end.duration_since(start).as_millis() as i64),
        _ => None,
    }
}

fn latest_blocks(details: &RunDetails) -> BTreeMap<String, BlockSide> {
    details
        .attempts
        .last()
        .map(|attempt| {
            attempt
                .block_runs
                .iter()
                .map(|BlockRunDetails { block_run, .. }| {
                    (
                        block_run.block.clone(),
                        BlockSide {
                            status: block_run.status,
                            duration_ms: duration_ms(block_run),
                            tries: block_run.tries,
                            outputs: block_run.outputs.clone(),
                            error: block_run.error.clone(),
                        },
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

fn run_duration_ms(run: &RunRecord) -> serde_json::Value {
    match (run.started_at, run.finished_at) {
        (Some(start), Some(end)) => {
            serde_json::json!(end.duration_since(start).as_millis() as i64)
        }
        _ => serde_json::Value::Null,
    }
}

fn json<T: serde::Serialize>(value: &T) -> serde_json::Value {
    serde_json::to_value(value).unwrap_or_default()
}

/// Compares two runs' details.
pub fn diff(a: &RunDetails, b: &RunDetails) -> RunDiff {
    let mut fields = vec![
        FieldDiff {
            field: "pipeline".to_owned(),
            a: json(&a.run.pipeline),
            b: json(&b.run.pipeline),
        },
        FieldDiff {
            field: "pipeline_version".to_owned(),
            a: json(&a.run.pipeline_version),
            b: json(&b.run.pipeline_version),
        },
        FieldDiff {
            field: "project_version".to_owned(),
            a: json(&a.run.project_version),
            b: json(&b.run.project_version),
        },
        FieldDiff {
            field: "status".to_owned(),
            a: json(&a.run.status.as_str()),
            b: json(&b.run.status.as_str()),
        },
        FieldDiff {
            field: "attempt".to_owned(),
            a: serde_json::json!(a.run.attempt),
            b: serde_json::json!(b.run.attempt),
        },
        FieldDiff {
            field: "invoked_by".to_owned(),
            a: json(&a.run.invoked_by),
            b: json(&b.run.invoked_by),
        },
        FieldDiff {
            field: "error".to_owned(),
            a: json(&a.run.error),
            b: json(&b.run.error),
        },
    ];
    let names: BTreeSet<&String> = a
        .run
        .variables
        .0
        .keys()
        .chain(b.run.variables.0.keys())
        .collect();
    for name in names {
        let value = |details: &RunDetails| {
            details
                .run
                .variables
                .0
                .get(name)
                .map(|variable| variable.value.clone())
                .unwrap_or(serde_json::Value::Null)
        };
        fields.push(FieldDiff {
            field: format!("vars.{name}"),
            a: value(a),
            b: value(b),
        });
    }
    let duration = FieldDiff {
        field: "duration_ms".to_owned(),
        a: run_duration_ms(&a.run),
        b: run_duration_ms(&b.run),
    };
    // Differences first; the order within each group is kept.
    fields.sort_by_key(|field| !field.differs());
    fields.push(duration);

    let mut a_blocks = latest_blocks(a);
    let mut b_blocks = latest_blocks(b);
    let names: BTreeSet<String> = a_blocks.keys().chain(b_blocks.keys()).cloned().collect();
    let mut blocks: Vec<BlockDiff> = names
        .into_iter()
        .map(|block| BlockDiff {
            a: a_blocks.remove(&block),
            b: b_blocks.remove(&block),
            block,
        })
        .collect();
    blocks.sort_by_key(|block| !block.differs());
    RunDiff {
        a: a.run.clone(),
        b: b.run.clone(),
        fields,
        blocks,
    }
}

impl Engine {
    /// Two runs side by side, differences first.
    pub async fn diff_runs(&self, a: &RunId, b: &RunId) -> Result<RunDiff> {
        let a = self.run_details(a).await?;
        let b = self.run_details(b).await?;
        Ok(diff(&a, &b))
    }

    /// A run's evidence: its details, the last log lines of every failed
    /// block run's last try, and the attempt that resolved it, if any.
    pub async fn run_evidence(&self, run_id: &RunId) -> Result<Evidence> {
        let details = self.run_details(run_id).await?;
        let mut failures = Vec::new();
        for attempt in &details.attempts {
            for BlockRunDetails {
                block_run, tries, ..
            } in &attempt.block_runs
            {
                if block_run.status != BlockRunStatus::Failed {
                    continue;
                }
                let last_try = tries
                    .iter()
                    .max_by_key(|attempt_try| attempt_try.try_number);
                let mut log_tail = Vec::new();
                if let Some(last_try) = last_try {
                    let mut after = None;
                    loop {
                        let chunks = self.read_log(&last_try.id, after, 500).await?;
                        let Some(last) = chunks.last() else { break };
                        after = Some(last.seq);
                        for chunk in chunks {
                            log_tail.extend(chunk.lines);
                        }
                        let excess = log_tail.len().saturating_sub(LOG_TAIL_LINES);
                        log_tail.drain(..excess);
                    }
                }
                failures.push(FailureEvidence {
                    attempt: attempt.attempt.attempt,
                    block: block_run.block.clone(),
                    error: block_run.error.clone(),
                    try_id: last_try.map(|attempt_try| attempt_try.id.clone()),
                    log_tail,
                });
            }
        }
        let first_failed = details
            .attempts
            .iter()
            .find(|attempt| attempt.attempt.status == RunStatus::Failed)
            .map(|attempt| attempt.attempt.attempt);
        let resolved_by = first_failed.and_then(|failed| {
            details
                .attempts
                .iter()
                .find(|attempt| {
                    attempt.attempt.attempt > failed
                        && attempt.attempt.status == RunStatus::Completed
                })
                .map(|attempt| Resolution::Attempt(attempt.attempt.attempt))
        });
        Ok(Evidence {
            details,
            failures,
            resolved_by,
        })
    }
}
