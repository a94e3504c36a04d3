//! The queue as operators see it, stepped by hand with a manual clock on a
//! real SQLite file: each queued block run's reason, moves that claims
//! honour, runs waiting for admission, and bulk cancel.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sluice_core::ids::{BlockRunId, ExecutorId};
use sluice_core::status::RunStatus;
use sluice_engine::queue::{QueueCancel, WaitReason};
use sluice_engine::{Clock, Engine, EngineConfig, ManualClock, Project, TriggerRequest};
use sluice_store::blobs::BlobStore;
use sluice_store::sqlite::SqliteStore;
use sluice_store::{
    BlockRunNext, ClaimRequest, ExecutorRecord, InvokedBy, QueueMove, QueuePlace, TryCompletion,
    TryStatus,
};

struct World {
    _dir: tempfile::TempDir,
    engine: Engine,
    clock: Arc<ManualClock>,
}

const PIPELINES: &[(&str, &str)] = &[
    (
        "gpu",
        "blocks:\n  train:\n    labels: {gpu: 'true'}\n    run: 'true'\n",
    ),
    (
        "wide",
        "block_concurrency: 1\nblocks:\n  a:\n    run: 'true'\n  b:\n    run: 'true'\n",
    ),
    (
        "flaky",
        "blocks:\n  x:\n    retries: {count: 1, delay: 1m}\n    run: 'true'\n",
    ),
    (
        "limited",
        "concurrency: 1\nblocks:\n  only:\n    run: 'true'\n",
    ),
];

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
    for (name, yaml) in PIPELINES {
        std::fs::write(dir.path().join(format!("pipelines/{name}.yaml")), yaml).unwrap();
    }
    let project = Project::load(dir.path()).unwrap();
    let store = SqliteStore::open(&dir.path().join(".sluice/sluice.db"))
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap()));
    let engine = Engine::new(
        Arc::new(store),
        BlobStore::new(dir.path().join(".sluice/blobs")),
        project,
        clock.clone(),
        EngineConfig::for_project(dir.path()),
    );
    World {
        _dir: dir,
        engine,
        clock,
    }
}

fn request(pipeline: &str) -> TriggerRequest {
    TriggerRequest {
        pipeline: pipeline.to_owned(),
        variables: BTreeMap::new(),
        trigger_variables: BTreeMap::new(),
        priority: None,
        invoked_by: InvokedBy {
            kind: "manual".to_owned(),
            name: None,
            actor: Some("test".to_owned()),
            parent_run_id: None,
        },
        idempotency_key: None,
        owner: None,
    }
}

fn claim_request(world: &World) -> ClaimRequest {
    let now = world.clock.now();
    ClaimRequest {
        executor: ExecutorId("test-agent".to_owned()),
        owner: None,
        labels: None,
        now,
        lease_expires_at: now + jiff::SignedDuration::from_secs(30),
    }
}

/// Registers a live executor of `kind` offering `labels`.
async fn executor(world: &World, id: &str, kind: &str, labels: &[(&str, &str)]) {
    let now = world.clock.now();
    world
        .engine
        .store()
        .register_executor(&ExecutorRecord {
            id: ExecutorId::from(id),
            kind: kind.to_owned(),
            host: "host".to_owned(),
            pid: 1,
            started_at: now,
            heartbeat_at: now,
            labels: labels
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        })
        .await
        .unwrap();
}

/// The queue's reasons by `pipeline.block`, in claim order.
async fn reasons(world: &World) -> Vec<(String, WaitReason)> {
    world
        .engine
        .queue()
        .await
        .unwrap()
        .block_runs
        .into_iter()
        .map(|entry| {
            let name = format!("{}.{}", entry.queued.pipeline, entry.queued.block_run.block);
            (name, entry.reason)
        })
        .collect()
}

async fn block_run_of(world: &World, name: &str) -> BlockRunId {
    let view = world.engine.queue().await.unwrap();
    view.block_runs
        .into_iter()
        .find(|entry| format!("{}.{}", entry.queued.pipeline, entry.queued.block_run.block) == name)
        .map(|entry| entry.queued.block_run.id)
        .unwrap_or_else(|| panic!("{name} is not queued"))
}

#[tokio::test]
async fn queued_block_runs_say_why_they_wait() {
    let world = world().await;
    executor(&world, "server-1", "server", &[]).await;
    let flaky = world.engine.trigger_run(request("flaky")).await.unwrap();
    world.engine.reconcile().await.unwrap();
    // The flaky block fails its first try and waits out a minute's backoff.
    let store = world.engine.store();
    let claim = store.claim(&claim_request(&world)).await.unwrap().unwrap();
    assert_eq!(claim.run.id, flaky);
    let retry_at = world.clock.now() + jiff::SignedDuration::from_secs(60);
    store
        .complete_try(&TryCompletion {
            try_id: claim.attempt_try.id.clone(),
            block_run_id: claim.block_run.id.clone(),
            epoch: claim.attempt_try.lease_epoch,
            status: TryStatus::Failed,
            at: world.clock.now(),
            exit_code: Some(1),
            error: Some("exit code 1".to_owned()),
            timed_out: false,
            outputs: BTreeMap::new(),
            data: None,
            artifacts: Vec::new(),
            next: BlockRunNext::Retry { retry_at },
        })
        .await
        .unwrap();
    world.clock.advance(Duration::from_secs(1));
    world.engine.trigger_run(request("gpu")).await.unwrap();
    world.clock.advance(Duration::from_secs(1));
    let wide = world.engine.trigger_run(request("wide")).await.unwrap();
    world.engine.reconcile().await.unwrap();

    assert_eq!(
        reasons(&world).await,
        [
            (
                "flaky.x".to_owned(),
                WaitReason::RetryBackoff { until: retry_at }
            ),
            (
                "gpu.train".to_owned(),
                WaitReason::Labels {
                    labels: [("gpu".to_owned(), "true".to_owned())].into()
                }
            ),
            ("wide.a".to_owned(), WaitReason::Behind { tries: 0 }),
            (
                "wide.b".to_owned(),
                WaitReason::BlockConcurrency { limit: 1 }
            ),
        ]
    );
    assert_eq!(
        WaitReason::Labels {
            labels: [("gpu".to_owned(), "true".to_owned())].into()
        }
        .to_string(),
        "no online agent offers labels gpu=true"
    );

    // The run's details carry the same reasons.
    let details = world.engine.run_details(&wide).await.unwrap();
    let block_runs = &details.attempts[0].block_runs;
    assert_eq!(
        block_runs[1].queue_reason,
        Some(WaitReason::BlockConcurrency { limit: 1 })
    );

    // An agent offering the labels comes online: the block is claimable,
    // behind the one claimable block run ahead of it.
    executor(&world, "agent-gpu", "agent", &[("gpu", "true")]).await;
    let reasons_now = reasons(&world).await;
    assert_eq!(reasons_now[1].1, WaitReason::Behind { tries: 0 });
    assert_eq!(reasons_now[2].1, WaitReason::Behind { tries: 1 });

    // An executor not heard of for a lease TTL offers nothing any more.
    world.clock.advance(Duration::from_secs(31));
    let reasons_later = reasons(&world).await;
    assert!(matches!(reasons_later[1].1, WaitReason::Labels { .. }));
    // The backoff lasts a minute, so it still holds the retry back.
    assert!(matches!(
        reasons_later[0].1,
        WaitReason::RetryBackoff { .. }
    ));
}

#[tokio::test]
async fn a_move_is_honoured_by_the_next_claims() {
    let world = world().await;
    executor(&world, "server-1", "server", &[]).await;
    world.engine.trigger_run(request("limited")).await.unwrap();
    world.clock.advance(Duration::from_secs(1));
    world.engine.trigger_run(request("wide")).await.unwrap();
    world.engine.reconcile().await.unwrap();
    assert_eq!(
        reasons(&world)
            .await
            .into_iter()
            .map(|(name, _)| name)
            .collect::<Vec<_>>(),
        ["limited.only", "wide.a", "wide.b"]
    );

    let moved = block_run_of(&world, "wide.a").await;
    world
        .engine
        .move_in_queue(
            &QueueMove {
                block_run: moved.clone(),
                place: QueuePlace::Position(1),
            },
            "operator",
        )
        .await
        .unwrap();
    let order: Vec<String> = reasons(&world).await.into_iter().map(|(n, _)| n).collect();
    assert_eq!(order, ["wide.a", "limited.only", "wide.b"]);
    let store = world.engine.store();
    let first = store.claim(&claim_request(&world)).await.unwrap().unwrap();
    assert_eq!(first.block_run.id, moved);
    let second = store.claim(&claim_request(&world)).await.unwrap().unwrap();
    assert_eq!(second.block_run.block, "only");

    // An unknown block run is not found; one not queued is a conflict.
    let unknown = world
        .engine
        .move_in_queue(
            &QueueMove {
                block_run: BlockRunId::from("nope"),
                place: QueuePlace::Position(1),
            },
            "operator",
        )
        .await
        .unwrap_err();
    assert!(matches!(unknown, sluice_engine::Error::NotFound(_)));
    let running = world
        .engine
        .move_in_queue(
            &QueueMove {
                block_run: moved,
                place: QueuePlace::Position(1),
            },
            "operator",
        )
        .await
        .unwrap_err();
    assert!(matches!(running, sluice_engine::Error::Conflict { .. }));
}

#[tokio::test]
async fn waiting_runs_and_bulk_cancel() {
    let world = world().await;
    executor(&world, "server-1", "server", &[]).await;
    let first = world.engine.trigger_run(request("limited")).await.unwrap();
    world.clock.advance(Duration::from_secs(1));
    let second = world.engine.trigger_run(request("limited")).await.unwrap();
    world.engine.trigger_run(request("wide")).await.unwrap();
    world.engine.reconcile().await.unwrap();

    let view = world.engine.queue().await.unwrap();
    assert_eq!(view.runs.len(), 1);
    assert_eq!(view.runs[0].run.id, second);
    assert_eq!(
        view.runs[0].reason,
        WaitReason::PipelineConcurrency { limit: 1 }
    );

    let filter = QueueCancel {
        pipeline: Some("limited".to_owned()),
        labels: BTreeMap::new(),
        dry_run: true,
    };
    let would = world
        .engine
        .cancel_queued(&filter, "operator")
        .await
        .unwrap();
    assert_eq!(would, std::slice::from_ref(&first));
    assert_eq!(
        world.engine.get_run(&first).await.unwrap().status,
        RunStatus::Running
    );
    let cancelled = world
        .engine
        .cancel_queued(
            &QueueCancel {
                dry_run: false,
                ..filter
            },
            "operator",
        )
        .await
        .unwrap();
    assert_eq!(cancelled, std::slice::from_ref(&first));
    let run = world.engine.get_run(&first).await.unwrap();
    assert_eq!(run.cancel_requested_by.as_deref(), Some("operator"));
    let left: Vec<String> = reasons(&world).await.into_iter().map(|(n, _)| n).collect();
    assert_eq!(left, ["wide.a", "wide.b"]);
}
