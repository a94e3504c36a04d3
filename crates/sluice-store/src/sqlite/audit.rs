//! The audit log: appended by every state-changing action, read newest first
//! by id.

use super::SqliteStore;
use super::codec::{self, DbResultExt, get, get_json, micros, to_json};
use crate::{AuditEvent, NewAuditEvent, Result};

pub(super) async fn append_audit(store: &SqliteStore, event: &NewAuditEvent) -> Result<()> {
    let details = to_json(&event.details)?;
    store
        .write(|| async {
            sqlx::query(
                "INSERT INTO audit_event (at, actor, action, target, details) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(micros(event.at))
            .bind(&event.actor)
            .bind(&event.action)
            .bind(&event.target)
            .bind(&details)
            .execute(&store.pool)
            .await
            .db()?;
            Ok(())
        })
        .await
}

pub(super) async fn list_audit(
    store: &SqliteStore,
    limit: u32,
    before_id: Option<i64>,
) -> Result<Vec<AuditEvent>> {
    let rows = sqlx::query(
        "SELECT id, at, actor, action, target, details FROM audit_event \
         WHERE ?1 IS NULL OR id < ?1 ORDER BY id DESC LIMIT ?2",
    )
    .bind(before_id)
    .bind(codec::bounded_limit(limit))
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
