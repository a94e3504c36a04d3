//! Conformance cases for the queue: its listing in claim order, operator
//! moves that later claims honour, and the executor listing.

use std::sync::Arc;

use sluice_core::ids::{BlockRunId, ExecutorId};

use super::fixtures::{at, block_id, claim_request, labels, new_run, queue, running_run};
use crate::{Error, ExecutorRecord, QueueMove, QueuePlace, Store};

async fn queued_blocks(store: &Arc<dyn Store>) -> Vec<String> {
    store
        .list_queue(100)
        .await
        .unwrap()
        .into_iter()
        .map(|queued| queued.block_run.block)
        .collect()
}

async fn move_to(store: &Arc<dyn Store>, block_run: &BlockRunId, place: QueuePlace) {
    store
        .move_in_queue(&QueueMove {
            block_run: block_run.clone(),
            place,
        })
        .await
        .unwrap();
}

/// The queue lists queued block runs in claim order; a move changes that
/// order within the block run's priority, is kept in the database, and the
/// claims that follow take the block runs in the new order.
pub async fn queue_moves(store: Arc<dyn Store>) {
    let mut run = new_run("q", "etl", &["a", "b", "c", "d", "e"]);
    run.block_concurrency = Some(4);
    for (block, priority) in run.blocks.iter_mut().zip([0, 0, 0, 5, 0]) {
        block.priority = priority;
    }
    run.blocks[2].labels = labels(&[("gpu", "true")]);
    let id = running_run(&store, run).await;
    let block = |name: &str| block_id(id.as_str(), name);
    for (name, queued) in [("a", 1), ("b", 2), ("c", 3), ("d", 4)] {
        queue(&store, &block(name), at(queued)).await;
    }
    // `e` stays initial: it is not in the queue.
    assert_eq!(queued_blocks(&store).await, ["d", "a", "b", "c"]);
    let listed = store.list_queue(100).await.unwrap();
    assert_eq!(listed[0].pipeline, "etl");
    assert_eq!(listed[0].block_concurrency, Some(4));
    assert_eq!(listed[0].running_in_attempt, 0);
    assert_eq!(listed[3].block_run.labels, labels(&[("gpu", "true")]));

    // To the front: the front of its own priority band.
    move_to(&store, &block("c"), QueuePlace::Position(1)).await;
    assert_eq!(queued_blocks(&store).await, ["d", "c", "a", "b"]);
    move_to(&store, &block("b"), QueuePlace::Before(block("c"))).await;
    assert_eq!(queued_blocks(&store).await, ["d", "b", "c", "a"]);
    move_to(&store, &block("b"), QueuePlace::Position(4)).await;
    assert_eq!(queued_blocks(&store).await, ["d", "c", "a", "b"]);

    // Moves that would cross priorities or name what is not queued fail
    // and change nothing.
    for (moving, place) in [
        (block("a"), QueuePlace::Before(block("d"))),
        (block("e"), QueuePlace::Position(1)),
        (block("a"), QueuePlace::Before(block("e"))),
    ] {
        let change = QueueMove {
            block_run: moving,
            place,
        };
        let error = store.move_in_queue(&change).await.unwrap_err();
        assert!(matches!(error, Error::Conflict(_)), "{change:?}: {error:?}");
    }
    assert_eq!(queued_blocks(&store).await, ["d", "c", "a", "b"]);

    // Claims follow the moved order, and the listing counts what runs.
    let first = store
        .claim(&claim_request("agent-1", at(10)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.block_run.block, "d");
    assert_eq!(
        store.list_queue(100).await.unwrap()[0].running_in_attempt,
        1
    );
    let mut claimed = Vec::new();
    while let Some(claim) = store
        .claim(&claim_request("agent-1", at(10)))
        .await
        .unwrap()
    {
        claimed.push(claim.block_run.block);
    }
    assert_eq!(claimed, ["c", "a", "b"]);
    assert!(queued_blocks(&store).await.is_empty());
}

/// Executors are listed by id with their labels.
pub async fn executor_listing(store: Arc<dyn Store>) {
    for (id, pairs) in [("server-2", vec![]), ("agent-1", vec![("gpu", "true")])] {
        store
            .register_executor(&ExecutorRecord {
                id: ExecutorId::from(id),
                kind: "agent".to_owned(),
                host: "host".to_owned(),
                pid: 7,
                started_at: at(1),
                heartbeat_at: at(2),
                labels: labels(&pairs),
            })
            .await
            .unwrap();
    }
    let listed = store.list_executors(10).await.unwrap();
    let ids: Vec<&str> = listed.iter().map(|e| e.id.as_str()).collect();
    assert_eq!(ids, ["agent-1", "server-2"]);
    assert_eq!(listed[0].labels, labels(&[("gpu", "true")]));
    assert_eq!(listed[1].heartbeat_at, at(2));
}
