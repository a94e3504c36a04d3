//! Notification deliveries: recorded idempotently per `(run, attempt, event,
//! channel)`, claimed by one sender at a time (rows locked with `FOR UPDATE
//! SKIP LOCKED`, then a conditional update), finished under the claim's
//! `attempts`. Also the SLA-risk mark of a run and the block timings the SLA
//! estimate is made from.

use jiff::Timestamp;
use sluice_core::ids::RunId;
use sqlx::PgConnection;
use sqlx::postgres::PgRow;

use super::PostgresStore;
use super::codec::{DbResultExt, get, get_json, get_narrow, get_opt_timestamp, get_timestamp};
use crate::encoding::{MAX_ROWS, bounded_limit, micros, to_json};
use crate::{
    BlockTiming, DeliveryClaim, DeliveryOutcome, DeliveryRecord, DeliveryResult, DeliveryStatus,
    Error, NewDelivery, Result,
};

const COLUMNS: &str = "id, run_id, attempt, event, channel, kind, status, attempts, max_attempts, \
     last_error, payload, created_at, next_attempt_at, claimed_until, updated_at, delivered_at";

fn delivery_from_row(row: &PgRow) -> Result<DeliveryRecord> {
    let status: String = get(row, "status")?;
    Ok(DeliveryRecord {
        id: get(row, "id")?,
        run_id: RunId(get(row, "run_id")?),
        attempt: get_narrow(row, "attempt")?,
        event: get(row, "event")?,
        channel: get(row, "channel")?,
        kind: get(row, "kind")?,
        status: DeliveryStatus::parse(&status)
            .ok_or_else(|| Error::Corrupt(format!("unknown delivery status `{status}`")))?,
        attempts: get_narrow(row, "attempts")?,
        max_attempts: get_narrow(row, "max_attempts")?,
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
    tx: &mut PgConnection,
    deliveries: &[NewDelivery],
) -> Result<u32> {
    let mut added = 0;
    for delivery in deliveries {
        let at = micros(delivery.created_at);
        let result = sqlx::query(
            "INSERT INTO notification_delivery (run_id, attempt, event, channel, kind, status, \
               attempts, max_attempts, payload, created_at, next_attempt_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7::JSON, $8, $8, $8) \
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
    store: &PostgresStore,
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
    store: &PostgresStore,
    id: &RunId,
    at: Timestamp,
) -> Result<bool> {
    let set = sqlx::query(
        "UPDATE pipeline_run SET sla_at_risk_at = $1 WHERE id = $2 AND sla_at_risk_at IS NULL",
    )
    .bind(micros(at))
    .bind(id.as_str())
    .execute(&store.pool)
    .await
    .db()?
    .rows_affected()
        == 1;
    if !set {
        let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pipeline_run WHERE id = $1")
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
    store: &PostgresStore,
    claim: &DeliveryClaim,
) -> Result<Vec<DeliveryRecord>> {
    let now = micros(claim.now);
    // The CTE (evaluated once) locks the due rows it picks and skips those
    // another sender is claiming right now; the UPDATE re-checks the claim.
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "WITH picked AS ( \
           SELECT id FROM notification_delivery \
           WHERE status = 'pending' AND next_attempt_at <= $2 \
             AND (claimed_until IS NULL OR claimed_until <= $2) \
           ORDER BY next_attempt_at, id LIMIT $3 \
           FOR UPDATE SKIP LOCKED) \
         UPDATE notification_delivery d \
         SET attempts = d.attempts + 1, claimed_until = $1, updated_at = $2 \
         FROM picked \
         WHERE d.id = picked.id AND d.status = 'pending' \
           AND (d.claimed_until IS NULL OR d.claimed_until <= $2) \
         RETURNING {}",
        COLUMNS
            .split(", ")
            .map(|column| format!("d.{column}"))
            .collect::<Vec<_>>()
            .join(", ")
    )))
    .bind(micros(claim.claimed_until))
    .bind(now)
    .bind(bounded_limit(claim.limit))
    .fetch_all(&store.pool)
    .await
    .db()?;
    let mut claimed = rows
        .iter()
        .map(delivery_from_row)
        .collect::<Result<Vec<_>>>()?;
    claimed.sort_by(|a, b| {
        a.next_attempt_at
            .cmp(&b.next_attempt_at)
            .then(a.id.cmp(&b.id))
    });
    Ok(claimed)
}

pub(super) async fn finish_delivery(
    store: &PostgresStore,
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
    let applied = sqlx::query(
        "UPDATE notification_delivery SET status = $1, \
           last_error = COALESCE($2, last_error), \
           next_attempt_at = $3, delivered_at = $4, claimed_until = NULL, updated_at = $5 \
         WHERE id = $6 AND attempts = $7 AND status = 'pending' \
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
    .db()?
    .rows_affected()
        == 1;
    Ok(applied)
}

pub(super) async fn list_deliveries(
    store: &PostgresStore,
    run: &RunId,
) -> Result<Vec<DeliveryRecord>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM notification_delivery WHERE run_id = $1 ORDER BY id LIMIT $2"
    )))
    .bind(run.as_str())
    .bind(MAX_ROWS)
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter().map(delivery_from_row).collect()
}

pub(super) async fn completed_block_timings(
    store: &PostgresStore,
    pipeline: &str,
    runs: u32,
) -> Result<Vec<BlockTiming>> {
    let rows = sqlx::query(
        "SELECT b.run_id, b.block, b.started_at, b.finished_at \
         FROM (SELECT id, created_at FROM pipeline_run \
               WHERE pipeline = $1 AND status = 'completed' \
               ORDER BY created_at DESC, id DESC LIMIT $2) r \
         JOIN block_run b ON b.run_id = r.id \
         WHERE b.status = 'completed' AND b.reused_from_attempt IS NULL \
           AND b.started_at IS NOT NULL AND b.finished_at IS NOT NULL \
         ORDER BY r.created_at DESC, r.id DESC, b.seq \
         LIMIT $3",
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
