//! Backfills: their records, conditional status changes, and the runs of a
//! pipeline by window, which tell a backfill which windows are done.

use sluice_core::ids::{BackfillId, ExecutorId};
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use super::codec::{
    self, DbResultExt, MAX_ROWS, get, get_bool, get_opt_timestamp, get_timestamp, get_u32, micros,
    run_columns,
};
use crate::{
    BackfillRecord, BackfillStatus, BackfillStatusChange, Error, Result, RunRecord, WindowRunQuery,
};

const COLUMNS: &str = "id, pipeline, trigger_name, range_from, range_to, reverse, max_concurrent, \
     rerun_completed, priority, status, created_at, created_by, changed_at, owner";

fn backfill_from_row(row: &SqliteRow) -> Result<BackfillRecord> {
    let status: String = get(row, "status")?;
    let priority: i64 = get(row, "priority")?;
    Ok(BackfillRecord {
        id: BackfillId(get(row, "id")?),
        pipeline: get(row, "pipeline")?,
        trigger: get(row, "trigger_name")?,
        from: get_timestamp(row, "range_from")?,
        to: get_timestamp(row, "range_to")?,
        reverse: get_bool(row, "reverse")?,
        max_concurrent: get_u32(row, "max_concurrent")?,
        rerun_completed: get_bool(row, "rerun_completed")?,
        priority: i32::try_from(priority)
            .map_err(|_| Error::Corrupt(format!("`priority` {priority} is out of range")))?,
        status: BackfillStatus::parse(&status)
            .ok_or_else(|| Error::Corrupt(format!("unknown backfill status `{status}`")))?,
        created_at: get_timestamp(row, "created_at")?,
        created_by: get(row, "created_by")?,
        changed_at: get_opt_timestamp(row, "changed_at")?,
        owner: get::<Option<String>>(row, "owner")?.map(ExecutorId),
    })
}

pub(super) async fn create_backfill(store: &SqliteStore, backfill: &BackfillRecord) -> Result<()> {
    let inserted = store
        .write(|| async {
            let result = sqlx::query(sqlx::AssertSqlSafe(format!(
                "INSERT INTO backfill ({COLUMNS}) \
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING"
            )))
            .bind(backfill.id.as_str())
            .bind(&backfill.pipeline)
            .bind(&backfill.trigger)
            .bind(micros(backfill.from))
            .bind(micros(backfill.to))
            .bind(backfill.reverse)
            .bind(i64::from(backfill.max_concurrent))
            .bind(backfill.rerun_completed)
            .bind(i64::from(backfill.priority))
            .bind(backfill.status.as_str())
            .bind(micros(backfill.created_at))
            .bind(&backfill.created_by)
            .bind(backfill.changed_at.map(micros))
            .bind(backfill.owner.as_ref().map(ExecutorId::as_str))
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
            "a backfill with id `{}` already exists",
            backfill.id
        )))
    }
}

pub(super) async fn get_backfill(
    store: &SqliteStore,
    id: &BackfillId,
) -> Result<Option<BackfillRecord>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM backfill WHERE id = ?"
    )))
    .bind(id.as_str())
    .fetch_optional(&store.pool)
    .await
    .db()?;
    row.as_ref().map(backfill_from_row).transpose()
}

pub(super) async fn list_backfills(
    store: &SqliteStore,
    status: Option<BackfillStatus>,
    limit: u32,
) -> Result<Vec<BackfillRecord>> {
    let limit = i64::from(limit).min(MAX_ROWS);
    let rows = match status {
        Some(status) => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM backfill WHERE status = ? \
                 ORDER BY created_at DESC, id DESC LIMIT ?"
            )))
            .bind(status.as_str())
            .bind(limit)
            .fetch_all(&store.pool)
            .await
        }
        None => {
            sqlx::query(sqlx::AssertSqlSafe(format!(
                "SELECT {COLUMNS} FROM backfill ORDER BY created_at DESC, id DESC LIMIT ?"
            )))
            .bind(limit)
            .fetch_all(&store.pool)
            .await
        }
    }
    .db()?;
    rows.iter().map(backfill_from_row).collect()
}

pub(super) async fn set_backfill_status(
    store: &SqliteStore,
    change: &BackfillStatusChange,
) -> Result<bool> {
    store
        .write(|| async {
            let applied = sqlx::query(
                "UPDATE backfill SET status = ?, changed_at = ? WHERE id = ? AND status = ?",
            )
            .bind(change.to.as_str())
            .bind(micros(change.at))
            .bind(change.id.as_str())
            .bind(change.from.as_str())
            .execute(&store.pool)
            .await
            .db()?
            .rows_affected();
            Ok(applied > 0)
        })
        .await
}

pub(super) async fn list_window_runs(
    store: &SqliteStore,
    query: &WindowRunQuery,
) -> Result<Vec<RunRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        run_columns!(),
        " FROM pipeline_run WHERE pipeline = ? AND window_end IS NOT NULL \
          AND window_end >= ? AND window_end <= ? \
          ORDER BY window_end, created_at, id LIMIT ?"
    ))
    .bind(&query.pipeline)
    .bind(micros(query.from))
    .bind(micros(query.to))
    .bind(MAX_ROWS)
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter().map(codec::run_from_row).collect()
}
