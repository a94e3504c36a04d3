//! Conformance cases of backfills: records round-trip, listings are newest
//! first and filter by status, status changes are conditional, and the runs
//! of a pipeline are found by the end of their windows.

use std::sync::Arc;

use sluice_core::ids::{BackfillId, ExecutorId};
use sluice_core::status::RunStatus;

use super::fixtures::{at, create, new_run};
use crate::{
    BackfillRecord, BackfillStatus, BackfillStatusChange, Error, RunWindow, Store, WindowRunQuery,
};

fn backfill(id: &str, created: i64) -> BackfillRecord {
    BackfillRecord {
        id: BackfillId::from(id),
        pipeline: "etl".to_owned(),
        trigger: "hourly".to_owned(),
        from: at(3_600),
        to: at(36_000),
        reverse: true,
        max_concurrent: 2,
        rerun_completed: false,
        priority: -10,
        status: BackfillStatus::Running,
        created_at: at(created),
        created_by: "alice".to_owned(),
        changed_at: None,
        owner: Some(ExecutorId::from("cli-1")),
    }
}

fn change(id: &str, from: BackfillStatus, to: BackfillStatus) -> BackfillStatusChange {
    BackfillStatusChange {
        id: BackfillId::from(id),
        from,
        to,
        at: at(50),
    }
}

/// A backfill is stored once, read back whole, listed newest first (all or
/// by status), and changes status only from the expected one.
pub async fn backfills(store: Arc<dyn Store>) {
    let first = backfill("b1", 10);
    store.create_backfill(&first).await.unwrap();
    assert!(matches!(
        store.create_backfill(&first).await,
        Err(Error::Conflict(_))
    ));
    store.create_backfill(&backfill("b2", 20)).await.unwrap();
    assert_eq!(
        store.get_backfill(&first.id).await.unwrap(),
        Some(first.clone())
    );
    assert_eq!(store.get_backfill(&"nope".into()).await.unwrap(), None);

    let ids = |list: Vec<BackfillRecord>| -> Vec<String> {
        list.into_iter().map(|backfill| backfill.id.0).collect()
    };
    assert_eq!(
        ids(store.list_backfills(None, 10).await.unwrap()),
        ["b2", "b1"]
    );
    assert_eq!(ids(store.list_backfills(None, 1).await.unwrap()), ["b2"]);

    assert!(
        store
            .set_backfill_status(&change(
                "b1",
                BackfillStatus::Running,
                BackfillStatus::Paused
            ))
            .await
            .unwrap()
    );
    // A racing writer that expected `running` loses.
    assert!(
        !store
            .set_backfill_status(&change(
                "b1",
                BackfillStatus::Running,
                BackfillStatus::Completed
            ))
            .await
            .unwrap()
    );
    let paused = store.get_backfill(&first.id).await.unwrap().unwrap();
    assert_eq!(paused.status, BackfillStatus::Paused);
    assert_eq!(paused.changed_at, Some(at(50)));
    assert_eq!(
        ids(store
            .list_backfills(Some(BackfillStatus::Running), 10)
            .await
            .unwrap()),
        ["b2"]
    );
    assert_eq!(
        ids(store
            .list_backfills(Some(BackfillStatus::Paused), 10)
            .await
            .unwrap()),
        ["b1"]
    );
}

/// Runs of a pipeline are found by their window's end, within the range
/// (both ends inclusive), by window end; runs without a window, of other
/// pipelines or outside the range are not.
pub async fn window_runs(store: Arc<dyn Store>) {
    let windowed = |id: &str, pipeline: &str, end: i64| {
        let mut run = new_run(id, pipeline, &["a"]);
        run.window = Some(RunWindow {
            scheduled_for: at(end),
            window_start: at(end - 3_600),
            window_end: at(end),
        });
        run
    };
    create(&store, windowed("late", "etl", 7_200)).await;
    create(&store, windowed("early", "etl", 3_600)).await;
    create(&store, windowed("outside", "etl", 10_800)).await;
    create(&store, windowed("other", "load", 3_600)).await;
    create(&store, new_run("manual", "etl", &["a"])).await;

    let runs = store
        .list_window_runs(&WindowRunQuery {
            pipeline: "etl".to_owned(),
            from: at(3_600),
            to: at(7_200),
        })
        .await
        .unwrap();
    let found: Vec<&str> = runs.iter().map(|run| run.id.as_str()).collect();
    assert_eq!(found, ["early", "late"]);
    assert_eq!(runs[0].status, RunStatus::Initial);
    assert_eq!(runs[0].window.unwrap().window_start, at(0));
}
