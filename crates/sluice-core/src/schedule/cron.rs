//! A cron pattern read in an IANA time zone, with the daylight-saving rule
//! of Vixie (ISC) cron.
//!
//! A pattern describes wall-clock times; a time zone maps them to instants,
//! and around a daylight-saving change that mapping is not one to one. A
//! wall-clock time inside a spring-forward gap names no instant, and one
//! inside a fall-back overlap names two. The rule decides what fires then,
//! by the kind of pattern ([`DstRule`]):
//!
//! - a **fixed-time** pattern (its second, minute and hour fields are plain
//!   values, lists or ranges, like `30 2 * * *` or `0 1,13 * * *`) fires
//!   once for every wall-clock time it matches: a time in a gap fires at the
//!   transition, the first instant after the gap, and a time in an overlap
//!   fires at its first occurrence only;
//! - an **elapsed-time** pattern (its second, minute or hour field starts
//!   with `*` or has a step, like `*/15 * * * *` or `0 * * * *`) fires at
//!   every instant whose wall-clock time it matches: nothing in a gap (those
//!   times never happen), and both occurrences in an overlap.
//!
//! This is how Vixie cron treats its "wildcard" and "fixed-time" jobs for
//! clock changes under three hours; here the rule holds for every
//! transition, of any size. Vixie cron calls a job wildcard when its minute
//! or hour field starts with `*`; a step such as `1-23/2` counts here too,
//! since it is a regular tick as much as `*/2` is, and so does the seconds
//! field of a 6-field pattern.
//!
//! The computation walks the time zone's offset periods. Within one period
//! the offset is constant, so wall-clock times map to instants one to one and
//! in order; there croner searches the pattern in plain civil time (a UTC
//! frame, which has no transitions). At each transition the rule above is
//! applied explicitly. croner's own daylight-saving handling is not used:
//! it decides fixed-time by "one value each for second, minute and hour",
//! so `0 1,2 * * *` would fire twice in an overlap and not at all in a gap,
//! which is not the Vixie rule.

use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::civil::DateTime;
use jiff::tz::{Offset, TimeZone};
use jiff::{SignedDuration, Timestamp};

use super::{Error, ONE_NANOSECOND};

/// How a cron pattern behaves around daylight-saving changes; see the module
/// documentation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DstRule {
    /// Once per matching wall-clock time: a gap fires at the transition, an
    /// overlap at its first occurrence.
    FixedTime,
    /// At every real instant whose wall-clock time matches.
    ElapsedTime,
}

/// A cron pattern in a time zone.
#[derive(Clone, Debug)]
pub struct CronSchedule {
    pattern: String,
    /// Boxed: croner's pattern is large, and schedules are moved around.
    cron: Box<Cron>,
    time_zone: TimeZone,
    rule: DstRule,
}

/// The most offset periods one search walks. A pattern that matches at all
/// matches within a few years, and zones change offset a few times a year;
/// this bound only stops a search through millennia of transitions.
const MAX_PERIODS: usize = 20_000;

const ONE_SECOND: SignedDuration = SignedDuration::from_secs(1);

/// The cron dialect of `schedule:`: 5 fields, or 6 with seconds first; no
/// year field. Day-of-month and day-of-week combine as in Vixie cron: when
/// both are restricted, a day matching either one matches.
pub fn cron_parser() -> CronParser {
    CronParser::builder()
        .seconds(Seconds::Optional)
        .year(Year::Disallowed)
        .build()
}

/// Whether `pattern` is a cron pattern sluice accepts; the error says why
/// not, as the end of a sentence.
pub fn check_cron(pattern: &str) -> Result<(), String> {
    parse(pattern).map(|_| ())
}

/// Why [`check_cron`] refuses a pattern that parses but names no date.
pub(crate) const NO_DATE: &str = "it matches no date";

/// The macros and what they stand for.
const MACROS: [(&str, &str); 6] = [
    ("@yearly", "0 0 1 1 *"),
    ("@annually", "0 0 1 1 *"),
    ("@monthly", "0 0 1 * *"),
    ("@weekly", "0 0 * * 0"),
    ("@daily", "0 0 * * *"),
    ("@hourly", "0 * * * *"),
];

/// Parses a pattern, expanding the `@` macros first so that their fields
/// can be classified like any other pattern's.
fn parse(pattern: &str) -> Result<(Cron, DstRule), String> {
    let trimmed = pattern.trim();
    let expanded = if trimmed.starts_with('@') {
        match MACROS
            .iter()
            .find(|(name, _)| name.eq_ignore_ascii_case(trimmed))
        {
            Some((_, fields)) => *fields,
            None => {
                let names: Vec<String> =
                    MACROS.iter().map(|(name, _)| format!("`{name}`")).collect();
                return Err(format!(
                    "it is not a known macro; the macros are {}",
                    names.join(", ")
                ));
            }
        }
    } else {
        trimmed
    };
    let fields: Vec<&str> = expanded.split_whitespace().collect();
    let (seconds, minutes, hours) = match fields.as_slice() {
        [minutes, hours, _, _, _] => ("0", *minutes, *hours),
        [seconds, minutes, hours, _, _, _] => (*seconds, *minutes, *hours),
        _ => {
            let count = fields.len();
            return Err(format!(
                "it has {count} field{}; a pattern has 5 (minute hour day month weekday) or 6 \
                 (with seconds first)",
                if count == 1 { "" } else { "s" }
            ));
        }
    };
    let cron = cron_parser()
        .parse(expanded)
        .map_err(|error| describe_cron_error(&error))?;
    let elapsed = |field: &str| field.starts_with('*') || field.contains('/');
    let rule = if elapsed(seconds) || elapsed(minutes) || elapsed(hours) {
        DstRule::ElapsedTime
    } else {
        DstRule::FixedTime
    };
    // A pattern such as `0 0 30 2 *` parses but names no date; it would
    // make every search run to the end of time, so it is refused here.
    let probe = DateTime::constant(2000, 1, 1, 0, 0, 0, 0);
    if civil_next(&cron, probe, true).is_none() {
        return Err(NO_DATE.to_owned());
    }
    Ok((cron, rule))
}

/// croner's message without its prefix, as the end of a sentence.
fn describe_cron_error(error: &croner::errors::CronError) -> String {
    use croner::errors::CronError;
    let text = match error {
        CronError::EmptyPattern => return "it is empty".to_owned(),
        CronError::InvalidPattern(message)
        | CronError::IllegalCharacters(message)
        | CronError::ComponentError(message) => message.clone(),
        other => other.to_string(),
    };
    let text = text.trim().trim_end_matches('.');
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => "it is not valid".to_owned(),
    }
}

/// The first wall-clock time at or after (`inclusive`) or strictly after
/// `from` that the pattern matches. Fractions of a second count: a match
/// must not fall before `from`.
fn civil_next(cron: &Cron, from: DateTime, inclusive: bool) -> Option<DateTime> {
    let (from, inclusive) = if from.subsec_nanosecond() == 0 {
        (from, inclusive)
    } else {
        // The next whole second is the first candidate either way.
        let whole = from.with().subsec_nanosecond(0).build().ok()?;
        (whole.checked_add(ONE_SECOND).ok()?, true)
    };
    let frame = from.to_zoned(TimeZone::UTC).ok()?;
    cron.find_next_occurrence(&frame, inclusive)
        .ok()
        .map(|found| found.datetime())
}

/// The last wall-clock time strictly before `before` that the pattern
/// matches.
fn civil_previous(cron: &Cron, before: DateTime) -> Option<DateTime> {
    let (before, inclusive) = if before.subsec_nanosecond() == 0 {
        (before, false)
    } else {
        // The whole second below a fraction is itself before it.
        (before.with().subsec_nanosecond(0).build().ok()?, true)
    };
    let frame = before.to_zoned(TimeZone::UTC).ok()?;
    cron.find_previous_occurrence(&frame, inclusive)
        .ok()
        .map(|found| found.datetime())
}

/// A stretch of time with one offset: from the transition `start` (or the
/// beginning of time) up to the transition `end` (or the end of time).
#[derive(Clone, Copy, Debug)]
struct Period {
    offset: Offset,
    start: Option<Timestamp>,
    /// The offset before `start`.
    previous_offset: Option<Offset>,
    end: Option<Timestamp>,
    /// The offset from `end` on.
    next_offset: Option<Offset>,
}

impl CronSchedule {
    /// Reads `pattern` in the IANA time zone `time_zone`.
    pub fn new(pattern: &str, time_zone: &str) -> Result<CronSchedule, Error> {
        let zone = jiff::tz::db()
            .get(time_zone.trim())
            .map_err(|source| Error::TimeZone {
                name: time_zone.to_owned(),
                source,
            })?;
        CronSchedule::with_time_zone(pattern, zone)
    }

    /// Reads `pattern` in `time_zone`.
    pub fn with_time_zone(pattern: &str, time_zone: TimeZone) -> Result<CronSchedule, Error> {
        let (cron, rule) = parse(pattern).map_err(|reason| Error::Cron {
            pattern: pattern.to_owned(),
            reason,
        })?;
        Ok(CronSchedule {
            pattern: pattern.trim().to_owned(),
            cron: Box::new(cron),
            time_zone,
            rule,
        })
    }

    /// The pattern as written.
    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    pub fn time_zone(&self) -> &TimeZone {
        &self.time_zone
    }

    /// How the pattern behaves around daylight-saving changes.
    pub fn rule(&self) -> DstRule {
        self.rule
    }

    /// The first fire strictly after `after`.
    pub fn next_after(&self, after: Timestamp) -> Option<Timestamp> {
        let mut cursor = after;
        let mut inclusive = false;
        // A match found past the end of a period that is still the first
        // match of the next one, so the next period need not search again.
        let mut carried: Option<DateTime> = None;
        for _ in 0..MAX_PERIODS {
            let period = self.period_at(cursor);
            let mut candidate = match carried.take() {
                Some(candidate) => candidate,
                None => civil_next(&self.cron, period.offset.to_datetime(cursor), inclusive)?,
            };
            loop {
                let instant = period.offset.to_timestamp(candidate).ok()?;
                if period.end.is_some_and(|end| instant >= end) {
                    break;
                }
                match self.second_pass_until(&period) {
                    // A fixed-time pattern already fired at the first
                    // occurrence of this wall-clock time.
                    Some(until) if candidate < until => {
                        candidate = civil_next(&self.cron, until, true)?;
                    }
                    _ => return Some(instant),
                }
            }
            // Nothing in this period; the transition at its end may fire
            // for the wall-clock times its gap skips.
            let end = period.end?;
            let next_offset = period.next_offset?;
            if self.fires_in_gap(period.offset, next_offset, end) {
                return Some(end);
            }
            let civil_end = period.offset.to_datetime(end);
            let next_civil_start = next_offset.to_datetime(end);
            if next_civil_start >= civil_end && candidate >= next_civil_start {
                carried = Some(candidate);
            }
            cursor = end;
            inclusive = true;
        }
        None
    }

    /// The last fire strictly before `before`.
    pub fn previous_before(&self, before: Timestamp) -> Option<Timestamp> {
        let mut cursor = before;
        // A match found before the start of a period that is still the last
        // match of the previous one.
        let mut carried: Option<DateTime> = None;
        for _ in 0..MAX_PERIODS {
            let period = self.period_at(cursor.checked_sub(ONE_NANOSECOND).ok()?);
            let candidate = match carried.take() {
                Some(candidate) => candidate,
                None => civil_previous(&self.cron, period.offset.to_datetime(cursor))?,
            };
            let civil_start = period.start.map(|start| period.offset.to_datetime(start));
            let inside = civil_start.is_none_or(|start| candidate >= start);
            let second_pass = self
                .second_pass_until(&period)
                .is_some_and(|until| candidate < until);
            if inside && !second_pass {
                return period.offset.to_timestamp(candidate).ok();
            }
            // Nothing in this period (a fixed-time match in its repeated
            // first hour already fired in the period before); the
            // transition at its start may fire for a gap.
            let start = period.start?;
            let previous_offset = period.previous_offset?;
            if self.fires_in_gap(previous_offset, period.offset, start) {
                return Some(start);
            }
            let previous_civil_end = previous_offset.to_datetime(start);
            if civil_start.is_some_and(|civil_start| previous_civil_end <= civil_start)
                && candidate < previous_civil_end
            {
                carried = Some(candidate);
            }
            cursor = start;
        }
        None
    }

    /// The offset period that contains `at`.
    fn period_at(&self, at: Timestamp) -> Period {
        let zone = &self.time_zone;
        let offset = zone.to_offset(at);
        // `preceding` is strictly before its argument, and a transition at
        // `at` itself starts the period.
        let start = match at.checked_add(ONE_NANOSECOND) {
            Ok(just_after) => zone.preceding(just_after).next(),
            Err(_) => zone.preceding(at).next(),
        }
        .map(|transition| transition.timestamp());
        let previous_offset = start.and_then(|start| {
            start
                .checked_sub(ONE_NANOSECOND)
                .ok()
                .map(|just_before| zone.to_offset(just_before))
        });
        let next = zone.following(at).next();
        Period {
            offset,
            start,
            previous_offset,
            end: next.as_ref().map(|transition| transition.timestamp()),
            next_offset: next.as_ref().map(|transition| transition.offset()),
        }
    }

    /// For a fixed-time pattern in a period that begins by setting the
    /// clock back: the wall-clock time up to which this period repeats
    /// times the previous period already had.
    fn second_pass_until(&self, period: &Period) -> Option<DateTime> {
        if self.rule != DstRule::FixedTime {
            return None;
        }
        let start = period.start?;
        let previous_offset = period.previous_offset?;
        (previous_offset > period.offset).then(|| previous_offset.to_datetime(start))
    }

    /// Whether a fixed-time pattern fires at the transition `at`, from
    /// offset `before` to offset `after`: when the clock jumps forward and
    /// the pattern matches a wall-clock time the jump skips.
    fn fires_in_gap(&self, before: Offset, after: Offset, at: Timestamp) -> bool {
        if self.rule != DstRule::FixedTime || after <= before {
            return false;
        }
        let gap_start = before.to_datetime(at);
        let gap_end = after.to_datetime(at);
        civil_next(&self.cron, gap_start, true).is_some_and(|found| found < gap_end)
    }
}
