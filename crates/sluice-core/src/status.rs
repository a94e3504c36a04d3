//! Run and block-run statuses, and the one table of allowed transitions.
//!
//! Every status change in sluice goes through [`RunStatus::check_transition`] or
//! [`BlockRunStatus::check_transition`]; the store then applies the change as a
//! conditional update on the expected current status, so a racing writer loses
//! cleanly instead of overwriting a newer status.

use std::fmt;
use std::str::FromStr;

/// The status of a run (more exactly: of a run's attempt; a run shows the
/// status of its latest attempt).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RunStatus {
    Initial,
    Running,
    Completed,
    Failed,
    Cancelled,
}

/// The status of one block within one attempt of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BlockRunStatus {
    Initial,
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,
    UpstreamFailed,
    ConditionFailed,
}

/// A refused status change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cannot change status from `{from}` to `{to}`")]
pub struct TransitionError {
    pub from: &'static str,
    pub to: &'static str,
}

/// An unknown status name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown status `{0}`")]
pub struct UnknownStatus(pub String);

impl RunStatus {
    pub const ALL: [RunStatus; 5] = [
        RunStatus::Initial,
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Failed,
        RunStatus::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Initial => "initial",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Failed => "failed",
            RunStatus::Cancelled => "cancelled",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Completed | RunStatus::Failed | RunStatus::Cancelled
        )
    }

    /// The transition table for runs. `initial → cancelled` covers a run that
    /// is cancelled before admission and a run skipped by `on_limit: skip`;
    /// `initial → failed` covers a run whose executor was lost before it was
    /// admitted.
    pub fn can_transition_to(self, to: RunStatus) -> bool {
        use RunStatus::*;
        matches!(
            (self, to),
            (Initial, Running)
                | (Initial, Cancelled)
                | (Initial, Failed)
                | (Running, Completed)
                | (Running, Failed)
                | (Running, Cancelled)
        )
    }

    pub fn check_transition(self, to: RunStatus) -> Result<(), TransitionError> {
        if self.can_transition_to(to) {
            Ok(())
        } else {
            Err(TransitionError {
                from: self.as_str(),
                to: to.as_str(),
            })
        }
    }
}

impl BlockRunStatus {
    pub const ALL: [BlockRunStatus; 8] = [
        BlockRunStatus::Initial,
        BlockRunStatus::Queued,
        BlockRunStatus::Running,
        BlockRunStatus::Completed,
        BlockRunStatus::Failed,
        BlockRunStatus::Cancelled,
        BlockRunStatus::UpstreamFailed,
        BlockRunStatus::ConditionFailed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            BlockRunStatus::Initial => "initial",
            BlockRunStatus::Queued => "queued",
            BlockRunStatus::Running => "running",
            BlockRunStatus::Completed => "completed",
            BlockRunStatus::Failed => "failed",
            BlockRunStatus::Cancelled => "cancelled",
            BlockRunStatus::UpstreamFailed => "upstream_failed",
            BlockRunStatus::ConditionFailed => "condition_failed",
        }
    }

    pub fn is_terminal(self) -> bool {
        !matches!(
            self,
            BlockRunStatus::Initial | BlockRunStatus::Queued | BlockRunStatus::Running
        )
    }

    /// The transition table for block runs.
    ///
    /// - `initial` waits for its upstreams and then becomes `queued`, or is
    ///   decided without running: `upstream_failed`, `condition_failed`, or
    ///   `cancelled` when the run is cancelled. A block reused from an earlier
    ///   attempt goes straight to `completed`.
    /// - `queued → running` when a try is claimed; `running → queued` when a
    ///   try failed (or its executor was lost) and another try is due.
    pub fn can_transition_to(self, to: BlockRunStatus) -> bool {
        use BlockRunStatus::*;
        matches!(
            (self, to),
            (Initial, Queued)
                | (Initial, Completed)
                | (Initial, UpstreamFailed)
                | (Initial, ConditionFailed)
                | (Initial, Cancelled)
                | (Initial, Failed)
                | (Queued, Running)
                | (Queued, Cancelled)
                | (Queued, Failed)
                | (Running, Completed)
                | (Running, Failed)
                | (Running, Cancelled)
                | (Running, Queued)
        )
    }

    pub fn check_transition(self, to: BlockRunStatus) -> Result<(), TransitionError> {
        if self.can_transition_to(to) {
            Ok(())
        } else {
            Err(TransitionError {
                from: self.as_str(),
                to: to.as_str(),
            })
        }
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for BlockRunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RunStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        RunStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

impl FromStr for BlockRunStatus {
    type Err = UnknownStatus;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BlockRunStatus::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

macro_rules! serde_as_str {
    ($ty:ty) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                s.parse().map_err(serde::de::Error::custom)
            }
        }
    };
}
serde_as_str!(RunStatus);
serde_as_str!(BlockRunStatus);
