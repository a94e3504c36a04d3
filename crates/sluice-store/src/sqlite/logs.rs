//! Log chunks (idempotent per `(try, seq)`, fenced by the lease epoch) and
//! the artifacts recorded with a try's completion.

use sluice_core::ids::{BlockRunId, RunId, TryId};
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use super::codec::{self, DbResultExt, get, get_json, to_json};
use crate::{ArtifactRecord, Error, LogChunk, Result};

pub(super) async fn append_log_chunk(
    store: &SqliteStore,
    chunk: &LogChunk,
    epoch: i64,
) -> Result<()> {
    let seq = i64::try_from(chunk.seq)
        .map_err(|_| Error::Conflict(format!("log chunk number {} is too large", chunk.seq)))?;
    let lines = to_json(&chunk.lines)?;
    let try_id = chunk.try_id.as_str();
    let inserted = store
        .write(|| async {
            // The chunk is stored only while the lease with this epoch is
            // live; a chunk already stored under this number stays as it is.
            let result = sqlx::query(
                "INSERT INTO log_chunk (try_id, seq, lines) \
                 SELECT id, ?, ? FROM block_try \
                 WHERE id = ? AND status = 'running' AND lease_epoch = ? \
                 ON CONFLICT (try_id, seq) DO NOTHING",
            )
            .bind(seq)
            .bind(&lines)
            .bind(try_id)
            .bind(epoch)
            .execute(&store.pool)
            .await
            .db()?;
            Ok(result.rows_affected() == 1)
        })
        .await?;
    if inserted {
        return Ok(());
    }

    // Nothing was written: either this is a re-upload of a stored chunk
    // (accepted, even after the try ended, as long as the epoch is the
    // try's), or the lease is stale. An epoch never changes and a stored
    // chunk never goes away, so this read cannot be contradicted later.
    let row: Option<SqliteRow> = sqlx::query(
        "SELECT lease_epoch, status, \
           EXISTS (SELECT 1 FROM log_chunk WHERE try_id = ?1 AND seq = ?2) AS stored \
         FROM block_try WHERE id = ?1",
    )
    .bind(try_id)
    .bind(seq)
    .fetch_optional(&store.pool)
    .await
    .db()?;
    let Some(row) = row else {
        return Err(Error::NotFound(format!("try `{}`", chunk.try_id)));
    };
    let same_epoch = get::<i64>(&row, "lease_epoch")? == epoch;
    let running = get::<String>(&row, "status")? == "running";
    let stored = codec::get_bool(&row, "stored")?;
    if same_epoch && (stored || running) {
        Ok(())
    } else {
        Err(Error::StaleLease(chunk.try_id.clone()))
    }
}

pub(super) async fn read_log(
    store: &SqliteStore,
    try_id: &TryId,
    after_seq: Option<u64>,
    limit: u32,
) -> Result<Vec<LogChunk>> {
    let after = match after_seq {
        // Every stored number fits an i64, so nothing comes after a larger one.
        Some(after) => match i64::try_from(after) {
            Ok(after) => after,
            Err(_) => return Ok(Vec::new()),
        },
        None => -1,
    };
    let rows = sqlx::query(
        "SELECT seq, lines FROM log_chunk WHERE try_id = ? AND seq > ? ORDER BY seq LIMIT ?",
    )
    .bind(try_id.as_str())
    .bind(after)
    .bind(codec::bounded_limit(limit))
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter()
        .map(|row| {
            Ok(LogChunk {
                try_id: try_id.clone(),
                seq: codec::get_u64(row, "seq")?,
                lines: get_json(row, "lines")?,
            })
        })
        .collect()
}

pub(super) async fn list_artifacts(
    store: &SqliteStore,
    run: &RunId,
) -> Result<Vec<ArtifactRecord>> {
    let rows = sqlx::query(
        "SELECT id, run_id, block_run_id, try_id, name, size, sha256, created_at \
         FROM artifact WHERE run_id = ? ORDER BY id LIMIT ?",
    )
    .bind(run.as_str())
    .bind(codec::MAX_ROWS)
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter()
        .map(|row| {
            Ok(ArtifactRecord {
                id: get(row, "id")?,
                run_id: RunId(get(row, "run_id")?),
                block_run_id: BlockRunId(get(row, "block_run_id")?),
                try_id: TryId(get(row, "try_id")?),
                name: get(row, "name")?,
                size: codec::get_u64(row, "size")?,
                sha256: get(row, "sha256")?,
                created_at: codec::get_timestamp(row, "created_at")?,
            })
        })
        .collect()
}
