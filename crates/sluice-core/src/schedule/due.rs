//! Which fires are due: given the last fire a trigger recorded and `now`,
//! the fires the engine should create runs for, after the catch-up policy
//! and its cap.
//!
//! The missed fires are the schedule's fires after the last recorded one,
//! up to `now`, within the trigger's `start` and `end`. `catchup` decides
//! which of them get a run: `all` the most recent `max_catchup` of them,
//! `latest` the most recent one, `none` the most recent one only if it is
//! no more than [`MISFIRE_THRESHOLD`] late (it is being fired on time, not
//! caught up). They are found walking back from `now`, so the cost follows
//! the number of runs created, not the length of the downtime.

use jiff::{SignedDuration, Timestamp};

use super::{Fire, Schedule};
use crate::spec::{Catchup, TriggerSpec};

/// The default of `max_catchup`: the most runs `catchup: all` creates at
/// once for missed fires.
pub const DEFAULT_MAX_CATCHUP: u32 = 100;

/// The highest `max_catchup` a pipeline may set, so that one restart cannot
/// flood the run ledger.
pub const MAX_CATCHUP: u32 = 10_000;

/// How late a fire may be and still count as on time rather than missed.
/// The engine evaluates schedules every few seconds; a fire it sees within
/// this threshold is one it did not miss.
pub const MISFIRE_THRESHOLD: SignedDuration = SignedDuration::from_secs(60);

/// What [`Schedule::due_fires`] needs to know.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DueQuery {
    /// The latest `scheduled_for` a run was created for, or `None` for a
    /// trigger that has never fired.
    pub last_fired: Option<Timestamp>,
    pub now: Timestamp,
    pub catchup: Catchup,
    /// The most runs `catchup: all` creates; 0 counts as 1.
    pub max_catchup: u32,
    /// No fire before this instant.
    pub start: Option<Timestamp>,
    /// No fire after this instant.
    pub end: Option<Timestamp>,
}

impl DueQuery {
    /// The query for a trigger, with its catch-up policy and bounds.
    pub fn for_trigger(
        trigger: &TriggerSpec,
        last_fired: Option<Timestamp>,
        now: Timestamp,
    ) -> DueQuery {
        DueQuery {
            last_fired,
            now,
            catchup: trigger.catchup,
            max_catchup: trigger.max_catchup,
            start: trigger.start,
            end: trigger.end,
        }
    }

    /// Whether `fire` lies within the trigger's bounds and after its last
    /// recorded fire.
    fn admits(&self, fire: Timestamp) -> bool {
        self.last_fired.is_none_or(|last| fire > last)
            && self.start.is_none_or(|start| fire >= start)
            && self.end.is_none_or(|end| fire <= end)
    }

    fn on_time(&self, fire: Timestamp) -> bool {
        self.now.duration_since(fire) <= MISFIRE_THRESHOLD
    }
}

impl Schedule {
    /// The fires due at `query.now`, oldest first, each with its window.
    ///
    /// A trigger that has never fired counts its missed fires from its
    /// `start`. Without a `start` it has missed nothing: only a fire at most
    /// [`MISFIRE_THRESHOLD`] old is due, so a new trigger waits for its
    /// next fire time instead of catching up on the past. A `once` trigger
    /// is the exception: its one fire counts as missed when it is late, and
    /// `latest` and `all` still create it.
    pub fn due_fires(&self, query: &DueQuery) -> Vec<Fire> {
        let upper = match query.end {
            Some(end) if end < query.now => end,
            _ => query.now,
        };
        let never_fired_unbounded = query.last_fired.is_none()
            && query.start.is_none()
            && !matches!(self, Schedule::Once(_));
        let limit = match query.catchup {
            Catchup::All if !never_fired_unbounded => query.max_catchup.max(1),
            _ => 1,
        };
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);

        // Newest first, walking back from `upper`.
        let mut newest_first: Vec<Timestamp> = Vec::new();
        let mut cursor = self.at_or_before(upper);
        while let Some(fire) = cursor {
            if !query.admits(fire) {
                break;
            }
            newest_first.push(fire);
            if newest_first.len() >= limit {
                break;
            }
            cursor = self.previous_before(fire);
        }
        if (query.catchup == Catchup::None || never_fired_unbounded)
            && !newest_first
                .first()
                .is_some_and(|fire| query.on_time(*fire))
        {
            return Vec::new();
        }

        let mut fires = Vec::with_capacity(newest_first.len());
        let mut window_start = None;
        for scheduled_for in newest_first.into_iter().rev() {
            let fire = match window_start {
                Some(window_start) => Fire {
                    scheduled_for,
                    window_start,
                    window_end: scheduled_for,
                },
                None => self.fire_at(scheduled_for),
            };
            window_start = Some(scheduled_for);
            fires.push(fire);
        }
        fires
    }

    /// The next instant after `query.now` at which a fire becomes due, for
    /// the engine to wake up at; `None` once the schedule (or its `end`) is
    /// over.
    pub fn next_due_at(&self, query: &DueQuery) -> Option<Timestamp> {
        let after = match query.last_fired {
            Some(last) if last > query.now => last,
            _ => query.now,
        };
        let mut next = self.next_after(after)?;
        if let Some(start) = query.start
            && next < start
        {
            next = self.at_or_after(start)?;
        }
        query.end.is_none_or(|end| next <= end).then_some(next)
    }
}
