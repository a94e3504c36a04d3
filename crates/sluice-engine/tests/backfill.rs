//! Backfills stepped by hand with a manual clock, on a real SQLite file:
//! one run per window, never more active at once than the backfill allows,
//! windows that already completed are skipped, and pausing and cancelling
//! stop the creation of runs.

use std::path::Path;
use std::sync::Arc;

use jiff::Timestamp;
use sluice_core::ids::BackfillId;
use sluice_core::status::RunStatus;
use sluice_engine::sluice_store::{BackfillStatus, RunQuery, RunRecord, RunTransition};
use sluice_engine::{BackfillRequest, Engine, EngineConfig, ManualClock, Project, WindowState};
use sluice_store::blobs::BlobStore;
use sluice_store::sqlite::SqliteStore;

const HOURLY: &str =
    "priority: 5\nblocks:\n  only:\n    run: 'true'\ntriggers:\n  - name: hourly\n    every: 1h\n";

fn ts(text: &str) -> Timestamp {
    text.parse().expect("a timestamp")
}

struct World {
    _dir: tempfile::TempDir,
    engine: Engine,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
    std::fs::write(dir.path().join("pipelines/etl.yaml"), HOURLY).unwrap();
    let engine = engine_on(dir.path()).await;
    World { _dir: dir, engine }
}

async fn engine_on(dir: &Path) -> Engine {
    let project = Project::load(dir).unwrap();
    let store = SqliteStore::open(&dir.join(".sluice/sluice.db"))
        .await
        .unwrap();
    // A clock long after the backfilled range, and no schedules fired, so
    // every run in the ledger is a backfill's.
    let clock = Arc::new(ManualClock::new(ts("2026-06-01T00:00:00Z")));
    Engine::new(
        Arc::new(store),
        BlobStore::new(dir.join(".sluice/blobs")),
        project,
        clock,
        EngineConfig::for_project(dir),
    )
}

fn request(max_concurrent: u32) -> BackfillRequest {
    BackfillRequest {
        pipeline: "etl".to_owned(),
        trigger: None,
        from: ts("2026-01-01T01:00:00Z"),
        to: ts("2026-01-01T10:00:00Z"),
        reverse: false,
        max_concurrent: Some(max_concurrent),
        rerun_completed: false,
        priority: None,
        by: "alice".to_owned(),
        owner: None,
    }
}

/// Every run a backfill started, oldest window first.
async fn backfill_runs(engine: &Engine) -> Vec<RunRecord> {
    let page = engine
        .list_runs(&RunQuery {
            pipelines: vec!["etl".to_owned()],
            trigger_kinds: vec!["backfill".to_owned()],
            limit: 1000,
            ..RunQuery::default()
        })
        .await
        .unwrap();
    let mut runs = page.runs;
    runs.sort_by_key(|run| run.window.map(|window| window.window_end));
    runs
}

/// Ends a running run `completed`, as its blocks would.
async fn complete(engine: &Engine, run: &RunRecord) {
    let applied = engine
        .store()
        .transition_run(&RunTransition {
            id: run.id.clone(),
            attempt: run.attempt,
            from: RunStatus::Running,
            to: RunStatus::Completed,
            at: engine.clock().now(),
            error: None,
            timeout_at: None,
            timed_out: false,
        })
        .await
        .unwrap();
    assert!(applied, "run {} was not running", run.id);
}

async fn status(engine: &Engine, id: &BackfillId) -> BackfillStatus {
    engine.get_backfill(id).await.unwrap().backfill.status
}

#[tokio::test]
async fn a_backfill_runs_each_window_once_never_more_than_max_concurrent_at_once() {
    let world = world().await;
    let engine = &world.engine;
    let backfill = engine.create_backfill(request(2)).await.unwrap();
    assert_eq!(backfill.trigger, "hourly");
    // Fresh runs of the pipeline (priority 5) go before backfill runs.
    assert_eq!(backfill.priority, -5);

    let mut most_active = 0;
    let mut passes = 0;
    while status(engine, &backfill.id).await == BackfillStatus::Running {
        passes += 1;
        assert!(passes <= 50, "the backfill did not finish");
        engine.reconcile().await.unwrap();
        let runs = backfill_runs(engine).await;
        let active: Vec<&RunRecord> = runs
            .iter()
            .filter(|run| !run.status.is_terminal())
            .collect();
        assert!(active.len() <= 2, "{} runs active at once", active.len());
        most_active = most_active.max(active.len());
        // One run ends per pass, so the backfill must keep topping up.
        if let Some(run) = active.iter().find(|run| run.status == RunStatus::Running) {
            complete(engine, run).await;
        }
    }
    assert_eq!(
        status(engine, &backfill.id).await,
        BackfillStatus::Completed
    );
    assert_eq!(most_active, 2);

    let runs = backfill_runs(engine).await;
    assert_eq!(runs.len(), 10);
    for (hour, run) in runs.iter().enumerate() {
        let window = run.window.expect("a backfill run has a window");
        let end: Timestamp = format!("2026-01-01T{:02}:00:00Z", hour + 1)
            .parse()
            .unwrap();
        assert_eq!(window.window_end, end);
        assert_eq!(
            window.window_start,
            end - jiff::SignedDuration::from_hours(1)
        );
        assert_eq!(run.status, RunStatus::Completed);
        assert_eq!(run.priority, -5);
        assert_eq!(run.invoked_by.kind, "backfill");
        assert_eq!(run.invoked_by.name.as_deref(), Some("hourly"));
        assert_eq!(run.invoked_by.actor.as_deref(), Some("alice"));
        assert_eq!(
            run.idempotency_key.as_deref(),
            Some(format!("backfill:{}:{end}", backfill.id).as_str())
        );
    }

    // The same range again: every window has a completed run, so the
    // second backfill creates nothing and completes on its first pass.
    let plan = engine.plan_backfill(&request(2)).await.unwrap();
    assert_eq!(plan.len(), 10);
    assert!(
        plan.iter()
            .all(|window| matches!(window.state, WindowState::Skipped { .. }))
    );
    let again = engine.create_backfill(request(2)).await.unwrap();
    engine.reconcile().await.unwrap();
    assert_eq!(backfill_runs(engine).await.len(), 10);
    let view = engine.get_backfill(&again.id).await.unwrap();
    assert_eq!(view.backfill.status, BackfillStatus::Completed);
    assert!(
        view.windows
            .iter()
            .all(|window| matches!(window.state, WindowState::Skipped { .. }))
    );
    let listed = engine.list_backfills(10).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].id, again.id, "newest first");
}

#[tokio::test]
async fn a_paused_backfill_creates_no_runs_until_resumed_and_reverse_goes_newest_first() {
    let world = world().await;
    let engine = &world.engine;
    let backfill = engine
        .create_backfill(BackfillRequest {
            reverse: true,
            ..request(1)
        })
        .await
        .unwrap();
    engine.reconcile().await.unwrap();
    let runs = backfill_runs(engine).await;
    assert_eq!(runs.len(), 1);
    assert_eq!(
        runs[0].window.unwrap().window_end,
        ts("2026-01-01T10:00:00Z"),
        "reverse starts with the newest window"
    );

    engine.pause_backfill(&backfill.id, "bob").await.unwrap();
    assert!(engine.pause_backfill(&backfill.id, "bob").await.is_err());
    complete(engine, &runs[0]).await;
    engine.reconcile().await.unwrap();
    engine.reconcile().await.unwrap();
    assert_eq!(backfill_runs(engine).await.len(), 1);
    assert_eq!(status(engine, &backfill.id).await, BackfillStatus::Paused);

    engine.resume_backfill(&backfill.id, "bob").await.unwrap();
    engine.reconcile().await.unwrap();
    let runs = backfill_runs(engine).await;
    assert_eq!(runs.len(), 2);
    assert_eq!(
        runs[0].window.unwrap().window_end,
        ts("2026-01-01T09:00:00Z")
    );
}

#[tokio::test]
async fn a_cancelled_backfill_cancels_its_active_runs_and_creates_no_more() {
    let world = world().await;
    let engine = &world.engine;
    let backfill = engine.create_backfill(request(3)).await.unwrap();
    engine.reconcile().await.unwrap();
    assert_eq!(backfill_runs(engine).await.len(), 3);

    engine.cancel_backfill(&backfill.id, "bob").await.unwrap();
    for _ in 0..5 {
        engine.reconcile().await.unwrap();
    }
    let runs = backfill_runs(engine).await;
    assert_eq!(runs.len(), 3, "no run after the cancellation");
    assert!(
        runs.iter().all(|run| run.status == RunStatus::Cancelled),
        "{:?}",
        runs.iter().map(|run| run.status).collect::<Vec<_>>()
    );
    assert_eq!(
        status(engine, &backfill.id).await,
        BackfillStatus::Cancelled
    );
    assert!(engine.resume_backfill(&backfill.id, "bob").await.is_err());
}

#[tokio::test]
async fn a_backfill_request_is_checked_before_anything_is_written() {
    let world = world().await;
    let engine = &world.engine;
    let backwards = BackfillRequest {
        from: ts("2026-01-02T00:00:00Z"),
        ..request(1)
    };
    assert!(engine.create_backfill(backwards).await.is_err());
    let unknown = BackfillRequest {
        trigger: Some("nightly".to_owned()),
        ..request(1)
    };
    assert!(engine.create_backfill(unknown).await.is_err());
    assert!(engine.create_backfill(request(0)).await.is_err());
    assert!(engine.list_backfills(10).await.unwrap().is_empty());
}
