//! Conversions between the store's records and PostgreSQL rows (timestamps
//! as BIGINT microseconds, structured values as JSON, statuses as their
//! names), and the mapping of sqlx errors onto [`Error`].
//!
//! JSON values are bound as text and cast with `::JSON` in the statement:
//! a JSONB parameter would be parsed as JSONB first, and refuse the NUL
//! characters the JSON columns are there to keep.

use serde::de::DeserializeOwned;
use sluice_core::ids::{BlockRunId, ExecutorId, RunId, TryId};
use sqlx::postgres::PgRow;
use sqlx::types::Json;
use sqlx::{Decode, Postgres, Row, Type};

use crate::encoding::{self, narrow};
use crate::{
    ApiTokenRecord, ArtifactRecord, AttemptRecord, BlockRunRecord, Error, Result, RunRecord,
    TryRecord,
};

/// Maps sqlx results onto the store's errors.
pub(super) trait DbResultExt<T> {
    fn db(self) -> Result<T>;
}

impl<T> DbResultExt<T> for std::result::Result<T, sqlx::Error> {
    fn db(self) -> Result<T> {
        self.map_err(classify)
    }
}

/// SQLSTATE classes and codes that say "try again later" rather than "the
/// request is wrong": lost or refused connections (class 08), too many
/// connections or no resources (class 53), a server shutting down (57P01,
/// 57P02, 57P03), and a transaction that lost a race to another one
/// (40001, 40P01).
const TRANSIENT_CLASSES: [&str; 2] = ["08", "53"];
const TRANSIENT_CODES: [&str; 5] = ["57P01", "57P02", "57P03", "40001", "40P01"];
/// The codes of a transaction that lost a race and may simply run again.
const CONFLICT_CODES: [&str; 2] = ["40001", "40P01"];

/// Sorts a sqlx error into "try again later" or "the database failed".
pub(super) fn classify(error: sqlx::Error) -> Error {
    let transient = match &error {
        sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::Io(_)
        | sqlx::Error::Tls(_) => true,
        other => sqlstate(other).is_some_and(|code| {
            TRANSIENT_CODES.contains(&code.as_str())
                || TRANSIENT_CLASSES
                    .iter()
                    .any(|class| code.starts_with(class))
        }),
    };
    if transient {
        Error::Unavailable(error)
    } else {
        Error::Database(error)
    }
}

/// Whether the error is a serialization failure or a deadlock: the
/// transaction was rolled back and may run again as it is.
pub(super) fn is_conflict(error: &sqlx::Error) -> bool {
    sqlstate(error).is_some_and(|code| CONFLICT_CODES.contains(&code.as_str()))
}

fn sqlstate(error: &sqlx::Error) -> Option<String> {
    error
        .as_database_error()
        .and_then(|database_error| database_error.code())
        .map(|code| code.into_owned())
}

/// Reads one column of a row.
pub(super) fn get<'r, T>(row: &'r PgRow, column: &str) -> Result<T>
where
    T: Decode<'r, Postgres> + Type<Postgres>,
{
    row.try_get(column).db()
}

/// Reads a BIGINT column that holds a narrower number (`u32`, `i32`, `u64`).
pub(super) fn get_narrow<T: TryFrom<i64>>(row: &PgRow, column: &str) -> Result<T> {
    narrow(get::<i64>(row, column)?, column)
}

fn get_opt_narrow<T: TryFrom<i64>>(row: &PgRow, column: &str) -> Result<Option<T>> {
    get::<Option<i64>>(row, column)?
        .map(|value| narrow(value, column))
        .transpose()
}

pub(super) fn get_timestamp(row: &PgRow, column: &str) -> Result<jiff::Timestamp> {
    encoding::timestamp(get(row, column)?)
}

pub(super) fn get_opt_timestamp(row: &PgRow, column: &str) -> Result<Option<jiff::Timestamp>> {
    encoding::opt_timestamp(get(row, column)?)
}

/// Reads a JSON or JSONB column; a value that does not fit the record is
/// corrupt.
pub(super) fn get_json<T: DeserializeOwned>(row: &PgRow, column: &str) -> Result<T> {
    let value: Json<serde_json::Value> = get(row, column)?;
    from_value(value.0, column)
}

fn get_opt_json<T: DeserializeOwned>(row: &PgRow, column: &str) -> Result<Option<T>> {
    let value: Option<Json<serde_json::Value>> = get(row, column)?;
    value.map(|value| from_value(value.0, column)).transpose()
}

fn from_value<T: DeserializeOwned>(value: serde_json::Value, column: &str) -> Result<T> {
    serde_json::from_value(value).map_err(|error| {
        Error::Corrupt(format!(
            "`{column}` does not hold the expected JSON: {error}"
        ))
    })
}

/// The columns of `pipeline_run` that make a [`RunRecord`].
macro_rules! run_columns {
    () => {
        "id, pipeline, status, attempt, priority, invoked_by, tags, variables, \
         pipeline_version, created_at, started_at, finished_at, error, cancel_requested_at, \
         cancel_requested_by, timed_out, sla_missed, timeout_at, sla_at, sla_at_risk_at, \
         idempotency_key, owner, block_concurrency, scheduled_for, window_start, window_end, \
         slow, baseline, resolved_at, resolved_by_run, resolved_by_attempt, project_version"
    };
}

/// The columns of `run_attempt` that make an [`AttemptRecord`].
macro_rules! attempt_columns {
    () => {
        "run_id, attempt, status, mode, from_block, created_at, created_by, started_at, \
         finished_at, error, pipeline_version, project_version"
    };
}

/// The columns of `block_run` that make a [`BlockRunRecord`].
macro_rules! block_run_columns {
    () => {
        "id, run_id, attempt, block, status, priority, max_tries, tries, created_at, queued_at, \
         started_at, finished_at, retry_at, outputs, error, exit_code, timed_out, \
         reused_from_attempt, data, labels, idempotency_key"
    };
}

/// The columns of `block_try` that make a [`TryRecord`].
macro_rules! try_columns {
    () => {
        "id, block_run_id, try_number, status, executor, lease_epoch, lease_expires_at, \
         started_at, finished_at, exit_code, error, timed_out"
    };
}

/// The columns of `artifact` that make an [`ArtifactRecord`].
macro_rules! artifact_columns {
    () => {
        "id, run_id, block_run_id, try_id, name, size, sha256, created_at"
    };
}

pub(super) use {artifact_columns, attempt_columns, block_run_columns, run_columns, try_columns};

pub(super) fn run_from_row(row: &PgRow) -> Result<RunRecord> {
    let status: String = get(row, "status")?;
    Ok(RunRecord {
        id: RunId(get(row, "id")?),
        pipeline: get(row, "pipeline")?,
        status: encoding::run_status(&status)?,
        attempt: get_narrow(row, "attempt")?,
        priority: get_narrow(row, "priority")?,
        invoked_by: get_json(row, "invoked_by")?,
        tags: get_json(row, "tags")?,
        variables: get_json(row, "variables")?,
        pipeline_version: get(row, "pipeline_version")?,
        project_version: get(row, "project_version")?,
        created_at: get_timestamp(row, "created_at")?,
        started_at: get_opt_timestamp(row, "started_at")?,
        finished_at: get_opt_timestamp(row, "finished_at")?,
        error: get(row, "error")?,
        cancel_requested_at: get_opt_timestamp(row, "cancel_requested_at")?,
        cancel_requested_by: get(row, "cancel_requested_by")?,
        timed_out: get(row, "timed_out")?,
        sla_missed: get(row, "sla_missed")?,
        timeout_at: get_opt_timestamp(row, "timeout_at")?,
        sla_at: get_opt_timestamp(row, "sla_at")?,
        sla_at_risk_at: get_opt_timestamp(row, "sla_at_risk_at")?,
        idempotency_key: get(row, "idempotency_key")?,
        owner: get::<Option<String>>(row, "owner")?.map(ExecutorId),
        block_concurrency: get_opt_narrow(row, "block_concurrency")?,
        window: encoding::run_window(
            get_opt_timestamp(row, "scheduled_for")?,
            get_opt_timestamp(row, "window_start")?,
            get_opt_timestamp(row, "window_end")?,
        ),
        slow: get(row, "slow")?,
        baseline: get_opt_json(row, "baseline")?,
        resolved: encoding::resolution(
            get_opt_timestamp(row, "resolved_at")?,
            get::<Option<String>>(row, "resolved_by_run")?,
            get_opt_narrow(row, "resolved_by_attempt")?,
        ),
    })
}

pub(super) fn attempt_from_row(row: &PgRow) -> Result<AttemptRecord> {
    let status: String = get(row, "status")?;
    Ok(AttemptRecord {
        run_id: RunId(get(row, "run_id")?),
        attempt: get_narrow(row, "attempt")?,
        status: encoding::run_status(&status)?,
        mode: get(row, "mode")?,
        from_block: get(row, "from_block")?,
        created_at: get_timestamp(row, "created_at")?,
        created_by: get(row, "created_by")?,
        started_at: get_opt_timestamp(row, "started_at")?,
        finished_at: get_opt_timestamp(row, "finished_at")?,
        error: get(row, "error")?,
        pipeline_version: get(row, "pipeline_version")?,
        project_version: get(row, "project_version")?,
    })
}

pub(super) fn block_run_from_row(row: &PgRow) -> Result<BlockRunRecord> {
    let status: String = get(row, "status")?;
    Ok(BlockRunRecord {
        id: BlockRunId(get(row, "id")?),
        run_id: RunId(get(row, "run_id")?),
        attempt: get_narrow(row, "attempt")?,
        block: get(row, "block")?,
        status: encoding::block_run_status(&status)?,
        priority: get_narrow(row, "priority")?,
        max_tries: get_narrow(row, "max_tries")?,
        tries: get_narrow(row, "tries")?,
        created_at: get_timestamp(row, "created_at")?,
        queued_at: get_opt_timestamp(row, "queued_at")?,
        started_at: get_opt_timestamp(row, "started_at")?,
        finished_at: get_opt_timestamp(row, "finished_at")?,
        retry_at: get_opt_timestamp(row, "retry_at")?,
        outputs: get_json(row, "outputs")?,
        error: get(row, "error")?,
        exit_code: get_opt_narrow(row, "exit_code")?,
        timed_out: get(row, "timed_out")?,
        reused_from_attempt: get_opt_narrow(row, "reused_from_attempt")?,
        data: get_opt_json(row, "data")?,
        labels: get_json(row, "labels")?,
        idempotency_key: get(row, "idempotency_key")?,
    })
}

pub(super) fn try_from_row(row: &PgRow) -> Result<TryRecord> {
    let status: String = get(row, "status")?;
    Ok(TryRecord {
        id: TryId(get(row, "id")?),
        block_run_id: BlockRunId(get(row, "block_run_id")?),
        try_number: get_narrow(row, "try_number")?,
        status: encoding::try_status(&status)?,
        executor: ExecutorId(get(row, "executor")?),
        lease_epoch: get(row, "lease_epoch")?,
        lease_expires_at: get_timestamp(row, "lease_expires_at")?,
        started_at: get_timestamp(row, "started_at")?,
        finished_at: get_opt_timestamp(row, "finished_at")?,
        exit_code: get_opt_narrow(row, "exit_code")?,
        error: get(row, "error")?,
        timed_out: get(row, "timed_out")?,
    })
}

pub(super) fn artifact_from_row(row: &PgRow) -> Result<ArtifactRecord> {
    Ok(ArtifactRecord {
        id: get(row, "id")?,
        run_id: RunId(get(row, "run_id")?),
        block_run_id: BlockRunId(get(row, "block_run_id")?),
        try_id: TryId(get(row, "try_id")?),
        name: get(row, "name")?,
        size: get_narrow(row, "size")?,
        sha256: get(row, "sha256")?,
        created_at: get_timestamp(row, "created_at")?,
    })
}

pub(super) fn token_from_row(row: &PgRow) -> Result<ApiTokenRecord> {
    Ok(ApiTokenRecord {
        name: get(row, "name")?,
        role: get(row, "role")?,
        sha256: get(row, "sha256")?,
        created_at: get_timestamp(row, "created_at")?,
        created_by: get(row, "created_by")?,
        revoked_at: get_opt_timestamp(row, "revoked_at")?,
    })
}

/// Binds an `i64` for an unsigned count that must fit a BIGINT column.
pub(super) fn wide(value: u64, what: &str) -> Result<i64> {
    i64::try_from(value)
        .map_err(|_| Error::Conflict(format!("{what} {value} is too large to record")))
}
