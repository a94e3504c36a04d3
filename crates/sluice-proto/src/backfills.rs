//! Backfills: one run per window of a timed trigger over a range of time,
//! grouped under one id.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /api/backfills`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BackfillRequest {
    pub pipeline: String,
    /// A `schedule`, `every` or `once` trigger of the pipeline; its only
    /// one when left out.
    #[serde(default)]
    pub trigger: Option<String>,
    /// The first window end to cover (inclusive).
    pub from: Timestamp,
    /// The last window end to cover (inclusive).
    pub to: Timestamp,
    /// Newest window first.
    #[serde(default)]
    pub reverse: bool,
    /// Most runs of the backfill active at once, 1 to 100 (default 1).
    #[serde(default)]
    pub max_concurrent: Option<u32>,
    /// Run windows that already have a completed run again.
    #[serde(default)]
    pub rerun_completed: bool,
    /// The runs' priority; the pipeline's minus 10 by default.
    #[serde(default)]
    pub priority: Option<i32>,
    /// Only list the windows and which would be skipped; create nothing.
    #[serde(default)]
    pub dry_run: bool,
}

/// A backfill.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Backfill {
    pub id: String,
    pub pipeline: String,
    pub trigger: String,
    pub from: Timestamp,
    pub to: Timestamp,
    pub reverse: bool,
    pub max_concurrent: u32,
    pub rerun_completed: bool,
    pub priority: i32,
    /// `running`, `paused`, `cancelled` or `completed`.
    pub status: String,
    pub created_at: Timestamp,
    pub created_by: String,
    /// When it was last paused, resumed, cancelled or completed.
    pub changed_at: Option<Timestamp>,
}

/// One window of a backfill and where it stands.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackfillWindow {
    pub scheduled_for: Timestamp,
    pub window_start: Timestamp,
    pub window_end: Timestamp,
    /// `pending` (no run yet), `skipped` (another run completed it) or
    /// `run` (the backfill's run, in `run_id`).
    pub state: String,
    pub run_id: Option<String>,
    pub run_status: Option<String>,
    /// The completed run a skipped window already has.
    pub completed_by: Option<String>,
}

/// `GET /api/backfills/{id}`, and the answer to `POST /api/backfills`
/// (without `backfill` for a dry run).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackfillDetail {
    pub backfill: Option<Backfill>,
    /// In the order the backfill runs them.
    pub windows: Vec<BackfillWindow>,
}

/// `GET /api/backfills`: newest first.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackfillList {
    pub backfills: Vec<Backfill>,
}

/// `POST /api/backfills/{id}/pause`, `/resume` and `/cancel`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BackfillEnvelope {
    pub backfill: Backfill,
}
