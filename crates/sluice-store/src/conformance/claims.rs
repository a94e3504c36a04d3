//! Conformance cases for claims, leases and tries.

use std::collections::HashSet;
use std::sync::Arc;

use jiff::SignedDuration;
use sluice_core::ids::{BlockRunId, ExecutorId, TryId};
use sluice_core::status::{BlockRunStatus, RunStatus};

use super::fixtures::{
    at, block_id, claim_request, completion, create, labels, move_run, new_run, queue, running_run,
    success,
};
use crate::{
    BlockRunNext, DataRef, Error, LogChunk, LogLine, NewArtifact, Store, TryCompletion, TryStatus,
};

/// Claims until nothing is claimable, returning the claimed block runs.
async fn claim_all(store: &Arc<dyn Store>, executor: &str, now: jiff::Timestamp) -> Vec<String> {
    let mut claimed = Vec::new();
    while let Some(claim) = store.claim(&claim_request(executor, now)).await.unwrap() {
        claimed.push(claim.block_run.block.clone());
    }
    claimed
}

/// Claims come highest priority first, then oldest queued, then by id.
pub async fn claim_order(store: Arc<dyn Store>) {
    let mut run = new_run("run-1", "etl", &["a", "b", "c", "d", "e", "f"]);
    for (block, priority) in run.blocks.iter_mut().zip([0, 5, 5, 0, 10, 0]) {
        block.priority = priority;
    }
    let id = running_run(&store, run).await;
    for (block, queued) in [("a", 1), ("b", 3), ("c", 2), ("d", 1), ("e", 4)] {
        queue(&store, &block_id(id.as_str(), block), at(queued)).await;
    }
    // `f` stays initial: it is not claimable.
    let claimed = claim_all(&store, "agent-1", at(10)).await;
    assert_eq!(claimed, ["e", "c", "b", "a", "d"]);

    // Across runs, a queued block run of a newer run with a higher priority
    // goes first.
    let mut low = new_run("run-low", "etl", &["x"]);
    low.created_at = at(1);
    let low = running_run(&store, low).await;
    let mut high = new_run("run-high", "etl", &["x"]);
    high.blocks[0].priority = 1;
    let high = running_run(&store, high).await;
    queue(&store, &block_id(low.as_str(), "x"), at(20)).await;
    queue(&store, &block_id(high.as_str(), "x"), at(21)).await;
    let first = store
        .claim(&claim_request("agent-1", at(30)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.run.id, high);
    let second = store
        .claim(&claim_request("agent-1", at(30)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.run.id, low);
}

/// A claim skips block runs whose run is at its `block_concurrency`, owned
/// by another executor (or owned when the claimer is a server), needing
/// labels the executor lacks, waiting out a retry backoff, or whose run is
/// being cancelled or not running.
pub async fn claim_respects_limits(store: Arc<dyn Store>) {
    let now = at(10);

    // block_concurrency
    let mut run = new_run("limited", "etl", &["a", "b"]);
    run.block_concurrency = Some(1);
    let limited = running_run(&store, run).await;
    queue(&store, &block_id(limited.as_str(), "a"), at(1)).await;
    queue(&store, &block_id(limited.as_str(), "b"), at(2)).await;
    let first = store
        .claim(&claim_request("agent-1", now))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.block_run.block, "a");
    assert!(
        store
            .claim(&claim_request("agent-1", now))
            .await
            .unwrap()
            .is_none()
    );
    store.complete_try(&success(&first, now)).await.unwrap();
    let second = store
        .claim(&claim_request("agent-1", now))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.block_run.block, "b");
    store.complete_try(&success(&second, now)).await.unwrap();

    // owner
    let mut run = new_run("owned", "etl", &["a"]);
    run.owner = Some(ExecutorId::from("cli-1"));
    let owned = running_run(&store, run).await;
    queue(&store, &block_id(owned.as_str(), "a"), at(1)).await;
    assert!(
        store
            .claim(&claim_request("server", now))
            .await
            .unwrap()
            .is_none()
    );
    let mut other = claim_request("cli-2", now);
    other.owner = Some(ExecutorId::from("cli-2"));
    assert!(store.claim(&other).await.unwrap().is_none());
    let mut owner = claim_request("cli-1", now);
    owner.owner = Some(ExecutorId::from("cli-1"));
    let claim = store.claim(&owner).await.unwrap().unwrap();
    assert_eq!(claim.run.id, owned);
    assert_eq!(claim.attempt_try.executor, ExecutorId::from("cli-1"));
    // An embedded executor does not take a server's runs.
    let unowned = running_run(&store, new_run("unowned", "etl", &["a"])).await;
    queue(&store, &block_id(unowned.as_str(), "a"), at(1)).await;
    assert!(store.claim(&owner).await.unwrap().is_none());
    store
        .claim(&claim_request("server", now))
        .await
        .unwrap()
        .unwrap();

    // labels
    let mut run = new_run("labelled", "etl", &["gpu", "plain"]);
    run.blocks[0].labels = labels(&[("gpu", "yes")]);
    run.blocks[0].priority = 1;
    let labelled = running_run(&store, run).await;
    queue(&store, &block_id(labelled.as_str(), "gpu"), at(1)).await;
    queue(&store, &block_id(labelled.as_str(), "plain"), at(1)).await;
    let mut cpu = claim_request("cpu-agent", now);
    cpu.labels = Some(labels(&[("gpu", "no"), ("zone", "a")]));
    let claim = store.claim(&cpu).await.unwrap().unwrap();
    assert_eq!(claim.block_run.block, "plain");
    assert!(store.claim(&cpu).await.unwrap().is_none());
    let mut gpu = claim_request("gpu-agent", now);
    gpu.labels = Some(labels(&[("gpu", "yes"), ("zone", "a")]));
    let claim = store.claim(&gpu).await.unwrap().unwrap();
    assert_eq!(claim.block_run.block, "gpu");

    // retry_at
    let retried = running_run(&store, new_run("retried", "etl", &["a"])).await;
    queue(&store, &block_id(retried.as_str(), "a"), at(1)).await;
    let claim = store
        .claim(&claim_request("agent-1", now))
        .await
        .unwrap()
        .unwrap();
    let retry = completion(
        &claim,
        TryStatus::Failed,
        BlockRunNext::Retry { retry_at: at(100) },
        now,
    );
    store.complete_try(&retry).await.unwrap();
    assert!(
        store
            .claim(&claim_request("agent-1", at(99)))
            .await
            .unwrap()
            .is_none()
    );
    let claim = store
        .claim(&claim_request("agent-1", at(100)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (claim.run.id.as_str(), claim.block_run.tries),
        ("retried", 2)
    );
    assert_eq!(claim.block_run.retry_at, None);

    // cancel requests, and runs that are not running
    let cancelling = running_run(&store, new_run("cancelling", "etl", &["a"])).await;
    queue(&store, &block_id(cancelling.as_str(), "a"), at(1)).await;
    store
        .request_cancel(&cancelling, "alice", now)
        .await
        .unwrap();
    let waiting = create(&store, new_run("waiting", "etl", &["a"])).await;
    queue(&store, &block_id(waiting.as_str(), "a"), at(1)).await;
    assert!(
        store
            .claim(&claim_request("agent-1", now))
            .await
            .unwrap()
            .is_none()
    );
    move_run(&store, &waiting, RunStatus::Initial, RunStatus::Running).await;
    let claim = store
        .claim(&claim_request("agent-1", now))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(claim.run.id, waiting);
}

/// Queues `count` block runs of one running run.
async fn queued_blocks(store: &Arc<dyn Store>, run: &str, count: usize) {
    let names: Vec<String> = (0..count).map(|index| format!("b{index:02}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let id = running_run(store, new_run(run, "etl", &names)).await;
    for name in names {
        queue(store, &block_id(id.as_str(), name), at(1)).await;
    }
}

/// Claims from several tasks on `stores` until nothing is left; asserts
/// that no block run was claimed twice and returns how many were claimed.
async fn claim_concurrently(stores: &[Arc<dyn Store>], tasks_per_store: usize) -> usize {
    let mut tasks = tokio::task::JoinSet::new();
    for (index, store) in stores.iter().enumerate() {
        for task in 0..tasks_per_store {
            let store = store.clone();
            let executor = format!("agent-{index}-{task}");
            tasks.spawn(async move {
                let mut claimed = Vec::new();
                while let Some(claim) = store
                    .claim(&claim_request(&executor, at(10)))
                    .await
                    .unwrap()
                {
                    claimed.push(claim.block_run.id);
                }
                claimed
            });
        }
    }
    let claimed: Vec<BlockRunId> = tasks.join_all().await.into_iter().flatten().collect();
    let unique: HashSet<&BlockRunId> = claimed.iter().collect();
    assert_eq!(unique.len(), claimed.len(), "a block run was claimed twice");
    claimed.len()
}

/// Eight tasks claiming at once never get the same block run.
pub async fn concurrent_claims_are_exclusive(store: Arc<dyn Store>) {
    queued_blocks(&store, "run-1", 30).await;
    queued_blocks(&store, "run-2", 10).await;
    assert_eq!(claim_concurrently(&[store], 8).await, 40);
}

/// Two stores over the same database (two processes) claiming at once
/// never get the same block run.
pub async fn two_stores_never_double_claim(first: Arc<dyn Store>, second: Arc<dyn Store>) {
    queued_blocks(&first, "run-1", 25).await;
    queued_blocks(&second, "run-2", 25).await;
    assert_eq!(claim_concurrently(&[first, second], 4).await, 50);
}

/// Claimers racing for a run with `block_concurrency: 2` never run more
/// than two of its block runs at once: each round of eight simultaneous
/// claims takes exactly the free slots.
pub async fn concurrent_claims_respect_block_concurrency(store: Arc<dyn Store>) {
    let names: Vec<String> = (0..6).map(|index| format!("b{index}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut run = new_run("limited", "etl", &names);
    run.block_concurrency = Some(2);
    let id = running_run(&store, run).await;
    for name in &names {
        queue(&store, &block_id(id.as_str(), name), at(1)).await;
    }
    let mut claimed = HashSet::new();
    for round in 0..3 {
        let mut tasks = tokio::task::JoinSet::new();
        for task in 0..8 {
            let store = store.clone();
            tasks.spawn(async move {
                store
                    .claim(&claim_request(&format!("agent-{task}"), at(10)))
                    .await
                    .unwrap()
            });
        }
        let claims: Vec<_> = tasks.join_all().await.into_iter().flatten().collect();
        assert_eq!(claims.len(), 2, "round {round}: {} claims", claims.len());
        for claim in &claims {
            assert!(claimed.insert(claim.block_run.id.clone()), "claimed twice");
            store.complete_try(&success(claim, at(11))).await.unwrap();
        }
    }
    assert_eq!(claimed.len(), names.len());
}

/// Renewals, completions and log chunks carry the lease epoch; a stale one
/// is refused, and a renewal reports a cancellation request.
pub async fn lease_fencing(store: Arc<dyn Store>) {
    let id = running_run(&store, new_run("run-1", "etl", &["a"])).await;
    queue(&store, &block_id(id.as_str(), "a"), at(1)).await;
    let claim = store
        .claim(&claim_request("agent-1", at(2)))
        .await
        .unwrap()
        .unwrap();
    let attempt_try = &claim.attempt_try;
    assert_eq!(attempt_try.try_number, 1);
    assert_eq!(attempt_try.status, TryStatus::Running);
    assert_eq!(attempt_try.lease_expires_at, at(32));
    assert_eq!(claim.block_run.status, BlockRunStatus::Running);
    assert_eq!(claim.block_run.started_at, Some(at(2)));
    assert_eq!(claim.run.status, RunStatus::Running);
    let epoch = attempt_try.lease_epoch;
    let try_id = attempt_try.id.clone();

    let state = store.renew_lease(&try_id, epoch, at(60)).await.unwrap();
    assert!(!state.cancel_requested);
    let tries = store.list_tries(&claim.block_run.id).await.unwrap();
    assert_eq!(tries[0].lease_expires_at, at(60));

    for stale_epoch in [epoch - 1, epoch + 1] {
        let stale = store.renew_lease(&try_id, stale_epoch, at(90)).await;
        assert!(matches!(stale, Err(Error::StaleLease(_))), "{stale:?}");
    }
    let missing = store
        .renew_lease(&TryId::from("missing"), epoch, at(90))
        .await;
    assert!(matches!(missing, Err(Error::StaleLease(_))), "{missing:?}");

    let chunk = |seq: u64| LogChunk {
        try_id: try_id.clone(),
        seq,
        lines: vec![LogLine {
            at: at(3),
            stream: "stdout".to_owned(),
            text: format!("line {seq}"),
        }],
    };
    store.append_log_chunk(&chunk(0), epoch).await.unwrap();
    let stale = store.append_log_chunk(&chunk(1), epoch - 1).await;
    assert!(matches!(stale, Err(Error::StaleLease(_))), "{stale:?}");

    for stale_epoch in [epoch - 1, epoch + 1] {
        let mut stale_completion = success(&claim, at(4));
        stale_completion.epoch = stale_epoch;
        let stale = store.complete_try(&stale_completion).await;
        assert!(matches!(stale, Err(Error::StaleLease(_))), "{stale:?}");
    }
    assert_eq!(
        store
            .get_block_run(&claim.block_run.id)
            .await
            .unwrap()
            .unwrap()
            .status,
        BlockRunStatus::Running
    );

    store.request_cancel(&id, "alice", at(5)).await.unwrap();
    assert!(
        store
            .renew_lease(&try_id, epoch, at(60))
            .await
            .unwrap()
            .cancel_requested
    );

    let mut cancelled = completion(
        &claim,
        TryStatus::Cancelled,
        BlockRunNext::Finish {
            status: BlockRunStatus::Cancelled,
        },
        at(6),
    );
    cancelled.error = Some("cancelled by alice".to_owned());
    store.complete_try(&cancelled).await.unwrap();
    let block_run = store
        .get_block_run(&claim.block_run.id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(block_run.status, BlockRunStatus::Cancelled);
    assert_eq!(block_run.finished_at, Some(at(6)));

    // The try has ended: its lease is gone for good.
    let ended = store.renew_lease(&try_id, epoch, at(90)).await;
    assert!(matches!(ended, Err(Error::StaleLease(_))), "{ended:?}");
    let ended = store.complete_try(&cancelled).await;
    assert!(matches!(ended, Err(Error::StaleLease(_))), "{ended:?}");
    let ended = store.append_log_chunk(&chunk(1), epoch).await;
    assert!(matches!(ended, Err(Error::StaleLease(_))), "{ended:?}");
    // A re-upload of a chunk stored under the same lease is still fine.
    store.append_log_chunk(&chunk(0), epoch).await.unwrap();
    let stale = store.append_log_chunk(&chunk(0), epoch + 1).await;
    assert!(matches!(stale, Err(Error::StaleLease(_))), "{stale:?}");

    // A completion that would make an illegal block-run change is refused
    // before it touches anything.
    let id = running_run(&store, new_run("run-2", "etl", &["a"])).await;
    queue(&store, &block_id(id.as_str(), "a"), at(1)).await;
    let claim = store
        .claim(&claim_request("agent-1", at(2)))
        .await
        .unwrap()
        .unwrap();
    let illegal = completion(
        &claim,
        TryStatus::Failed,
        BlockRunNext::Finish {
            status: BlockRunStatus::Initial,
        },
        at(3),
    );
    let refused = store.complete_try(&illegal).await;
    assert!(matches!(refused, Err(Error::Transition(_))), "{refused:?}");
    store.complete_try(&success(&claim, at(3))).await.unwrap();
}

/// A try that ends with a retry queues its block run again; the next claim
/// starts try 2 with a higher epoch; a finish records outputs, data and
/// artifacts.
pub async fn retry_then_reclaim(store: Arc<dyn Store>) {
    let id = running_run(&store, new_run("run-1", "etl", &["a"])).await;
    let block_run_id = block_id(id.as_str(), "a");
    queue(&store, &block_run_id, at(1)).await;
    let first = store
        .claim(&claim_request("agent-1", at(2)))
        .await
        .unwrap()
        .unwrap();
    let retry = completion(
        &first,
        TryStatus::Failed,
        BlockRunNext::Retry { retry_at: at(20) },
        at(10),
    );
    store.complete_try(&retry).await.unwrap();
    let block_run = store.get_block_run(&block_run_id).await.unwrap().unwrap();
    assert_eq!(block_run.status, BlockRunStatus::Queued);
    assert_eq!(block_run.retry_at, Some(at(20)));
    assert_eq!(block_run.queued_at, Some(at(10)));
    assert_eq!(block_run.tries, 1);

    let second = store
        .claim(&claim_request("agent-2", at(20)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.block_run.id, block_run_id);
    assert_eq!(second.attempt_try.try_number, 2);
    assert_eq!(second.block_run.tries, 2);
    assert!(second.attempt_try.lease_epoch > first.attempt_try.lease_epoch);
    assert_ne!(second.attempt_try.id, first.attempt_try.id);
    // The first start is kept.
    assert_eq!(second.block_run.started_at, Some(at(2)));

    // The first try's lease is dead, even with the second one live.
    let stale = store
        .renew_lease(&first.attempt_try.id, first.attempt_try.lease_epoch, at(60))
        .await;
    assert!(matches!(stale, Err(Error::StaleLease(_))), "{stale:?}");

    let data = DataRef {
        sha256: "aa".repeat(32),
        format: "jsonl".to_owned(),
        size: 99,
    };
    let done = TryCompletion {
        outputs: [("rows".to_owned(), "42".to_owned())].into(),
        data: Some(data.clone()),
        artifacts: vec![
            NewArtifact {
                name: "report.html".to_owned(),
                size: 10,
                sha256: "bb".repeat(32),
            },
            NewArtifact {
                name: "plot.png".to_owned(),
                size: 20,
                sha256: "cc".repeat(32),
            },
        ],
        ..success(&second, at(30))
    };
    store.complete_try(&done).await.unwrap();
    let block_run = store.get_block_run(&block_run_id).await.unwrap().unwrap();
    assert_eq!(block_run.status, BlockRunStatus::Completed);
    assert_eq!(block_run.finished_at, Some(at(30)));
    assert_eq!(block_run.outputs, done.outputs);
    assert_eq!(block_run.data, Some(data));
    assert_eq!(block_run.exit_code, Some(0));
    assert_eq!(block_run.error, None);

    let tries = store.list_tries(&block_run_id).await.unwrap();
    assert_eq!(tries.len(), 2);
    assert_eq!(
        (tries[0].status, tries[0].finished_at, tries[0].exit_code),
        (TryStatus::Failed, Some(at(10)), Some(1))
    );
    assert_eq!(tries[0].error.as_deref(), Some("exit code 1"));
    assert_eq!(tries[1].status, TryStatus::Completed);
    assert_eq!(tries[1].executor, ExecutorId::from("agent-2"));
    let run_tries = store.list_run_tries(&id).await.unwrap();
    assert_eq!(run_tries, tries);

    let artifacts = store.list_artifacts(&id).await.unwrap();
    let names: Vec<&str> = artifacts
        .iter()
        .map(|artifact| artifact.name.as_str())
        .collect();
    assert_eq!(names, ["report.html", "plot.png"]);
    assert_eq!(artifacts[0].try_id, second.attempt_try.id);
    assert_eq!(artifacts[0].block_run_id, block_run_id);
    assert_eq!((artifacts[1].size, artifacts[1].created_at), (20, at(30)));
}

/// The reaper sees running tries whose lease expired, soonest first.
pub async fn expired_tries(store: Arc<dyn Store>) {
    let id = running_run(&store, new_run("run-1", "etl", &["a", "b", "c", "d"])).await;
    for block in ["a", "b", "c", "d"] {
        queue(&store, &block_id(id.as_str(), block), at(1)).await;
    }
    let mut claims = Vec::new();
    for expires in [50, 20, 30, 40] {
        let mut request = claim_request("agent-1", at(2));
        request.lease_expires_at = at(expires);
        claims.push(store.claim(&request).await.unwrap().unwrap());
    }
    // The try that expires at 40 has ended: it is no longer the reaper's.
    store
        .complete_try(&success(&claims[3], at(5)))
        .await
        .unwrap();

    let expired = store.expired_tries(at(45), 10).await.unwrap();
    let ids: Vec<&TryId> = expired.iter().map(|attempt_try| &attempt_try.id).collect();
    assert_eq!(ids, [&claims[1].attempt_try.id, &claims[2].attempt_try.id]);
    assert_eq!(store.expired_tries(at(45), 1).await.unwrap().len(), 1);
    assert!(store.expired_tries(at(20), 10).await.unwrap().is_empty());

    // A renewal takes a try out of the reaper's sight.
    let renewed = &claims[1].attempt_try;
    let later = at(45) + SignedDuration::from_secs(60);
    store
        .renew_lease(&renewed.id, renewed.lease_epoch, later)
        .await
        .unwrap();
    let expired = store.expired_tries(at(45), 10).await.unwrap();
    assert_eq!(expired.len(), 1);
    assert_eq!(expired[0].id, claims[2].attempt_try.id);
}
