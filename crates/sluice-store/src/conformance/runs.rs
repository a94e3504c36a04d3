//! Conformance cases for runs, attempts and block-run status changes.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use sluice_core::ids::{ExecutorId, RunId};
use sluice_core::status::{BlockRunStatus, RunStatus};
use sluice_core::vars::{ResolvedVariable, ResolvedVariables, VariableLayer};

use super::fixtures::{at, block_id, create, labels, move_block, move_run, new_block, new_run};
use crate::{
    AttemptRecord, BlockRunRecord, BlockRunTransition, DataRef, Error, InvokedBy, NewAttempt,
    NewRun, Order, RunFlag, RunQuery, RunRecord, RunTransition, RunWindow, Store,
};

/// A run comes back exactly as it was created, with its first attempt and
/// its block runs in creation order; pipeline versions round-trip too.
pub async fn create_and_get_run(store: Arc<dyn Store>) {
    let sha = "ab".repeat(32);
    store
        .put_pipeline_version(&sha, "etl", "blocks: {}\n")
        .await
        .unwrap();
    store
        .put_pipeline_version(&sha, "etl", "ignored\n")
        .await
        .unwrap();
    assert_eq!(
        store.get_pipeline_version(&sha).await.unwrap().as_deref(),
        Some("blocks: {}\n")
    );
    assert_eq!(
        store.get_pipeline_version(&"cd".repeat(32)).await.unwrap(),
        None
    );

    let mut run = new_run("run-1", "etl", &["extract", "load"]);
    run.pipeline_version = sha.clone();
    run.priority = 7;
    run.invoked_by = InvokedBy {
        kind: "schedule".to_owned(),
        name: Some("nightly".to_owned()),
        actor: Some("scheduler".to_owned()),
        parent_run_id: Some(RunId::from("parent-1")),
    };
    run.tags = vec!["daily".to_owned(), "finance".to_owned()];
    let variable = |value: serde_json::Value, layer, secret| ResolvedVariable {
        value,
        layer,
        secret,
    };
    run.variables = ResolvedVariables(BTreeMap::from([
        (
            "day".to_owned(),
            variable(
                serde_json::json!("2024-01-01"),
                VariableLayer::Trigger,
                false,
            ),
        ),
        (
            "limit".to_owned(),
            variable(serde_json::json!(1000), VariableLayer::Default, false),
        ),
        (
            "token".to_owned(),
            variable(serde_json::json!("s3cr3t"), VariableLayer::Run, true),
        ),
        // Variables are data: any character survives the round trip.
        (
            "odd".to_owned(),
            variable(
                serde_json::json!("nul \u{0} quote \" emoji \u{1f600}"),
                VariableLayer::Run,
                false,
            ),
        ),
    ]));
    run.created_at = at(10);
    run.sla_at = Some(at(3_600));
    run.idempotency_key = Some("2024-01-01".to_owned());
    run.owner = Some(ExecutorId::from("cli-1"));
    run.block_concurrency = Some(3);
    run.blocks[0].priority = 2;
    run.blocks[0].max_tries = 3;
    run.blocks[0].labels = labels(&[("gpu", "yes")]);
    run.blocks[1].status = BlockRunStatus::Completed;
    run.blocks[1].outputs = labels(&[("rows", "42")]);
    run.blocks[1].reused_from_attempt = Some(1);
    run.blocks[1].data = Some(DataRef {
        sha256: "ef".repeat(32),
        format: "csv".to_owned(),
        size: 12,
    });
    run.window = Some(RunWindow {
        scheduled_for: at(5),
        window_start: at(-86_395),
        window_end: at(5),
    });
    let created = store.create_run(run.clone()).await.unwrap();
    assert!(created.created);
    assert_eq!(created.id, run.id);

    let expected = RunRecord {
        id: run.id.clone(),
        pipeline: "etl".to_owned(),
        status: RunStatus::Initial,
        attempt: 1,
        priority: 7,
        invoked_by: run.invoked_by.clone(),
        tags: run.tags.clone(),
        variables: run.variables.clone(),
        pipeline_version: sha,
        project_version: None,
        created_at: at(10),
        started_at: None,
        finished_at: None,
        error: None,
        cancel_requested_at: None,
        cancel_requested_by: None,
        timed_out: false,
        sla_missed: false,
        timeout_at: None,
        sla_at: Some(at(3_600)),
        sla_at_risk_at: None,
        idempotency_key: Some("2024-01-01".to_owned()),
        owner: Some(ExecutorId::from("cli-1")),
        block_concurrency: Some(3),
        window: run.window,
        slow: false,
        baseline: None,
        resolved: None,
    };
    assert_eq!(store.get_run(&run.id).await.unwrap(), Some(expected));
    assert_eq!(store.get_run(&RunId::from("missing")).await.unwrap(), None);

    let attempts = store.list_attempts(&run.id).await.unwrap();
    assert_eq!(
        attempts,
        vec![AttemptRecord {
            run_id: run.id.clone(),
            attempt: 1,
            status: RunStatus::Initial,
            mode: "initial".to_owned(),
            from_block: None,
            created_at: at(10),
            created_by: Some("scheduler".to_owned()),
            started_at: None,
            finished_at: None,
            error: None,
            pipeline_version: Some("ab".repeat(32)),
            project_version: None,
        }]
    );

    let block_runs = store.list_block_runs(&run.id, None).await.unwrap();
    let expected_blocks: Vec<BlockRunRecord> = run
        .blocks
        .iter()
        .map(|block| BlockRunRecord {
            id: block.id.clone(),
            run_id: run.id.clone(),
            attempt: 1,
            block: block.block.clone(),
            status: block.status,
            priority: block.priority,
            max_tries: block.max_tries,
            tries: 0,
            created_at: at(10),
            queued_at: None,
            started_at: None,
            finished_at: block.status.is_terminal().then(|| at(10)),
            retry_at: None,
            outputs: block.outputs.clone(),
            error: None,
            exit_code: None,
            timed_out: false,
            reused_from_attempt: block.reused_from_attempt,
            data: block.data.clone(),
            labels: block.labels.clone(),
            idempotency_key: block.idempotency_key.clone(),
        })
        .collect();
    assert_eq!(block_runs, expected_blocks);
    assert_eq!(
        store.list_block_runs(&run.id, Some(1)).await.unwrap(),
        expected_blocks
    );
    assert_eq!(
        store.list_block_runs(&run.id, Some(2)).await.unwrap(),
        vec![]
    );
    assert_eq!(
        store
            .get_block_run(&expected_blocks[1].id)
            .await
            .unwrap()
            .as_ref(),
        Some(&expected_blocks[1])
    );

    // A run created cancelled (skipped by `on_limit: skip`) is finished.
    let mut skipped = new_run("run-2", "etl", &["extract"]);
    skipped.status = RunStatus::Cancelled;
    skipped.error = Some("skipped: the pipeline is at its limit".to_owned());
    skipped.blocks[0].status = BlockRunStatus::Cancelled;
    let id = create(&store, skipped).await;
    let record = store.get_run(&id).await.unwrap().unwrap();
    assert_eq!(record.status, RunStatus::Cancelled);
    assert_eq!(record.finished_at, Some(at(0)));
    assert_eq!(
        record.error.as_deref(),
        Some("skipped: the pipeline is at its limit")
    );
    let attempts = store.list_attempts(&id).await.unwrap();
    assert_eq!(attempts[0].status, RunStatus::Cancelled);
    assert_eq!(attempts[0].finished_at, Some(at(0)));
}

/// The same `(pipeline, idempotency_key)` yields the same run, also under
/// concurrent creation; a reused id without a key is a conflict.
pub async fn idempotent_create(store: Arc<dyn Store>) {
    let mut first = new_run("run-1", "etl", &["a"]);
    first.idempotency_key = Some("key".to_owned());
    assert!(store.create_run(first.clone()).await.unwrap().created);

    let mut again = new_run("run-2", "etl", &["a"]);
    again.idempotency_key = Some("key".to_owned());
    let created = store.create_run(again).await.unwrap();
    assert_eq!((created.id.as_str(), created.created), ("run-1", false));
    assert_eq!(store.get_run(&RunId::from("run-2")).await.unwrap(), None);

    // Keys are per pipeline.
    let mut other = new_run("run-3", "report", &["a"]);
    other.idempotency_key = Some("key".to_owned());
    assert!(store.create_run(other).await.unwrap().created);

    let duplicate = store.create_run(new_run("run-1", "etl", &["a"])).await;
    assert!(
        matches!(duplicate, Err(Error::Conflict(_))),
        "{duplicate:?}"
    );

    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..20 {
        let store = store.clone();
        tasks.spawn(async move {
            let mut run = new_run(&format!("race-{index}"), "sync", &["a", "b"]);
            run.idempotency_key = Some("race".to_owned());
            store.create_run(run).await.unwrap()
        });
    }
    let results = tasks.join_all().await;
    assert_eq!(results.iter().filter(|created| created.created).count(), 1);
    let ids: HashSet<_> = results.iter().map(|created| created.id.clone()).collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let page = store
        .list_runs(&RunQuery {
            pipelines: vec!["sync".to_owned()],
            limit: 100,
            ..RunQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page.runs.len(), 1);
    let id = ids.into_iter().next().unwrap();
    assert_eq!(store.list_block_runs(&id, None).await.unwrap().len(), 2);
}

/// Moves a fresh run's first attempt to `status` along allowed transitions.
async fn drive_run_to(store: &Arc<dyn Store>, id: &RunId, status: RunStatus) {
    use RunStatus::*;
    let path: &[(RunStatus, RunStatus)] = match status {
        Initial => &[],
        Running => &[(Initial, Running)],
        Completed => &[(Initial, Running), (Running, Completed)],
        Failed => &[(Initial, Running), (Running, Failed)],
        Cancelled => &[(Initial, Cancelled)],
    };
    for &(from, to) in path {
        move_run(store, id, from, to).await;
    }
}

/// Every pair of run statuses: allowed changes apply (with their timing
/// fields, mirrored on the attempt), refused ones are errors, and a change
/// from a status the run no longer has returns `false`.
pub async fn run_transitions(store: Arc<dyn Store>) {
    for from in RunStatus::ALL {
        for to in RunStatus::ALL {
            let id = RunId(format!("run-{from}-{to}"));
            create(&store, new_run(id.as_str(), "etl", &[])).await;
            drive_run_to(&store, &id, from).await;
            let change = RunTransition {
                id: id.clone(),
                attempt: 1,
                from,
                to,
                at: at(100),
                error: Some("boom".to_owned()),
                timeout_at: Some(at(500)),
                timed_out: true,
            };
            let outcome = store.transition_run(&change).await;
            let run = store.get_run(&id).await.unwrap().unwrap();
            if !from.can_transition_to(to) {
                assert!(
                    matches!(outcome, Err(Error::Transition(_))),
                    "{from}->{to}: {outcome:?}"
                );
                assert_eq!(run.status, from);
                continue;
            }
            assert!(outcome.unwrap(), "{from}->{to} was not applied");
            assert_eq!(run.status, to);
            let attempt = &store.list_attempts(&id).await.unwrap()[0];
            assert_eq!(attempt.status, to);
            if to == RunStatus::Running {
                assert_eq!(run.started_at, Some(at(100)));
                assert_eq!(run.timeout_at, Some(at(500)));
                assert_eq!(attempt.started_at, Some(at(100)));
            }
            if to.is_terminal() {
                assert_eq!(run.finished_at, Some(at(100)));
                assert_eq!(run.error.as_deref(), Some("boom"));
                assert!(run.timed_out);
                assert_eq!(attempt.finished_at, Some(at(100)));
                assert_eq!(attempt.error.as_deref(), Some("boom"));
            }
            // The same change again is stale now.
            assert!(
                !store.transition_run(&change).await.unwrap(),
                "{from}->{to} twice"
            );
        }
    }

    // A change of another attempt than the latest is stale.
    let id = create(&store, new_run("run-attempt", "etl", &[])).await;
    let change = RunTransition {
        id: id.clone(),
        attempt: 2,
        from: RunStatus::Initial,
        to: RunStatus::Running,
        at: at(1),
        error: None,
        timeout_at: None,
        timed_out: false,
    };
    assert!(!store.transition_run(&change).await.unwrap());
    // `started_at` keeps the first start.
    move_run(&store, &id, RunStatus::Initial, RunStatus::Running).await;
    assert_eq!(
        store.get_run(&id).await.unwrap().unwrap().started_at,
        Some(at(1))
    );
}

/// Moves a fresh block run to `status` along allowed transitions.
async fn drive_block_to(store: &Arc<dyn Store>, run: &str, block: &str, status: BlockRunStatus) {
    use BlockRunStatus::*;
    let id = block_id(run, block);
    let path: &[(BlockRunStatus, BlockRunStatus)] = match status {
        Initial => &[],
        Queued => &[(Initial, Queued)],
        Running => &[(Initial, Queued), (Queued, Running)],
        terminal => &[(Initial, terminal)],
    };
    for &(from, to) in path {
        move_block(store, &id, from, to, at(5)).await;
    }
}

/// Every pair of block-run statuses through `transition_block_run`.
pub async fn block_run_transitions(store: Arc<dyn Store>) {
    for from in BlockRunStatus::ALL {
        let run = format!("run-{from}");
        let blocks: Vec<String> = BlockRunStatus::ALL
            .iter()
            .map(|to| to.to_string())
            .collect();
        let names: Vec<&str> = blocks.iter().map(String::as_str).collect();
        create(&store, new_run(&run, "etl", &names)).await;
        for to in BlockRunStatus::ALL {
            drive_block_to(&store, &run, to.as_str(), from).await;
            let change = BlockRunTransition {
                id: block_id(&run, to.as_str()),
                from,
                to,
                at: at(50),
                error: Some("why".to_owned()),
            };
            let outcome = store.transition_block_run(&change).await;
            let record = store.get_block_run(&change.id).await.unwrap().unwrap();
            if !from.can_transition_to(to) {
                assert!(
                    matches!(outcome, Err(Error::Transition(_))),
                    "{from}->{to}: {outcome:?}"
                );
                assert_eq!(record.status, from);
                continue;
            }
            assert!(outcome.unwrap(), "{from}->{to} was not applied");
            assert_eq!(record.status, to);
            if to == BlockRunStatus::Queued {
                assert_eq!(record.queued_at, Some(at(50)));
            }
            if to.is_terminal() {
                assert_eq!(record.finished_at, Some(at(50)));
                assert_eq!(record.error.as_deref(), Some("why"));
            }
            assert!(
                !store.transition_block_run(&change).await.unwrap(),
                "{from}->{to} twice"
            );
        }
    }
}

/// A cancellation request and each flag are recorded once; a finished run
/// takes no cancellation request; an unknown run is not found.
pub async fn cancel_requests_and_flags(store: Arc<dyn Store>) {
    let id = create(&store, new_run("run-1", "etl", &[])).await;
    assert!(store.request_cancel(&id, "alice", at(5)).await.unwrap());
    assert!(!store.request_cancel(&id, "bob", at(6)).await.unwrap());
    let run = store.get_run(&id).await.unwrap().unwrap();
    assert_eq!(run.cancel_requested_at, Some(at(5)));
    assert_eq!(run.cancel_requested_by.as_deref(), Some("alice"));

    for flag in [RunFlag::SlaMissed, RunFlag::TimedOut] {
        assert!(store.flag_run(&id, flag).await.unwrap());
        assert!(!store.flag_run(&id, flag).await.unwrap());
    }
    let run = store.get_run(&id).await.unwrap().unwrap();
    assert!(run.sla_missed && run.timed_out);

    let finished = create(&store, new_run("run-2", "etl", &[])).await;
    move_run(&store, &finished, RunStatus::Initial, RunStatus::Cancelled).await;
    assert!(
        !store
            .request_cancel(&finished, "alice", at(5))
            .await
            .unwrap()
    );

    let missing = RunId::from("missing");
    let outcome = store.request_cancel(&missing, "alice", at(5)).await;
    assert!(matches!(outcome, Err(Error::NotFound(_))), "{outcome:?}");
    let outcome = store.flag_run(&missing, RunFlag::SlaMissed).await;
    assert!(matches!(outcome, Err(Error::NotFound(_))), "{outcome:?}");
}

/// A project version round-trips with its files in path order, is written
/// once per digest, pins a run, and keeps its files' blobs referenced.
pub async fn project_versions(store: Arc<dyn Store>) {
    let version = "ef".repeat(32);
    let file = |path: &str, sha: &str, size, executable| crate::ProjectFile {
        path: path.to_owned(),
        sha256: sha.repeat(32),
        size,
        executable,
    };
    // Given out of order; `B` sorts before `a` byte-wise on both backends.
    let files = vec![
        file("scripts/load.sh", "a1", 120, true),
        file("README.md", "b2", 7, false),
        file("pipelines/etl.yaml", "c3", 300, false),
        file("a b/ünïcode.txt", "d4", 0, false),
    ];
    assert_eq!(store.get_project_version(&version).await.unwrap(), None);
    assert!(!store.blob_referenced(&"a1".repeat(32)).await.unwrap());
    store.put_project_version(&version, &files).await.unwrap();
    // The same digest again changes nothing, whatever it is given.
    store
        .put_project_version(&version, &files[..1])
        .await
        .unwrap();
    let mut expected = files.clone();
    expected.sort_by(|a, b| a.path.as_bytes().cmp(b.path.as_bytes()));
    assert_eq!(
        store.get_project_version(&version).await.unwrap(),
        Some(expected)
    );
    assert!(store.blob_referenced(&"a1".repeat(32)).await.unwrap());
    assert!(store.blob_referenced(&"d4".repeat(32)).await.unwrap());
    assert!(
        store
            .project_file_held(&version, &"d4".repeat(32))
            .await
            .unwrap()
    );
    assert!(
        !store
            .project_file_held(&version, &"e5".repeat(32))
            .await
            .unwrap()
    );
    assert!(
        !store
            .project_file_held(&"00".repeat(32), &"d4".repeat(32))
            .await
            .unwrap()
    );

    // An empty project is a version too.
    let empty = "00".repeat(32);
    store.put_project_version(&empty, &[]).await.unwrap();
    assert_eq!(
        store.get_project_version(&empty).await.unwrap(),
        Some(Vec::new())
    );

    let mut run = new_run("pinned", "etl", &["a"]);
    run.project_version = Some(version.clone());
    let id = create(&store, run).await;
    let record = store.get_run(&id).await.unwrap().unwrap();
    assert_eq!(record.project_version, Some(version.clone()));
    let attempts = store.list_attempts(&id).await.unwrap();
    assert_eq!(attempts[0].project_version, Some(version));
}

fn retry_of(run: &RunId, previous_attempt: u32, blocks: &[&str]) -> NewAttempt {
    let attempt = previous_attempt + 1;
    NewAttempt {
        run_id: run.clone(),
        previous_attempt,
        mode: "all".to_owned(),
        from_block: None,
        created_by: Some("alice".to_owned()),
        at: at(1_000),
        owner: None,
        pipeline_version: "1".repeat(64),
        project_version: Some("2".repeat(64)),
        blocks: blocks
            .iter()
            .map(|block| {
                let mut new = new_block(run.as_str(), block);
                new.id.0 = format!("{run}.{attempt}.{block}");
                new
            })
            .collect(),
    }
}

/// A retry opens a new attempt only on a finished run, only once per
/// attempt seen, and keeps the earlier attempt as it was.
pub async fn start_attempt_rules(store: Arc<dyn Store>) {
    let mut run = new_run("run-1", "etl", &["a"]);
    run.owner = Some(ExecutorId::from("cli-1"));
    let id = create(&store, run).await;
    move_run(&store, &id, RunStatus::Initial, RunStatus::Running).await;
    let refused = store.start_attempt(&retry_of(&id, 1, &["a"])).await;
    assert!(matches!(refused, Err(Error::Conflict(_))), "{refused:?}");

    store.request_cancel(&id, "alice", at(2)).await.unwrap();
    store.flag_run(&id, RunFlag::TimedOut).await.unwrap();
    store
        .transition_run(&RunTransition {
            id: id.clone(),
            attempt: 1,
            from: RunStatus::Running,
            to: RunStatus::Failed,
            at: at(3),
            error: Some("block a failed".to_owned()),
            timeout_at: None,
            timed_out: false,
        })
        .await
        .unwrap();

    // Two operators retry at once: exactly one gets the new attempt.
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..2 {
        let store = store.clone();
        let retry = retry_of(&id, 1, &["a"]);
        tasks.spawn(async move { store.start_attempt(&retry).await });
    }
    let outcomes = tasks.join_all().await;
    assert_eq!(outcomes.iter().filter(|outcome| outcome.is_ok()).count(), 1);
    assert!(
        outcomes
            .iter()
            .any(|outcome| matches!(outcome, Err(Error::Conflict(_)))),
        "{outcomes:?}"
    );
    let stale = store.start_attempt(&retry_of(&id, 1, &["a"])).await;
    assert!(matches!(stale, Err(Error::Conflict(_))), "{stale:?}");

    let run = store.get_run(&id).await.unwrap().unwrap();
    assert_eq!((run.attempt, run.status), (2, RunStatus::Initial));
    assert_eq!(run.finished_at, None);
    assert_eq!(run.error, None);
    assert_eq!(run.cancel_requested_at, None);
    assert_eq!(run.cancel_requested_by, None);
    assert!(!run.timed_out);
    assert_eq!(run.owner, None);
    // The run is pinned to the versions the new attempt runs; the first
    // attempt keeps those it ran with.
    assert_eq!(run.pipeline_version, "1".repeat(64));
    assert_eq!(run.project_version, Some("2".repeat(64)));
    let attempts = store.list_attempts(&id).await.unwrap();
    assert_eq!(attempts.len(), 2);
    assert_eq!(attempts[0].pipeline_version, Some("0".repeat(64)));
    assert_eq!(attempts[0].project_version, None);
    assert_eq!(attempts[1].pipeline_version, Some("1".repeat(64)));
    assert_eq!(attempts[1].project_version, Some("2".repeat(64)));
    assert_eq!(attempts[0].status, RunStatus::Failed);
    assert_eq!(attempts[0].error.as_deref(), Some("block a failed"));
    assert_eq!(attempts[1].status, RunStatus::Initial);
    assert_eq!(attempts[1].mode, "all");
    assert_eq!(attempts[1].created_by.as_deref(), Some("alice"));
    assert_eq!(attempts[1].created_at, at(1_000));

    let latest = store.list_block_runs(&id, None).await.unwrap();
    assert_eq!(latest.len(), 1);
    assert_eq!((latest[0].attempt, latest[0].id.as_str()), (2, "run-1.2.a"));
    assert_eq!(
        store.list_block_runs(&id, Some(1)).await.unwrap()[0]
            .id
            .as_str(),
        "run-1.a"
    );

    // The new attempt moves on; a change addressed to the old one is stale.
    let mut change = RunTransition {
        id: id.clone(),
        attempt: 1,
        from: RunStatus::Initial,
        to: RunStatus::Running,
        at: at(2_000),
        error: None,
        timeout_at: None,
        timed_out: false,
    };
    assert!(!store.transition_run(&change).await.unwrap());
    change.attempt = 2;
    assert!(store.transition_run(&change).await.unwrap());
    let attempts = store.list_attempts(&id).await.unwrap();
    assert_eq!(attempts[0].status, RunStatus::Failed);
    assert_eq!(attempts[1].status, RunStatus::Running);

    let missing = store
        .start_attempt(&retry_of(&RunId::from("missing"), 1, &[]))
        .await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
}

/// What the pagination case knows about each run it created.
struct Expected {
    id: RunId,
    created_at: jiff::Timestamp,
    pipeline: &'static str,
    status: RunStatus,
    nightly: bool,
    kind: &'static str,
}

/// Pages through 250 runs with several filters in both orders: every
/// matching run comes exactly once, in order.
pub async fn keyset_pagination(store: Arc<dyn Store>) {
    let pipelines = ["etl", "report", "sync"];
    let mut expected = Vec::new();
    for index in 0..250i64 {
        // A scrambled id, and two runs per creation time, so that ties are
        // broken by id and not by insertion order.
        let id = RunId(format!("run-{:03}", (index * 7) % 250));
        let mut run: NewRun = new_run(id.as_str(), pipelines[(index % 3) as usize], &[]);
        run.created_at = at(index / 2);
        let nightly = index % 4 == 0;
        if nightly {
            run.tags = vec!["nightly".to_owned(), "team-a".to_owned()];
        }
        let kind = if index % 5 < 2 { "schedule" } else { "manual" };
        run.invoked_by.kind = kind.to_owned();
        create(&store, run).await;
        let status = match index % 6 {
            0 | 1 => RunStatus::Initial,
            2 => RunStatus::Running,
            3 => RunStatus::Completed,
            4 => RunStatus::Failed,
            _ => RunStatus::Cancelled,
        };
        drive_run_to(&store, &id, status).await;
        expected.push(Expected {
            id,
            created_at: at(index / 2),
            pipeline: pipelines[(index % 3) as usize],
            status,
            nightly,
            kind,
        });
    }

    let queries = [
        RunQuery {
            limit: 17,
            ..RunQuery::default()
        },
        RunQuery {
            pipelines: vec!["etl".to_owned(), "sync".to_owned()],
            statuses: vec![RunStatus::Running, RunStatus::Completed, RunStatus::Initial],
            order: Order::OldestFirst,
            limit: 10,
            ..RunQuery::default()
        },
        RunQuery {
            tag: Some("nightly".to_owned()),
            trigger_kinds: vec!["schedule".to_owned()],
            limit: 3,
            ..RunQuery::default()
        },
        RunQuery {
            created_after: Some(at(20)),
            created_before: Some(at(80)),
            order: Order::OldestFirst,
            limit: 7,
            ..RunQuery::default()
        },
        RunQuery {
            pipelines: vec!["report".to_owned()],
            limit: 1_000,
            ..RunQuery::default()
        },
        RunQuery {
            trigger_kinds: vec!["manual".to_owned(), "schedule".to_owned()],
            created_before: Some(at(100)),
            limit: 9,
            ..RunQuery::default()
        },
        RunQuery {
            tag: Some("nightly".to_owned()),
            statuses: vec![RunStatus::Initial, RunStatus::Failed],
            order: Order::OldestFirst,
            limit: 4,
            ..RunQuery::default()
        },
    ];
    for query in queries {
        let mut wanted: Vec<&Expected> = expected
            .iter()
            .filter(|run| {
                query.pipelines.is_empty() || query.pipelines.iter().any(|p| p == run.pipeline)
            })
            .filter(|run| query.statuses.is_empty() || query.statuses.contains(&run.status))
            .filter(|run| query.tag.is_none() || run.nightly)
            .filter(|run| {
                query.trigger_kinds.is_empty() || query.trigger_kinds.iter().any(|k| k == run.kind)
            })
            .filter(|run| {
                query
                    .created_after
                    .is_none_or(|after| run.created_at >= after)
            })
            .filter(|run| {
                query
                    .created_before
                    .is_none_or(|before| run.created_at < before)
            })
            .collect();
        wanted.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        if query.order == Order::NewestFirst {
            wanted.reverse();
        }
        let wanted: Vec<RunId> = wanted.into_iter().map(|run| run.id.clone()).collect();
        assert!(!wanted.is_empty());

        let mut seen = Vec::new();
        let mut query = query;
        for _ in 0..=wanted.len() {
            let page = store.list_runs(&query).await.unwrap();
            assert!(page.runs.len() <= query.limit as usize);
            seen.extend(page.runs.iter().map(|run| run.id.clone()));
            match page.next_cursor {
                Some(cursor) => query.cursor = Some(cursor),
                None => break,
            }
        }
        assert_eq!(seen, wanted, "{query:?}");
    }

    let running_etl = expected
        .iter()
        .filter(|run| run.pipeline == "etl" && run.status == RunStatus::Running)
        .count();
    assert_eq!(
        store
            .count_runs("etl", &[RunStatus::Running])
            .await
            .unwrap() as usize,
        running_etl
    );
    assert_eq!(store.count_runs("etl", &[]).await.unwrap(), 0);

    let mut active: Vec<&Expected> = expected
        .iter()
        .filter(|run| !run.status.is_terminal())
        .collect();
    active.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
    let listed = store.active_runs(1_000).await.unwrap();
    let listed: Vec<&RunId> = listed.iter().map(|run| &run.id).collect();
    let active: Vec<&RunId> = active.iter().map(|run| &run.id).collect();
    assert_eq!(listed, active);
    assert_eq!(store.active_runs(5).await.unwrap().len(), 5);
}
