//! Schedules with explicit instants, never the system clock. This file has
//! the helpers and the cron features (`L`, `W`, `#`, the `@` macros), `every`
//! with an anchor and `once`; `schedules/dst.rs` the daylight-saving rule in
//! eight time zones, `schedules/due.rs` windows, catch-up and its cap and
//! `start`/`end`, and `schedules/properties.rs` property tests against a
//! brute-force walk.

use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use sluice_core::duration::Duration;
use sluice_core::schedule::{
    CronSchedule, DstRule, DueQuery, Every, Fire, MISFIRE_THRESHOLD, Schedule, earliest_next_start,
};
use sluice_core::spec::{Catchup, TriggerKind};

fn at(text: &str) -> Timestamp {
    text.parse()
        .unwrap_or_else(|error| panic!("{text}: {error}"))
}

fn cron(pattern: &str, zone: &str) -> Schedule {
    Schedule::Cron(CronSchedule::new(pattern, zone).unwrap())
}

/// An instant as the zone's wall clock with its offset, which is how a
/// person checks a schedule.
fn local(instant: Timestamp, zone: &str) -> String {
    instant
        .to_zoned(TimeZone::get(zone).unwrap())
        .strftime("%Y-%m-%dT%H:%M:%S%:z")
        .to_string()
}

/// Every fire of `pattern` in `zone` within `from..=until` (UTC instants),
/// as local times.
fn fires(pattern: &str, zone: &str, from: &str, until: &str) -> Vec<String> {
    cron(pattern, zone)
        .fires_between(at(from), at(until))
        .map(|fire| local(fire.scheduled_for, zone))
        .collect()
}

#[path = "schedules/dst.rs"]
mod dst;
#[path = "schedules/due.rs"]
mod due;
#[path = "schedules/properties.rs"]
mod properties;

// Kolkata has no daylight saving: every rule is plain there, which makes it
// the zone for the day-of-month and day-of-week features.

#[test]
fn kolkata_last_weekday_and_nth() {
    let next = |pattern: &str, after: &str| {
        cron(pattern, "Asia/Kolkata")
            .next_after(at(after))
            .map(|fire| local(fire, "Asia/Kolkata"))
    };
    assert_eq!(
        fires(
            "0 9 * * *",
            "Asia/Kolkata",
            "2026-01-01T00:00:00Z",
            "2026-01-02T23:59:59Z"
        ),
        ["2026-01-01T09:00:00+05:30", "2026-01-02T09:00:00+05:30"]
    );
    // `L`: the last day of the month, 29 February in a leap year.
    assert_eq!(
        next("0 9 L * *", "2024-02-01T00:00:00Z").as_deref(),
        Some("2024-02-29T09:00:00+05:30")
    );
    // `W`: the weekday nearest the 15th; 15 June 2024 was a Saturday.
    assert_eq!(
        next("0 9 15W * *", "2024-06-01T00:00:00Z").as_deref(),
        Some("2024-06-14T09:00:00+05:30")
    );
    // `#`: the third Friday; `5L`: the last Friday.
    assert_eq!(
        next("0 9 * * 5#3", "2026-03-01T00:00:00Z").as_deref(),
        Some("2026-03-20T09:00:00+05:30")
    );
    assert_eq!(
        next("0 9 * * 5L", "2026-01-01T00:00:00Z").as_deref(),
        Some("2026-01-30T09:00:00+05:30")
    );
    // Day of month and day of week both restricted: either one matches.
    assert_eq!(
        fires(
            "0 9 13 * 5",
            "Asia/Kolkata",
            "2026-02-01T00:00:00Z",
            "2026-02-28T00:00:00Z"
        ),
        [
            "2026-02-06T09:00:00+05:30",
            "2026-02-13T09:00:00+05:30",
            "2026-02-20T09:00:00+05:30",
            "2026-02-27T09:00:00+05:30",
        ]
    );
}

#[test]
fn macros_expand_to_their_patterns() {
    let zone = "Asia/Kolkata";
    let after = at("2026-05-13T12:34:56Z");
    for (macro_pattern, pattern) in [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@yearly", "0 0 1 1 *"),
        ("@annually", "0 0 1 1 *"),
        ("@DAILY", "0 0 * * *"),
    ] {
        let by_macro: Vec<_> = cron(macro_pattern, zone)
            .fires_after(after)
            .take(3)
            .collect();
        let by_fields: Vec<_> = cron(pattern, zone).fires_after(after).take(3).collect();
        assert_eq!(by_macro, by_fields, "{macro_pattern}");
    }
    assert_eq!(
        local(cron("@yearly", zone).next_after(after).unwrap(), zone),
        "2027-01-01T00:00:00+05:30"
    );
    assert_eq!(
        local(cron("@weekly", zone).next_after(after).unwrap(), zone),
        "2026-05-17T00:00:00+05:30"
    );
}

#[test]
fn patterns_are_classified_by_the_vixie_rule() {
    for (pattern, rule) in [
        ("30 2 * * *", DstRule::FixedTime),
        ("0 1,2 * * *", DstRule::FixedTime),
        ("0-30 1-3 * * *", DstRule::FixedTime),
        ("@daily", DstRule::FixedTime),
        ("@weekly", DstRule::FixedTime),
        ("0 0 2 * * *", DstRule::FixedTime),
        ("@hourly", DstRule::ElapsedTime),
        ("*/15 * * * *", DstRule::ElapsedTime),
        ("*/15 2 * * *", DstRule::ElapsedTime),
        ("0 */2 * * *", DstRule::ElapsedTime),
        ("0 1-23/2 * * *", DstRule::ElapsedTime),
        ("*/10 0 2 * * *", DstRule::ElapsedTime),
    ] {
        assert_eq!(
            CronSchedule::new(pattern, "UTC").unwrap().rule(),
            rule,
            "{pattern}"
        );
    }
}

#[test]
fn bad_patterns_and_zones_are_errors() {
    for pattern in [
        "0 2 * *",
        "61 * * * *",
        "@reboot",
        "0 0 30 2 *",
        "",
        "0 0 * * * * *",
    ] {
        let error = CronSchedule::new(pattern, "UTC").unwrap_err();
        assert!(
            error.to_string().contains("is not a valid cron pattern"),
            "{pattern}: {error}"
        );
    }
    let error = CronSchedule::new("0 2 * * *", "Europe/Londn").unwrap_err();
    assert_eq!(error.to_string(), "unknown time zone `Europe/Londn`");
}

#[test]
fn every_counts_real_time_from_its_anchor() {
    let anchor = at("2026-01-01T00:07:00Z");
    let every = Every::new(Duration::from_secs(15 * 60), Some(anchor)).unwrap();
    assert_eq!(
        every.next_after(at("2026-03-08T06:50:00Z")),
        Some(at("2026-03-08T06:52:00Z"))
    );
    // A fire is not after itself, and the one before it is 15 minutes back.
    assert_eq!(
        every.next_after(at("2026-03-08T06:52:00Z")),
        Some(at("2026-03-08T07:07:00Z"))
    );
    assert_eq!(
        every.previous_before(at("2026-03-08T06:52:00Z")),
        Some(at("2026-03-08T06:37:00Z"))
    );
    // Times before the anchor follow the same phase.
    assert_eq!(
        every.next_after(at("2025-12-31T23:59:00Z")),
        Some(at("2026-01-01T00:07:00Z"))
    );
    assert_eq!(
        every.previous_before(at("2025-12-31T23:59:00Z")),
        Some(at("2025-12-31T23:52:00Z"))
    );
    // Without an anchor, the Unix epoch sets the phase.
    let hourly = Every::new(Duration::from_secs(3600), None).unwrap();
    assert_eq!(
        hourly.next_after(at("2026-11-01T05:30:00Z")),
        Some(at("2026-11-01T06:00:00Z"))
    );
    // Real time, whatever the local clocks do: a day is 24 hours.
    let schedule = Schedule::from_kind(&TriggerKind::Every {
        interval: Duration::from_secs(86_400),
        anchor: Some(at("2026-03-07T09:00:00-05:00")),
    })
    .unwrap()
    .unwrap();
    assert_eq!(
        local(
            schedule.next_after(at("2026-03-07T15:00:00Z")).unwrap(),
            "America/New_York"
        ),
        "2026-03-08T10:00:00-04:00"
    );
    assert!(Every::new(Duration::from_millis(500), None).is_err());
}

#[test]
fn once_fires_exactly_once() {
    let schedule = Schedule::from_kind(&TriggerKind::Once {
        at: at("2026-12-01T09:00:00+01:00"),
    })
    .unwrap()
    .unwrap();
    assert_eq!(
        schedule.next_after(at("2026-01-01T00:00:00Z")),
        Some(at("2026-12-01T08:00:00Z"))
    );
    assert_eq!(schedule.next_after(at("2026-12-01T08:00:00Z")), None);
    let all: Vec<Fire> = schedule.fires_after(at("2000-01-01T00:00:00Z")).collect();
    assert_eq!(
        all,
        [Fire {
            scheduled_for: at("2026-12-01T08:00:00Z"),
            window_start: at("2026-12-01T08:00:00Z"),
            window_end: at("2026-12-01T08:00:00Z"),
        }]
    );
}

#[test]
fn untimed_kinds_have_no_schedule() {
    for kind in [
        TriggerKind::AlwaysOn { min_gap: None },
        TriggerKind::Api { token_env: None },
    ] {
        assert!(Schedule::from_kind(&kind).unwrap().is_none());
    }
    assert_eq!(
        earliest_next_start(Some(Duration::from_secs(30)), None),
        None
    );
    assert_eq!(
        earliest_next_start(
            Some(Duration::from_secs(30)),
            Some(at("2026-01-01T10:00:00Z"))
        ),
        Some(at("2026-01-01T10:00:30Z"))
    );
    assert_eq!(
        earliest_next_start(None, Some(at("2026-01-01T10:00:00Z"))),
        Some(at("2026-01-01T10:00:00Z"))
    );
}
