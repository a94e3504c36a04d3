//! Executors: the processes that claim and run tries, with their heartbeats.

use jiff::Timestamp;
use sluice_core::ids::ExecutorId;

use super::SqliteStore;
use super::codec::{self, DbResultExt, get, get_json, micros, to_json};
use crate::{Error, ExecutorRecord, Result};

/// Records an executor, or replaces the record of one with the same id (a
/// restarted agent registers again).
pub(super) async fn register_executor(
    store: &SqliteStore,
    executor: &ExecutorRecord,
) -> Result<()> {
    let labels = to_json(&executor.labels)?;
    store
        .write(|| async {
            sqlx::query(
                "INSERT INTO executor (id, kind, host, pid, started_at, heartbeat_at, labels) \
                 VALUES (?, ?, ?, ?, ?, ?, ?) \
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
            .bind(&labels)
            .execute(&store.pool)
            .await
            .db()?;
            Ok(())
        })
        .await
}

pub(super) async fn heartbeat_executor(
    store: &SqliteStore,
    id: &ExecutorId,
    at: Timestamp,
) -> Result<()> {
    let updated = store
        .write(|| async {
            let result = sqlx::query("UPDATE executor SET heartbeat_at = ? WHERE id = ?")
                .bind(micros(at))
                .bind(id.as_str())
                .execute(&store.pool)
                .await
                .db()?;
            Ok(result.rows_affected())
        })
        .await?;
    if updated == 0 {
        return Err(Error::NotFound(format!("executor `{id}`")));
    }
    Ok(())
}

pub(super) async fn get_executor(
    store: &SqliteStore,
    id: &ExecutorId,
) -> Result<Option<ExecutorRecord>> {
    let row = sqlx::query(
        "SELECT id, kind, host, pid, started_at, heartbeat_at, labels FROM executor WHERE id = ?",
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
            pid: codec::get_u32(&row, "pid")?,
            started_at: codec::get_timestamp(&row, "started_at")?,
            heartbeat_at: codec::get_timestamp(&row, "heartbeat_at")?,
            labels: get_json(&row, "labels")?,
        })
    })
    .transpose()
}

/// Forgets an executor; removing one that is not recorded does nothing.
pub(super) async fn remove_executor(store: &SqliteStore, id: &ExecutorId) -> Result<()> {
    store
        .write(|| async {
            sqlx::query("DELETE FROM executor WHERE id = ?")
                .bind(id.as_str())
                .execute(&store.pool)
                .await
                .db()?;
            Ok(())
        })
        .await
}
