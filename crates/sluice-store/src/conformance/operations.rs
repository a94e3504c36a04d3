//! Cases for duration history and baselines, resolved failures and
//! retention.

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_core::ids::RunId;
use sluice_core::status::{BlockRunStatus, RunStatus};

use super::fixtures::{at, block_id, claim_request, create, new_run, queue, success};
use crate::{
    BaselineRecord, DataRef, DurationHistoryQuery, DurationStats, ExpiredRunQuery, NewArtifact,
    NewAttempt, NewAuditEvent, NewBlockRun, ResolvingRun, RunBaseline, RunPurge, RunQuery,
    RunTransition, RunWindow, Store,
};

/// Two digests that stand for stored blobs.
const BLOB_A: &str = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
const BLOB_B: &str = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb";

/// How one fixture run goes: its blocks run one after the other, each for
/// its number of seconds, then the run ends with `status`.
struct Plan<'a> {
    id: &'a str,
    pipeline: &'a str,
    start: i64,
    blocks: &'a [(&'a str, i64)],
    status: RunStatus,
    window: Option<RunWindow>,
    /// The digest the first block's artifact and data output have.
    blob: Option<&'a str>,
}

impl<'a> Plan<'a> {
    fn new(id: &'a str, start: i64, blocks: &'a [(&'a str, i64)]) -> Self {
        Plan {
            id,
            pipeline: "etl",
            start,
            blocks,
            status: RunStatus::Completed,
            window: None,
            blob: None,
        }
    }
}

async fn transition(store: &Arc<dyn Store>, id: &RunId, attempt: u32, to: RunStatus, when: i64) {
    let from = if to == RunStatus::Running {
        RunStatus::Initial
    } else {
        RunStatus::Running
    };
    let applied = store
        .transition_run(&RunTransition {
            id: id.clone(),
            attempt,
            from,
            to,
            at: at(when),
            error: None,
            timeout_at: None,
            timed_out: false,
        })
        .await
        .unwrap();
    assert!(applied, "run `{id}` did not move to {to}");
}

/// Runs the plan's blocks through claims and completions (attempt 1).
async fn play(store: &Arc<dyn Store>, plan: Plan<'_>) -> RunId {
    let names: Vec<&str> = plan.blocks.iter().map(|(name, _)| *name).collect();
    let mut run = new_run(plan.id, plan.pipeline, &names);
    run.created_at = at(plan.start);
    run.window = plan.window;
    let id = create(store, run).await;
    transition(store, &id, 1, RunStatus::Running, plan.start).await;
    let mut now = plan.start;
    for (index, (block, seconds)) in plan.blocks.iter().enumerate() {
        queue(store, &block_id(plan.id, block), at(now)).await;
        let claim = store
            .claim(&claim_request("exec", at(now)))
            .await
            .unwrap()
            .expect("a claimable block run");
        now += seconds;
        let mut done = success(&claim, at(now));
        if let (0, Some(blob)) = (index, plan.blob) {
            done.artifacts.push(NewArtifact {
                name: "report.txt".to_owned(),
                size: 5,
                sha256: blob.to_owned(),
            });
            done.data = Some(DataRef {
                sha256: blob.to_owned(),
                format: "csv".to_owned(),
                size: 5,
            });
        }
        store.complete_try(&done).await.unwrap();
    }
    if plan.status != RunStatus::Running {
        transition(store, &id, 1, plan.status, now).await;
    }
    id
}

fn ids(runs: impl IntoIterator<Item = RunId>) -> Vec<String> {
    runs.into_iter().map(|id| id.0).collect()
}

pub async fn duration_history(store: Arc<dyn Store>) {
    play(&store, Plan::new("r1", 0, &[("a", 10), ("b", 20)])).await;
    play(&store, Plan::new("r2", 100, &[("a", 12), ("b", 30)])).await;
    let failed = Plan {
        status: RunStatus::Failed,
        ..Plan::new("r3", 200, &[("a", 5)])
    };
    play(&store, failed).await;
    play(&store, Plan::new("r4", 300, &[("a", 14), ("b", 40)])).await;
    let other = Plan {
        pipeline: "load",
        ..Plan::new("o1", 400, &[("a", 1)])
    };
    play(&store, other).await;

    let query = |limit, exclude: Option<&str>, before| DurationHistoryQuery {
        pipeline: "etl".to_owned(),
        finished_before: at(before),
        exclude: exclude.map(RunId::from),
        limit,
    };
    let history = store
        .duration_history(&query(2, None, 10_000))
        .await
        .unwrap();
    let found: Vec<&str> = history.iter().map(|run| run.run_id.as_str()).collect();
    assert_eq!(
        found,
        ["r4", "r2"],
        "completed runs of the pipeline, newest first"
    );
    assert_eq!(history[0].run_ms, 54_000);
    assert_eq!(
        history[0].blocks,
        [("a".to_owned(), 14_000), ("b".to_owned(), 40_000)]
    );

    let history = store
        .duration_history(&query(10, Some("r4"), 10_000))
        .await
        .unwrap();
    let found: Vec<&str> = history.iter().map(|run| run.run_id.as_str()).collect();
    assert_eq!(found, ["r2", "r1"]);
    let history = store.duration_history(&query(10, None, 130)).await.unwrap();
    let found: Vec<&str> = history.iter().map(|run| run.run_id.as_str()).collect();
    assert_eq!(found, ["r1"], "only runs finished by `finished_before`");
}

pub async fn baselines_and_slow_runs(store: Arc<dyn Store>) {
    let fast = play(&store, Plan::new("fast", 0, &[("a", 10)])).await;
    let slow = play(&store, Plan::new("slow", 100, &[("a", 90)])).await;
    let stats = DurationStats {
        samples: 5,
        median_ms: 10_000,
        p95_ms: 12_000,
    };
    let baseline = RunBaseline {
        run: stats,
        blocks: BTreeMap::from([("a".to_owned(), stats)]),
        factor: 1.5,
    };
    let record = |id: &RunId, attempt, slow| BaselineRecord {
        run_id: id.clone(),
        attempt,
        baseline: baseline.clone(),
        slow,
    };
    assert!(
        store
            .record_baseline(&record(&slow, 1, true))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_baseline(&record(&fast, 1, false))
            .await
            .unwrap()
    );
    assert!(
        !store
            .record_baseline(&record(&fast, 2, true))
            .await
            .unwrap(),
        "an attempt that is not the latest is not recorded"
    );

    let run = store.get_run(&slow).await.unwrap().unwrap();
    assert!(run.slow);
    assert_eq!(run.baseline.as_ref(), Some(&baseline));
    let run = store.get_run(&fast).await.unwrap().unwrap();
    assert!(!run.slow);

    let page = store
        .list_runs(&RunQuery {
            slow: true,
            limit: 10,
            ..RunQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(page.runs.into_iter().map(|run| run.id)), ["slow"]);
    let counts = store
        .count_runs_by_status(&RunQuery {
            slow: true,
            ..RunQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(counts, [(RunStatus::Completed, 1)]);
}

pub async fn resolved_failures(store: Arc<dyn Store>) {
    let window = |end: i64| RunWindow {
        scheduled_for: at(end),
        window_start: at(end - 3_600),
        window_end: at(end),
    };
    let failed = |id: &'static str, start, end| Plan {
        status: RunStatus::Failed,
        window: Some(window(end)),
        ..Plan::new(id, start, &[("a", 5)])
    };
    // A failure retried in place.
    let retried = play(&store, failed("retried", 0, 3_600)).await;
    // A failure whose window a later run completes.
    let covered = play(&store, failed("covered", 10, 7_200)).await;
    // A failure nothing covers.
    let open = play(&store, failed("open", 20, 10_800)).await;
    let other_pipeline = Plan {
        pipeline: "load",
        ..failed("load-1", 30, 7_200)
    };
    play(&store, other_pipeline).await;

    store
        .start_attempt(&NewAttempt {
            run_id: retried.clone(),
            previous_attempt: 1,
            mode: "all".to_owned(),
            from_block: None,
            created_by: Some("ops".to_owned()),
            at: at(100),
            owner: None,
            pipeline_version: "0".repeat(64),
            project_version: None,
            blocks: vec![NewBlockRun {
                id: crate::BlockRunId::from("retried.a.2"),
                ..super::fixtures::new_block("retried", "a")
            }],
        })
        .await
        .unwrap();
    transition(&store, &retried, 2, RunStatus::Running, 100).await;
    transition(&store, &retried, 2, RunStatus::Completed, 110).await;
    let marked = store
        .resolve_failures(&ResolvingRun {
            run_id: retried.clone(),
            attempt: 2,
            pipeline: "etl".to_owned(),
            window: Some(window(3_600)),
            at: at(110),
        })
        .await
        .unwrap();
    assert_eq!(ids(marked), ["retried"]);
    let run = store.get_run(&retried).await.unwrap().unwrap();
    let resolution = run.resolved.expect("resolved by its own retry");
    assert_eq!(
        (
            resolution.run_id.as_str(),
            resolution.attempt,
            resolution.at
        ),
        ("retried", 2, at(110))
    );

    let later = Plan {
        window: Some(window(7_200)),
        ..Plan::new("later", 200, &[("a", 5)])
    };
    let later = play(&store, later).await;
    let resolving = ResolvingRun {
        run_id: later.clone(),
        attempt: 1,
        pipeline: "etl".to_owned(),
        window: Some(window(7_200)),
        at: at(205),
    };
    let marked = store.resolve_failures(&resolving).await.unwrap();
    assert_eq!(ids(marked), ["covered"], "same pipeline and window only");
    let run = store.get_run(&covered).await.unwrap().unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.resolved.unwrap().run_id, later);
    assert!(
        store.resolve_failures(&resolving).await.unwrap().is_empty(),
        "a resolution is recorded once"
    );

    let page = store
        .list_runs(&RunQuery {
            unresolved: true,
            pipelines: vec!["etl".to_owned()],
            limit: 10,
            ..RunQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(ids(page.runs.into_iter().map(|run| run.id)), [open.0]);
}

pub async fn retention_purges(store: Arc<dyn Store>) {
    // Oldest first: four finished runs, one still running, then two
    // recent ones. `shared` uses the same blob as a run that is kept.
    let old_blob = Plan {
        blob: Some(BLOB_A),
        ..Plan::new("old-1", 0, &[("a", 5), ("b", 5)])
    };
    play(&store, old_blob).await;
    let failed = Plan {
        status: RunStatus::Failed,
        ..Plan::new("old-2", 100, &[("a", 5)])
    };
    play(&store, failed).await;
    let running = Plan {
        status: RunStatus::Running,
        ..Plan::new("old-running", 200, &[("a", 5)])
    };
    play(&store, running).await;
    let shared = Plan {
        blob: Some(BLOB_B),
        ..Plan::new("old-3", 300, &[("a", 5)])
    };
    play(&store, shared).await;
    play(&store, Plan::new("old-4", 400, &[("a", 5)])).await;
    let recent = Plan {
        blob: Some(BLOB_B),
        ..Plan::new("recent-1", 10_000, &[("a", 5)])
    };
    play(&store, recent).await;
    play(&store, Plan::new("recent-2", 10_100, &[("a", 5)])).await;
    let other = Plan {
        pipeline: "load",
        ..Plan::new("load-1", 0, &[("a", 5)])
    };
    play(&store, other).await;

    let query = |keep_last| ExpiredRunQuery {
        pipeline: "etl".to_owned(),
        created_before: at(5_000),
        keep_last,
        limit: 100,
    };
    let expired = store.expired_runs(&query(2)).await.unwrap();
    let found: Vec<&str> = expired.iter().map(|run| run.id.as_str()).collect();
    assert_eq!(
        found,
        ["old-1", "old-2", "old-3", "old-4"],
        "finished, old, not running"
    );
    let expired = store.expired_runs(&query(4)).await.unwrap();
    let found: Vec<&str> = expired.iter().map(|run| run.id.as_str()).collect();
    assert_eq!(found, ["old-1", "old-2"], "the latest 4 runs are kept");
    assert!(store.expired_runs(&query(100)).await.unwrap().is_empty());

    let purge = |id: &str| RunPurge {
        id: RunId::from(id),
        audit: NewAuditEvent {
            at: at(20_000),
            actor: "sluice:retention".to_owned(),
            action: "run.purge".to_owned(),
            target: id.to_owned(),
            details: serde_json::json!({"pipeline": "etl"}),
        },
    };
    let old = RunId::from("old-1");
    let tries = store.list_run_tries(&old).await.unwrap();
    assert_eq!(tries.len(), 2);
    assert!(store.blob_referenced(BLOB_A).await.unwrap());

    let purged = store.purge_run(&purge("old-1")).await.unwrap().unwrap();
    assert_eq!(purged.blobs, [BLOB_A]);
    assert_eq!(store.get_run(&old).await.unwrap(), None);
    assert!(store.list_attempts(&old).await.unwrap().is_empty());
    assert!(
        store
            .list_block_runs(&old, Some(1))
            .await
            .unwrap()
            .is_empty()
    );
    assert!(store.list_run_tries(&old).await.unwrap().is_empty());
    assert!(store.list_artifacts(&old).await.unwrap().is_empty());
    assert!(store.get_try(&tries[0].id).await.unwrap().is_none());
    assert!(!store.blob_referenced(BLOB_A).await.unwrap());
    assert_eq!(
        store.get_block_run(&block_id("old-1", "a")).await.unwrap(),
        None
    );
    let audit = store.list_audit(1, None).await.unwrap();
    assert_eq!(
        (audit[0].action.as_str(), audit[0].target.as_str()),
        ("run.purge", "old-1")
    );

    assert!(
        store
            .purge_run(&purge("old-running"))
            .await
            .unwrap()
            .is_none(),
        "a running run is never purged"
    );
    let running = store
        .get_run(&RunId::from("old-running"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(running.status, RunStatus::Running);
    assert_eq!(
        store
            .list_block_runs(&running.id, None)
            .await
            .unwrap()
            .iter()
            .map(|block_run| block_run.status)
            .collect::<Vec<_>>(),
        [BlockRunStatus::Completed]
    );
    assert!(store.purge_run(&purge("missing")).await.unwrap().is_none());

    let purged = store.purge_run(&purge("old-3")).await.unwrap().unwrap();
    assert_eq!(purged.blobs, [BLOB_B]);
    assert!(
        store.blob_referenced(BLOB_B).await.unwrap(),
        "`recent-1` still references it"
    );
    assert!(
        store
            .get_run(&RunId::from("load-1"))
            .await
            .unwrap()
            .is_some()
    );
}
