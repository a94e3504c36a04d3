//! Builders the conformance cases share: fixed timestamps, runs and block
//! runs with plain defaults, and the usual steps to make a block run
//! claimable.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use sluice_core::ids::{BlockRunId, ExecutorId, RunId};
use sluice_core::status::{BlockRunStatus, RunStatus};
use sluice_core::vars::ResolvedVariables;

use crate::{
    BlockRunNext, BlockRunTransition, Claim, ClaimRequest, InvokedBy, NewBlockRun, NewRun,
    RunTransition, Store, TryCompletion, TryStatus,
};

/// A fixed instant plus `seconds`.
pub(super) fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_700_000_000 + seconds).expect("a timestamp in range")
}

/// The id of block `block` of run `run` in its first attempt.
pub(super) fn block_id(run: &str, block: &str) -> BlockRunId {
    BlockRunId(format!("{run}.{block}"))
}

pub(super) fn new_block(run: &str, block: &str) -> NewBlockRun {
    NewBlockRun {
        id: block_id(run, block),
        block: block.to_owned(),
        status: BlockRunStatus::Initial,
        priority: 0,
        max_tries: 1,
        labels: BTreeMap::new(),
        idempotency_key: format!("{run}/{block}"),
        outputs: BTreeMap::new(),
        reused_from_attempt: None,
        data: None,
    }
}

pub(super) fn new_run(id: &str, pipeline: &str, blocks: &[&str]) -> NewRun {
    NewRun {
        id: RunId::from(id),
        pipeline: pipeline.to_owned(),
        pipeline_version: "0".repeat(64),
        project_version: None,
        status: RunStatus::Initial,
        priority: 0,
        invoked_by: InvokedBy {
            kind: "manual".to_owned(),
            name: None,
            actor: None,
            parent_run_id: None,
        },
        tags: Vec::new(),
        variables: ResolvedVariables::default(),
        created_at: at(0),
        sla_at: None,
        idempotency_key: None,
        owner: None,
        block_concurrency: None,
        error: None,
        window: None,
        blocks: blocks.iter().map(|block| new_block(id, block)).collect(),
    }
}

pub(super) async fn create(store: &Arc<dyn Store>, run: NewRun) -> RunId {
    let created = store.create_run(run).await.expect("create_run");
    assert!(created.created, "run `{}` already existed", created.id);
    created.id
}

/// Moves a run's first attempt from `from` to `to`, asserting that it moved.
pub(super) async fn move_run(store: &Arc<dyn Store>, id: &RunId, from: RunStatus, to: RunStatus) {
    let applied = store
        .transition_run(&RunTransition {
            id: id.clone(),
            attempt: 1,
            from,
            to,
            at: at(1),
            error: None,
            timeout_at: None,
            timed_out: false,
        })
        .await
        .expect("transition_run");
    assert!(applied, "run `{id}` did not move from {from} to {to}");
}

/// Creates a run and starts it.
pub(super) async fn running_run(store: &Arc<dyn Store>, run: NewRun) -> RunId {
    let id = create(store, run).await;
    move_run(store, &id, RunStatus::Initial, RunStatus::Running).await;
    id
}

pub(super) async fn move_block(
    store: &Arc<dyn Store>,
    id: &BlockRunId,
    from: BlockRunStatus,
    to: BlockRunStatus,
    when: Timestamp,
) {
    let applied = store
        .transition_block_run(&BlockRunTransition {
            id: id.clone(),
            from,
            to,
            at: when,
            error: None,
        })
        .await
        .expect("transition_block_run");
    assert!(applied, "block run `{id}` did not move from {from} to {to}");
}

/// Queues an initial block run at `when`.
pub(super) async fn queue(store: &Arc<dyn Store>, id: &BlockRunId, when: Timestamp) {
    move_block(
        store,
        id,
        BlockRunStatus::Initial,
        BlockRunStatus::Queued,
        when,
    )
    .await;
}

pub(super) fn claim_request(executor: &str, now: Timestamp) -> ClaimRequest {
    ClaimRequest {
        executor: ExecutorId::from(executor),
        owner: None,
        labels: None,
        now,
        lease_expires_at: now + jiff::SignedDuration::from_secs(30),
    }
}

/// The completion of a claimed try that moves its block run on with `next`.
pub(super) fn completion(
    claim: &Claim,
    status: TryStatus,
    next: BlockRunNext,
    when: Timestamp,
) -> TryCompletion {
    TryCompletion {
        try_id: claim.attempt_try.id.clone(),
        block_run_id: claim.block_run.id.clone(),
        epoch: claim.attempt_try.lease_epoch,
        status,
        at: when,
        exit_code: Some(if status == TryStatus::Completed { 0 } else { 1 }),
        error: (status != TryStatus::Completed).then(|| "exit code 1".to_owned()),
        timed_out: false,
        outputs: BTreeMap::new(),
        data: None,
        artifacts: Vec::new(),
        next,
    }
}

/// A completion that ends the block run `completed`.
pub(super) fn success(claim: &Claim, when: Timestamp) -> TryCompletion {
    completion(
        claim,
        TryStatus::Completed,
        BlockRunNext::Finish {
            status: BlockRunStatus::Completed,
        },
        when,
    )
}

pub(super) fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
        .collect()
}
