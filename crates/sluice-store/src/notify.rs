//! Records and parameters of notification deliveries: one row per run,
//! attempt, notification event and channel, sent (and retried) by the
//! engine's notification reconciler.
//!
//! A delivery holds the body it sends (`payload`, built when the event was
//! raised) but never a channel's settings: URLs, addresses and secrets are
//! read from the pinned pipeline and the server's environment at send time.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sluice_core::ids::RunId;

/// Where a delivery stands. `pending` waits for its next attempt;
/// `delivered` and `failed` (attempts used up, or a permanent error) are
/// final.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Pending,
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }

    pub fn parse(text: &str) -> Option<DeliveryStatus> {
        match text {
            "pending" => Some(DeliveryStatus::Pending),
            "delivered" => Some(DeliveryStatus::Delivered),
            "failed" => Some(DeliveryStatus::Failed),
            _ => None,
        }
    }
}

/// A delivery to record when a notification event is raised.
#[derive(Clone, Debug, PartialEq)]
pub struct NewDelivery {
    pub run_id: RunId,
    /// The attempt the event belongs to; 0 for an event raised once per run
    /// (`sla_missed`, `sla_at_risk`, `timed_out`).
    pub attempt: u32,
    /// `failed`, `completed`, `cancelled`, `sla_missed`, `sla_at_risk`,
    /// `timed_out`, `slow` or `recovered`.
    pub event: String,
    /// The channel's name in the pipeline's `notify:`.
    pub channel: String,
    /// `webhook`, `slack` or `email`.
    pub kind: String,
    /// The most sends before the delivery is given up as `failed`.
    pub max_attempts: u32,
    /// The event's facts, sent as the body (or rendered into it).
    pub payload: serde_json::Value,
    pub created_at: Timestamp,
}

/// A delivery as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeliveryRecord {
    pub id: i64,
    pub run_id: RunId,
    pub attempt: u32,
    pub event: String,
    pub channel: String,
    pub kind: String,
    pub status: DeliveryStatus,
    /// Sends started so far (a claim counts as one).
    pub attempts: u32,
    pub max_attempts: u32,
    pub last_error: Option<String>,
    pub payload: serde_json::Value,
    pub created_at: Timestamp,
    /// When a pending delivery is next due; `None` once it is final.
    pub next_attempt_at: Option<Timestamp>,
    /// Until when the sender that claimed it holds it.
    pub claimed_until: Option<Timestamp>,
    pub updated_at: Timestamp,
    pub delivered_at: Option<Timestamp>,
}

/// A sender asking for due deliveries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DeliveryClaim {
    pub now: Timestamp,
    /// The claimed deliveries are held until then; one whose sender died is
    /// claimed again afterwards.
    pub claimed_until: Timestamp,
    pub limit: u32,
}

/// How one send of a claimed delivery ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryOutcome {
    pub id: i64,
    /// The `attempts` the claim returned; a stale sender's outcome (the
    /// delivery was claimed again since) is not applied.
    pub attempts: u32,
    pub at: Timestamp,
    pub result: DeliveryResult,
}

/// What a send did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryResult {
    Delivered,
    /// The send failed; tried again at `retry_at`.
    Retry {
        error: String,
        retry_at: Timestamp,
    },
    /// The send failed for good.
    Failed {
        error: String,
    },
}

/// How long one completed block run took, for estimates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockTiming {
    pub run_id: RunId,
    pub block: String,
    pub started_at: Timestamp,
    pub finished_at: Timestamp,
}
