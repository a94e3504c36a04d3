//! Block runs: their creation within an attempt, their listings, and the
//! conditional status changes that are neither a claim nor a try's end.

use sluice_core::ids::{BlockRunId, RunId};
use sluice_core::status::BlockRunStatus;
use sqlx::{Sqlite, Transaction};

use super::SqliteStore;
use super::codec::{self, DbResultExt, block_run_columns, micros, to_json};
use crate::{BlockRunRecord, BlockRunTransition, Error, NewBlockRun, Result};

/// Inserts the block runs of a new attempt, all created at `created_at`.
pub(super) async fn insert_block_runs(
    tx: &mut Transaction<'static, Sqlite>,
    run_id: &RunId,
    attempt: u32,
    created_at: i64,
    blocks: &[NewBlockRun],
) -> Result<()> {
    for block in blocks {
        if block.status == BlockRunStatus::Running {
            // A running block run always has a try; only a claim makes one.
            return Err(Error::Conflict(format!(
                "block run `{}` cannot be created `running`: it must be claimed",
                block.id
            )));
        }
        let queued_at = (block.status == BlockRunStatus::Queued).then_some(created_at);
        let finished_at = block.status.is_terminal().then_some(created_at);
        let data = block.data.as_ref().map(to_json).transpose()?;
        sqlx::query(
            "INSERT INTO block_run (id, run_id, attempt, block, status, priority, max_tries, \
             created_at, queued_at, queue_rank, finished_at, outputs, reused_from_attempt, data, \
             labels, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(block.id.as_str())
        .bind(run_id.as_str())
        .bind(i64::from(attempt))
        .bind(&block.block)
        .bind(block.status.as_str())
        .bind(block.priority)
        .bind(i64::from(block.max_tries))
        .bind(created_at)
        .bind(queued_at)
        .bind(queued_at)
        .bind(finished_at)
        .bind(to_json(&block.outputs)?)
        .bind(block.reused_from_attempt.map(i64::from))
        .bind(data)
        .bind(to_json(&block.labels)?)
        .bind(&block.idempotency_key)
        .execute(&mut **tx)
        .await
        .db()?;
    }
    Ok(())
}

pub(super) async fn list_block_runs(
    store: &SqliteStore,
    run: &RunId,
    attempt: Option<u32>,
) -> Result<Vec<BlockRunRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        block_run_columns!(),
        " FROM block_run WHERE run_id = ?1 AND attempt = \
           COALESCE(?2, (SELECT attempt FROM pipeline_run WHERE id = ?1)) \
         ORDER BY seq LIMIT ?3"
    ))
    .bind(run.as_str())
    .bind(attempt.map(i64::from))
    .bind(codec::MAX_ROWS)
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter().map(codec::block_run_from_row).collect()
}

pub(super) async fn get_block_run(
    store: &SqliteStore,
    id: &BlockRunId,
) -> Result<Option<BlockRunRecord>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        block_run_columns!(),
        " FROM block_run WHERE id = ?"
    ))
    .bind(id.as_str())
    .fetch_optional(&store.pool)
    .await
    .db()?;
    row.as_ref().map(codec::block_run_from_row).transpose()
}

pub(super) async fn transition_block_run(
    store: &SqliteStore,
    change: &BlockRunTransition,
) -> Result<bool> {
    change.from.check_transition(change.to)?;
    let terminal = change.to.is_terminal();
    store
        .write(|| async {
            // One conditional statement: it applies only while the block run
            // still has the status the caller saw.
            let result = sqlx::query(
                "UPDATE block_run SET status = ?1, \
                   queued_at = CASE WHEN ?1 = 'queued' THEN ?2 ELSE queued_at END, \
                   queue_rank = CASE WHEN ?1 = 'queued' THEN ?2 ELSE queue_rank END, \
                   retry_at = CASE WHEN ?1 = 'queued' THEN NULL ELSE retry_at END, \
                   started_at = CASE WHEN ?1 = 'running' THEN COALESCE(started_at, ?2) \
                                ELSE started_at END, \
                   finished_at = CASE WHEN ?3 THEN ?2 ELSE finished_at END, \
                   error = CASE WHEN ?3 THEN ?4 ELSE error END \
                 WHERE id = ?5 AND status = ?6",
            )
            .bind(change.to.as_str())
            .bind(micros(change.at))
            .bind(terminal)
            .bind(change.error.as_deref())
            .bind(change.id.as_str())
            .bind(change.from.as_str())
            .execute(&store.pool)
            .await
            .db()?;
            Ok(result.rows_affected() == 1)
        })
        .await
}
