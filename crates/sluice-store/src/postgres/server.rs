//! What a server needs besides the run ledger: a readiness probe, artifact
//! search, API tokens (stored as SHA-256 only) and the requests behind API
//! idempotency keys. Run counts per status live in `run_list`.

use jiff::Timestamp;
use sqlx::AssertSqlSafe;

use super::PostgresStore;
use super::codec::{self, DbResultExt, artifact_columns};
use crate::encoding::{bounded_limit, micros};
use crate::{ApiTokenRecord, ArtifactQuery, ArtifactRecord, Error, NewApiToken, Result};

/// The most artifacts one search returns.
const MAX_ARTIFACTS: u32 = 1_000;

/// How long a readiness probe waits for the database: a probe must answer
/// while the database is away, not after the pool gave up connecting.
const PING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(2);

pub(super) async fn ping(store: &PostgresStore) -> Result<()> {
    let query = sqlx::query_scalar::<_, i32>("SELECT 1").fetch_one(&store.pool);
    match tokio::time::timeout(PING_TIMEOUT, query).await {
        Ok(answer) => {
            answer.db()?;
            Ok(())
        }
        Err(_) => Err(Error::Unavailable(sqlx::Error::PoolTimedOut)),
    }
}

/// A value bound to a placeholder of the artifact search.
enum Bind {
    Text(String),
    Integer(i64),
}

pub(super) async fn search_artifacts(
    store: &PostgresStore,
    query: &ArtifactQuery,
) -> Result<Vec<ArtifactRecord>> {
    // Only the given filters become conditions, so that each combination
    // gets a plan that uses its index (`artifact_run`, `artifact_name`)
    // instead of one generic plan for all of them.
    let mut sql = String::from(concat!(
        "SELECT ",
        artifact_columns!(),
        " FROM artifact a WHERE TRUE"
    ));
    let mut binds = Vec::new();
    let mut condition = |sql: &mut String, text: &str, value: Bind| {
        binds.push(value);
        sql.push_str(&text.replace('?', &format!("${}", binds.len())));
    };
    if let Some(run) = &query.run {
        condition(
            &mut sql,
            " AND a.run_id = ?",
            Bind::Text(run.as_str().to_owned()),
        );
    }
    if let Some(pipeline) = &query.pipeline {
        condition(
            &mut sql,
            " AND EXISTS (SELECT 1 FROM pipeline_run r WHERE r.id = a.run_id AND r.pipeline = ?)",
            Bind::Text(pipeline.clone()),
        );
    }
    if let Some(name) = &query.name {
        condition(&mut sql, " AND a.name = ?", Bind::Text(name.clone()));
    }
    if let Some(before) = query.before_id {
        condition(&mut sql, " AND a.id < ?", Bind::Integer(before));
    }
    let limit = query.limit.clamp(1, MAX_ARTIFACTS);
    sql.push_str(&format!(" ORDER BY a.id DESC LIMIT {limit}"));

    let mut statement = sqlx::query(AssertSqlSafe(sql));
    for bind in binds {
        statement = match bind {
            Bind::Text(text) => statement.bind(text),
            Bind::Integer(integer) => statement.bind(integer),
        };
    }
    let rows = statement.fetch_all(&store.pool).await.db()?;
    rows.iter().map(codec::artifact_from_row).collect()
}

pub(super) async fn get_artifact(store: &PostgresStore, id: i64) -> Result<Option<ArtifactRecord>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        artifact_columns!(),
        " FROM artifact WHERE id = $1"
    ))
    .bind(id)
    .fetch_optional(&store.pool)
    .await
    .db()?;
    row.as_ref().map(codec::artifact_from_row).transpose()
}

pub(super) async fn create_api_token(store: &PostgresStore, token: &NewApiToken) -> Result<()> {
    // `DO NOTHING` without a target covers both the name and the hash.
    let inserted = sqlx::query(
        "INSERT INTO api_token (name, role, sha256, created_at, created_by) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
    )
    .bind(&token.name)
    .bind(&token.role)
    .bind(&token.sha256)
    .bind(micros(token.created_at))
    .bind(token.created_by.as_deref())
    .execute(&store.pool)
    .await
    .db()?
    .rows_affected()
        == 1;
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
    store: &PostgresStore,
    sha256: &str,
) -> Result<Option<ApiTokenRecord>> {
    let row = sqlx::query(
        "SELECT name, role, sha256, created_at, created_by, revoked_at \
         FROM api_token WHERE sha256 = $1",
    )
    .bind(sha256)
    .fetch_optional(&store.pool)
    .await
    .db()?;
    row.as_ref().map(codec::token_from_row).transpose()
}

pub(super) async fn list_api_tokens(
    store: &PostgresStore,
    limit: u32,
) -> Result<Vec<ApiTokenRecord>> {
    let rows = sqlx::query(
        "SELECT name, role, sha256, created_at, created_by, revoked_at \
         FROM api_token ORDER BY name LIMIT $1",
    )
    .bind(bounded_limit(limit))
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter().map(codec::token_from_row).collect()
}

pub(super) async fn revoke_api_token(
    store: &PostgresStore,
    name: &str,
    at: Timestamp,
) -> Result<bool> {
    let revoked =
        sqlx::query("UPDATE api_token SET revoked_at = $1 WHERE name = $2 AND revoked_at IS NULL")
            .bind(micros(at))
            .bind(name)
            .execute(&store.pool)
            .await
            .db()?
            .rows_affected()
            == 1;
    if revoked {
        return Ok(true);
    }
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM api_token WHERE name = $1")
        .bind(name)
        .fetch_optional(&store.pool)
        .await
        .db()?;
    match exists {
        Some(_) => Ok(false),
        None => Err(Error::NotFound(format!("token `{name}`"))),
    }
}

pub(super) async fn reserve_idempotency_key(
    store: &PostgresStore,
    pipeline: &str,
    key: &str,
    request_hash: &str,
    at: Timestamp,
) -> Result<String> {
    // One statement inserts or keeps the first request's hash, and returns
    // whichever is on record. A no-op update rather than `DO NOTHING`: the
    // latter returns no row when the key exists, and a second read could
    // not see a row that a concurrent request has not committed yet.
    sqlx::query_scalar(
        "INSERT INTO idempotency_request (pipeline, key, request_hash, created_at) \
         VALUES ($1, $2, $3, $4) \
         ON CONFLICT (pipeline, key) \
           DO UPDATE SET request_hash = idempotency_request.request_hash \
         RETURNING request_hash",
    )
    .bind(pipeline)
    .bind(key)
    .bind(request_hash)
    .bind(micros(at))
    .fetch_one(&store.pool)
    .await
    .db()
}

pub(super) async fn reserve_server_secret(
    store: &PostgresStore,
    name: &str,
    candidate: &str,
    at: Timestamp,
) -> Result<String> {
    // A no-op update rather than `DO NOTHING`, as for idempotency keys: it
    // returns the row on record even when a concurrent server inserted it.
    sqlx::query_scalar(
        "INSERT INTO server_secret (name, value, created_at) VALUES ($1, $2, $3) \
         ON CONFLICT (name) DO UPDATE SET value = server_secret.value \
         RETURNING value",
    )
    .bind(name)
    .bind(candidate)
    .bind(micros(at))
    .fetch_one(&store.pool)
    .await
    .db()
}
