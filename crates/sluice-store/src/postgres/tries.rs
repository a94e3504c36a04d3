//! Tries and their leases: claiming the next queued block run, renewing a
//! lease, completing a try (fenced by its lease epoch), and the listings the
//! lease reaper and the UI read.

use jiff::Timestamp;
use sluice_core::ids::{BlockRunId, RunId, TryId};
use sluice_core::status::BlockRunStatus;
use sqlx::types::Json;
use sqlx::{Postgres, Transaction};

use super::PostgresStore;
use super::codec::{self, DbResultExt, block_run_columns, get, try_columns, wide};
use super::runs::fetch_run;
use crate::encoding::{MAX_ROWS, bounded_limit, micros, to_json};
use crate::{
    BlockRunNext, Claim, ClaimRequest, Error, LeaseState, Result, TryCompletion, TryRecord,
    TryStatus,
};

/// Candidates tried before giving up when each one found belongs to a run
/// whose `block_concurrency` another claimer has just filled.
const CLAIM_CANDIDATES: usize = 16;

pub(super) async fn claim(store: &PostgresStore, request: &ClaimRequest) -> Result<Option<Claim>> {
    BlockRunStatus::Queued.check_transition(BlockRunStatus::Running)?;
    store.write(|| claim_once(store, request)).await
}

async fn claim_once(store: &PostgresStore, request: &ClaimRequest) -> Result<Option<Claim>> {
    let mut tx = store.begin().await?;
    let Some(block_run_id) = find_claimable(&mut tx, request).await? else {
        return Ok(None);
    };
    let now = micros(request.now);
    // The block run is locked by this transaction and still queued, so this
    // update applies.
    let row = sqlx::query(concat!(
        "UPDATE block_run SET status = 'running', started_at = COALESCE(started_at, $1), \
           tries = tries + 1, retry_at = NULL \
         WHERE id = $2 AND status = 'queued' RETURNING ",
        block_run_columns!()
    ))
    .bind(now)
    .bind(block_run_id.as_str())
    .fetch_one(&mut *tx)
    .await
    .db()?;
    let block_run = codec::block_run_from_row(&row)?;

    // The new lease's epoch is above every earlier try's, so a write that
    // still carries an old epoch is refused. The block run's lock keeps any
    // other claimer from computing the same epoch.
    let try_id = uuid::Uuid::now_v7().to_string();
    let row = sqlx::query(concat!(
        "INSERT INTO block_try (id, block_run_id, run_id, try_number, status, executor, \
           lease_epoch, lease_expires_at, started_at) \
         SELECT $1, $2, $3, $4, 'running', $5, COALESCE(MAX(lease_epoch), 0) + 1, $6, $7 \
         FROM block_try WHERE block_run_id = $2 RETURNING ",
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

/// Locks and returns the id of the first block run the request may claim,
/// in claim order: priority (highest first), then queue rank (the queued
/// time unless an operator moved the block run), then id. Block runs another transaction has locked are skipped,
/// so concurrent claimers spread over the queue instead of waiting.
async fn find_claimable(
    tx: &mut Transaction<'static, Postgres>,
    request: &ClaimRequest,
) -> Result<Option<BlockRunId>> {
    // Runs whose `block_concurrency` turned out to be full under their lock.
    let mut full_runs: Vec<String> = Vec::new();
    for _ in 0..CLAIM_CANDIDATES {
        // The labels a block run requires must be a subset of the offered
        // ones: JSONB containment over flat objects of strings says exactly
        // that, so the filter runs in the database and only the block run
        // that is taken gets locked.
        let row = sqlx::query(
            "SELECT b.id, b.run_id, b.attempt, r.block_concurrency \
             FROM block_run b JOIN pipeline_run r ON r.id = b.run_id \
             WHERE b.status = 'queued' \
               AND (b.retry_at IS NULL OR b.retry_at <= $1) \
               AND r.status = 'running' AND r.attempt = b.attempt \
               AND r.cancel_requested_at IS NULL \
               AND r.owner IS NOT DISTINCT FROM $2 \
               AND ($3::JSONB IS NULL OR b.labels <@ $3::JSONB) \
               AND b.run_id <> ALL($4::TEXT[]) \
               AND (r.block_concurrency IS NULL OR r.block_concurrency > \
                    (SELECT COUNT(*) FROM block_run x WHERE x.run_id = b.run_id \
                       AND x.attempt = b.attempt AND x.status = 'running')) \
             ORDER BY b.priority DESC, b.queue_rank, b.id \
             LIMIT 1 \
             FOR NO KEY UPDATE OF b SKIP LOCKED",
        )
        .bind(micros(request.now))
        .bind(request.owner.as_ref().map(|owner| owner.as_str()))
        .bind(request.labels.as_ref().map(Json))
        .bind(full_runs.as_slice())
        .fetch_optional(&mut **tx)
        .await
        .db()?;
        let Some(row) = row else {
            return Ok(None);
        };
        let id = BlockRunId(get(&row, "id")?);
        let Some(limit) = get::<Option<i64>>(&row, "block_concurrency")? else {
            return Ok(Some(id));
        };
        let run_id = RunId(get(&row, "run_id")?);
        let attempt: i64 = get(&row, "attempt")?;
        if has_free_slot(tx, &run_id, attempt, limit).await? {
            return Ok(Some(id));
        }
        full_runs.push(run_id.0);
    }
    Ok(None)
}

/// Whether a run's attempt runs fewer than `limit` block runs, counted
/// under the run's lock: claimers of the same run take turns here, and each
/// one counts after the previous one committed. The count above, without
/// the lock, only narrowed the candidates.
async fn has_free_slot(
    tx: &mut Transaction<'static, Postgres>,
    run_id: &RunId,
    attempt: i64,
    limit: i64,
) -> Result<bool> {
    sqlx::query("SELECT 1 FROM pipeline_run WHERE id = $1 FOR NO KEY UPDATE")
        .bind(run_id.as_str())
        .execute(&mut **tx)
        .await
        .db()?;
    // A statement of its own: it reads what was committed while this
    // transaction waited for the lock.
    let running: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM block_run \
         WHERE run_id = $1 AND attempt = $2 AND status = 'running'",
    )
    .bind(run_id.as_str())
    .bind(attempt)
    .fetch_one(&mut **tx)
    .await
    .db()?;
    Ok(running < limit)
}

pub(super) async fn renew_lease(
    store: &PostgresStore,
    try_id: &TryId,
    epoch: i64,
    expires_at: Timestamp,
) -> Result<LeaseState> {
    // The try must stop when its run is being cancelled or has ended, or
    // when another writer already moved its block run on.
    let cancel_requested: Option<bool> = sqlx::query_scalar(
        "UPDATE block_try SET lease_expires_at = $1 \
         WHERE id = $2 AND status = 'running' AND lease_epoch = $3 \
         RETURNING \
           COALESCE((SELECT r.cancel_requested_at IS NOT NULL \
                            OR r.status IN ('completed', 'failed', 'cancelled') \
                     FROM pipeline_run r WHERE r.id = block_try.run_id), TRUE) \
           OR COALESCE((SELECT b.status <> 'running' \
                        FROM block_run b WHERE b.id = block_try.block_run_id), TRUE)",
    )
    .bind(micros(expires_at))
    .bind(try_id.as_str())
    .bind(epoch)
    .fetch_optional(&store.pool)
    .await
    .db()?;
    match cancel_requested {
        Some(cancel_requested) => Ok(LeaseState { cancel_requested }),
        None => Err(Error::StaleLease(try_id.clone())),
    }
}

pub(super) async fn complete_try(store: &PostgresStore, completion: &TryCompletion) -> Result<()> {
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

async fn complete_try_once(store: &PostgresStore, completion: &TryCompletion) -> Result<()> {
    let mut tx = store.begin().await?;
    let at = micros(completion.at);
    let run_id: Option<String> = sqlx::query_scalar(
        "UPDATE block_try SET status = $1, finished_at = $2, exit_code = $3, error = $4, \
           timed_out = $5 \
         WHERE id = $6 AND block_run_id = $7 AND status = 'running' AND lease_epoch = $8 \
         RETURNING run_id",
    )
    .bind(completion.status.as_str())
    .bind(at)
    .bind(completion.exit_code.map(i64::from))
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
            "UPDATE block_run SET status = 'queued', retry_at = $1, queued_at = $2, \
               queue_rank = $2 \
             WHERE id = $3 AND status = 'running'",
        )
        .bind(micros(*retry_at))
        .bind(at)
        .bind(completion.block_run_id.as_str())
        .execute(&mut *tx)
        .await
        .db()?,
        BlockRunNext::Finish { status } => sqlx::query(
            "UPDATE block_run SET status = $1, finished_at = $2, outputs = $3::JSON, \
               data = $4::JSON, \
               error = $5, exit_code = $6, timed_out = $7 \
             WHERE id = $8 AND status = 'running'",
        )
        .bind(status.as_str())
        .bind(at)
        .bind(to_json(&completion.outputs)?)
        .bind(completion.data.as_ref().map(to_json).transpose()?)
        .bind(completion.error.as_deref())
        .bind(completion.exit_code.map(i64::from))
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
        let size = wide(
            artifact.size,
            &format!("the size of artifact `{}`", artifact.name),
        )?;
        sqlx::query(
            "INSERT INTO artifact (run_id, block_run_id, try_id, name, size, sha256, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
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
    store: &PostgresStore,
    now: Timestamp,
    limit: u32,
) -> Result<Vec<TryRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        try_columns!(),
        " FROM block_try WHERE status = 'running' AND lease_expires_at < $1 \
          ORDER BY lease_expires_at, id LIMIT $2"
    ))
    .bind(micros(now))
    .bind(bounded_limit(limit))
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter().map(codec::try_from_row).collect()
}

pub(super) async fn list_run_tries(store: &PostgresStore, run: &RunId) -> Result<Vec<TryRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        try_columns!(),
        " FROM block_try WHERE run_id = $1 ORDER BY started_at, seq LIMIT $2"
    ))
    .bind(run.as_str())
    .bind(MAX_ROWS)
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter().map(codec::try_from_row).collect()
}

pub(super) async fn list_tries(
    store: &PostgresStore,
    block_run: &BlockRunId,
) -> Result<Vec<TryRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        try_columns!(),
        " FROM block_try WHERE block_run_id = $1 ORDER BY try_number LIMIT $2"
    ))
    .bind(block_run.as_str())
    .bind(MAX_ROWS)
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter().map(codec::try_from_row).collect()
}

pub(super) async fn get_try(store: &PostgresStore, id: &TryId) -> Result<Option<TryRecord>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        try_columns!(),
        " FROM block_try WHERE id = $1"
    ))
    .bind(id.as_str())
    .fetch_optional(&store.pool)
    .await
    .db()?;
    row.as_ref().map(codec::try_from_row).transpose()
}
