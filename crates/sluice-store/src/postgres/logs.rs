//! Log chunks (idempotent per `(try, seq)`, fenced by the lease epoch) and
//! the artifacts recorded with a try's completion.

use sluice_core::ids::{RunId, TryId};
use sqlx::postgres::PgRow;

use super::PostgresStore;
use super::codec::{self, DbResultExt, artifact_columns, get, wide};
use crate::encoding::{MAX_ROWS, bounded_limit, from_json, to_json};
use crate::{ArtifactRecord, Error, LogChunk, Result};

pub(super) async fn append_log_chunk(
    store: &PostgresStore,
    chunk: &LogChunk,
    epoch: i64,
) -> Result<()> {
    let seq = wide(chunk.seq, "log chunk number")?;
    let lines = to_json(&chunk.lines)?;
    let try_id = chunk.try_id.as_str();
    // The chunk is stored only while the lease with this epoch is live; a
    // chunk already stored under this number stays as it is.
    let inserted = sqlx::query(
        "INSERT INTO log_chunk (try_id, seq, lines) \
         SELECT id, $1, $2::JSON FROM block_try \
         WHERE id = $3 AND status = 'running' AND lease_epoch = $4 \
         ON CONFLICT (try_id, seq) DO NOTHING",
    )
    .bind(seq)
    .bind(&lines)
    .bind(try_id)
    .bind(epoch)
    .execute(&store.pool)
    .await
    .db()?
    .rows_affected()
        == 1;
    if inserted {
        return Ok(());
    }

    // Nothing was written: either this is a re-upload of a stored chunk
    // (accepted, even after the try ended, as long as the epoch is the
    // try's), or the lease is stale. An epoch never changes and a stored
    // chunk never goes away, so this read cannot be contradicted later.
    let row: Option<PgRow> = sqlx::query(
        "SELECT lease_epoch, status, \
           EXISTS (SELECT 1 FROM log_chunk WHERE try_id = $1 AND seq = $2) AS stored \
         FROM block_try WHERE id = $1",
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
    let stored: bool = get(&row, "stored")?;
    if same_epoch && (stored || running) {
        Ok(())
    } else {
        Err(Error::StaleLease(chunk.try_id.clone()))
    }
}

pub(super) async fn read_log(
    store: &PostgresStore,
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
        "SELECT seq, lines::TEXT AS lines FROM log_chunk \
         WHERE try_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
    )
    .bind(try_id.as_str())
    .bind(after)
    .bind(bounded_limit(limit))
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter()
        .map(|row| {
            let lines: String = get(row, "lines")?;
            Ok(LogChunk {
                try_id: try_id.clone(),
                seq: codec::get_narrow(row, "seq")?,
                lines: from_json(&lines, "lines")?,
            })
        })
        .collect()
}

pub(super) async fn list_artifacts(
    store: &PostgresStore,
    run: &RunId,
) -> Result<Vec<ArtifactRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        artifact_columns!(),
        " FROM artifact WHERE run_id = $1 ORDER BY id LIMIT $2"
    ))
    .bind(run.as_str())
    .bind(MAX_ROWS)
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter().map(codec::artifact_from_row).collect()
}
