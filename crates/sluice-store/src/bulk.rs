//! Bulk loading of finished run history: many runs, each with its first
//! attempt, tags, block runs and their tries (and, separately, the artifacts
//! of those tries), written with multi-row statements in one transaction
//! per batch.
//!
//! This is how a benchmark or an import fills a ledger with a year of
//! history in minutes instead of hours: creating a million runs one
//! `create_run` and a dozen transitions at a time costs a transaction (and
//! on SQLite an fsync) per step. The loader writes exactly the rows and
//! encodings the backends' own writes produce (the same columns, JSON
//! values and integer microseconds), into a schema brought up to date by
//! the store's migrations, so everything read afterwards goes through the
//! ordinary [`crate::Store`] queries.
//!
//! Only finished history is loaded: every run and block run must have a
//! terminal status, so nothing loaded is ever claimed or advanced.

use std::path::Path;
use std::str::FromStr;

use jiff::Timestamp;
use sluice_core::ids::{BlockRunId, RunId, TryId};
use sluice_core::status::{BlockRunStatus, RunStatus};
use sluice_core::vars::ResolvedVariables;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqliteSynchronous};
use sqlx::{AssertSqlSafe, Connection};

use crate::encoding::{micros, opt_micros, search_text, to_json};
use crate::open::Location;
use crate::postgres::PostgresStore;
use crate::sqlite::SqliteStore;
use crate::{Error, InvokedBy, Result};

/// The executor recorded on loaded tries.
pub const LOADER_EXECUTOR: &str = "history-loader";

/// One finished run to load, with its first (and only) attempt.
#[derive(Clone, Debug)]
pub struct HistoryRun {
    pub id: RunId,
    pub pipeline: String,
    /// The SHA-256 of a pipeline version stored with `put_pipeline_version`.
    pub pipeline_version: String,
    /// A terminal status.
    pub status: RunStatus,
    pub priority: i32,
    pub invoked_by: InvokedBy,
    pub tags: Vec<String>,
    pub variables: ResolvedVariables,
    pub created_at: Timestamp,
    pub started_at: Option<Timestamp>,
    pub finished_at: Timestamp,
    pub error: Option<String>,
    pub blocks: Vec<HistoryBlockRun>,
}

/// One finished block run of a loaded run. A block run with `started_at`
/// gets one try, which ended with the block run's status.
#[derive(Clone, Debug)]
pub struct HistoryBlockRun {
    pub id: BlockRunId,
    /// The id of its try; used only when the block run started.
    pub try_id: TryId,
    pub block: String,
    /// A terminal status.
    pub status: BlockRunStatus,
    pub started_at: Option<Timestamp>,
    pub finished_at: Timestamp,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
}

/// An artifact of a loaded block run's try. Its blob is stored separately
/// (`crate::blobs::BlobStore`); the loader writes only the row.
#[derive(Clone, Debug)]
pub struct HistoryArtifact {
    pub run_id: RunId,
    pub block_run_id: BlockRunId,
    /// The try of a loaded block run that started.
    pub try_id: TryId,
    pub name: String,
    pub size: u64,
    pub sha256: String,
    pub created_at: Timestamp,
}

/// A connection that loads history into one database.
#[derive(Debug)]
pub enum HistoryLoader {
    Sqlite(SqliteConnection),
    Postgres(PgConnection),
}

/// SQLite's limit on bound values per statement is 32,766; rows per
/// statement are chosen below it.
const SQLITE_MAX_VALUES: usize = 30_000;

impl HistoryLoader {
    /// A loader for the store at `location` (as [`crate::open`] takes it),
    /// whose schema is brought up to date first.
    pub async fn open(location: &str) -> Result<HistoryLoader> {
        match Location::parse(location) {
            Location::Sqlite(path) => HistoryLoader::sqlite(&path).await,
            Location::Postgres(url) => {
                let options = PgConnectOptions::from_str(&url).map_err(Error::Database)?;
                HistoryLoader::postgres(options).await
            }
        }
    }

    /// A loader for the SQLite file at `path`, created and migrated when
    /// needed.
    pub async fn sqlite(path: &Path) -> Result<HistoryLoader> {
        drop(SqliteStore::open(path).await?);
        let options = SqliteConnectOptions::new()
            .filename(path)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(std::time::Duration::from_secs(30));
        let connection = SqliteConnection::connect_with(&options)
            .await
            .map_err(Error::Unavailable)?;
        Ok(HistoryLoader::Sqlite(connection))
    }

    /// A loader for the PostgreSQL database of `options` (mind its
    /// `search_path`), migrated first.
    pub async fn postgres(options: PgConnectOptions) -> Result<HistoryLoader> {
        drop(PostgresStore::connect_with(options.clone()).await?);
        let connection = PgConnection::connect_with(&options)
            .await
            .map_err(Error::Unavailable)?;
        Ok(HistoryLoader::Postgres(connection))
    }

    /// Loads `runs` in one transaction: all of them or none. Fails with
    /// [`Error::Conflict`] (loading nothing) when a run or block run is not
    /// finished, or when its times are out of order.
    pub async fn load(&mut self, runs: &[HistoryRun]) -> Result<()> {
        for run in runs {
            check(run)?;
        }
        let rows = Rows::of(runs)?;
        match self {
            HistoryLoader::Sqlite(connection) => load_sqlite(connection, &rows).await,
            HistoryLoader::Postgres(connection) => load_postgres(connection, &rows).await,
        }
    }
}

impl HistoryLoader {
    /// Loads the artifact rows of tries loaded before, in one transaction.
    pub async fn load_artifacts(&mut self, artifacts: &[HistoryArtifact]) -> Result<()> {
        match self {
            HistoryLoader::Sqlite(connection) => {
                let mut tx = connection
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(Error::Database)?;
                const COLUMNS: usize = 7;
                for chunk in artifacts.chunks(SQLITE_MAX_VALUES / COLUMNS) {
                    let sql = format!(
                        "INSERT INTO artifact (run_id, block_run_id, try_id, name, size, sha256, \
                         created_at) VALUES {}",
                        groups(chunk.len(), "(?, ?, ?, ?, ?, ?, ?)")
                    );
                    let mut query = sqlx::query(AssertSqlSafe(sql));
                    for artifact in chunk {
                        query = query
                            .bind(artifact.run_id.as_str())
                            .bind(artifact.block_run_id.as_str())
                            .bind(artifact.try_id.as_str())
                            .bind(&artifact.name)
                            .bind(i64::try_from(artifact.size).unwrap_or(i64::MAX))
                            .bind(&artifact.sha256)
                            .bind(micros(artifact.created_at));
                    }
                    query.execute(&mut *tx).await.map_err(Error::Database)?;
                }
                tx.commit().await.map_err(Error::Database)
            }
            HistoryLoader::Postgres(connection) => {
                sqlx::query(
                    "INSERT INTO artifact (run_id, block_run_id, try_id, name, size, sha256, \
                     created_at) \
                     SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], \
                                          $5::BIGINT[], $6::TEXT[], $7::BIGINT[])",
                )
                .bind(
                    artifacts
                        .iter()
                        .map(|a| a.run_id.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    artifacts
                        .iter()
                        .map(|a| a.block_run_id.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    artifacts
                        .iter()
                        .map(|a| a.try_id.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    artifacts
                        .iter()
                        .map(|a| a.name.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    artifacts
                        .iter()
                        .map(|a| i64::try_from(a.size).unwrap_or(i64::MAX))
                        .collect::<Vec<_>>(),
                )
                .bind(
                    artifacts
                        .iter()
                        .map(|a| a.sha256.as_str())
                        .collect::<Vec<_>>(),
                )
                .bind(
                    artifacts
                        .iter()
                        .map(|a| micros(a.created_at))
                        .collect::<Vec<_>>(),
                )
                .execute(&mut *connection)
                .await
                .map_err(Error::Database)?;
                Ok(())
            }
        }
    }
}

fn check(run: &HistoryRun) -> Result<()> {
    let conflict = |what: String| Err(Error::Conflict(what));
    if !run.status.is_terminal() {
        return conflict(format!(
            "run `{}` is `{}`: only finished runs can be loaded as history",
            run.id,
            run.status.as_str()
        ));
    }
    let started = run.started_at.unwrap_or(run.created_at);
    if started < run.created_at || run.finished_at < started {
        return conflict(format!(
            "run `{}` must be created, started and finished in that order",
            run.id
        ));
    }
    for block in &run.blocks {
        if !block.status.is_terminal() {
            return conflict(format!(
                "block run `{}` is `{}`: only finished block runs can be loaded as history",
                block.id,
                block.status.as_str()
            ));
        }
        if block
            .started_at
            .is_some_and(|started| started > block.finished_at)
        {
            return conflict(format!(
                "block run `{}` finishes before it starts",
                block.id
            ));
        }
    }
    Ok(())
}

/// The rows of a batch, encoded once for either backend.
#[derive(Default)]
struct Rows {
    runs: Vec<RunRow>,
    tags: Vec<(String, i64, String)>,
    blocks: Vec<BlockRow>,
    tries: Vec<TryRow>,
}

struct RunRow {
    id: String,
    pipeline: String,
    status: &'static str,
    priority: i64,
    trigger_kind: String,
    invoked_by: String,
    tags: String,
    variables: String,
    search_text: String,
    pipeline_version: String,
    created_at: i64,
    started_at: Option<i64>,
    finished_at: i64,
    error: Option<String>,
    actor: Option<String>,
}

struct BlockRow {
    id: String,
    run_id: String,
    block: String,
    status: &'static str,
    tries: i64,
    created_at: i64,
    queued_at: Option<i64>,
    started_at: Option<i64>,
    finished_at: i64,
    error: Option<String>,
    exit_code: Option<i64>,
    idempotency_key: String,
}

struct TryRow {
    id: String,
    block_run_id: String,
    run_id: String,
    status: &'static str,
    started_at: i64,
    finished_at: i64,
    exit_code: Option<i64>,
    error: Option<String>,
}

impl Rows {
    fn of(runs: &[HistoryRun]) -> Result<Rows> {
        let mut rows = Rows::default();
        for run in runs {
            let created_at = micros(run.created_at);
            rows.runs.push(RunRow {
                id: run.id.to_string(),
                pipeline: run.pipeline.clone(),
                status: run.status.as_str(),
                priority: i64::from(run.priority),
                trigger_kind: run.invoked_by.kind.clone(),
                invoked_by: to_json(&run.invoked_by)?,
                tags: to_json(&run.tags)?,
                variables: to_json(&run.variables)?,
                search_text: search_text(run.id.as_str(), &run.pipeline, &run.variables),
                pipeline_version: run.pipeline_version.clone(),
                created_at,
                started_at: opt_micros(run.started_at),
                finished_at: micros(run.finished_at),
                error: run.error.clone(),
                actor: run.invoked_by.actor.clone(),
            });
            for tag in &run.tags {
                rows.tags
                    .push((tag.clone(), created_at, run.id.to_string()));
            }
            for block in &run.blocks {
                let started_at = opt_micros(block.started_at);
                rows.blocks.push(BlockRow {
                    id: block.id.to_string(),
                    run_id: run.id.to_string(),
                    block: block.block.clone(),
                    status: block.status.as_str(),
                    tries: i64::from(started_at.is_some()),
                    created_at,
                    queued_at: started_at.map(|_| created_at),
                    started_at,
                    finished_at: micros(block.finished_at),
                    error: block.error.clone(),
                    exit_code: block.exit_code.map(i64::from),
                    idempotency_key: format!("{}:{}", run.id, block.block),
                });
                if let Some(started_at) = started_at {
                    rows.tries.push(TryRow {
                        id: block.try_id.to_string(),
                        block_run_id: block.id.to_string(),
                        run_id: run.id.to_string(),
                        status: try_status(block.status),
                        started_at,
                        finished_at: micros(block.finished_at),
                        exit_code: block.exit_code.map(i64::from),
                        error: block.error.clone(),
                    });
                }
            }
        }
        Ok(rows)
    }
}

/// The status of the one try of a finished block run that started.
fn try_status(status: BlockRunStatus) -> &'static str {
    match status {
        BlockRunStatus::Completed => "completed",
        BlockRunStatus::Cancelled => "cancelled",
        _ => "failed",
    }
}

/// `rows` copies of a row's `VALUES` group, comma-separated.
fn groups(rows: usize, group: &str) -> String {
    vec![group; rows].join(", ")
}

async fn load_sqlite(connection: &mut SqliteConnection, rows: &Rows) -> Result<()> {
    // `BEGIN IMMEDIATE` takes the write lock up front, as the store's own
    // read-then-write transactions do, so a running server waits instead of
    // failing halfway through.
    let mut tx = connection
        .begin_with("BEGIN IMMEDIATE")
        .await
        .map_err(Error::Database)?;

    const RUN_COLUMNS: usize = 14;
    for chunk in rows.runs.chunks(SQLITE_MAX_VALUES / RUN_COLUMNS) {
        let group = "(?, ?, ?, 1, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)";
        let sql = format!(
            "INSERT INTO pipeline_run (id, pipeline, status, attempt, priority, trigger_kind, \
             invoked_by, tags, variables, pipeline_version, created_at, started_at, finished_at, \
             error, search_text) VALUES {}",
            groups(chunk.len(), group)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for run in chunk {
            query = query
                .bind(&run.id)
                .bind(&run.pipeline)
                .bind(run.status)
                .bind(run.priority)
                .bind(&run.trigger_kind)
                .bind(&run.invoked_by)
                .bind(&run.tags)
                .bind(&run.variables)
                .bind(&run.pipeline_version)
                .bind(run.created_at)
                .bind(run.started_at)
                .bind(run.finished_at)
                .bind(&run.error)
                .bind(&run.search_text);
        }
        query.execute(&mut *tx).await.map_err(Error::Database)?;
    }

    const ATTEMPT_COLUMNS: usize = 7;
    for chunk in rows.runs.chunks(SQLITE_MAX_VALUES / ATTEMPT_COLUMNS) {
        let sql = format!(
            "INSERT INTO run_attempt (run_id, attempt, status, mode, created_at, created_by, \
             started_at, finished_at, error) VALUES {}",
            groups(chunk.len(), "(?, 1, ?, 'initial', ?, ?, ?, ?, ?)")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for run in chunk {
            query = query
                .bind(&run.id)
                .bind(run.status)
                .bind(run.created_at)
                .bind(&run.actor)
                .bind(run.started_at)
                .bind(run.finished_at)
                .bind(&run.error);
        }
        query.execute(&mut *tx).await.map_err(Error::Database)?;
    }

    for chunk in rows.tags.chunks(SQLITE_MAX_VALUES / 3) {
        let sql = format!(
            "INSERT OR IGNORE INTO run_tag (tag, created_at, run_id) VALUES {}",
            groups(chunk.len(), "(?, ?, ?)")
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for (tag, created_at, run_id) in chunk {
            query = query.bind(tag).bind(created_at).bind(run_id);
        }
        query.execute(&mut *tx).await.map_err(Error::Database)?;
    }

    const BLOCK_COLUMNS: usize = 13;
    for chunk in rows.blocks.chunks(SQLITE_MAX_VALUES / BLOCK_COLUMNS) {
        let group = "(?, ?, 1, ?, ?, 0, 1, ?, ?, ?, ?, ?, ?, '{}', ?, ?, '{}', ?)";
        let sql = format!(
            "INSERT INTO block_run (id, run_id, attempt, block, status, priority, max_tries, \
             tries, created_at, queued_at, queue_rank, started_at, finished_at, outputs, error, \
             exit_code, labels, idempotency_key) VALUES {}",
            groups(chunk.len(), group)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for block in chunk {
            query = query
                .bind(&block.id)
                .bind(&block.run_id)
                .bind(&block.block)
                .bind(block.status)
                .bind(block.tries)
                .bind(block.created_at)
                .bind(block.queued_at)
                .bind(block.queued_at)
                .bind(block.started_at)
                .bind(block.finished_at)
                .bind(&block.error)
                .bind(block.exit_code)
                .bind(&block.idempotency_key);
        }
        query.execute(&mut *tx).await.map_err(Error::Database)?;
    }

    const TRY_COLUMNS: usize = 10;
    for chunk in rows.tries.chunks(SQLITE_MAX_VALUES / TRY_COLUMNS) {
        let group = "(?, ?, ?, 1, ?, ?, 1, ?, ?, ?, ?, ?)";
        let sql = format!(
            "INSERT INTO block_try (id, block_run_id, run_id, try_number, status, executor, \
             lease_epoch, lease_expires_at, started_at, finished_at, exit_code, error) VALUES {}",
            groups(chunk.len(), group)
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        for attempt_try in chunk {
            query = query
                .bind(&attempt_try.id)
                .bind(&attempt_try.block_run_id)
                .bind(&attempt_try.run_id)
                .bind(attempt_try.status)
                .bind(LOADER_EXECUTOR)
                .bind(attempt_try.finished_at)
                .bind(attempt_try.started_at)
                .bind(attempt_try.finished_at)
                .bind(attempt_try.exit_code)
                .bind(&attempt_try.error);
        }
        query.execute(&mut *tx).await.map_err(Error::Database)?;
    }
    tx.commit().await.map_err(Error::Database)
}

async fn load_postgres(connection: &mut PgConnection, rows: &Rows) -> Result<()> {
    // One statement per table: the rows travel as arrays, which
    // `UNNEST` turns back into rows, so a batch of any size is a handful of
    // round trips and no statement approaches the 65,535-parameter limit.
    let mut tx = connection.begin().await.map_err(Error::Database)?;
    let runs = &rows.runs;
    sqlx::query(
        "INSERT INTO pipeline_run (id, pipeline, status, attempt, priority, trigger_kind, \
         invoked_by, tags, variables, pipeline_version, created_at, started_at, finished_at, \
         error, search_text) \
         SELECT id, pipeline, status, 1, priority, trigger_kind, invoked_by::JSON, tags::JSON, \
                variables::JSON, pipeline_version, created_at, started_at, finished_at, error, \
                search_text \
         FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[], \
                     $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::BIGINT[], $11::BIGINT[], \
                     $12::BIGINT[], $13::TEXT[], $14::TEXT[]) \
           AS t(id, pipeline, status, priority, trigger_kind, invoked_by, tags, variables, \
                pipeline_version, created_at, started_at, finished_at, error, search_text)",
    )
    .bind(runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
    .bind(runs.iter().map(|r| r.pipeline.as_str()).collect::<Vec<_>>())
    .bind(runs.iter().map(|r| r.status).collect::<Vec<_>>())
    .bind(runs.iter().map(|r| r.priority).collect::<Vec<_>>())
    .bind(
        runs.iter()
            .map(|r| r.trigger_kind.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        runs.iter()
            .map(|r| r.invoked_by.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(runs.iter().map(|r| r.tags.as_str()).collect::<Vec<_>>())
    .bind(
        runs.iter()
            .map(|r| r.variables.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(
        runs.iter()
            .map(|r| r.pipeline_version.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(runs.iter().map(|r| r.created_at).collect::<Vec<_>>())
    .bind(runs.iter().map(|r| r.started_at).collect::<Vec<_>>())
    .bind(runs.iter().map(|r| r.finished_at).collect::<Vec<_>>())
    .bind(runs.iter().map(|r| r.error.as_deref()).collect::<Vec<_>>())
    .bind(
        runs.iter()
            .map(|r| r.search_text.as_str())
            .collect::<Vec<_>>(),
    )
    .execute(&mut *tx)
    .await
    .map_err(Error::Database)?;

    sqlx::query(
        "INSERT INTO run_attempt (run_id, attempt, status, mode, created_at, created_by, \
         started_at, finished_at, error) \
         SELECT run_id, 1, status, 'initial', created_at, created_by, started_at, finished_at, \
                error \
         FROM UNNEST($1::TEXT[], $2::TEXT[], $3::BIGINT[], $4::TEXT[], $5::BIGINT[], \
                     $6::BIGINT[], $7::TEXT[]) \
           AS t(run_id, status, created_at, created_by, started_at, finished_at, error)",
    )
    .bind(runs.iter().map(|r| r.id.as_str()).collect::<Vec<_>>())
    .bind(runs.iter().map(|r| r.status).collect::<Vec<_>>())
    .bind(runs.iter().map(|r| r.created_at).collect::<Vec<_>>())
    .bind(runs.iter().map(|r| r.actor.as_deref()).collect::<Vec<_>>())
    .bind(runs.iter().map(|r| r.started_at).collect::<Vec<_>>())
    .bind(runs.iter().map(|r| r.finished_at).collect::<Vec<_>>())
    .bind(runs.iter().map(|r| r.error.as_deref()).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await
    .map_err(Error::Database)?;

    sqlx::query(
        "INSERT INTO run_tag (tag, created_at, run_id) \
         SELECT * FROM UNNEST($1::TEXT[], $2::BIGINT[], $3::TEXT[]) \
         ON CONFLICT DO NOTHING",
    )
    .bind(rows.tags.iter().map(|t| t.0.as_str()).collect::<Vec<_>>())
    .bind(rows.tags.iter().map(|t| t.1).collect::<Vec<_>>())
    .bind(rows.tags.iter().map(|t| t.2.as_str()).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await
    .map_err(Error::Database)?;

    let blocks = &rows.blocks;
    sqlx::query(
        "INSERT INTO block_run (id, run_id, attempt, block, status, priority, max_tries, tries, \
         created_at, queued_at, queue_rank, started_at, finished_at, outputs, error, exit_code, \
         labels, idempotency_key) \
         SELECT id, run_id, 1, block, status, 0, 1, tries, created_at, queued_at, queued_at, \
                started_at, finished_at, '{}'::JSON, error, exit_code, '{}'::JSONB, \
                idempotency_key \
         FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[], \
                     $6::BIGINT[], $7::BIGINT[], $8::BIGINT[], $9::BIGINT[], $10::TEXT[], \
                     $11::BIGINT[], $12::TEXT[]) \
           AS t(id, run_id, block, status, tries, created_at, queued_at, started_at, \
                finished_at, error, exit_code, idempotency_key)",
    )
    .bind(blocks.iter().map(|b| b.id.as_str()).collect::<Vec<_>>())
    .bind(blocks.iter().map(|b| b.run_id.as_str()).collect::<Vec<_>>())
    .bind(blocks.iter().map(|b| b.block.as_str()).collect::<Vec<_>>())
    .bind(blocks.iter().map(|b| b.status).collect::<Vec<_>>())
    .bind(blocks.iter().map(|b| b.tries).collect::<Vec<_>>())
    .bind(blocks.iter().map(|b| b.created_at).collect::<Vec<_>>())
    .bind(blocks.iter().map(|b| b.queued_at).collect::<Vec<_>>())
    .bind(blocks.iter().map(|b| b.started_at).collect::<Vec<_>>())
    .bind(blocks.iter().map(|b| b.finished_at).collect::<Vec<_>>())
    .bind(
        blocks
            .iter()
            .map(|b| b.error.as_deref())
            .collect::<Vec<_>>(),
    )
    .bind(blocks.iter().map(|b| b.exit_code).collect::<Vec<_>>())
    .bind(
        blocks
            .iter()
            .map(|b| b.idempotency_key.as_str())
            .collect::<Vec<_>>(),
    )
    .execute(&mut *tx)
    .await
    .map_err(Error::Database)?;

    let tries = &rows.tries;
    sqlx::query(
        "INSERT INTO block_try (id, block_run_id, run_id, try_number, status, executor, \
         lease_epoch, lease_expires_at, started_at, finished_at, exit_code, error) \
         SELECT id, block_run_id, run_id, 1, status, $1, 1, finished_at, started_at, \
                finished_at, exit_code, error \
         FROM UNNEST($2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[], \
                     $7::BIGINT[], $8::BIGINT[], $9::TEXT[]) \
           AS t(id, block_run_id, run_id, status, started_at, finished_at, exit_code, error)",
    )
    .bind(LOADER_EXECUTOR)
    .bind(tries.iter().map(|t| t.id.as_str()).collect::<Vec<_>>())
    .bind(
        tries
            .iter()
            .map(|t| t.block_run_id.as_str())
            .collect::<Vec<_>>(),
    )
    .bind(tries.iter().map(|t| t.run_id.as_str()).collect::<Vec<_>>())
    .bind(tries.iter().map(|t| t.status).collect::<Vec<_>>())
    .bind(tries.iter().map(|t| t.started_at).collect::<Vec<_>>())
    .bind(tries.iter().map(|t| t.finished_at).collect::<Vec<_>>())
    .bind(tries.iter().map(|t| t.exit_code).collect::<Vec<_>>())
    .bind(tries.iter().map(|t| t.error.as_deref()).collect::<Vec<_>>())
    .execute(&mut *tx)
    .await
    .map_err(Error::Database)?;
    tx.commit().await.map_err(Error::Database)
}
