//! Windows and catch-up: which fires are due after downtime, under each
//! `catchup` policy, the cap, and `start`/`end`.

use super::*;

#[test]
fn each_fire_covers_the_window_since_the_previous_one() {
    // London, daily at 01:30: the fire of 29 March falls back to the
    // transition, so the windows around it are 23.5 and 23.5 hours long.
    let schedule = cron("30 1 * * *", "Europe/London");
    let fires: Vec<Fire> = schedule
        .fires_between(at("2026-03-28T00:00:00Z"), at("2026-03-31T00:00:00Z"))
        .collect();
    let windows: Vec<(String, String)> = fires
        .iter()
        .map(|fire| {
            assert_eq!(fire.window_end, fire.scheduled_for);
            (
                local(fire.window_start, "Europe/London"),
                local(fire.window_end, "Europe/London"),
            )
        })
        .collect();
    assert_eq!(
        windows,
        [
            (
                "2026-03-27T01:30:00+00:00".to_owned(),
                "2026-03-28T01:30:00+00:00".to_owned()
            ),
            (
                "2026-03-28T01:30:00+00:00".to_owned(),
                "2026-03-29T02:00:00+01:00".to_owned()
            ),
            (
                "2026-03-29T02:00:00+01:00".to_owned(),
                "2026-03-30T01:30:00+01:00".to_owned()
            ),
        ]
    );
    assert_eq!(schedule.fire_at(fires[2].scheduled_for), fires[2]);
}

fn hourly() -> Schedule {
    cron("0 * * * *", "UTC")
}

fn query(last_fired: Option<&str>, now: &str, catchup: Catchup) -> DueQuery {
    DueQuery {
        last_fired: last_fired.map(at),
        now: at(now),
        catchup,
        max_catchup: 100,
        start: None,
        end: None,
    }
}

fn scheduled(fires: &[Fire]) -> Vec<String> {
    fires
        .iter()
        .map(|fire| fire.scheduled_for.to_string())
        .collect()
}

#[test]
fn catchup_all_creates_every_missed_fire_with_chained_windows() {
    let due = hourly().due_fires(&query(
        Some("2026-05-01T10:00:00Z"),
        "2026-05-01T15:20:00Z",
        Catchup::All,
    ));
    assert_eq!(
        scheduled(&due),
        [
            "2026-05-01T11:00:00Z",
            "2026-05-01T12:00:00Z",
            "2026-05-01T13:00:00Z",
            "2026-05-01T14:00:00Z",
            "2026-05-01T15:00:00Z",
        ]
    );
    assert_eq!(due[0].window_start, at("2026-05-01T10:00:00Z"));
    for pair in due.windows(2) {
        assert_eq!(pair[1].window_start, pair[0].scheduled_for);
    }
}

#[test]
fn catchup_all_keeps_the_most_recent_fires_up_to_the_cap() {
    let mut capped = query(
        Some("2026-04-01T00:00:00Z"),
        "2026-05-01T15:20:00Z",
        Catchup::All,
    );
    capped.max_catchup = 3;
    let due = hourly().due_fires(&capped);
    assert_eq!(
        scheduled(&due),
        [
            "2026-05-01T13:00:00Z",
            "2026-05-01T14:00:00Z",
            "2026-05-01T15:00:00Z"
        ]
    );
    // The first fire kept still covers its own window, not the gap.
    assert_eq!(due[0].window_start, at("2026-05-01T12:00:00Z"));
    // The default cap is 100, even after a month of downtime.
    capped.max_catchup = sluice_core::schedule::DEFAULT_MAX_CATCHUP;
    assert_eq!(hourly().due_fires(&capped).len(), 100);
}

#[test]
fn catchup_latest_creates_one_run_for_the_most_recent_fire() {
    let due = hourly().due_fires(&query(
        Some("2026-05-01T10:00:00Z"),
        "2026-05-01T15:20:00Z",
        Catchup::Latest,
    ));
    assert_eq!(scheduled(&due), ["2026-05-01T15:00:00Z"]);
    assert_eq!(due[0].window_start, at("2026-05-01T14:00:00Z"));
}

#[test]
fn catchup_none_creates_only_a_fire_that_is_on_time() {
    let late = query(
        Some("2026-05-01T10:00:00Z"),
        "2026-05-01T15:20:00Z",
        Catchup::None,
    );
    assert!(hourly().due_fires(&late).is_empty());
    let on_time = query(
        Some("2026-05-01T10:00:00Z"),
        "2026-05-01T15:00:30Z",
        Catchup::None,
    );
    assert_eq!(
        scheduled(&hourly().due_fires(&on_time)),
        ["2026-05-01T15:00:00Z"]
    );
    let threshold = at("2026-05-01T15:00:00Z")
        .checked_add(MISFIRE_THRESHOLD)
        .unwrap()
        .to_string();
    let at_threshold = query(Some("2026-05-01T14:00:00Z"), &threshold, Catchup::None);
    assert_eq!(hourly().due_fires(&at_threshold).len(), 1);
}

#[test]
fn nothing_is_due_twice() {
    for catchup in [Catchup::None, Catchup::Latest, Catchup::All] {
        let fired = query(
            Some("2026-05-01T15:00:00Z"),
            "2026-05-01T15:00:10Z",
            catchup,
        );
        assert!(hourly().due_fires(&fired).is_empty(), "{catchup:?}");
        // A clock that went back does not bring old fires back.
        let earlier = query(
            Some("2026-05-01T15:00:00Z"),
            "2026-05-01T14:30:00Z",
            catchup,
        );
        assert!(hourly().due_fires(&earlier).is_empty(), "{catchup:?}");
    }
}

#[test]
fn a_trigger_that_never_fired_starts_at_its_next_fire_or_its_start() {
    for catchup in [Catchup::None, Catchup::Latest, Catchup::All] {
        let late = query(None, "2026-05-01T15:20:00Z", catchup);
        assert!(hourly().due_fires(&late).is_empty(), "{catchup:?}");
        let on_time = query(None, "2026-05-01T15:00:05Z", catchup);
        assert_eq!(
            scheduled(&hourly().due_fires(&on_time)),
            ["2026-05-01T15:00:00Z"],
            "{catchup:?}"
        );
    }
    let mut started = query(None, "2026-05-01T15:20:00Z", Catchup::All);
    started.start = Some(at("2026-05-01T12:00:00Z"));
    let due = hourly().due_fires(&started);
    assert_eq!(
        scheduled(&due),
        [
            "2026-05-01T12:00:00Z",
            "2026-05-01T13:00:00Z",
            "2026-05-01T14:00:00Z",
            "2026-05-01T15:00:00Z",
        ]
    );
    // The window of the first fire reaches back before `start`.
    assert_eq!(due[0].window_start, at("2026-05-01T11:00:00Z"));
}

#[test]
fn start_and_end_bound_the_fires() {
    let mut bounded = query(
        Some("2026-05-01T10:00:00Z"),
        "2026-05-01T15:20:00Z",
        Catchup::All,
    );
    bounded.end = Some(at("2026-05-01T13:30:00Z"));
    assert_eq!(
        scheduled(&hourly().due_fires(&bounded)),
        [
            "2026-05-01T11:00:00Z",
            "2026-05-01T12:00:00Z",
            "2026-05-01T13:00:00Z"
        ]
    );
    assert_eq!(hourly().next_due_at(&bounded), None);
    bounded.catchup = Catchup::Latest;
    assert_eq!(
        scheduled(&hourly().due_fires(&bounded)),
        ["2026-05-01T13:00:00Z"]
    );
    // An end that falls on a fire includes it.
    bounded.end = Some(at("2026-05-01T13:00:00Z"));
    assert_eq!(
        scheduled(&hourly().due_fires(&bounded)),
        ["2026-05-01T13:00:00Z"]
    );

    let mut later = query(None, "2026-05-01T15:20:00Z", Catchup::Latest);
    later.start = Some(at("2026-06-01T00:30:00Z"));
    assert!(hourly().due_fires(&later).is_empty());
    assert_eq!(
        hourly().next_due_at(&later),
        Some(at("2026-06-01T01:00:00Z"))
    );
    later.start = None;
    assert_eq!(
        hourly().next_due_at(&later),
        Some(at("2026-05-01T16:00:00Z"))
    );
}

#[test]
fn a_late_once_trigger_is_caught_up_unless_catchup_is_none() {
    let once = Schedule::Once(at("2026-05-01T10:00:00Z"));
    for (catchup, expected) in [(Catchup::None, 0), (Catchup::Latest, 1), (Catchup::All, 1)] {
        let due = once.due_fires(&query(None, "2026-05-01T12:00:00Z", catchup));
        assert_eq!(due.len(), expected, "{catchup:?}");
        let after = once.due_fires(&query(
            Some("2026-05-01T10:00:00Z"),
            "2026-05-01T12:00:00Z",
            catchup,
        ));
        assert!(after.is_empty(), "{catchup:?}");
    }
    assert!(
        once.due_fires(&query(None, "2026-05-01T09:59:59Z", Catchup::All))
            .is_empty()
    );
}

#[test]
fn a_parsed_pipeline_gives_schedules_and_due_queries() {
    let source = r#"
blocks:
  load:
    run: echo load
triggers:
  - name: nightly
    schedule: "30 2 * * *"
    timezone: America/New_York
    catchup: all
    max_catchup: 2
    start: 2026-03-01T00:00:00Z
  - name: hook
    webhook: {secret_env: HOOK_SECRET}
"#;
    let pipeline =
        sluice_core::spec::parse_pipeline("load", "pipelines/load.yaml", source).unwrap();
    let nightly = pipeline.trigger("nightly").unwrap();
    let schedule = Schedule::from_kind(&nightly.kind).unwrap().unwrap();
    let query = DueQuery::for_trigger(
        nightly,
        Some(at("2026-03-05T07:30:00Z")),
        at("2026-03-09T12:00:00Z"),
    );
    let due: Vec<String> = schedule
        .due_fires(&query)
        .iter()
        .map(|fire| local(fire.scheduled_for, "America/New_York"))
        .collect();
    // The cap keeps the two most recent of four missed days; 8 March fired
    // at the transition.
    assert_eq!(
        due,
        ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]
    );
    let hook = pipeline.trigger("hook").unwrap();
    assert!(Schedule::from_kind(&hook.kind).unwrap().is_none());
}
