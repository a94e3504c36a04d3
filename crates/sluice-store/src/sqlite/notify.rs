//! Notification deliveries: recorded idempotently per `(run, attempt, event,
//! channel)`, claimed by one sender at a time with a conditional update
//! inside a `BEGIN IMMEDIATE` transaction, finished under the claim's
//! `attempts`. Also the SLA-risk mark of a run and the block timings the SLA
//! estimate is made from.

use jiff::Timestamp;
use sluice_core::ids::RunId;
use sqlx::SqliteConnection;
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use super::codec::{
    DbResultExt, MAX_ROWS, bounded_limit, get, get_json, get_opt_timestamp, get_timestamp, get_u32,
    micros, to_json,
};
use crate::{
    BlockTiming, DeliveryClaim, DeliveryOutcome, DeliveryRecord, DeliveryResult, DeliveryStatus,
    Error, NewDelivery, Result,
};

const COLUMNS: &str = "id, run_id, attempt, event, channel, kind, status, attempts, max_attempts, \
     last_error, payload, created_at, next_attempt_at, claimed_until, updated_at, delivered_at";

fn delivery_from_row(row: &SqliteRow) -> Result<DeliveryRecord> {
    let status: String = get(row, "status")?;
    Ok(DeliveryRecord {
        id: get(row, "id")?,
        run_id: RunId(get(row, "run_id")?),
        attempt: get_u32(row, "attempt")?,
        event: get(row, "event")?,
        channel: get(row, "channel")?,
        kind: get(row, "kind")?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| Error::Corrupt(format!("unknown delivery status `{status}`")))?,
        attempts: get_u32(row, "attempts")?,
        max_attempts: get_u32(row, "max_attempts")?,
        last_error: get(row, "last_error")?,
        payload: get_json(row, "payload")?,
        created_at: get_timestamp(row, "created_at")?,
        next_attempt_at: get_opt_timestamp(row, "next_attempt_at")?,
        claimed_until: get_opt_timestamp(row, "claimed_until")?,
        updated_at: get_timestamp(row, "updated_at")?,
        delivered_at: get_opt_timestamp(row, "delivered_at")?,
    })
}

/// Inserts deliveries on an open transaction, leaving those already
/// recorded; returns how many were added.
pub(super) async fn insert_deliveries(
    tx: &mut SqliteConnection,
    deliveries: &[NewDelivery],
) -> Result<u32> {
    let mut added = 0;
    for delivery in deliveries {
        let at = micros(delivery.created_at);
        let result = sqlx::query(
            "INSERT INTO notification_delivery (run_id, attempt, event, channel, kind, status, \
               attempts, max_attempts, payload, created_at, next_attempt_at, updated_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, 'pending', 0, ?6, ?7, ?8, ?8, ?8) \
             ON CONFLICT (run_id, attempt, event, channel) DO NOTHING",
        )
        .bind(delivery.run_id.as_str())
        .bind(i64::from(delivery.attempt))
        .bind(&delivery.event)
        .bind(&delivery.channel)
        .bind(&delivery.kind)
        .bind(i64::from(delivery.max_attempts))
        .bind(to_json(&delivery.payload)?)
        .bind(at)
        .execute(&mut *tx)
        .await
        .db()?;
        added += u32::from(result.rows_affected() == 1);
    }
    Ok(added)
}

pub(super) async fn record_deliveries(
    store: &SqliteStore,
    deliveries: &[NewDelivery],
) -> Result<u32> {
    if deliveries.is_empty() {
        return Ok(0);
    }
    store
        .write(|| async {
            let mut tx = store.begin().await?;
            let added = insert_deliveries(&mut tx, deliveries).await?;
            tx.commit().await.db()?;
            Ok(added)
        })
        .await
}

pub(super) async fn mark_sla_at_risk(
    store: &SqliteStore,
    id: &RunId,
    at: Timestamp,
) -> Result<bool> {
    let set = store
        .write(|| async {
            let result = sqlx::query(
                "UPDATE pipeline_run SET sla_at_risk_at = ? WHERE id = ? AND sla_at_risk_at IS NULL",
            )
            .bind(micros(at))
            .bind(id.as_str())
            .execute(&store.pool)
            .await
            .db()?;
            Ok(result.rows_affected() == 1)
        })
        .await?;
    if !set {
        let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM pipeline_run WHERE id = ?")
            .bind(id.as_str())
            .fetch_optional(&store.pool)
            .await
            .db()?;
        if exists.is_none() {
            return Err(Error::NotFound(format!("run `{id}`")));
        }
    }
    Ok(set)
}

pub(super) async fn claim_deliveries(
    store: &SqliteStore,
    claim: &DeliveryClaim,
) -> Result<Vec<DeliveryRecord>> {
    // Every reconcile pass asks; nearly always nothing is due. A plain read
    // answers that without taking the write lock, which would stall this
    // process's claims and completions behind an empty transaction.
    let due: Option<i64> = sqlx::query_scalar(
        "SELECT id FROM notification_delivery \
         WHERE status = 'pending' AND next_attempt_at <= ?1 \
           AND (claimed_until IS NULL OR claimed_until <= ?1) \
         LIMIT 1",
    )
    .bind(micros(claim.now))
    .fetch_optional(&store.pool)
    .await
    .db()?;
    if due.is_none() {
        return Ok(Vec::new());
    }
    store
        .write(|| async {
            let mut tx = store.begin().await?;
            let now = micros(claim.now);
            let ids: Vec<i64> = sqlx::query_scalar(
                "SELECT id FROM notification_delivery \
                 WHERE status = 'pending' AND next_attempt_at <= ?1 \
                   AND (claimed_until IS NULL OR claimed_until <= ?1) \
                 ORDER BY next_attempt_at, id LIMIT ?2",
            )
            .bind(now)
            .bind(bounded_limit(claim.limit))
            .fetch_all(&mut *tx)
            .await
            .db()?;
            let mut claimed = Vec::with_capacity(ids.len());
            for id in ids {
                let row = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "UPDATE notification_delivery \
                     SET attempts = attempts + 1, claimed_until = ?1, updated_at = ?2 \
                     WHERE id = ?3 AND status = 'pending' \
                       AND (claimed_until IS NULL OR claimed_until <= ?2) \
                     RETURNING {COLUMNS}"
                )))
                .bind(micros(claim.claimed_until))
                .bind(now)
                .bind(id)
                .fetch_optional(&mut *tx)
                .await
                .db()?;
                if let Some(row) = row {
                    claimed.push(delivery_from_row(&row)?);
                }
            }
            tx.commit().await.db()?;
            Ok(claimed)
        })
        .await
}

pub(super) async fn finish_delivery(
    store: &SqliteStore,
    outcome: &DeliveryOutcome,
) -> Result<bool> {
    let at = micros(outcome.at);
    let (status, error, next_attempt_at, delivered_at) = match &outcome.result {
        DeliveryResult::Delivered => (DeliveryStatus::Delivered, None, None, Some(at)),
        DeliveryResult::Retry { error, retry_at } => (
            DeliveryStatus::Pending,
            Some(error.as_str()),
            Some(micros(*retry_at)),
            None,
        ),
        DeliveryResult::Failed { error } => {
            (DeliveryStatus::Failed, Some(error.as_str()), None, None)
        }
    };
    store
        .write(|| async {
            let result = sqlx::query(
                "UPDATE notification_delivery SET status = ?1, \
                   last_error = CASE WHEN ?2 IS NULL THEN last_error ELSE ?2 END, \
                   next_attempt_at = ?3, delivered_at = ?4, claimed_until = NULL, updated_at = ?5 \
                 WHERE id = ?6 AND attempts = ?7 AND status = 'pending' \
                   AND claimed_until IS NOT NULL",
            )
            .bind(status.as_str())
            .bind(error)
            .bind(next_attempt_at)
            .bind(delivered_at)
            .bind(at)
            .bind(outcome.id)
            .bind(i64::from(outcome.attempts))
            .execute(&store.pool)
            .await
            .db()?;
            Ok(result.rows_affected() == 1)
        })
        .await
}

pub(super) async fn list_deliveries(
    store: &SqliteStore,
    run: &RunId,
) -> Result<Vec<DeliveryRecord>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notification_delivery WHERE run_id = ? ORDER BY id LIMIT ?"
    )))
    .bind(run.as_str())
    .bind(MAX_ROWS)
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter().map(delivery_from_row).collect()
}

pub(super) async fn completed_block_timings(
    store: &SqliteStore,
    pipeline: &str,
    runs: u32,
) -> Result<Vec<BlockTiming>> {
    let rows = sqlx::query(
        "SELECT b.run_id, b.block, b.started_at, b.finished_at \
         FROM (SELECT id, created_at FROM pipeline_run \
               WHERE pipeline = ?1 AND status = 'completed' \
               ORDER BY created_at DESC, id DESC LIMIT ?2) r \
         JOIN block_run b ON b.run_id = r.id \
         WHERE b.status = 'completed' AND b.reused_from_attempt IS NULL \
           AND b.started_at IS NOT NULL AND b.finished_at IS NOT NULL \
         ORDER BY r.created_at DESC, r.id DESC, b.seq \
         LIMIT ?3",
    )
    .bind(pipeline)
    .bind(bounded_limit(runs))
    .bind(MAX_ROWS)
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter()
        .map(|row| {
            Ok(BlockTiming {
                run_id: RunId(get(row, "run_id")?),
                block: get(row, "block")?,
                started_at: get_timestamp(row, "started_at")?,
                finished_at: get_timestamp(row, "finished_at")?,
            })
        })
        .collect()
}
