//! The audit log (appended by every state-changing action, read newest first
//! by id) and the executors that claim and run tries, with their heartbeats.

use jiff::Timestamp;
use sluice_core::ids::ExecutorId;

use super::PostgresStore;
use super::codec::{self, DbResultExt, get, get_json};
use crate::encoding::{bounded_limit, micros, to_json};
use crate::{AuditEvent, Error, ExecutorRecord, NewAuditEvent, Result};

pub(super) async fn append_audit(store: &PostgresStore, event: &NewAuditEvent) -> Result<()> {
    sqlx::query(
        "INSERT INTO audit_event (at, actor, action, target, details) \
         VALUES ($1, $2, $3, $4, $5::JSON)",
    )
    .bind(micros(event.at))
    .bind(&event.actor)
    .bind(&event.action)
    .bind(&event.target)
    .bind(to_json(&event.details)?)
    .execute(&store.pool)
    .await
    .db()?;
    Ok(())
}

pub(super) async fn list_audit(
    store: &PostgresStore,
    limit: u32,
    before_id: Option<i64>,
) -> Result<Vec<AuditEvent>> {
    // A missing `before_id` becomes the largest id, so that one plan walks
    // the primary key backwards in both cases.
    let rows = sqlx::query(
        "SELECT id, at, actor, action, target, details FROM audit_event \
         WHERE id < $1 ORDER BY id DESC LIMIT $2",
    )
    .bind(before_id.unwrap_or(i64::MAX))
    .bind(bounded_limit(limit))
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter()
        .map(|row| {
            Ok(AuditEvent {
                id: get(row, "id")?,
                at: codec::get_timestamp(row, "at")?,
                actor: get(row, "actor")?,
                action: get(row, "action")?,
                target: get(row, "target")?,
                details: get_json(row, "details")?,
            })
        })
        .collect()
}

/// Records an executor, or replaces the record of one with the same id (a
/// restarted agent registers again).
pub(super) async fn register_executor(
    store: &PostgresStore,
    executor: &ExecutorRecord,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO executor (id, kind, host, pid, started_at, heartbeat_at, labels) \
         VALUES ($1, $2, $3, $4, $5, $6, $7::JSON) \
         ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, host = excluded.host, \
           pid = excluded.pid, started_at = excluded.started_at, \
           heartbeat_at = excluded.heartbeat_at, labels = excluded.labels",
    )
    .bind(executor.id.as_str())
    .bind(&executor.kind)
    .bind(&executor.host)
    .bind(i64::from(executor.pid))
    .bind(micros(executor.started_at))
    .bind(micros(executor.heartbeat_at))
    .bind(to_json(&executor.labels)?)
    .execute(&store.pool)
    .await
    .db()?;
    Ok(())
}

pub(super) async fn heartbeat_executor(
    store: &PostgresStore,
    id: &ExecutorId,
    at: Timestamp,
) -> Result<()> {
    let updated = sqlx::query("UPDATE executor SET heartbeat_at = $1 WHERE id = $2")
        .bind(micros(at))
        .bind(id.as_str())
        .execute(&store.pool)
        .await
        .db()?
        .rows_affected();
    if updated == 0 {
        return Err(Error::NotFound(format!("executor `{id}`")));
    }
    Ok(())
}

pub(super) async fn get_executor(
    store: &PostgresStore,
    id: &ExecutorId,
) -> Result<Option<ExecutorRecord>> {
    let row = sqlx::query(
        "SELECT id, kind, host, pid, started_at, heartbeat_at, labels \
         FROM executor WHERE id = $1",
    )
    .bind(id.as_str())
    .fetch_optional(&store.pool)
    .await
    .db()?;
    row.map(|row| {
        Ok(ExecutorRecord {
            id: ExecutorId(get(&row, "id")?),
            kind: get(&row, "kind")?,
            host: get(&row, "host")?,
            pid: codec::get_narrow(&row, "pid")?,
            started_at: codec::get_timestamp(&row, "started_at")?,
            heartbeat_at: codec::get_timestamp(&row, "heartbeat_at")?,
            labels: get_json(&row, "labels")?,
        })
    })
    .transpose()
}

/// Forgets an executor; removing one that is not recorded does nothing.
pub(super) async fn remove_executor(store: &PostgresStore, id: &ExecutorId) -> Result<()> {
    sqlx::query("DELETE FROM executor WHERE id = $1")
        .bind(id.as_str())
        .execute(&store.pool)
        .await
        .db()?;
    Ok(())
}
