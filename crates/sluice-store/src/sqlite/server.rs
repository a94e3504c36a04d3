//! What a server needs besides the run ledger: a readiness probe, run counts
//! per status, artifact search, API tokens (stored as SHA-256 only) and the
//! requests behind API idempotency keys.

use jiff::Timestamp;
use sluice_core::ids::{BlockRunId, RunId, TryId};
use sluice_core::status::RunStatus;
use sqlx::AssertSqlSafe;
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use super::codec::{self, DbResultExt, get, micros};
use crate::{ApiTokenRecord, ArtifactQuery, ArtifactRecord, Error, NewApiToken, Result, RunQuery};

/// The most artifacts one search returns.
const MAX_ARTIFACTS: u32 = 1_000;

pub(super) async fn ping(store: &SqliteStore) -> Result<()> {
    sqlx::query_scalar::<_, i64>("SELECT 1")
        .fetch_one(&store.pool)
        .await
        .db()?;
    Ok(())
}

use super::run_list::Bind;

pub(super) async fn count_runs_by_status(
    store: &SqliteStore,
    query: &RunQuery,
) -> Result<Vec<(RunStatus, u64)>> {
    let mut sql = String::from("SELECT r.status AS status, COUNT(*) AS count FROM ");
    let mut binds = Vec::new();
    match &query.tag {
        Some(tag) => {
            sql.push_str("run_tag t JOIN pipeline_run r ON r.id = t.run_id WHERE t.tag = ?");
            binds.push(Bind::Text(tag.clone()));
        }
        None => sql.push_str("pipeline_run r WHERE TRUE"),
    }
    let statuses: Vec<String> = query
        .statuses
        .iter()
        .map(|status| status.as_str().to_owned())
        .collect();
    for (column, values) in [
        ("r.status", statuses.as_slice()),
        ("r.pipeline", query.pipelines.as_slice()),
        ("r.trigger_kind", query.trigger_kinds.as_slice()),
    ] {
        if values.is_empty() {
            continue;
        }
        let placeholders = vec!["?"; values.len()].join(", ");
        sql.push_str(&format!(" AND {column} IN ({placeholders})"));
        binds.extend(values.iter().cloned().map(Bind::Text));
    }
    if let Some(after) = query.created_after {
        sql.push_str(" AND r.created_at >= ?");
        binds.push(Bind::Integer(micros(after)));
    }
    if let Some(before) = query.created_before {
        sql.push_str(" AND r.created_at < ?");
        binds.push(Bind::Integer(micros(before)));
    }
    for (condition, values) in super::run_list::extra_filters(query) {
        sql.push_str(&condition);
        binds.extend(values);
    }
    sql.push_str(" GROUP BY r.status ORDER BY r.status");
    let mut statement = sqlx::query(AssertSqlSafe(sql));
    for bind in binds {
        statement = match bind {
            Bind::Text(text) => statement.bind(text),
            Bind::Integer(integer) => statement.bind(integer),
        };
    }
    let rows = statement.fetch_all(&store.pool).await.db()?;
    rows.iter()
        .map(|row| {
            let status: String = get(row, "status")?;
            Ok((codec::run_status(&status)?, codec::get_u64(row, "count")?))
        })
        .collect()
}

fn artifact_from_row(row: &SqliteRow) -> Result<ArtifactRecord> {
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
}

pub(super) async fn search_artifacts(
    store: &SqliteStore,
    query: &ArtifactQuery,
) -> Result<Vec<ArtifactRecord>> {
    let limit = i64::from(query.limit.clamp(1, MAX_ARTIFACTS));
    let rows = sqlx::query(
        "SELECT a.id, a.run_id, a.block_run_id, a.try_id, a.name, a.size, a.sha256, a.created_at \
         FROM artifact a JOIN pipeline_run r ON r.id = a.run_id \
         WHERE (?1 IS NULL OR a.run_id = ?1) AND (?2 IS NULL OR r.pipeline = ?2) \
           AND (?3 IS NULL OR a.name = ?3) AND (?4 IS NULL OR a.id < ?4) \
         ORDER BY a.id DESC LIMIT ?5",
    )
    .bind(query.run.as_ref().map(RunId::as_str))
    .bind(query.pipeline.as_deref())
    .bind(query.name.as_deref())
    .bind(query.before_id)
    .bind(limit)
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter().map(artifact_from_row).collect()
}

pub(super) async fn get_artifact(store: &SqliteStore, id: i64) -> Result<Option<ArtifactRecord>> {
    let row = sqlx::query(
        "SELECT id, run_id, block_run_id, try_id, name, size, sha256, created_at \
         FROM artifact WHERE id = ?",
    )
    .bind(id)
    .fetch_optional(&store.pool)
    .await
    .db()?;
    row.as_ref().map(artifact_from_row).transpose()
}

fn token_from_row(row: &SqliteRow) -> Result<ApiTokenRecord> {
    Ok(ApiTokenRecord {
        name: get(row, "name")?,
        role: get(row, "role")?,
        sha256: get(row, "sha256")?,
        created_at: codec::get_timestamp(row, "created_at")?,
        created_by: get(row, "created_by")?,
        revoked_at: codec::get_opt_timestamp(row, "revoked_at")?,
    })
}

pub(super) async fn create_api_token(store: &SqliteStore, token: &NewApiToken) -> Result<()> {
    let inserted = store
        .write(|| async {
            let result = sqlx::query(
                "INSERT INTO api_token (name, role, sha256, created_at, created_by) \
                 VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
            )
            .bind(&token.name)
            .bind(&token.role)
            .bind(&token.sha256)
            .bind(micros(token.created_at))
            .bind(token.created_by.as_deref())
            .execute(&store.pool)
            .await
            .db()?;
            Ok(result.rows_affected() == 1)
        })
        .await?;
    if inserted {
        Ok(())
    } else {
        Err(Error::Conflict(format!(
            "a token named `{}` already exists",
            token.name
        )))
    }
}

pub(super) async fn find_api_token(
    store: &SqliteStore,
    sha256: &str,
) -> Result<Option<ApiTokenRecord>> {
    let row = sqlx::query(
        "SELECT name, role, sha256, created_at, created_by, revoked_at \
         FROM api_token WHERE sha256 = ?",
    )
    .bind(sha256)
    .fetch_optional(&store.pool)
    .await
    .db()?;
    row.as_ref().map(token_from_row).transpose()
}

pub(super) async fn list_api_tokens(
    store: &SqliteStore,
    limit: u32,
) -> Result<Vec<ApiTokenRecord>> {
    let rows = sqlx::query(
        "SELECT name, role, sha256, created_at, created_by, revoked_at \
         FROM api_token ORDER BY name LIMIT ?",
    )
    .bind(codec::bounded_limit(limit))
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter().map(token_from_row).collect()
}

pub(super) async fn revoke_api_token(
    store: &SqliteStore,
    name: &str,
    at: Timestamp,
) -> Result<bool> {
    store
        .write(|| async {
            let result = sqlx::query(
                "UPDATE api_token SET revoked_at = ? WHERE name = ? AND revoked_at IS NULL",
            )
            .bind(micros(at))
            .bind(name)
            .execute(&store.pool)
            .await
            .db()?;
            if result.rows_affected() == 1 {
                return Ok(true);
            }
            let exists: Option<i64> = sqlx::query_scalar("SELECT 1 FROM api_token WHERE name = ?")
                .bind(name)
                .fetch_optional(&store.pool)
                .await
                .db()?;
            match exists {
                Some(_) => Ok(false),
                None => Err(Error::NotFound(format!("token `{name}`"))),
            }
        })
        .await
}

pub(super) async fn reserve_idempotency_key(
    store: &SqliteStore,
    pipeline: &str,
    key: &str,
    request_hash: &str,
    at: Timestamp,
) -> Result<String> {
    store
        .write(|| async {
            // One statement inserts or keeps the first request's hash, and
            // returns whichever is on record.
            sqlx::query_scalar::<_, String>(
                "INSERT INTO idempotency_request (pipeline, key, request_hash, created_at) \
                 VALUES (?, ?, ?, ?) \
                 ON CONFLICT (pipeline, key) DO UPDATE SET request_hash = request_hash \
                 RETURNING request_hash",
            )
            .bind(pipeline)
            .bind(key)
            .bind(request_hash)
            .bind(micros(at))
            .fetch_one(&store.pool)
            .await
            .db()
        })
        .await
}

pub(super) async fn reserve_server_secret(
    store: &SqliteStore,
    name: &str,
    candidate: &str,
    at: Timestamp,
) -> Result<String> {
    store
        .write(|| async {
            // One statement inserts or keeps the first value, and returns
            // whichever is on record.
            sqlx::query_scalar::<_, String>(
                "INSERT INTO server_secret (name, value, created_at) VALUES (?, ?, ?) \
                 ON CONFLICT (name) DO UPDATE SET value = value \
                 RETURNING value",
            )
            .bind(name)
            .bind(candidate)
            .bind(micros(at))
            .fetch_one(&store.pool)
            .await
            .db()
        })
        .await
}
