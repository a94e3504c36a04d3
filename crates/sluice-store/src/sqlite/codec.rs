//! Conversions between the store's records and SQLite rows: timestamps as
//! integer microseconds, JSON as text, statuses as their names (the shared
//! encoding in `crate::encoding`), and the mapping of sqlx errors onto
//! [`Error`].

use std::borrow::Cow;

use jiff::Timestamp;
use serde::de::DeserializeOwned;
use sluice_core::ids::{BlockRunId, ExecutorId, RunId, TryId};
use sqlx::sqlite::SqliteRow;
use sqlx::{Decode, Row, Sqlite, Type};

pub(super) use crate::encoding::{
    MAX_ROWS, bounded_limit, micros, opt_micros, run_status, timestamp, to_json,
};
use crate::encoding::{
    block_run_status, from_json, opt_timestamp, resolution, run_window, try_status,
};
use crate::{
    AttemptRecord, BlockRunRecord, DataRef, Error, InvokedBy, Result, RunRecord, TryRecord,
};

/// The SQLite primary result codes that mean "another connection holds the
/// lock": `SQLITE_BUSY` and `SQLITE_LOCKED`.
const SQLITE_BUSY: i64 = 5;
const SQLITE_LOCKED: i64 = 6;

/// Maps sqlx results onto the store's errors.
pub(super) trait DbResultExt<T> {
    fn db(self) -> Result<T>;
}

impl<T> DbResultExt<T> for std::result::Result<T, sqlx::Error> {
    fn db(self) -> Result<T> {
        self.map_err(classify)
    }
}

/// Sorts a sqlx error into "try again later" or "the database failed".
pub(super) fn classify(error: sqlx::Error) -> Error {
    let unavailable = is_busy(&error)
        || matches!(
            error,
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_)
        );
    if unavailable {
        Error::Unavailable(error)
    } else {
        Error::Database(error)
    }
}

/// Whether the error says that another connection holds the database's lock.
pub(super) fn is_busy(error: &sqlx::Error) -> bool {
    let Some(database_error) = error.as_database_error() else {
        return false;
    };
    let code = database_error
        .code()
        .and_then(|code: Cow<'_, str>| code.parse::<i64>().ok());
    match code {
        // Extended result codes keep the primary code in their low byte.
        Some(code) => matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED),
        None => database_error.message().contains("database is locked"),
    }
}

/// Reads one column of a row.
pub(super) fn get<'r, T>(row: &'r SqliteRow, column: &str) -> Result<T>
where
    T: Decode<'r, Sqlite> + Type<Sqlite>,
{
    row.try_get(column).db()
}

/// Reads an INTEGER column that holds an unsigned 32-bit number.
pub(super) fn get_u32(row: &SqliteRow, column: &str) -> Result<u32> {
    let value: i64 = get(row, column)?;
    u32::try_from(value).map_err(|_| Error::Corrupt(format!("`{column}` {value} is out of range")))
}

fn get_opt_u32(row: &SqliteRow, column: &str) -> Result<Option<u32>> {
    let value: Option<i64> = get(row, column)?;
    value
        .map(|value| {
            u32::try_from(value)
                .map_err(|_| Error::Corrupt(format!("`{column}` {value} is out of range")))
        })
        .transpose()
}

pub(super) fn get_u64(row: &SqliteRow, column: &str) -> Result<u64> {
    let value: i64 = get(row, column)?;
    u64::try_from(value).map_err(|_| Error::Corrupt(format!("`{column}` {value} is out of range")))
}

fn get_opt_i32(row: &SqliteRow, column: &str) -> Result<Option<i32>> {
    let value: Option<i64> = get(row, column)?;
    value
        .map(|value| {
            i32::try_from(value)
                .map_err(|_| Error::Corrupt(format!("`{column}` {value} is out of range")))
        })
        .transpose()
}

pub(super) fn get_timestamp(row: &SqliteRow, column: &str) -> Result<Timestamp> {
    timestamp(get(row, column)?)
}

pub(super) fn get_opt_timestamp(row: &SqliteRow, column: &str) -> Result<Option<Timestamp>> {
    opt_timestamp(get(row, column)?)
}

pub(super) fn get_bool(row: &SqliteRow, column: &str) -> Result<bool> {
    Ok(get::<i64>(row, column)? != 0)
}

pub(super) fn get_json<T: DeserializeOwned>(row: &SqliteRow, column: &str) -> Result<T> {
    let text: String = get(row, column)?;
    from_json(&text, column)
}

fn get_opt_json<T: DeserializeOwned>(row: &SqliteRow, column: &str) -> Result<Option<T>> {
    let text: Option<String> = get(row, column)?;
    text.map(|text| from_json(&text, column)).transpose()
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

pub(super) use {attempt_columns, block_run_columns, run_columns, try_columns};

pub(super) fn run_from_row(row: &SqliteRow) -> Result<RunRecord> {
    let status: String = get(row, "status")?;
    let invoked_by: InvokedBy = get_json(row, "invoked_by")?;
    Ok(RunRecord {
        id: RunId(get(row, "id")?),
        pipeline: get(row, "pipeline")?,
        status: run_status(&status)?,
        attempt: get_u32(row, "attempt")?,
        priority: get(row, "priority")?,
        invoked_by,
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
        timed_out: get_bool(row, "timed_out")?,
        sla_missed: get_bool(row, "sla_missed")?,
        timeout_at: get_opt_timestamp(row, "timeout_at")?,
        sla_at: get_opt_timestamp(row, "sla_at")?,
        sla_at_risk_at: get_opt_timestamp(row, "sla_at_risk_at")?,
        idempotency_key: get(row, "idempotency_key")?,
        owner: get::<Option<String>>(row, "owner")?.map(ExecutorId),
        block_concurrency: get_opt_u32(row, "block_concurrency")?,
        window: run_window(
            get_opt_timestamp(row, "scheduled_for")?,
            get_opt_timestamp(row, "window_start")?,
            get_opt_timestamp(row, "window_end")?,
        ),
        slow: get_bool(row, "slow")?,
        baseline: get_opt_json(row, "baseline")?,
        resolved: resolution(
            get_opt_timestamp(row, "resolved_at")?,
            get::<Option<String>>(row, "resolved_by_run")?,
            get_opt_u32(row, "resolved_by_attempt")?,
        ),
    })
}

pub(super) fn attempt_from_row(row: &SqliteRow) -> Result<AttemptRecord> {
    let status: String = get(row, "status")?;
    Ok(AttemptRecord {
        run_id: RunId(get(row, "run_id")?),
        attempt: get_u32(row, "attempt")?,
        status: run_status(&status)?,
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

pub(super) fn block_run_from_row(row: &SqliteRow) -> Result<BlockRunRecord> {
    let status: String = get(row, "status")?;
    let data: Option<DataRef> = get_opt_json(row, "data")?;
    Ok(BlockRunRecord {
        id: BlockRunId(get(row, "id")?),
        run_id: RunId(get(row, "run_id")?),
        attempt: get_u32(row, "attempt")?,
        block: get(row, "block")?,
        status: block_run_status(&status)?,
        priority: get(row, "priority")?,
        max_tries: get_u32(row, "max_tries")?,
        tries: get_u32(row, "tries")?,
        created_at: get_timestamp(row, "created_at")?,
        queued_at: get_opt_timestamp(row, "queued_at")?,
        started_at: get_opt_timestamp(row, "started_at")?,
        finished_at: get_opt_timestamp(row, "finished_at")?,
        retry_at: get_opt_timestamp(row, "retry_at")?,
        outputs: get_json(row, "outputs")?,
        error: get(row, "error")?,
        exit_code: get_opt_i32(row, "exit_code")?,
        timed_out: get_bool(row, "timed_out")?,
        reused_from_attempt: get_opt_u32(row, "reused_from_attempt")?,
        data,
        labels: get_json(row, "labels")?,
        idempotency_key: get(row, "idempotency_key")?,
    })
}

pub(super) fn try_from_row(row: &SqliteRow) -> Result<TryRecord> {
    let status: String = get(row, "status")?;
    Ok(TryRecord {
        id: TryId(get(row, "id")?),
        block_run_id: BlockRunId(get(row, "block_run_id")?),
        try_number: get_u32(row, "try_number")?,
        status: try_status(&status)?,
        executor: ExecutorId(get(row, "executor")?),
        lease_epoch: get(row, "lease_epoch")?,
        lease_expires_at: get_timestamp(row, "lease_expires_at")?,
        started_at: get_timestamp(row, "started_at")?,
        finished_at: get_opt_timestamp(row, "finished_at")?,
        exit_code: get_opt_i32(row, "exit_code")?,
        error: get(row, "error")?,
        timed_out: get_bool(row, "timed_out")?,
    })
}
