//! Parameters of the operational queries: duration baselines, resolved
//! failures and retention.

use jiff::Timestamp;
use sluice_core::ids::RunId;

use crate::model::{RunBaseline, RunWindow};
use crate::params::NewAuditEvent;

/// The latest completed runs of a pipeline, for its duration baseline.
#[derive(Clone, Debug)]
pub struct DurationHistoryQuery {
    pub pipeline: String,
    /// Only runs that finished at or before this instant.
    pub finished_before: Timestamp,
    /// A run to leave out (the one being judged).
    pub exclude: Option<RunId>,
    /// At most this many runs, newest first (at most 1,000).
    pub limit: u32,
}

/// The baseline a finished run was judged against, and the verdict.
#[derive(Clone, Debug)]
pub struct BaselineRecord {
    pub run_id: RunId,
    /// Recorded only while this is still the run's latest attempt.
    pub attempt: u32,
    pub baseline: RunBaseline,
    pub slow: bool,
}

/// A run that just completed, which resolves the failures it covers.
#[derive(Clone, Debug)]
pub struct ResolvingRun {
    pub run_id: RunId,
    pub attempt: u32,
    pub pipeline: String,
    pub window: Option<RunWindow>,
    pub at: Timestamp,
}

/// The finished runs of a pipeline that retention may delete.
#[derive(Clone, Debug)]
pub struct ExpiredRunQuery {
    pub pipeline: String,
    /// Only runs created strictly before this instant.
    pub created_before: Timestamp,
    /// The pipeline's latest runs (of any status) kept whatever their age.
    pub keep_last: u32,
    /// At most this many, oldest first (at most 1,000).
    pub limit: u32,
}

/// A finished run to delete with everything recorded under it, and the
/// audit event that records the deletion in the same transaction.
#[derive(Clone, Debug)]
pub struct RunPurge {
    pub id: RunId,
    pub audit: NewAuditEvent,
}
