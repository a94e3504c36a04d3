//! Remote agents: their registration facts and the listing that joins them
//! with their executors and running tries.

use sluice_core::ids::AgentId;

use super::SqliteStore;
use super::codec::{self, DbResultExt, get, get_json, micros};
use crate::{AgentListing, AgentRecord, Error, Result};

pub(super) async fn put_agent(store: &SqliteStore, agent: &AgentRecord) -> Result<()> {
    store
        .write(|| async {
            sqlx::query(
                "INSERT INTO agent (id, name, version, draining, registered_at) \
                 VALUES (?, ?, ?, 0, ?) \
                 ON CONFLICT (id) DO UPDATE SET name = excluded.name, \
                   version = excluded.version, draining = 0, \
                   registered_at = excluded.registered_at",
            )
            .bind(agent.id.as_str())
            .bind(&agent.name)
            .bind(&agent.version)
            .bind(micros(agent.registered_at))
            .execute(&store.pool)
            .await
            .db()?;
            Ok(())
        })
        .await
}

pub(super) async fn set_agent_draining(
    store: &SqliteStore,
    id: &AgentId,
    draining: bool,
) -> Result<()> {
    let updated = store
        .write(|| async {
            let result = sqlx::query("UPDATE agent SET draining = ? WHERE id = ?")
                .bind(draining)
                .bind(id.as_str())
                .execute(&store.pool)
                .await
                .db()?;
            Ok(result.rows_affected())
        })
        .await?;
    if updated == 0 {
        return Err(Error::NotFound(format!("agent `{id}`")));
    }
    Ok(())
}

pub(super) async fn list_agents(store: &SqliteStore, limit: u32) -> Result<Vec<AgentListing>> {
    let rows = sqlx::query(
        "SELECT a.id, a.name, a.version, a.draining, a.registered_at, \
           e.host, e.labels, e.heartbeat_at, \
           (SELECT COUNT(*) FROM block_try t \
             WHERE t.executor = a.id AND t.status = 'running') AS running_tries \
         FROM agent a JOIN executor e ON e.id = a.id \
         ORDER BY a.name, a.id LIMIT ?",
    )
    .bind(i64::from(limit))
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter()
        .map(|row| {
            Ok(AgentListing {
                agent: AgentRecord {
                    id: AgentId(get(row, "id")?),
                    name: get(row, "name")?,
                    version: get(row, "version")?,
                    registered_at: codec::get_timestamp(row, "registered_at")?,
                },
                host: get(row, "host")?,
                labels: get_json(row, "labels")?,
                heartbeat_at: codec::get_timestamp(row, "heartbeat_at")?,
                draining: codec::get_bool(row, "draining")?,
                running_tries: codec::get_u32(row, "running_tries")?,
            })
        })
        .collect()
}
