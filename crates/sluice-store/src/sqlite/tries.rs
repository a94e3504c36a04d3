//! Tries and their leases: claiming the next queued block run, renewing a
//! lease, completing a try (fenced by its lease epoch), and the listings the
//! lease reaper and the UI read.

use std::collections::BTreeMap;

use jiff::Timestamp;
use sluice_core::ids::{BlockRunId, RunId, TryId};
use sluice_core::status::BlockRunStatus;
use sqlx::sqlite::SqliteRow;
use sqlx::{Sqlite, Transaction};

use super::SqliteStore;
use super::codec::{
    self, DbResultExt, block_run_columns, get, get_json, micros, to_json, try_columns,
};
use super::runs::fetch_run;
use crate::{
    BlockRunNext, Claim, ClaimRequest, Error, LeaseState, Result, TryCompletion, TryRecord,
    TryStatus,
};

/// Candidates read per batch when the executor's labels filter them.
const CLAIM_BATCH: i64 = 64;
/// Batches read before giving up on finding a block run the labels allow.
const CLAIM_BATCHES: usize = 16;

pub(super) async fn claim(store: &SqliteStore, request: &ClaimRequest) -> Result<Option<Claim>> {
    store.write(|| claim_once(store, request)).await
}

async fn claim_once(store: &SqliteStore, request: &ClaimRequest) -> Result<Option<Claim>> {
    let mut tx = store.begin().await?;
    let Some(block_run_id) = find_claimable(&mut tx, request).await? else {
        return Ok(None);
    };
    BlockRunStatus::Queued.check_transition(BlockRunStatus::Running)?;
    let now = micros(request.now);
    let row = sqlx::query(concat!(
        "UPDATE block_run SET status = 'running', started_at = COALESCE(started_at, ?), \
           tries = tries + 1, retry_at = NULL \
         WHERE id = ? AND status = 'queued' RETURNING ",
        block_run_columns!()
    ))
    .bind(now)
    .bind(&block_run_id)
    .fetch_one(&mut *tx)
    .await
    .db()?;
    let block_run = codec::block_run_from_row(&row)?;

    // The new lease's epoch is above every earlier try's, so a write that
    // still carries an old epoch is refused.
    let try_id = uuid::Uuid::now_v7().to_string();
    let row = sqlx::query(concat!(
        "INSERT INTO block_try (id, block_run_id, run_id, try_number, status, executor, \
           lease_epoch, lease_expires_at, started_at) \
         SELECT ?1, ?2, ?3, ?4, 'running', ?5, COALESCE(MAX(lease_epoch), 0) + 1, ?6, ?7 \
         FROM block_try WHERE block_run_id = ?2 RETURNING ",
        try_columns!()
    ))
    .bind(&try_id)
    .bind(block_run.id.as_str())
    .bind(block_run.run_id.as_str())
    .bind(i64::from(block_run.tries))
    .bind(request.executor.as_str())
    .bind(micros(request.lease_expires_at))
    .bind(now)
    .fetch_one(&mut *tx)
    .await
    .db()?;
    let attempt_try = codec::try_from_row(&row)?;

    let run = fetch_run(&mut tx, &block_run.run_id)
        .await?
        .ok_or_else(|| Error::Corrupt(format!("block run `{}` has no run", block_run.id)))?;
    tx.commit().await.db()?;
    Ok(Some(Claim {
        attempt_try,
        block_run,
        run,
    }))
}

/// The id of the first block run the request may claim, in claim order:
/// priority (highest first), then queue rank (the queued time unless an
/// operator moved the block run), then id.
async fn find_claimable(
    tx: &mut Transaction<'static, Sqlite>,
    request: &ClaimRequest,
) -> Result<Option<String>> {
    let mut after: Option<(i64, i64, String)> = None;
    for _ in 0..CLAIM_BATCHES {
        let rows = candidates(tx, request, after.as_ref()).await?;
        for row in &rows {
            let labels: BTreeMap<String, String> = get_json(row, "labels")?;
            if offers_labels(request.labels.as_ref(), &labels) {
                return Ok(Some(get(row, "id")?));
            }
        }
        let Some(last) = rows.last() else {
            return Ok(None);
        };
        if (rows.len() as i64) < CLAIM_BATCH {
            return Ok(None);
        }
        after = Some((
            get(last, "priority")?,
            get::<Option<i64>>(last, "queue_rank")?.unwrap_or(0),
            get(last, "id")?,
        ));
    }
    Ok(None)
}

/// One batch of claimable block runs, after the `after` position.
async fn candidates(
    tx: &mut Transaction<'static, Sqlite>,
    request: &ClaimRequest,
    after: Option<&(i64, i64, String)>,
) -> Result<Vec<SqliteRow>> {
    let (priority, queue_rank, id) = match after {
        Some((priority, queue_rank, id)) => (Some(*priority), Some(*queue_rank), Some(id.as_str())),
        None => (None, None, None),
    };
    // Without offered labels any block run will do, so one row is enough.
    let limit = if request.labels.is_some() {
        CLAIM_BATCH
    } else {
        1
    };
    sqlx::query(
        "SELECT b.id, b.priority, b.queue_rank, b.labels \
         FROM block_run b JOIN pipeline_run r ON r.id = b.run_id \
         WHERE b.status = 'queued' \
           AND (b.retry_at IS NULL OR b.retry_at <= ?1) \
           AND r.status = 'running' AND r.attempt = b.attempt \
           AND r.cancel_requested_at IS NULL \
           AND (r.owner = ?2 OR (?2 IS NULL AND r.owner IS NULL)) \
           AND (r.block_concurrency IS NULL OR r.block_concurrency > \
                (SELECT COUNT(*) FROM block_run x WHERE x.run_id = b.run_id \
                   AND x.attempt = b.attempt AND x.status = 'running')) \
           AND (?3 IS NULL OR b.priority < ?3 OR (b.priority = ?3 AND \
                (b.queue_rank > ?4 OR (b.queue_rank = ?4 AND b.id > ?5)))) \
         ORDER BY b.priority DESC, b.queue_rank, b.id \
         LIMIT ?6",
    )
    .bind(micros(request.now))
    .bind(request.owner.as_ref().map(|owner| owner.as_str()))
    .bind(priority)
    .bind(queue_rank)
    .bind(id)
    .bind(limit)
    .fetch_all(&mut **tx)
    .await
    .db()
}

/// Whether an executor offering `offered` may run a block that requires
/// `required` (`None` offers everything).
fn offers_labels(
    offered: Option<&BTreeMap<String, String>>,
    required: &BTreeMap<String, String>,
) -> bool {
    match offered {
        None => true,
        Some(offered) => required
            .iter()
            .all(|(key, value)| offered.get(key) == Some(value)),
    }
}

pub(super) async fn renew_lease(
    store: &SqliteStore,
    try_id: &TryId,
    epoch: i64,
    expires_at: Timestamp,
) -> Result<LeaseState> {
    // The try must stop when its run is being cancelled or has ended, or
    // when another writer already moved its block run on.
    let cancel_requested: Option<bool> = store
        .write(|| async {
            sqlx::query_scalar(
                "UPDATE block_try SET lease_expires_at = ?1 \
                 WHERE id = ?2 AND status = 'running' AND lease_epoch = ?3 \
                 RETURNING \
                   (SELECT r.cancel_requested_at IS NOT NULL \
                           OR r.status IN ('completed', 'failed', 'cancelled') \
                    FROM pipeline_run r WHERE r.id = block_try.run_id) \
                   OR (SELECT b.status <> 'running' \
                       FROM block_run b WHERE b.id = block_try.block_run_id)",
            )
            .bind(micros(expires_at))
            .bind(try_id.as_str())
            .bind(epoch)
            .fetch_optional(&store.pool)
            .await
            .db()
        })
        .await?;
    match cancel_requested {
        Some(cancel_requested) => Ok(LeaseState { cancel_requested }),
        None => Err(Error::StaleLease(try_id.clone())),
    }
}

pub(super) async fn complete_try(store: &SqliteStore, completion: &TryCompletion) -> Result<()> {
    if completion.status == TryStatus::Running {
        return Err(Error::Conflict(format!(
            "try `{}` cannot end with status `running`",
            completion.try_id
        )));
    }
    let next = match completion.next {
        BlockRunNext::Retry { .. } => BlockRunStatus::Queued,
        BlockRunNext::Finish { status } => status,
    };
    BlockRunStatus::Running.check_transition(next)?;
    store.write(|| complete_try_once(store, completion)).await
}

async fn complete_try_once(store: &SqliteStore, completion: &TryCompletion) -> Result<()> {
    let mut tx = store.begin().await?;
    let at = micros(completion.at);
    let run_id: Option<String> = sqlx::query_scalar(
        "UPDATE block_try SET status = ?, finished_at = ?, exit_code = ?, error = ?, \
           timed_out = ? \
         WHERE id = ? AND block_run_id = ? AND status = 'running' AND lease_epoch = ? \
         RETURNING run_id",
    )
    .bind(completion.status.as_str())
    .bind(at)
    .bind(completion.exit_code)
    .bind(completion.error.as_deref())
    .bind(completion.timed_out)
    .bind(completion.try_id.as_str())
    .bind(completion.block_run_id.as_str())
    .bind(completion.epoch)
    .fetch_optional(&mut *tx)
    .await
    .db()?;
    let Some(run_id) = run_id.map(RunId) else {
        return Err(Error::StaleLease(completion.try_id.clone()));
    };

    let moved = match &completion.next {
        BlockRunNext::Retry { retry_at } => sqlx::query(
            "UPDATE block_run SET status = 'queued', retry_at = ?1, queued_at = ?2, \
               queue_rank = ?2 \
             WHERE id = ?3 AND status = 'running'",
        )
        .bind(micros(*retry_at))
        .bind(at)
        .bind(completion.block_run_id.as_str())
        .execute(&mut *tx)
        .await
        .db()?,
        BlockRunNext::Finish { status } => sqlx::query(
            "UPDATE block_run SET status = ?, finished_at = ?, outputs = ?, data = ?, error = ?, \
               exit_code = ?, timed_out = ? \
             WHERE id = ? AND status = 'running'",
        )
        .bind(status.as_str())
        .bind(at)
        .bind(to_json(&completion.outputs)?)
        .bind(completion.data.as_ref().map(to_json).transpose()?)
        .bind(completion.error.as_deref())
        .bind(completion.exit_code)
        .bind(completion.timed_out)
        .bind(completion.block_run_id.as_str())
        .execute(&mut *tx)
        .await
        .db()?,
    }
    .rows_affected();
    if moved == 0 {
        // Another writer (a cancellation, a timeout) already decided the
        // block run; the try's own end is still recorded.
        tracing::debug!(
            block_run = %completion.block_run_id,
            "try ended after its block run had moved on"
        );
    }

    for artifact in &completion.artifacts {
        let size = i64::try_from(artifact.size).map_err(|_| {
            Error::Conflict(format!(
                "artifact `{}` is too large to record",
                artifact.name
            ))
        })?;
        sqlx::query(
            "INSERT INTO artifact (run_id, block_run_id, try_id, name, size, sha256, created_at) \
             VALUES (?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(run_id.as_str())
        .bind(completion.block_run_id.as_str())
        .bind(completion.try_id.as_str())
        .bind(&artifact.name)
        .bind(size)
        .bind(&artifact.sha256)
        .bind(at)
        .execute(&mut *tx)
        .await
        .db()?;
    }
    tx.commit().await.db()
}

pub(super) async fn expired_tries(
    store: &SqliteStore,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<TryRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        try_columns!(),
        " FROM block_try WHERE status = 'running' AND lease_expires_at < ? \
          ORDER BY lease_expires_at, id LIMIT ?"
    ))
    .bind(micros(now))
    .bind(codec::bounded_limit(limit))
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter().map(codec::try_from_row).collect()
}

pub(super) async fn list_run_tries(store: &SqliteStore, run: &RunId) -> Result<Vec<TryRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        try_columns!(),
        " FROM block_try WHERE run_id = ? ORDER BY started_at, rowid LIMIT ?"
    ))
    .bind(run.as_str())
    .bind(codec::MAX_ROWS)
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter().map(codec::try_from_row).collect()
}

pub(super) async fn list_tries(
    store: &SqliteStore,
    block_run: &BlockRunId,
) -> Result<Vec<TryRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        try_columns!(),
        " FROM block_try WHERE block_run_id = ? ORDER BY try_number LIMIT ?"
    ))
    .bind(block_run.as_str())
    .bind(codec::MAX_ROWS)
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter().map(codec::try_from_row).collect()
}

pub(super) async fn get_try(store: &SqliteStore, id: &TryId) -> Result<Option<TryRecord>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        try_columns!(),
        " FROM block_try WHERE id = ?"
    ))
    .bind(id.as_str())
    .fetch_optional(&store.pool)
    .await
    .db()?;
    row.as_ref().map(codec::try_from_row).transpose()
}
