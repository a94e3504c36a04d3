//! Runs and their attempts: creation (idempotent per key), conditional
//! status changes, cancellation requests, flags and retries (new attempts).
//! Also the pinned pipeline versions. Listings live in `run_list`.

use jiff::Timestamp;
use sluice_core::ids::RunId;
use sluice_core::status::RunStatus;
use sqlx::PgConnection;
use sqlx::postgres::PgRow;

use super::PostgresStore;
use super::blocks::insert_block_runs;
use super::codec::{self, DbResultExt, attempt_columns, get, run_columns};
use super::notify::insert_deliveries;
use crate::encoding::{MAX_ROWS, micros, opt_micros, search_text, to_json};
use crate::{
    AttemptRecord, CreatedRun, Error, NewAttempt, NewDelivery, NewRun, ProjectFile, Result,
    RunFlag, RunRecord, RunTransition,
};

pub(super) async fn put_pipeline_version(
    store: &PostgresStore,
    sha256: &str,
    pipeline: &str,
    source: &str,
) -> Result<()> {
    // The database's clock stamps the row: it is bookkeeping, not part of
    // any decision.
    sqlx::query(
        "INSERT INTO pipeline_version (sha256, pipeline, source, created_at) \
         VALUES ($1, $2, $3, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT) \
         ON CONFLICT (sha256) DO NOTHING",
    )
    .bind(sha256)
    .bind(pipeline)
    .bind(source)
    .execute(&store.pool)
    .await
    .db()?;
    Ok(())
}

pub(super) async fn get_pipeline_version(
    store: &PostgresStore,
    sha256: &str,
) -> Result<Option<String>> {
    sqlx::query_scalar("SELECT source FROM pipeline_version WHERE sha256 = $1")
        .bind(sha256)
        .fetch_optional(&store.pool)
        .await
        .db()
}

pub(super) async fn put_project_version(
    store: &PostgresStore,
    sha256: &str,
    files: &[ProjectFile],
) -> Result<()> {
    store
        .write(|| async {
            let mut tx = store.begin().await?;
            let bytes: u64 = files.iter().map(|file| file.size).sum();
            let inserted = sqlx::query(
                "INSERT INTO project_version (sha256, files, bytes, created_at) \
                 VALUES ($1, $2, $3, (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT) \
                 ON CONFLICT (sha256) DO NOTHING",
            )
            .bind(sha256)
            .bind(i64::try_from(files.len()).unwrap_or(i64::MAX))
            .bind(i64::try_from(bytes).unwrap_or(i64::MAX))
            .execute(&mut *tx)
            .await
            .db()?
            .rows_affected();
            if inserted == 0 {
                return Ok(());
            }
            let paths: Vec<&str> = files.iter().map(|file| file.path.as_str()).collect();
            let digests: Vec<&str> = files.iter().map(|file| file.sha256.as_str()).collect();
            let sizes: Vec<i64> = files
                .iter()
                .map(|file| i64::try_from(file.size).unwrap_or(i64::MAX))
                .collect();
            let executable: Vec<bool> = files.iter().map(|file| file.executable).collect();
            sqlx::query(
                "INSERT INTO project_file (version, path, sha256, size, executable) \
                 SELECT $1, * FROM UNNEST($2::TEXT[], $3::TEXT[], $4::BIGINT[], $5::BOOLEAN[])",
            )
            .bind(sha256)
            .bind(&paths)
            .bind(&digests)
            .bind(&sizes)
            .bind(&executable)
            .execute(&mut *tx)
            .await
            .db()?;
            tx.commit().await.db()?;
            Ok(())
        })
        .await
}

pub(super) async fn get_project_version(
    store: &PostgresStore,
    sha256: &str,
) -> Result<Option<Vec<ProjectFile>>> {
    let known: Option<i64> =
        sqlx::query_scalar("SELECT files FROM project_version WHERE sha256 = $1")
            .bind(sha256)
            .fetch_optional(&store.pool)
            .await
            .db()?;
    if known.is_none() {
        return Ok(None);
    }
    let rows: Vec<(String, String, i64, bool)> = sqlx::query_as(
        "SELECT path, sha256, size, executable FROM project_file WHERE version = $1 \
         ORDER BY path COLLATE \"C\"",
    )
    .bind(sha256)
    .fetch_all(&store.pool)
    .await
    .db()?;
    Ok(Some(
        rows.into_iter()
            .map(|(path, sha256, size, executable)| ProjectFile {
                path,
                sha256,
                size: u64::try_from(size).unwrap_or(0),
                executable,
            })
            .collect(),
    ))
}

pub(super) async fn project_file_held(
    store: &PostgresStore,
    version: &str,
    sha256: &str,
) -> Result<bool> {
    let held: bool = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM project_file WHERE version = $1 AND sha256 = $2)",
    )
    .bind(version)
    .bind(sha256)
    .fetch_one(&store.pool)
    .await
    .db()?;
    Ok(held)
}

pub(super) async fn create_run(store: &PostgresStore, run: &NewRun) -> Result<CreatedRun> {
    store.write(|| create_run_once(store, run)).await
}

async fn create_run_once(store: &PostgresStore, run: &NewRun) -> Result<CreatedRun> {
    let mut tx = store.begin().await?;
    let created_at = micros(run.created_at);
    let (started_at, finished_at) = status_times(run.status, created_at);
    // `DO NOTHING` without a target covers both the idempotency key and the
    // id. A concurrent insert of the same key makes this one wait for its
    // commit and then do nothing, so exactly one creator wins.
    let inserted = sqlx::query(
        "INSERT INTO pipeline_run (id, pipeline, status, attempt, priority, trigger_kind, \
         invoked_by, tags, variables, pipeline_version, created_at, started_at, finished_at, \
         error, sla_at, idempotency_key, owner, block_concurrency, scheduled_for, window_start, \
         window_end, search_text, project_version) \
         VALUES ($1, $2, $3, 1, $4, $5, $6::JSON, $7::JSON, $8::JSON, $9, $10, $11, $12, $13, $14, $15, $16, $17, \
         $18, $19, $20, $21, $22) \
         ON CONFLICT DO NOTHING",
    )
    .bind(run.id.as_str())
    .bind(&run.pipeline)
    .bind(run.status.as_str())
    .bind(i64::from(run.priority))
    .bind(&run.invoked_by.kind)
    .bind(to_json(&run.invoked_by)?)
    .bind(to_json(&run.tags)?)
    .bind(to_json(&run.variables)?)
    .bind(&run.pipeline_version)
    .bind(created_at)
    .bind(started_at)
    .bind(finished_at)
    .bind(run.error.as_deref())
    .bind(opt_micros(run.sla_at))
    .bind(run.idempotency_key.as_deref())
    .bind(run.owner.as_ref().map(|owner| owner.as_str()))
    .bind(run.block_concurrency.map(i64::from))
    .bind(opt_micros(run.window.map(|window| window.scheduled_for)))
    .bind(opt_micros(run.window.map(|window| window.window_start)))
    .bind(opt_micros(run.window.map(|window| window.window_end)))
    .bind(search_text(run.id.as_str(), &run.pipeline, &run.variables))
    .bind(run.project_version.as_deref())
    .execute(&mut *tx)
    .await
    .db()?
    .rows_affected();
    if inserted == 0 {
        let existing: Option<String> = match &run.idempotency_key {
            Some(key) => sqlx::query_scalar(
                "SELECT id FROM pipeline_run WHERE pipeline = $1 AND idempotency_key = $2",
            )
            .bind(&run.pipeline)
            .bind(key)
            .fetch_optional(&mut *tx)
            .await
            .db()?,
            None => None,
        };
        return match existing {
            Some(id) => Ok(CreatedRun {
                id: RunId(id),
                created: false,
            }),
            None => Err(Error::Conflict(format!(
                "a run with id `{}` already exists; create the run with a new id",
                run.id
            ))),
        };
    }

    sqlx::query(
        "INSERT INTO run_attempt (run_id, attempt, status, mode, created_at, created_by, \
         started_at, finished_at, error, pipeline_version, project_version) \
         VALUES ($1, 1, $2, 'initial', $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(run.id.as_str())
    .bind(run.status.as_str())
    .bind(created_at)
    .bind(run.invoked_by.actor.as_deref())
    .bind(started_at)
    .bind(finished_at)
    .bind(run.error.as_deref())
    .bind(&run.pipeline_version)
    .bind(run.project_version.as_deref())
    .execute(&mut *tx)
    .await
    .db()?;
    // One statement for every tag; a tag listed twice is stored once.
    sqlx::query(
        "INSERT INTO run_tag (tag, created_at, run_id) \
         SELECT DISTINCT tag, $2::BIGINT, $3 FROM UNNEST($1::TEXT[]) AS tag \
         ON CONFLICT DO NOTHING",
    )
    .bind(run.tags.as_slice())
    .bind(created_at)
    .bind(run.id.as_str())
    .execute(&mut *tx)
    .await
    .db()?;
    insert_block_runs(&mut tx, &run.id, 1, created_at, &run.blocks).await?;
    tx.commit().await.db()?;
    Ok(CreatedRun {
        id: run.id.clone(),
        created: true,
    })
}

/// `started_at` and `finished_at` of a run or attempt created directly in
/// `status` at `at`.
fn status_times(status: RunStatus, at: i64) -> (Option<i64>, Option<i64>) {
    let started = (status == RunStatus::Running).then_some(at);
    let finished = status.is_terminal().then_some(at);
    (started, finished)
}

pub(super) async fn get_run(store: &PostgresStore, id: &RunId) -> Result<Option<RunRecord>> {
    let mut conn = store.pool.acquire().await.db()?;
    fetch_run(&mut conn, id).await
}

/// Reads one run on the given connection (or inside a transaction).
pub(super) async fn fetch_run(conn: &mut PgConnection, id: &RunId) -> Result<Option<RunRecord>> {
    let row = sqlx::query(concat!(
        "SELECT ",
        run_columns!(),
        " FROM pipeline_run WHERE id = $1"
    ))
    .bind(id.as_str())
    .fetch_optional(&mut *conn)
    .await
    .db()?;
    row.as_ref().map(codec::run_from_row).transpose()
}

/// Applies a run's status change and, when it is applied, records the
/// deliveries of the notifications it raises, in one transaction.
pub(super) async fn transition_run(
    store: &PostgresStore,
    change: &RunTransition,
    deliveries: &[NewDelivery],
) -> Result<bool> {
    change.from.check_transition(change.to)?;
    store
        .write(|| transition_run_once(store, change, deliveries))
        .await
}

async fn transition_run_once(
    store: &PostgresStore,
    change: &RunTransition,
    deliveries: &[NewDelivery],
) -> Result<bool> {
    let mut tx = store.begin().await?;
    let at = micros(change.at);
    let terminal = change.to.is_terminal();
    let running = change.to == RunStatus::Running;
    let applied = sqlx::query(
        "UPDATE pipeline_run SET status = $1, \
           started_at = CASE WHEN $2 THEN COALESCE(started_at, $3) ELSE started_at END, \
           timeout_at = CASE WHEN $2 THEN $4 ELSE timeout_at END, \
           finished_at = CASE WHEN $5 THEN $3 ELSE finished_at END, \
           error = CASE WHEN $5 THEN $6 ELSE error END, \
           timed_out = CASE WHEN $5 AND $7 THEN TRUE ELSE timed_out END \
         WHERE id = $8 AND attempt = $9 AND status = $10",
    )
    .bind(change.to.as_str())
    .bind(running)
    .bind(at)
    .bind(opt_micros(change.timeout_at))
    .bind(terminal)
    .bind(change.error.as_deref())
    .bind(change.timed_out)
    .bind(change.id.as_str())
    .bind(i64::from(change.attempt))
    .bind(change.from.as_str())
    .execute(&mut *tx)
    .await
    .db()?
    .rows_affected()
        == 1;
    if !applied {
        return Ok(false);
    }
    sqlx::query(
        "UPDATE run_attempt SET status = $1, \
           started_at = CASE WHEN $2 THEN COALESCE(started_at, $3) ELSE started_at END, \
           finished_at = CASE WHEN $4 THEN $3 ELSE finished_at END, \
           error = CASE WHEN $4 THEN $5 ELSE error END \
         WHERE run_id = $6 AND attempt = $7",
    )
    .bind(change.to.as_str())
    .bind(running)
    .bind(at)
    .bind(terminal)
    .bind(change.error.as_deref())
    .bind(change.id.as_str())
    .bind(i64::from(change.attempt))
    .execute(&mut *tx)
    .await
    .db()?;
    insert_deliveries(&mut tx, deliveries).await?;
    tx.commit().await.db()?;
    Ok(true)
}

pub(super) async fn request_cancel(
    store: &PostgresStore,
    id: &RunId,
    by: &str,
    at: Timestamp,
) -> Result<bool> {
    let set = sqlx::query(
        "UPDATE pipeline_run SET cancel_requested_at = $1, cancel_requested_by = $2 \
         WHERE id = $3 AND cancel_requested_at IS NULL \
           AND status NOT IN ('completed', 'failed', 'cancelled')",
    )
    .bind(micros(at))
    .bind(by)
    .bind(id.as_str())
    .execute(&store.pool)
    .await
    .db()?
    .rows_affected()
        == 1;
    if !set {
        ensure_run_exists(store, id).await?;
    }
    Ok(set)
}

pub(super) async fn flag_run(store: &PostgresStore, id: &RunId, flag: RunFlag) -> Result<bool> {
    let sql = match flag {
        RunFlag::SlaMissed => {
            "UPDATE pipeline_run SET sla_missed = TRUE WHERE id = $1 AND NOT sla_missed"
        }
        RunFlag::TimedOut => {
            "UPDATE pipeline_run SET timed_out = TRUE WHERE id = $1 AND NOT timed_out"
        }
    };
    let set = sqlx::query(sql)
        .bind(id.as_str())
        .execute(&store.pool)
        .await
        .db()?
        .rows_affected()
        == 1;
    if !set {
        ensure_run_exists(store, id).await?;
    }
    Ok(set)
}

async fn ensure_run_exists(store: &PostgresStore, id: &RunId) -> Result<()> {
    let exists: Option<i32> = sqlx::query_scalar("SELECT 1 FROM pipeline_run WHERE id = $1")
        .bind(id.as_str())
        .fetch_optional(&store.pool)
        .await
        .db()?;
    match exists {
        Some(_) => Ok(()),
        None => Err(Error::NotFound(format!("run `{id}`"))),
    }
}

pub(super) async fn list_attempts(store: &PostgresStore, id: &RunId) -> Result<Vec<AttemptRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        attempt_columns!(),
        " FROM run_attempt WHERE run_id = $1 ORDER BY attempt LIMIT $2"
    ))
    .bind(id.as_str())
    .bind(MAX_ROWS)
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter().map(codec::attempt_from_row).collect()
}

pub(super) async fn start_attempt(store: &PostgresStore, attempt: &NewAttempt) -> Result<()> {
    store.write(|| start_attempt_once(store, attempt)).await
}

async fn start_attempt_once(store: &PostgresStore, new: &NewAttempt) -> Result<()> {
    let mut tx = store.begin().await?;
    // The lock makes a concurrent retry of the same run wait here, and then
    // read the attempt this one added.
    let row: Option<PgRow> =
        sqlx::query("SELECT attempt, status FROM pipeline_run WHERE id = $1 FOR UPDATE")
            .bind(new.run_id.as_str())
            .fetch_optional(&mut *tx)
            .await
            .db()?;
    let Some(row) = row else {
        return Err(Error::NotFound(format!("run `{}`", new.run_id)));
    };
    let latest: u32 = codec::get_narrow(&row, "attempt")?;
    let status = crate::encoding::run_status(&get::<String>(&row, "status")?)?;
    if latest != new.previous_attempt {
        return Err(Error::Conflict(format!(
            "run `{}` is already at attempt {latest}, not {}: someone else retried it; \
             reload the run before retrying it again",
            new.run_id, new.previous_attempt
        )));
    }
    if !status.is_terminal() {
        return Err(Error::Conflict(format!(
            "run `{}` is still {status}: wait for it to finish, or cancel it, before retrying it",
            new.run_id
        )));
    }
    let number = latest + 1;
    let at = micros(new.at);
    sqlx::query(
        "INSERT INTO run_attempt (run_id, attempt, status, mode, from_block, created_at, \
         created_by, pipeline_version, project_version) \
         VALUES ($1, $2, 'initial', $3, $4, $5, $6, $7, $8)",
    )
    .bind(new.run_id.as_str())
    .bind(i64::from(number))
    .bind(&new.mode)
    .bind(new.from_block.as_deref())
    .bind(at)
    .bind(new.created_by.as_deref())
    .bind(&new.pipeline_version)
    .bind(new.project_version.as_deref())
    .execute(&mut *tx)
    .await
    .db()?;
    sqlx::query(
        "UPDATE pipeline_run SET attempt = $1, status = 'initial', finished_at = NULL, \
           error = NULL, cancel_requested_at = NULL, cancel_requested_by = NULL, \
           timed_out = FALSE, timeout_at = NULL, owner = $2, pipeline_version = $4, \
           project_version = $5 \
         WHERE id = $3",
    )
    .bind(i64::from(number))
    .bind(new.owner.as_ref().map(|owner| owner.as_str()))
    .bind(new.run_id.as_str())
    .bind(&new.pipeline_version)
    .bind(new.project_version.as_deref())
    .execute(&mut *tx)
    .await
    .db()?;
    insert_block_runs(&mut tx, &new.run_id, number, at, &new.blocks).await?;
    tx.commit().await.db()?;
    Ok(())
}
