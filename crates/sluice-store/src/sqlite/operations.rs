//! Duration history and baselines, resolved failures, and retention: the
//! deletion of a finished run with everything recorded under it.
//!
//! Every read here is bounded and walks an index: the baseline reads the
//! latest completed runs by `pipeline_run_completed_finished`, retention
//! walks `pipeline_run_pipeline_created`, and the blob check looks a digest
//! up in `artifact_sha256` and `block_run_data_sha256`.

use sluice_core::ids::RunId;
use sqlx::sqlite::SqliteRow;

use super::SqliteStore;
use super::codec::{self, DbResultExt, get, get_u32, micros, run_columns, to_json};
use crate::{
    BaselineRecord, DurationHistoryQuery, ExpiredRunQuery, PurgedRun, ResolvingRun, Result,
    RunDurations, RunPurge, RunRecord,
};

/// The most runs one read of history or of expired runs returns.
const MAX_BATCH: u32 = 1_000;

/// Milliseconds between two microsecond instants, never negative.
fn millis(started: i64, finished: i64) -> u64 {
    u64::try_from((finished - started) / 1_000).unwrap_or(0)
}

pub(super) async fn duration_history(
    store: &SqliteStore,
    query: &DurationHistoryQuery,
) -> Result<Vec<RunDurations>> {
    let mut conn = store.pool.acquire().await.db()?;
    let rows: Vec<SqliteRow> = sqlx::query(
        "SELECT r.id, a.attempt, a.started_at, a.finished_at \
         FROM pipeline_run r \
         JOIN run_attempt a ON a.run_id = r.id AND a.attempt = r.attempt \
         WHERE r.pipeline = ? AND r.status = 'completed' AND r.finished_at <= ? \
           AND r.id <> ? AND a.started_at IS NOT NULL AND a.finished_at IS NOT NULL \
         ORDER BY r.finished_at DESC LIMIT ?",
    )
    .bind(&query.pipeline)
    .bind(micros(query.finished_before))
    .bind(query.exclude.as_ref().map_or("", RunId::as_str))
    .bind(i64::from(query.limit.clamp(1, MAX_BATCH)))
    .fetch_all(&mut *conn)
    .await
    .db()?;
    let mut history = Vec::with_capacity(rows.len());
    for row in rows {
        let run_id: String = get(&row, "id")?;
        let attempt = get_u32(&row, "attempt")?;
        let blocks: Vec<SqliteRow> = sqlx::query(
            "SELECT block, started_at, finished_at FROM block_run \
             WHERE run_id = ? AND attempt = ? AND status = 'completed' \
               AND reused_from_attempt IS NULL \
               AND started_at IS NOT NULL AND finished_at IS NOT NULL \
             ORDER BY seq LIMIT ?",
        )
        .bind(&run_id)
        .bind(i64::from(attempt))
        .bind(codec::MAX_ROWS)
        .fetch_all(&mut *conn)
        .await
        .db()?;
        let blocks = blocks
            .iter()
            .map(|block| {
                Ok((
                    get::<String>(block, "block")?,
                    millis(get(block, "started_at")?, get(block, "finished_at")?),
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        history.push(RunDurations {
            run_id: RunId(run_id),
            run_ms: millis(get(&row, "started_at")?, get(&row, "finished_at")?),
            blocks,
        });
    }
    Ok(history)
}

pub(super) async fn record_baseline(store: &SqliteStore, record: &BaselineRecord) -> Result<bool> {
    let baseline = to_json(&record.baseline)?;
    store
        .write(|| async {
            let result = sqlx::query(
                "UPDATE pipeline_run SET baseline = ?, slow = ? WHERE id = ? AND attempt = ?",
            )
            .bind(&baseline)
            .bind(record.slow)
            .bind(record.run_id.as_str())
            .bind(i64::from(record.attempt))
            .execute(&store.pool)
            .await
            .db()?;
            Ok(result.rows_affected() == 1)
        })
        .await
}

pub(super) async fn resolve_failures(
    store: &SqliteStore,
    resolving: &ResolvingRun,
) -> Result<Vec<RunId>> {
    store
        .write(|| async {
            let mut tx = store.begin().await?;
            let at = micros(resolving.at);
            let mut resolved: Vec<String> = sqlx::query_scalar(
                "UPDATE pipeline_run \
                 SET resolved_at = ?1, resolved_by_run = ?2, resolved_by_attempt = ?3 \
                 WHERE id = ?2 AND attempt = ?3 AND status = 'completed' \
                   AND resolved_at IS NULL \
                   AND EXISTS (SELECT 1 FROM run_attempt \
                               WHERE run_id = ?2 AND attempt < ?3 AND status = 'failed') \
                 RETURNING id",
            )
            .bind(at)
            .bind(resolving.run_id.as_str())
            .bind(i64::from(resolving.attempt))
            .fetch_all(&mut *tx)
            .await
            .db()?;
            if let Some(window) = resolving.window {
                let others: Vec<String> = sqlx::query_scalar(
                    "UPDATE pipeline_run \
                     SET resolved_at = ?1, resolved_by_run = ?2, resolved_by_attempt = ?3 \
                     WHERE pipeline = ?4 AND window_end = ?5 AND window_start = ?6 \
                       AND status = 'failed' AND resolved_at IS NULL AND id <> ?2 \
                       AND finished_at <= ?1 \
                     RETURNING id",
                )
                .bind(at)
                .bind(resolving.run_id.as_str())
                .bind(i64::from(resolving.attempt))
                .bind(&resolving.pipeline)
                .bind(micros(window.window_end))
                .bind(micros(window.window_start))
                .fetch_all(&mut *tx)
                .await
                .db()?;
                resolved.extend(others);
            }
            tx.commit().await.db()?;
            resolved.sort();
            Ok(resolved.into_iter().map(RunId).collect())
        })
        .await
}

pub(super) async fn expired_runs(
    store: &SqliteStore,
    query: &ExpiredRunQuery,
) -> Result<Vec<RunRecord>> {
    let mut conn = store.pool.acquire().await.db()?;
    // The oldest of the runs kept whatever their age: every expired run
    // comes strictly before it.
    let boundary: Option<(i64, String)> = if query.keep_last == 0 {
        None
    } else {
        let kept: Vec<(i64, String)> = sqlx::query_as(
            "SELECT created_at, id FROM pipeline_run WHERE pipeline = ? \
             ORDER BY created_at DESC, id DESC LIMIT ?",
        )
        .bind(&query.pipeline)
        .bind(i64::from(query.keep_last))
        .fetch_all(&mut *conn)
        .await
        .db()?;
        if kept.len() < query.keep_last as usize {
            return Ok(Vec::new());
        }
        kept.into_iter().last()
    };
    let (boundary_created, boundary_id) = boundary.unwrap_or((i64::MAX, String::new()));
    let rows = sqlx::query(concat!(
        "SELECT ",
        run_columns!(),
        " FROM pipeline_run WHERE pipeline = ? AND created_at < ? \
           AND (created_at < ? OR (created_at = ? AND id < ?) OR ? = '') \
           AND status IN ('completed', 'failed', 'cancelled') \
         ORDER BY created_at, id LIMIT ?"
    ))
    .bind(&query.pipeline)
    .bind(micros(query.created_before))
    .bind(boundary_created)
    .bind(boundary_created)
    .bind(&boundary_id)
    .bind(&boundary_id)
    .bind(i64::from(query.limit.clamp(1, MAX_BATCH)))
    .fetch_all(&mut *conn)
    .await
    .db()?;
    rows.iter().map(codec::run_from_row).collect()
}

pub(super) async fn purge_run(store: &SqliteStore, purge: &RunPurge) -> Result<Option<PurgedRun>> {
    let details = to_json(&purge.audit.details)?;
    store
        .write(|| async {
            let mut tx = store.begin().await?;
            let id = purge.id.as_str();
            let status: Option<String> =
                sqlx::query_scalar("SELECT status FROM pipeline_run WHERE id = ?")
                    .bind(id)
                    .fetch_optional(&mut *tx)
                    .await
                    .db()?;
            let finished = status
                .as_deref()
                .map(codec::run_status)
                .transpose()?
                .is_some_and(|status| status.is_terminal());
            if !finished {
                return Ok(None);
            }
            let mut blobs: Vec<String> = sqlx::query_scalar(
                "SELECT sha256 FROM artifact WHERE run_id = ? \
                 UNION SELECT json_extract(data, '$.sha256') FROM block_run \
                 WHERE run_id = ? AND data IS NOT NULL",
            )
            .bind(id)
            .bind(id)
            .fetch_all(&mut *tx)
            .await
            .db()?;
            // Children first, so that the deletion does not depend on
            // cascades.
            for statement in [
                "DELETE FROM log_chunk WHERE try_id IN (SELECT id FROM block_try WHERE run_id = ?)",
                "DELETE FROM artifact WHERE run_id = ?",
                "DELETE FROM block_try WHERE run_id = ?",
                "DELETE FROM block_run WHERE run_id = ?",
                "DELETE FROM notification_delivery WHERE run_id = ?",
                "DELETE FROM run_tag WHERE run_id = ?",
                "DELETE FROM run_attempt WHERE run_id = ?",
                "DELETE FROM pipeline_run WHERE id = ?",
            ] {
                sqlx::query(statement)
                    .bind(id)
                    .execute(&mut *tx)
                    .await
                    .db()?;
            }
            sqlx::query(
                "INSERT INTO audit_event (at, actor, action, target, details) \
                 VALUES (?, ?, ?, ?, ?)",
            )
            .bind(micros(purge.audit.at))
            .bind(&purge.audit.actor)
            .bind(&purge.audit.action)
            .bind(&purge.audit.target)
            .bind(&details)
            .execute(&mut *tx)
            .await
            .db()?;
            tx.commit().await.db()?;
            blobs.sort();
            blobs.dedup();
            Ok(Some(PurgedRun {
                id: purge.id.clone(),
                blobs,
            }))
        })
        .await
}

pub(super) async fn blob_referenced(store: &SqliteStore, sha256: &str) -> Result<bool> {
    let referenced: i64 = sqlx::query_scalar(
        "SELECT EXISTS (SELECT 1 FROM artifact WHERE sha256 = ?1) \
             OR EXISTS (SELECT 1 FROM block_run \
                        WHERE json_extract(data, '$.sha256') = ?1 AND data IS NOT NULL) \
             OR EXISTS (SELECT 1 FROM project_file WHERE sha256 = ?1)",
    )
    .bind(sha256)
    .fetch_one(&store.pool)
    .await
    .db()?;
    Ok(referenced != 0)
}
