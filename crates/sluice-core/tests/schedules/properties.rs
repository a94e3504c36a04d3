//! Property tests: the search agrees with a brute-force walk in both
//! directions, fires strictly increase with chained windows, `every` is
//! regular, and due fires stay within their bounds and cap.

use super::*;

// Property tests. The zones, each with daylight-saving changes near the
// instants tested (Kolkata has none), and patterns of both rules.

const ZONES: [&str; 8] = [
    "America/New_York",
    "Europe/London",
    "America/Sao_Paulo",
    "America/Santiago",
    "Asia/Tehran",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Kolkata",
];

const PATTERNS: [&str; 14] = [
    "30 2 * * *",
    "0 0 * * *",
    "45 1 * * *",
    "0 3 * * *",
    "30 23 * * *",
    "0 1,2 * * *",
    "0,30 0-3 * * *",
    "*/15 * * * *",
    "@hourly",
    "30 */2 * * *",
    "*/7 1-3 * * *",
    "* 2 * * *",
    "0 0 * * 0",
    "15 2 L * *",
];

/// The first transition of `zone` at or after 2018, plus `index` more, or
/// a plain instant for a zone without them, on a whole minute. (Some zone
/// files record a transition that changes nothing at 2038-01-19T03:14:07Z,
/// the end of 32-bit time.)
fn near_transition(zone: &str, index: usize, shift_minutes: i64) -> Timestamp {
    let tz = TimeZone::get(zone).unwrap();
    let base = at("2018-01-01T00:00:00Z");
    let transition = tz
        .following(base)
        .nth(index)
        .map_or(base, |transition| transition.timestamp());
    let minute = transition.as_second().div_euclid(60) * 60;
    Timestamp::from_second(minute)
        .unwrap()
        .checked_add(SignedDuration::from_mins(shift_minutes))
        .unwrap()
}

/// The fires of a 5-field pattern in `from..=until`, found the slow way:
/// minute by minute, straight from the rule's definition.
fn brute_force(pattern: &str, zone: &str, from: Timestamp, until: Timestamp) -> Vec<Timestamp> {
    let tz = TimeZone::get(zone).unwrap();
    let cron = sluice_core::schedule::cron_parser().parse(pattern).unwrap();
    let matches = |civil: jiff::civil::DateTime| {
        cron.is_time_matching(&civil.to_zoned(TimeZone::UTC).unwrap())
            .unwrap()
    };
    let minute = SignedDuration::from_mins(1);
    let rule = CronSchedule::new(pattern, zone).unwrap().rule();
    let mut found = Vec::new();
    match rule {
        DstRule::ElapsedTime => {
            // Every real minute whose wall clock matches.
            let mut instant = from;
            while instant <= until {
                if matches(tz.to_datetime(instant)) {
                    found.push(instant);
                }
                instant = instant.checked_add(minute).unwrap();
            }
        }
        DstRule::FixedTime => {
            // Every matching wall-clock minute, resolved: a single instant,
            // the earlier of two, or the transition that skipped it.
            let slack = SignedDuration::from_hours(3);
            let mut civil = tz.to_datetime(from.checked_sub(slack).unwrap());
            let last = tz.to_datetime(until.checked_add(slack).unwrap());
            while civil <= last {
                if matches(civil) {
                    let ambiguous = tz.to_ambiguous_timestamp(civil);
                    let instant = match ambiguous.offset() {
                        AmbiguousOffset::Unambiguous { offset } => {
                            offset.to_timestamp(civil).unwrap()
                        }
                        AmbiguousOffset::Fold { before, .. } => before.to_timestamp(civil).unwrap(),
                        AmbiguousOffset::Gap { after, .. } => {
                            let before_gap = after.to_timestamp(civil).unwrap();
                            tz.following(before_gap).next().unwrap().timestamp()
                        }
                    };
                    if from <= instant && instant <= until {
                        found.push(instant);
                    }
                }
                civil = civil.checked_add(minute).unwrap();
            }
            found.sort();
            found.dedup();
        }
    }
    found
}

/// The fires within five hours of `center`, forward and backward, are the
/// brute-force walk's.
fn agrees_with_brute_force(
    pattern: &str,
    zone: &str,
    center: Timestamp,
) -> Result<(), TestCaseError> {
    let from = center.checked_sub(SignedDuration::from_hours(5)).unwrap();
    let until = center.checked_add(SignedDuration::from_hours(5)).unwrap();
    let expected = brute_force(pattern, zone, from, until);
    let schedule = cron(pattern, zone);
    let forward: Vec<Timestamp> = schedule
        .fires_between(from, until)
        .map(|fire| fire.scheduled_for)
        .collect();
    prop_assert_eq!(
        &forward,
        &expected,
        "{} in {} around {}",
        pattern,
        zone,
        center
    );
    let mut backward = Vec::new();
    let mut cursor = schedule.at_or_before(until);
    while let Some(fire) = cursor.filter(|fire| *fire >= from) {
        backward.push(fire);
        cursor = schedule.previous_before(fire);
    }
    backward.reverse();
    prop_assert_eq!(
        &backward,
        &expected,
        "backward: {} in {} around {}",
        pattern,
        zone,
        center
    );
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn fires_match_a_brute_force_walk(
        zone in proptest::sample::select(ZONES.as_slice()),
        pattern in proptest::sample::select(PATTERNS.as_slice()),
        index in 0usize..18,
        shift in -600i64..600,
    ) {
        agrees_with_brute_force(pattern, zone, near_transition(zone, index, shift))?;
    }

    #[test]
    fn generated_patterns_match_a_brute_force_walk(
        zone in proptest::sample::select(ZONES.as_slice()),
        pattern in generated_pattern(),
        index in 0usize..18,
        shift in -600i64..600,
    ) {
        agrees_with_brute_force(&pattern, zone, near_transition(zone, index, shift))?;
    }

    #[test]
    fn next_and_previous_agree(
        zone in proptest::sample::select(ZONES.as_slice()),
        pattern in proptest::sample::select(PATTERNS.as_slice()),
        index in 0usize..18,
        shift_seconds in -86_400i64..86_400,
    ) {
        let schedule = cron(pattern, zone);
        let t = near_transition(zone, index, 0)
            .checked_add(SignedDuration::from_secs(shift_seconds))
            .unwrap();
        let next = schedule.next_after(t).unwrap();
        prop_assert!(next > t);
        // Nothing fires between `t` and `next`.
        prop_assert!(schedule.previous_before(next).is_none_or(|previous| previous <= t));
        let previous = schedule.previous_before(t).unwrap();
        prop_assert!(previous < t);
        prop_assert!(schedule.next_after(previous).is_some_and(|after| after >= t));
    }

    #[test]
    fn fires_strictly_increase_and_chain_their_windows(
        zone in proptest::sample::select(ZONES.as_slice()),
        pattern in proptest::sample::select(PATTERNS.as_slice()),
        index in 0usize..18,
        shift in -1440i64..1440,
    ) {
        let schedule = cron(pattern, zone);
        let start = near_transition(zone, index, shift);
        let fires: Vec<Fire> = schedule.fires_after(start).take(80).collect();
        prop_assert_eq!(fires.len(), 80);
        prop_assert!(fires[0].scheduled_for > start);
        for pair in fires.windows(2) {
            prop_assert!(pair[0].scheduled_for < pair[1].scheduled_for);
            prop_assert_eq!(pair[1].window_start, pair[0].scheduled_for);
            prop_assert!(pair[1].window_start < pair[1].window_end);
        }
        if schedule_rule(&schedule) == DstRule::FixedTime {
            // A fixed-time pattern fires once per wall-clock time.
            let tz = TimeZone::get(zone).unwrap();
            let mut walls: Vec<_> = fires.iter().map(|fire| tz.to_datetime(fire.scheduled_for)).collect();
            walls.sort();
            let count = walls.len();
            walls.dedup();
            prop_assert_eq!(walls.len(), count);
        }
    }

    #[test]
    fn every_is_regular(
        interval in 1u64..200_000,
        anchor in -2_000_000_000i64..2_000_000_000,
        t in -2_000_000_000i64..2_000_000_000,
    ) {
        let anchor = Timestamp::from_second(anchor).unwrap();
        let t = Timestamp::from_second(t).unwrap();
        let every = Every::new(Duration::from_secs(interval), Some(anchor)).unwrap();
        let next = every.next_after(t).unwrap();
        let previous = every.previous_before(next).unwrap();
        prop_assert!(next > t && previous <= t);
        prop_assert_eq!(next.duration_since(previous), SignedDuration::from_secs(interval as i64));
        prop_assert_eq!(next.duration_since(anchor).as_nanos() % (interval as i128 * 1_000_000_000), 0);
    }

    #[test]
    fn due_fires_are_increasing_bounded_and_capped(
        pattern in proptest::sample::select(PATTERNS.as_slice()),
        zone in proptest::sample::select(ZONES.as_slice()),
        last_hours in 0i64..400,
        now_hours in 0i64..400,
        cap in 1u32..40,
        catchup in proptest::sample::select(vec![Catchup::None, Catchup::Latest, Catchup::All]),
    ) {
        let schedule = cron(pattern, zone);
        let base = near_transition(zone, 4, 0);
        let last = base.checked_add(SignedDuration::from_hours(last_hours)).unwrap();
        let now = base.checked_add(SignedDuration::from_hours(now_hours)).unwrap();
        let query = DueQuery {
            last_fired: Some(last),
            now,
            catchup,
            max_catchup: cap,
            start: None,
            end: None,
        };
        let due = schedule.due_fires(&query);
        let limit = if catchup == Catchup::All { cap as usize } else { 1 };
        prop_assert!(due.len() <= limit);
        for fire in &due {
            prop_assert!(fire.scheduled_for > last && fire.scheduled_for <= now);
        }
        for pair in due.windows(2) {
            prop_assert!(pair[0].scheduled_for < pair[1].scheduled_for);
        }
        // The fires are the most recent ones: none was left out after the
        // last one returned.
        if let Some(newest) = due.last() {
            prop_assert!(schedule.next_after(newest.scheduled_for).is_none_or(|next| next > now));
        }
    }
}

/// Values for each cron field, mostly valid there, a few out of range or
/// malformed.
const SECONDS_OR_MINUTES: [&str; 12] = [
    "*", "0", "5", "30", "59", "*/5", "*/7", "0-30/10", "1,15", "60", "*/0", "5-1",
];
const HOURS: [&str; 9] = ["*", "0", "1", "2", "23", "*/2", "1-5", "0,12", "24"];
const DAYS: [&str; 13] = [
    "*", "1", "15", "29", "30", "31", "L", "15W", "LW", "?", "1-5", "0", "L-3",
];
const MONTHS: [&str; 7] = ["*", "1", "2", "12", "*/3", "1-5", "13"];
const WEEKDAYS: [&str; 12] = [
    "*", "0", "1", "5", "7", "5L", "1#2", "5#5", "MON-FRI", "?", "+1", "8",
];

fn pick(values: &'static [&'static str]) -> impl Strategy<Value = &'static str> + Clone {
    proptest::sample::select(values)
}

/// A 5-field pattern built from the lists above.
fn five_fields() -> impl Strategy<Value = String> {
    (
        pick(&SECONDS_OR_MINUTES),
        pick(&HOURS),
        pick(&DAYS),
        pick(&MONTHS),
        pick(&WEEKDAYS),
    )
        .prop_map(|(minutes, hours, days, months, weekdays)| {
            [minutes, hours, days, months, weekdays].join(" ")
        })
}

/// A pattern of 5 or 6 fields built from the lists above, or a macro-like
/// word.
fn hostile_pattern() -> impl Strategy<Value = String> {
    let six_fields = (pick(&SECONDS_OR_MINUTES), five_fields())
        .prop_map(|(seconds, fields)| format!("{seconds} {fields}"));
    prop_oneof![5 => five_fields(), 4 => six_fields, 1 => "@[a-zA-Z]{0,9}"]
}

/// A valid 5-field pattern built from the lists above.
fn generated_pattern() -> impl Strategy<Value = String> {
    five_fields().prop_filter("a valid pattern", |pattern| {
        CronSchedule::new(pattern, "UTC").is_ok()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    #[test]
    fn any_pattern_is_refused_or_searched_without_panicking(
        pattern in hostile_pattern(),
        zone in proptest::sample::select(ZONES.as_slice()),
        seconds in -2_000_000_000i64..4_000_000_000,
    ) {
        if let Ok(schedule) = CronSchedule::new(&pattern, zone) {
            let t = Timestamp::from_second(seconds).unwrap();
            if let Some(next) = schedule.next_after(t) {
                prop_assert!(next > t, "{}", pattern);
            }
            if let Some(previous) = schedule.previous_before(t) {
                prop_assert!(previous < t, "{}", pattern);
            }
        }
    }
}

fn schedule_rule(schedule: &Schedule) -> DstRule {
    match schedule {
        Schedule::Cron(cron) => cron.rule(),
        _ => DstRule::ElapsedTime,
    }
}
