//! Records and parameters of backfills: one run per window of a trigger over
//! a range of time, grouped under one id so they can be listed, paused and
//! cancelled together.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sluice_core::ids::{BackfillId, ExecutorId};

/// Where a backfill stands. `running` creates runs, `paused` creates none
/// until it is resumed; `cancelled` and `completed` are final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BackfillStatus {
    Running,
    Paused,
    Cancelled,
    Completed,
}

impl BackfillStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            BackfillStatus::Running => "running",
            BackfillStatus::Paused => "paused",
            BackfillStatus::Cancelled => "cancelled",
            BackfillStatus::Completed => "completed",
        }
    }

    pub fn parse(text: &str) -> Option<BackfillStatus> {
        match text {
            "running" => Some(BackfillStatus::Running),
            "paused" => Some(BackfillStatus::Paused),
            "cancelled" => Some(BackfillStatus::Cancelled),
            "completed" => Some(BackfillStatus::Completed),
            _ => None,
        }
    }

    /// Whether the backfill will never create a run again.
    pub fn is_terminal(self) -> bool {
        matches!(self, BackfillStatus::Cancelled | BackfillStatus::Completed)
    }
}

impl std::fmt::Display for BackfillStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A backfill as it is stored. Its windows are not stored: they follow from
/// the trigger's schedule and the range, and its runs are found by their
/// idempotency keys (`backfill:ID:WINDOW_END`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackfillRecord {
    pub id: BackfillId,
    pub pipeline: String,
    pub trigger: String,
    /// The first window end the backfill covers (inclusive).
    pub from: Timestamp,
    /// The last window end the backfill covers (inclusive).
    pub to: Timestamp,
    /// Newest window first instead of oldest first.
    pub reverse: bool,
    /// Most runs of the backfill that may be active at once (at least 1).
    pub max_concurrent: u32,
    /// Whether windows that already have a completed run run again.
    pub rerun_completed: bool,
    /// The priority of the backfill's runs.
    pub priority: i32,
    pub status: BackfillStatus,
    pub created_at: Timestamp,
    pub created_by: String,
    /// When the status last changed to `paused`, `cancelled` or `completed`.
    pub changed_at: Option<Timestamp>,
    /// The executor that drives the backfill's runs in embedded mode
    /// (`sluice backfill` without `--server`); `None` when a server does.
    pub owner: Option<ExecutorId>,
}

/// Moves a backfill from `from` to `to` if it is still `from`.
#[derive(Clone, Debug)]
pub struct BackfillStatusChange {
    pub id: BackfillId,
    pub from: BackfillStatus,
    pub to: BackfillStatus,
    pub at: Timestamp,
}

/// Runs of one pipeline whose window ends in `from..=to`.
#[derive(Clone, Debug)]
pub struct WindowRunQuery {
    pub pipeline: String,
    pub from: Timestamp,
    pub to: Timestamp,
}
