//! Triggers: what each trigger of the project is, whether it is paused,
//! and the runs the timed ones will create.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One fire of a timed trigger and the window of time its run covers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Fire {
    pub scheduled_for: Timestamp,
    /// The schedule's previous fire (equal to `scheduled_for` for a `once`).
    pub window_start: Timestamp,
    pub window_end: Timestamp,
}

/// A trigger of a pipeline, with its state.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Trigger {
    pub pipeline: String,
    pub trigger: String,
    /// `schedule`, `every`, `once`, `always_on`, `api` or `webhook`.
    pub kind: String,
    /// As the pipeline file says.
    pub enabled: bool,
    /// Paused by an operator: the scheduler starts no runs for it.
    pub paused: bool,
    pub paused_by: Option<String>,
    pub paused_at: Option<Timestamp>,
    /// The latest fire a run was created for.
    pub last_fired_at: Option<Timestamp>,
    pub last_run_id: Option<String>,
    /// The next fires of a `schedule`, `every` or `once` trigger, soonest
    /// first; empty for other kinds and for disabled or paused triggers.
    pub next_fires: Vec<Fire>,
}

/// `GET /api/triggers`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TriggerList {
    pub triggers: Vec<Trigger>,
}

/// `POST /api/triggers/{pipeline}/{trigger}/pause` and `/resume`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TriggerEnvelope {
    pub trigger: Trigger,
}

/// A run a timed trigger will create.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpcomingFire {
    pub pipeline: String,
    pub trigger: String,
    pub kind: String,
    pub scheduled_for: Timestamp,
    pub window_start: Timestamp,
    pub window_end: Timestamp,
}

/// `GET /api/triggers/upcoming`: soonest first, across pipelines.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UpcomingList {
    pub upcoming: Vec<UpcomingFire>,
}
