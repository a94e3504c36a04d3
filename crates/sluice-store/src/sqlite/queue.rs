//! The queue: queued block runs in claim order with what decides whether
//! they can be claimed, operator moves of a block run's place, and the
//! executors whose labels say who could take them.

use sluice_core::ids::{BlockRunId, ExecutorId};
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use super::codec::{self, DbResultExt, bounded_limit, get, get_json};
use crate::queue::{Slot, plan_move};
use crate::{ExecutorRecord, QueueMove, QueuedBlockRun, Result};

/// The queue in claim order; `columns` picks what each row carries.
macro_rules! queue_query {
    ($columns:expr) => {
        concat!(
            "SELECT ",
            $columns,
            " FROM (SELECT b.*, r.pipeline, r.owner, \
               r.block_concurrency AS run_block_concurrency, \
               (SELECT COUNT(*) FROM block_run x WHERE x.run_id = b.run_id \
                  AND x.attempt = b.attempt AND x.status = 'running') AS running_in_attempt \
             FROM block_run b JOIN pipeline_run r ON r.id = b.run_id \
             WHERE b.status = 'queued' AND r.status = 'running' AND r.attempt = b.attempt \
               AND r.cancel_requested_at IS NULL) \
             ORDER BY priority DESC, queue_rank, id LIMIT ?"
        )
    };
}

pub(super) async fn list_queue(store: &SqliteStore, limit: u32) -> Result<Vec<QueuedBlockRun>> {
    let rows = sqlx::query(queue_query!(concat!(
        codec::block_run_columns!(),
        ", pipeline, owner, run_block_concurrency, running_in_attempt"
    )))
    .bind(bounded_limit(limit))
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter().map(queued_from_row).collect()
}

fn queued_from_row(row: &SqliteRow) -> Result<QueuedBlockRun> {
    Ok(QueuedBlockRun {
        block_run: codec::block_run_from_row(row)?,
        pipeline: get(row, "pipeline")?,
        owner: get::<Option<String>>(row, "owner")?.map(ExecutorId),
        block_concurrency: get::<Option<i64>>(row, "run_block_concurrency")?
            .map(|limit| u32::try_from(limit).unwrap_or(u32::MAX)),
        running_in_attempt: codec::get_u32(row, "running_in_attempt")?,
    })
}

pub(super) async fn move_in_queue(store: &SqliteStore, change: &QueueMove) -> Result<()> {
    store
        .write(|| async {
            // The write lock is held from the first read on, so the ranks
            // planned from this read are the ones rewritten.
            let mut tx = store.begin().await?;
            let rows = sqlx::query(queue_query!("id, priority, queue_rank"))
                .bind(bounded_limit(u32::MAX))
                .fetch_all(&mut *tx)
                .await
                .db()?;
            let queue = rows
                .iter()
                .map(|row| {
                    Ok(Slot {
                        id: BlockRunId(get(row, "id")?),
                        priority: get(row, "priority")?,
                        rank: get::<Option<i64>>(row, "queue_rank")?.unwrap_or(0),
                    })
                })
                .collect::<Result<Vec<_>>>()?;
            for (id, rank) in plan_move(&queue, &change.block_run, &change.place)? {
                sqlx::query(
                    "UPDATE block_run SET queue_rank = ? WHERE id = ? AND status = 'queued'",
                )
                .bind(rank)
                .bind(id.as_str())
                .execute(&mut *tx)
                .await
                .db()?;
            }
            tx.commit().await.db()
        })
        .await
}

pub(super) async fn list_executors(store: &SqliteStore, limit: u32) -> Result<Vec<ExecutorRecord>> {
    let rows = sqlx::query(
        "SELECT id, kind, host, pid, started_at, heartbeat_at, labels FROM executor \
         ORDER BY id LIMIT ?",
    )
    .bind(bounded_limit(limit))
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter()
        .map(|row| {
            Ok(ExecutorRecord {
                id: ExecutorId(get(row, "id")?),
                kind: get(row, "kind")?,
                host: get(row, "host")?,
                pid: codec::get_u32(row, "pid")?,
                started_at: codec::get_timestamp(row, "started_at")?,
                heartbeat_at: codec::get_timestamp(row, "heartbeat_at")?,
                labels: get_json(row, "labels")?,
            })
        })
        .collect()
}
