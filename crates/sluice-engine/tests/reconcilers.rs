//! The reconcilers stepped by hand with a manual clock: admission, DAG
//! advance, lease expiry, timeouts and SLA, on a real SQLite file.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use sluice_core::ids::ExecutorId;
use sluice_core::status::{BlockRunStatus, RunStatus};
use sluice_engine::{Clock, Engine, EngineConfig, ManualClock, Project, TriggerRequest};
use sluice_store::blobs::BlobStore;
use sluice_store::sqlite::SqliteStore;
use sluice_store::{ClaimRequest, InvokedBy, TryStatus};

struct World {
    _dir: tempfile::TempDir,
    engine: Engine,
    clock: Arc<ManualClock>,
}

async fn world(pipelines: &[(&str, &str)]) -> World {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
    for (name, yaml) in pipelines {
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

#[tokio::test]
async fn an_expired_lease_loses_the_try_and_queues_the_next_one() {
    let world = world(&[("one", "blocks:\n  only:\n    retries: 1\n    run: 'true'\n")]).await;
    let run_id = world.engine.trigger_run(request("one")).await.unwrap();
    world.engine.reconcile().await.unwrap();
    let store = world.engine.store();
    let first = store.claim(&claim_request(&world)).await.unwrap().unwrap();
    assert_eq!(first.attempt_try.try_number, 1);

    // Nothing happens before the lease expires.
    world.clock.advance(Duration::from_secs(29));
    world.engine.reconcile().await.unwrap();
    let block_run = store
        .get_block_run(&first.block_run.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(block_run.status, BlockRunStatus::Running);

    // After it, the try is lost and the block run queued for its second try.
    world.clock.advance(Duration::from_secs(2));
    world.engine.reconcile().await.unwrap();
    let tries = store.list_tries(&first.block_run.id).await.unwrap();
    assert_eq!(tries[0].status, TryStatus::Lost);
    assert_eq!(tries[0].error.as_deref(), Some("agent lost"));
    let block_run = store
        .get_block_run(&first.block_run.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(block_run.status, BlockRunStatus::Queued);

    let second = store.claim(&claim_request(&world)).await.unwrap().unwrap();
    assert_eq!(second.attempt_try.try_number, 2);
    assert!(second.attempt_try.lease_epoch > first.attempt_try.lease_epoch);

    // The second loss exhausts the retries: the block and the run fail.
    world.clock.advance(Duration::from_secs(31));
    world.engine.reconcile().await.unwrap();
    world.engine.reconcile().await.unwrap();
    let run = world.engine.get_run(&run_id).await.unwrap();
    assert_eq!(run.status, RunStatus::Failed);
    assert!(run.error.unwrap().contains("agent lost"));
}

#[tokio::test]
async fn admission_follows_priority_and_the_pipeline_limit() {
    let world = world(&[(
        "limited",
        "concurrency: 1\nblocks:\n  only:\n    run: 'true'\n",
    )])
    .await;
    let low = world.engine.trigger_run(request("limited")).await.unwrap();
    world.clock.advance(Duration::from_secs(1));
    let mut urgent = request("limited");
    urgent.priority = Some(10);
    let high = world.engine.trigger_run(urgent).await.unwrap();
    world.engine.admit_runs().await.unwrap();
    let status = |run: &sluice_core::ids::RunId| {
        let engine = world.engine.clone();
        let run = run.clone();
        async move { engine.get_run(&run).await.unwrap().status }
    };
    assert_eq!(status(&high).await, RunStatus::Running);
    assert_eq!(status(&low).await, RunStatus::Initial);
    // Admission is idempotent: a second pass changes nothing.
    assert_eq!(world.engine.admit_runs().await.unwrap(), 0);
}

#[tokio::test]
async fn sla_and_timeout_deadlines_follow_the_clock() {
    let world = world(&[(
        "slow",
        "timeout: 10m\ntimeout_status: cancelled\nsla: 5m\nblocks:\n  only:\n    run: 'true'\n",
    )])
    .await;
    let run_id = world.engine.trigger_run(request("slow")).await.unwrap();
    world.engine.reconcile().await.unwrap();
    let store = world.engine.store();
    let claim = store.claim(&claim_request(&world)).await.unwrap().unwrap();

    world.clock.advance(Duration::from_secs(4 * 60));
    world.engine.enforce_deadlines().await.unwrap();
    assert!(!world.engine.get_run(&run_id).await.unwrap().sla_missed);

    world.clock.advance(Duration::from_secs(2 * 60));
    world.engine.enforce_deadlines().await.unwrap();
    let run = world.engine.get_run(&run_id).await.unwrap();
    assert!(run.sla_missed);
    assert_eq!(run.status, RunStatus::Running);

    // Keep the lease alive so only the timeout acts.
    let later = sluice_engine::clock::add(world.clock.now(), Duration::from_secs(3600));
    store
        .renew_lease(&claim.attempt_try.id, claim.attempt_try.lease_epoch, later)
        .await
        .unwrap();
    world.clock.advance(Duration::from_secs(5 * 60));
    world.engine.enforce_deadlines().await.unwrap();
    let run = world.engine.get_run(&run_id).await.unwrap();
    assert!(run.timed_out);
    assert_eq!(run.cancel_requested_by.as_deref(), Some("sluice:timeout"));
    // The executor sees the request on its next renewal.
    let state = store
        .renew_lease(&claim.attempt_try.id, claim.attempt_try.lease_epoch, later)
        .await
        .unwrap();
    assert!(state.cancel_requested);
}
