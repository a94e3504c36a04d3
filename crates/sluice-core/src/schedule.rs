//! When scheduled triggers fire: the instants of a `schedule` (cron in a time
//! zone), `every` (a fixed interval from an anchor) or `once` trigger, the
//! window each fire covers, and which fires are due after downtime.
//!
//! Everything here is a pure function of its arguments: the caller passes
//! `now` and the last fire it recorded, and nothing reads a clock. The engine
//! creates one run per trigger and `scheduled_for`, so the same inputs must
//! always give the same fires; every computation is deterministic and
//! depends only on the time zone database.
//!
//! `cron.rs` holds the cron schedule and its daylight-saving rule, `due.rs`
//! the catch-up policy. `docs/triggers.md` is the user-facing description.

pub(crate) mod cron;
mod due;

use jiff::{SignedDuration, Timestamp};

use crate::duration::Duration;
use crate::spec::TriggerKind;

pub use self::cron::{CronSchedule, DstRule, check_cron, cron_parser};
pub use self::due::{DEFAULT_MAX_CATCHUP, DueQuery, MAX_CATCHUP, MISFIRE_THRESHOLD};

const ONE_NANOSECOND: SignedDuration = SignedDuration::from_nanos(1);

/// A schedule could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("`{pattern}` is not a valid cron pattern: {reason}")]
    Cron { pattern: String, reason: String },
    #[error("unknown time zone `{name}`")]
    TimeZone {
        name: String,
        #[source]
        source: jiff::Error,
    },
    #[error("the interval {interval} is shorter than one second")]
    Interval { interval: Duration },
}

/// The instants at which a timed trigger fires. Each instant is a fire
/// (`scheduled_for`); consecutive fires are strictly increasing.
#[derive(Clone, Debug)]
pub enum Schedule {
    /// A cron pattern read in a time zone.
    Cron(CronSchedule),
    /// A fixed interval of real time.
    Every(Every),
    /// One instant.
    Once(Timestamp),
}

/// Fires every `interval` of real time, at `anchor + k × interval` for every
/// integer `k`: the anchor sets the phase, not the first fire.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Every {
    /// In nanoseconds, at least one second.
    interval: i128,
    anchor: Timestamp,
}

/// One fire of a schedule and the window of time it covers: from the
/// schedule's previous fire (`window_start`) to this one (`window_end`,
/// always equal to `scheduled_for`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Fire {
    pub scheduled_for: Timestamp,
    pub window_start: Timestamp,
    pub window_end: Timestamp,
}

impl Schedule {
    /// The schedule of a trigger kind; `None` for kinds that are not timed
    /// (`always_on`, `api`, `webhook`).
    pub fn from_kind(kind: &TriggerKind) -> Result<Option<Schedule>, Error> {
        Ok(Some(match kind {
            TriggerKind::Schedule { cron, timezone } => {
                Schedule::Cron(CronSchedule::new(cron, timezone)?)
            }
            TriggerKind::Every { interval, anchor } => {
                Schedule::Every(Every::new(*interval, *anchor)?)
            }
            TriggerKind::Once { at } => Schedule::Once(*at),
            TriggerKind::AlwaysOn { .. }
            | TriggerKind::Api { .. }
            | TriggerKind::Webhook { .. } => {
                return Ok(None);
            }
        }))
    }

    /// The first fire strictly after `after`, or `None` when there is none
    /// (a `once` in the past, a cron pattern with no later match before the
    /// year 5000).
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Cron(cron) => cron.next_after(after),
            Schedule::Every(every) => every.next_after(after),
            Schedule::Once(at) => (*at > after).then_some(*at),
        }
    }

    /// The last fire strictly before `before`, or `None` when there is none.
    pub fn previous_before(&self, before: Timestamp) -> Option<Timestamp> {
        match self {
            Schedule::Cron(cron) => cron.previous_before(before),
            Schedule::Every(every) => every.previous_before(before),
            Schedule::Once(at) => (*at < before).then_some(*at),
        }
    }

    /// The last fire at or before `at`.
    pub fn at_or_before(&self, at: Timestamp) -> Option<Timestamp> {
        // At the very end of representable time there is no instant after
        // `at`; no schedule reaches that far, so `at` itself does.
        let just_after = at.checked_add(ONE_NANOSECOND).unwrap_or(at);
        self.previous_before(just_after)
    }

    /// The first fire at or after `at`.
    pub fn at_or_after(&self, at: Timestamp) -> Option<Timestamp> {
        let just_before = at.checked_sub(ONE_NANOSECOND).unwrap_or(at);
        self.next_after(just_before)
    }

    /// The fire at `scheduled_for` with its window. The window starts at the
    /// schedule's previous fire; the first fire of a schedule (and a `once`)
    /// covers an empty window that starts and ends at `scheduled_for`.
    ///
    /// `scheduled_for` is taken as given: pass an instant the schedule
    /// produced.
    pub fn fire_at(&self, scheduled_for: Timestamp) -> Fire {
        Fire {
            scheduled_for,
            window_start: self.previous_before(scheduled_for).unwrap_or(scheduled_for),
            window_end: scheduled_for,
        }
    }

    /// The fires strictly after `after`, in order, with their windows. The
    /// iterator ends only when the schedule does; bound it with
    /// `take_while`.
    pub fn fires_after(&self, after: Timestamp) -> Fires<'_> {
        Fires {
            schedule: self,
            cursor: after,
            previous: None,
            done: false,
        }
    }

    /// The fires in `from..=until` (both ends inclusive), with their windows.
    pub fn fires_between(
        &self,
        from: Timestamp,
        until: Timestamp,
    ) -> impl Iterator<Item = Fire> + '_ {
        let just_before = from.checked_sub(ONE_NANOSECOND).unwrap_or(from);
        self.fires_after(just_before)
            .take_while(move |fire| fire.scheduled_for <= until)
    }
}

/// The fires of a schedule after an instant; see [`Schedule::fires_after`].
#[derive(Clone, Debug)]
pub struct Fires<'a> {
    schedule: &'a Schedule,
    cursor: Timestamp,
    /// The fire returned last, which is the window start of the next one.
    previous: Option<Timestamp>,
    done: bool,
}

impl Iterator for Fires<'_> {
    type Item = Fire;

    fn next(&mut self) -> Option<Fire> {
        if self.done {
            return None;
        }
        let Some(scheduled_for) = self.schedule.next_after(self.cursor) else {
            self.done = true;
            return None;
        };
        let fire = match self.previous {
            Some(window_start) => Fire {
                scheduled_for,
                window_start,
                window_end: scheduled_for,
            },
            None => self.schedule.fire_at(scheduled_for),
        };
        self.previous = Some(scheduled_for);
        self.cursor = scheduled_for;
        Some(fire)
    }
}

impl Every {
    /// The shortest interval: a finer one would only flood the run ledger.
    pub const MIN_INTERVAL: Duration = Duration(std::time::Duration::from_secs(1));

    /// Fires every `interval` from `anchor`, or from the Unix epoch
    /// (1970-01-01T00:00:00Z) without one, so that `15m` fires on the
    /// quarter hours of UTC.
    pub fn new(interval: Duration, anchor: Option<Timestamp>) -> Result<Every, Error> {
        if interval < Every::MIN_INTERVAL {
            return Err(Error::Interval { interval });
        }
        // A `Duration` holds at most about 584 billion years, which always
        // fits; saturate rather than trust that.
        let nanos = i128::try_from(interval.0.as_nanos()).unwrap_or(i128::MAX);
        Ok(Every {
            interval: nanos,
            anchor: anchor.unwrap_or(Timestamp::UNIX_EPOCH),
        })
    }

    /// The first fire strictly after `after`.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let since = after.as_nanosecond() - self.anchor.as_nanosecond();
        let steps = since.div_euclid(self.interval).checked_add(1)?;
        self.nth(steps)
    }

    /// The last fire strictly before `before`.
    pub fn previous_before(&self, before: Timestamp) -> Option<Timestamp> {
        let since = before.as_nanosecond() - self.anchor.as_nanosecond();
        let steps = since.checked_sub(1)?.div_euclid(self.interval);
        self.nth(steps)
    }

    /// `anchor + steps × interval`, if it is a representable instant.
    fn nth(&self, steps: i128) -> Option<Timestamp> {
        let offset = steps.checked_mul(self.interval)?;
        let nanos = self.anchor.as_nanosecond().checked_add(offset)?;
        Timestamp::from_nanosecond(nanos).ok()
    }
}

/// When an `always_on` trigger may start its next run: `min_gap` after the
/// previous run ended. `None` means at once (no previous run, or no gap).
pub fn earliest_next_start(
    min_gap: Option<Duration>,
    previous_end: Option<Timestamp>,
) -> Option<Timestamp> {
    let previous_end = previous_end?;
    let gap = min_gap.unwrap_or(Duration::ZERO);
    let gap = SignedDuration::try_from(gap.0).unwrap_or(SignedDuration::MAX);
    Some(previous_end.checked_add(gap).unwrap_or(Timestamp::MAX))
}
