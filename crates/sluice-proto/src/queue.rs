//! The queue: queued block runs in claim order with the reason each is not
//! running yet, runs waiting to be admitted, moving a block run's place,
//! and cancelling the runs whose queued block runs match a filter.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Why a queued block run (or an `initial` run) is not running yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct WaitReason {
    /// `retry_backoff`, `labels`, `block_concurrency`, `behind`,
    /// `pipeline_concurrency`, `max_active_runs` or `starting`.
    pub kind: String,
    /// The reason as a sentence, e.g. `no online agent offers labels gpu=true`.
    pub message: String,
    /// `retry_backoff`: when the backoff ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<Timestamp>,
    /// `labels`: the labels no online agent offers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub labels: Option<BTreeMap<String, String>>,
    /// `block_concurrency`, `pipeline_concurrency`, `max_active_runs`: the limit reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<u32>,
    /// `behind`: how many claimable block runs come first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tries: Option<u32>,
}

/// A queued block run at its place in claim order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct QueuedBlockRun {
    /// 1-based, in claim order.
    pub position: u32,
    pub block_run_id: String,
    pub run_id: String,
    pub pipeline: String,
    pub block: String,
    pub priority: i32,
    pub queued_at: Option<Timestamp>,
    pub retry_at: Option<Timestamp>,
    pub labels: BTreeMap<String, String>,
    pub reason: WaitReason,
}

/// A run waiting in `initial` to be admitted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct WaitingRun {
    pub run_id: String,
    pub pipeline: String,
    pub priority: i32,
    pub created_at: Timestamp,
    pub reason: WaitReason,
}

/// `GET /api/queue`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Queue {
    /// Queued block runs in claim order.
    pub block_runs: Vec<QueuedBlockRun>,
    /// Runs waiting to be admitted, in admission order.
    pub runs: Vec<WaitingRun>,
}

/// `POST /api/queue/move`: give exactly one of `to` and `before`. A move
/// keeps a block run among those of its priority.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueMoveRequest {
    pub block_run_id: String,
    /// The 1-based place in claim order (clamped to the block run's priority).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub to: Option<u32>,
    /// Just before this queued block run of the same priority.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
}

/// `POST /api/queue/cancel`: cancels every run with a queued block run
/// matching all the given filters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QueueCancelRequest {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pipeline: Option<String>,
    /// Labels the queued block run requires (each of them).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Only say which runs would be cancelled.
    #[serde(default)]
    pub dry_run: bool,
}

/// The answer to `POST /api/queue/cancel`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct QueueCancelResponse {
    /// The runs cancelled (or, with `dry_run`, that would be).
    pub run_ids: Vec<String>,
    pub dry_run: bool,
}
