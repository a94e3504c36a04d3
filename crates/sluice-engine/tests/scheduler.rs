//! The scheduler reconciler stepped by hand with a manual clock, on a real
//! SQLite file: one run per trigger and fire across a crash in the middle
//! of firing, two engines on one database and a restart; catch-up after a
//! downtime; `always_on`, `once`, paused triggers, trigger overrides, and a
//! daylight-saving day end to end.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use sluice_core::status::RunStatus;
use sluice_core::vars::VariableLayer;
use sluice_engine::sluice_store::{InvokedBy, RunQuery, RunRecord, RunWindow};
use sluice_engine::{Engine, EngineConfig, ManualClock, Project, TriggerRequest};
use sluice_store::blobs::BlobStore;
use sluice_store::sqlite::SqliteStore;

struct World {
    dir: tempfile::TempDir,
    engine: Engine,
    clock: Arc<ManualClock>,
}

fn ts(text: &str) -> Timestamp {
    text.parse().expect("a timestamp")
}

/// An engine on the project's database file that fires schedules.
async fn engine_on(dir: &Path, clock: Arc<ManualClock>) -> Engine {
    let project = Project::load(dir).unwrap();
    let store = SqliteStore::open(&dir.join(".sluice/sluice.db"))
        .await
        .unwrap();
    let mut config = EngineConfig::for_project(dir);
    config.fire_schedules = true;
    Engine::new(
        Arc::new(store),
        BlobStore::new(dir.join(".sluice/blobs")),
        project,
        clock,
        config,
    )
}

async fn world(yaml: &str, now: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
    std::fs::write(dir.path().join("pipelines/etl.yaml"), yaml).unwrap();
    let clock = Arc::new(ManualClock::new(ts(now)));
    let engine = engine_on(dir.path(), clock.clone()).await;
    World { dir, engine, clock }
}

/// The runs of `etl` started by `trigger`, oldest fire first.
async fn runs_of(engine: &Engine, trigger: &str) -> Vec<RunRecord> {
    let page = engine
        .list_runs(&RunQuery {
            pipelines: vec!["etl".to_owned()],
            limit: 1000,
            ..RunQuery::default()
        })
        .await
        .unwrap();
    let mut runs: Vec<RunRecord> = page
        .runs
        .into_iter()
        .filter(|run| run.invoked_by.name.as_deref() == Some(trigger))
        .collect();
    runs.sort_by_key(|run| run.window.map(|window| window.scheduled_for));
    runs
}

fn fire_times(runs: &[RunRecord]) -> Vec<Timestamp> {
    runs.iter()
        .map(|run| {
            run.window
                .expect("a scheduled run has a window")
                .scheduled_for
        })
        .collect()
}

const HOURLY: &str =
    "blocks:\n  only:\n    run: 'true'\ntriggers:\n  - name: hourly\n    every: 1h\n";

#[tokio::test]
async fn a_due_fire_creates_one_run_with_its_window() {
    let world = world(HOURLY, "2026-01-01T00:00:00Z").await;
    world.engine.reconcile().await.unwrap();
    world.engine.reconcile().await.unwrap();
    let runs = runs_of(&world.engine, "hourly").await;
    assert_eq!(runs.len(), 1);
    let run = &runs[0];
    assert_eq!(
        run.invoked_by,
        InvokedBy {
            kind: "schedule".to_owned(),
            name: Some("hourly".to_owned()),
            actor: Some("sluice:scheduler".to_owned()),
            parent_run_id: None,
        }
    );
    assert_eq!(
        run.window,
        Some(RunWindow {
            scheduled_for: ts("2026-01-01T00:00:00Z"),
            window_start: ts("2025-12-31T23:00:00Z"),
            window_end: ts("2026-01-01T00:00:00Z"),
        })
    );
    assert_eq!(
        run.idempotency_key.as_deref(),
        Some("schedule:hourly:2026-01-01T00:00:00Z")
    );

    // Nothing is due before the next fire; the next one covers the hour
    // since the first.
    world.clock.advance(Duration::from_secs(30 * 60));
    world.engine.reconcile().await.unwrap();
    assert_eq!(runs_of(&world.engine, "hourly").await.len(), 1);
    world.clock.set(ts("2026-01-01T01:00:10Z"));
    world.engine.reconcile().await.unwrap();
    let runs = runs_of(&world.engine, "hourly").await;
    assert_eq!(
        fire_times(&runs),
        [ts("2026-01-01T00:00:00Z"), ts("2026-01-01T01:00:00Z")]
    );
    assert_eq!(
        runs[1].window.unwrap().window_start,
        ts("2026-01-01T00:00:00Z")
    );

    let state = world
        .engine
        .store()
        .get_trigger_state("etl", "hourly")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.last_fired_at, Some(ts("2026-01-01T01:00:00Z")));
    assert_eq!(state.last_run_id, Some(runs[1].id.clone()));
}

/// The scheduler died after creating the run of a fire and before recording
/// the fire: the next pass finds the run, creates no second one, and
/// records the fire.
#[tokio::test]
async fn a_crash_between_creating_the_run_and_recording_the_fire_creates_no_second_run() {
    let world = world(HOURLY, "2026-01-01T00:00:20Z").await;
    // The run the crashed pass created, under the key the scheduler uses.
    let request = TriggerRequest {
        pipeline: "etl".to_owned(),
        variables: BTreeMap::new(),
        trigger_variables: BTreeMap::new(),
        priority: None,
        invoked_by: InvokedBy {
            kind: "schedule".to_owned(),
            name: Some("hourly".to_owned()),
            actor: Some("sluice:scheduler".to_owned()),
            parent_run_id: None,
        },
        idempotency_key: Some("schedule:hourly:2026-01-01T00:00:00Z".to_owned()),
        owner: None,
    };
    let first = world.engine.trigger_run(request.clone()).await.unwrap();
    assert_eq!(
        world
            .engine
            .store()
            .get_trigger_state("etl", "hourly")
            .await
            .unwrap(),
        None,
        "the crash came before the fire was recorded"
    );

    world.engine.reconcile().await.unwrap();
    let runs = world
        .engine
        .list_runs(&RunQuery {
            limit: 100,
            ..RunQuery::default()
        })
        .await
        .unwrap()
        .runs;
    assert_eq!(runs.len(), 1, "one run for the fire");
    assert_eq!(runs[0].id, first);
    let state = world
        .engine
        .store()
        .get_trigger_state("etl", "hourly")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(state.last_fired_at, Some(ts("2026-01-01T00:00:00Z")));
    assert_eq!(state.last_run_id, Some(first.clone()));

    // And creating it again by the same key still finds the same run.
    assert_eq!(world.engine.trigger_run(request).await.unwrap(), first);
}

/// Two servers on one database fire the same due fires at once, then the
/// process restarts: every fire has exactly one run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_engines_on_one_database_and_a_restart_create_one_run_per_fire() {
    let yaml = "blocks:\n  only:\n    run: 'true'\ntriggers:\n  - name: hourly\n    every: 1h\n    start: 2026-01-01T00:00:00Z\n    catchup: all\n";
    let world = world(yaml, "2026-01-01T23:30:00Z").await;
    let second = engine_on(world.dir.path(), world.clock.clone()).await;
    for _ in 0..3 {
        let (left, right) = tokio::join!(world.engine.fire_schedules(), second.fire_schedules());
        left.unwrap();
        right.unwrap();
    }
    let runs = runs_of(&world.engine, "hourly").await;
    assert_eq!(runs.len(), 24, "00:00 to 23:00, one run each");
    let mut times = fire_times(&runs);
    times.dedup();
    assert_eq!(times.len(), 24);

    // A restart: a new engine on the same file re-reads the last fire.
    drop(second);
    let restarted = engine_on(world.dir.path(), world.clock.clone()).await;
    restarted.reconcile().await.unwrap();
    assert_eq!(runs_of(&restarted, "hourly").await.len(), 24);
    world.clock.set(ts("2026-01-02T00:00:05Z"));
    let (left, right) = tokio::join!(restarted.fire_schedules(), world.engine.fire_schedules());
    assert_eq!(left.unwrap() + right.unwrap(), 1, "one of them creates it");
    assert_eq!(runs_of(&restarted, "hourly").await.len(), 25);
}

#[tokio::test]
async fn catch_up_after_a_downtime_follows_each_policy_and_its_cap() {
    let yaml = "blocks:\n  only:\n    run: 'true'\ntriggers:\n\
        \x20 - {name: none, every: 1h, catchup: none}\n\
        \x20 - {name: latest, every: 1h, catchup: latest}\n\
        \x20 - {name: all, every: 1h, catchup: all, max_catchup: 3}\n";
    let world = world(yaml, "2026-01-01T00:00:00Z").await;
    world.engine.reconcile().await.unwrap();
    for trigger in ["none", "latest", "all"] {
        assert_eq!(runs_of(&world.engine, trigger).await.len(), 1, "{trigger}");
    }

    // Down from 00:00 to 05:30: 01:00 to 05:00 were missed.
    world.clock.set(ts("2026-01-01T05:30:00Z"));
    world.engine.reconcile().await.unwrap();
    world.engine.reconcile().await.unwrap();
    assert_eq!(
        fire_times(&runs_of(&world.engine, "none").await),
        [ts("2026-01-01T00:00:00Z")]
    );
    assert_eq!(
        fire_times(&runs_of(&world.engine, "latest").await),
        [ts("2026-01-01T00:00:00Z"), ts("2026-01-01T05:00:00Z")]
    );
    let all = runs_of(&world.engine, "all").await;
    assert_eq!(
        fire_times(&all),
        [
            ts("2026-01-01T00:00:00Z"),
            ts("2026-01-01T03:00:00Z"),
            ts("2026-01-01T04:00:00Z"),
            ts("2026-01-01T05:00:00Z"),
        ]
    );
    // A caught-up run covers its own window, not the gap before it.
    assert_eq!(
        all[1].window.unwrap().window_start,
        ts("2026-01-01T02:00:00Z")
    );
    // `latest` likewise covers the one hour before its fire.
    assert_eq!(
        runs_of(&world.engine, "latest").await[1]
            .window
            .unwrap()
            .window_start,
        ts("2026-01-01T04:00:00Z")
    );

    // Back on time: every policy fires the next one.
    world.clock.set(ts("2026-01-01T06:00:30Z"));
    world.engine.reconcile().await.unwrap();
    assert_eq!(runs_of(&world.engine, "none").await.len(), 2);
    assert_eq!(runs_of(&world.engine, "latest").await.len(), 3);
    assert_eq!(runs_of(&world.engine, "all").await.len(), 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn always_on_starts_the_next_run_after_the_last_ended_and_never_overlaps() {
    let yaml = "blocks:\n  only:\n    run: 'true'\ntriggers:\n  - name: consumer\n    always_on: true\n    min_gap: 30s\n";
    let world = world(yaml, "2026-01-01T00:00:00Z").await;
    let second = engine_on(world.dir.path(), world.clock.clone()).await;
    let (left, right) = tokio::join!(world.engine.fire_schedules(), second.fire_schedules());
    assert_eq!(left.unwrap() + right.unwrap(), 1);
    world.engine.reconcile().await.unwrap();
    let runs = runs_of(&world.engine, "consumer").await;
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].window, None);

    // While it is going, nothing else starts, however long it takes.
    world.clock.advance(Duration::from_secs(3600));
    world.engine.reconcile().await.unwrap();
    assert_eq!(runs_of(&world.engine, "consumer").await.len(), 1);

    // It ends; the next waits for `min_gap`.
    world.engine.cancel_run(&runs[0].id, "test").await.unwrap();
    world.engine.reconcile().await.unwrap();
    world.clock.advance(Duration::from_secs(29));
    world.engine.reconcile().await.unwrap();
    assert_eq!(runs_of(&world.engine, "consumer").await.len(), 1);
    world.clock.advance(Duration::from_secs(1));
    let (left, right) = tokio::join!(world.engine.fire_schedules(), second.fire_schedules());
    assert_eq!(left.unwrap() + right.unwrap(), 1);
    world.engine.reconcile().await.unwrap();
    let runs = runs_of(&world.engine, "consumer").await;
    assert_eq!(runs.len(), 2);
    let active = runs.iter().filter(|run| !run.status.is_terminal()).count();
    assert_eq!(active, 1, "never two at once");
}

#[tokio::test]
async fn once_fires_once() {
    let yaml = "blocks:\n  only:\n    run: 'true'\ntriggers:\n  - name: launch\n    once: 2026-01-01T00:00:30Z\n";
    let world = world(yaml, "2026-01-01T00:00:00Z").await;
    world.engine.reconcile().await.unwrap();
    assert!(runs_of(&world.engine, "launch").await.is_empty());
    world.clock.advance(Duration::from_secs(45));
    world.engine.reconcile().await.unwrap();
    world.clock.advance(Duration::from_secs(86_400));
    world.engine.reconcile().await.unwrap();
    let runs = runs_of(&world.engine, "launch").await;
    assert_eq!(runs.len(), 1);
    let at = ts("2026-01-01T00:00:30Z");
    assert_eq!(
        runs[0].window,
        Some(RunWindow {
            scheduled_for: at,
            window_start: at,
            window_end: at,
        })
    );
}

#[tokio::test]
async fn a_paused_trigger_does_not_fire_until_it_is_resumed() {
    let world = world(HOURLY, "2026-01-01T00:00:00Z").await;
    let paused = world
        .engine
        .pause_trigger("etl", "hourly", "alice")
        .await
        .unwrap();
    assert!(paused.paused);
    assert_eq!(paused.paused_by.as_deref(), Some("alice"));
    assert!(paused.next_fires.is_empty());
    world.engine.reconcile().await.unwrap();
    world.clock.set(ts("2026-01-01T02:00:00Z"));
    world.engine.reconcile().await.unwrap();
    assert!(runs_of(&world.engine, "hourly").await.is_empty());

    let resumed = world
        .engine
        .resume_trigger("etl", "hourly", "alice")
        .await
        .unwrap();
    assert!(!resumed.paused);
    world.engine.reconcile().await.unwrap();
    assert_eq!(
        fire_times(&runs_of(&world.engine, "hourly").await),
        [ts("2026-01-01T02:00:00Z")]
    );

    let audit = world.engine.store().list_audit(10, None).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|event| event.action.as_str()).collect();
    assert!(actions.contains(&"trigger.pause"), "{actions:?}");
    assert!(actions.contains(&"trigger.resume"), "{actions:?}");

    let unknown = world
        .engine
        .pause_trigger("etl", "nightly", "alice")
        .await
        .unwrap_err();
    assert!(
        unknown.to_string().contains("no trigger named `nightly`"),
        "{unknown}"
    );
}

/// The clock jumps from 02:00 EST to 03:00 EDT on 8 March 2026: the fixed
/// time 02:30 runs at the transition, once, and the windows follow the
/// real fires.
#[tokio::test]
async fn a_daylight_saving_day_fires_the_skipped_time_at_the_transition() {
    let yaml = "blocks:\n  only:\n    run: 'true'\ntriggers:\n  - name: nightly\n    schedule: '30 2 * * *'\n    timezone: America/New_York\n";
    // 02:30 EST on 7 March.
    let world = world(yaml, "2026-03-07T07:30:00Z").await;
    world.engine.reconcile().await.unwrap();
    let upcoming = world.engine.upcoming_fires(2).await.unwrap();
    let times: Vec<Timestamp> = upcoming
        .iter()
        .map(|fire| fire.window.scheduled_for)
        .collect();
    assert_eq!(
        times,
        [ts("2026-03-08T07:00:00Z"), ts("2026-03-09T06:30:00Z")],
        "03:00 EDT (the transition), then 02:30 EDT"
    );

    for now in [
        "2026-03-08T06:59:00Z",
        "2026-03-08T07:00:20Z",
        "2026-03-08T08:00:00Z",
        "2026-03-09T06:30:05Z",
    ] {
        world.clock.set(ts(now));
        world.engine.reconcile().await.unwrap();
    }
    let runs = runs_of(&world.engine, "nightly").await;
    assert_eq!(
        fire_times(&runs),
        [
            ts("2026-03-07T07:30:00Z"),
            ts("2026-03-08T07:00:00Z"),
            ts("2026-03-09T06:30:00Z"),
        ]
    );
    assert_eq!(
        runs[1].window.unwrap().window_start,
        ts("2026-03-07T07:30:00Z")
    );
    assert_eq!(
        runs[2].window.unwrap().window_start,
        ts("2026-03-08T07:00:00Z")
    );
}

/// Trigger variables are the `trigger` layer, and the trigger's SLA and
/// timeout replace the pipeline's.
#[tokio::test]
async fn trigger_settings_override_the_pipeline_for_its_runs() {
    let yaml = "variables:\n  region: {default: us}\nsla: 1h\ntimeout: 2h\nblocks:\n  only:\n    run: 'true'\n\
        triggers:\n  - name: hourly\n    every: 1h\n    variables: {region: emea}\n    sla: 5m\n    timeout: 10m\n";
    let world = world(yaml, "2026-01-01T00:00:00Z").await;
    world.engine.reconcile().await.unwrap();
    let run = runs_of(&world.engine, "hourly").await.remove(0);
    let region = run.variables.0.get("region").expect("region is resolved");
    assert_eq!(region.value, serde_json::json!("emea"));
    assert_eq!(region.layer, VariableLayer::Trigger);
    assert_eq!(run.sla_at, Some(ts("2026-01-01T00:05:00Z")));
    // Admitted in the same pass: its timeout is the trigger's.
    let run = world.engine.get_run(&run.id).await.unwrap();
    assert_eq!(run.status, RunStatus::Running);
    assert_eq!(run.timeout_at, Some(ts("2026-01-01T00:10:00Z")));
}

/// Without `fire_schedules` (a `sluice run` process), reconciling never
/// starts scheduled runs.
#[tokio::test]
async fn an_engine_that_does_not_fire_schedules_creates_no_runs() {
    let world = world(HOURLY, "2026-01-01T00:00:00Z").await;
    let project = Project::load(world.dir.path()).unwrap();
    let store = SqliteStore::open(&world.dir.path().join(".sluice/sluice.db"))
        .await
        .unwrap();
    let quiet = Engine::new(
        Arc::new(store),
        BlobStore::new(world.dir.path().join(".sluice/blobs")),
        project,
        world.clock.clone(),
        EngineConfig::for_project(world.dir.path()),
    );
    quiet.reconcile().await.unwrap();
    assert!(runs_of(&quiet, "hourly").await.is_empty());
}

/// A fire whose run cannot be made (a required variable nobody sets) is
/// skipped and audited once, not retried on every pass.
#[tokio::test]
async fn a_fire_that_cannot_create_its_run_is_audited_and_not_repeated() {
    let yaml = "variables:\n  day: {required: true}\nblocks:\n  only:\n    run: 'true'\ntriggers:\n\
        \x20 - {name: hourly, every: 1h}\n\
        \x20 - {name: consumer, always_on: true}\n";
    let world = world(yaml, "2026-01-01T00:00:00Z").await;
    let failures = |engine: Engine| async move {
        engine
            .store()
            .list_audit(100, None)
            .await
            .unwrap()
            .into_iter()
            .filter(|event| event.action == "trigger.fire_failed")
            .map(|event| event.target)
            .collect::<Vec<_>>()
    };
    for _ in 0..3 {
        world.engine.reconcile().await.unwrap();
    }
    let mut failed = failures(world.engine.clone()).await;
    failed.sort();
    assert_eq!(failed, ["etl/consumer", "etl/hourly"]);
    assert!(runs_of(&world.engine, "hourly").await.is_empty());

    // The `always_on` trigger tries again after a pause, not at once.
    world.clock.advance(Duration::from_secs(61));
    world.engine.reconcile().await.unwrap();
    world.engine.reconcile().await.unwrap();
    assert_eq!(failures(world.engine.clone()).await.len(), 3);
}
