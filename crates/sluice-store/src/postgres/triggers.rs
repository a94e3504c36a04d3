//! Trigger states: the last fire of each trigger, recorded by a conditional
//! upsert that never moves it back, and whether an operator paused it.

use sluice_core::ids::RunId;
use sqlx::postgres::PgRow;

use super::PostgresStore;
use super::codec::{DbResultExt, get, get_opt_timestamp};
use crate::encoding::{MAX_ROWS, micros};
use crate::{Result, TriggerFire, TriggerPause, TriggerState};

const COLUMNS: &str =
    "pipeline, trigger_name, last_fired_at, last_run_id, paused, paused_by, paused_at";

fn state_from_row(row: &PgRow) -> Result<TriggerState> {
    Ok(TriggerState {
        pipeline: get(row, "pipeline")?,
        trigger: get(row, "trigger_name")?,
        last_fired_at: get_opt_timestamp(row, "last_fired_at")?,
        last_run_id: get::<Option<String>>(row, "last_run_id")?.map(RunId),
        paused: get(row, "paused")?,
        paused_by: get(row, "paused_by")?,
        paused_at: get_opt_timestamp(row, "paused_at")?,
    })
}

pub(super) async fn list_trigger_states(store: &PostgresStore) -> Result<Vec<TriggerState>> {
    let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM trigger_state ORDER BY pipeline, trigger_name LIMIT $1"
    )))
    .bind(MAX_ROWS)
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter().map(state_from_row).collect()
}

pub(super) async fn get_trigger_state(
    store: &PostgresStore,
    pipeline: &str,
    trigger: &str,
) -> Result<Option<TriggerState>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM trigger_state WHERE pipeline = $1 AND trigger_name = $2"
    )))
    .bind(pipeline)
    .bind(trigger)
    .fetch_optional(&store.pool)
    .await
    .db()?;
    row.as_ref().map(state_from_row).transpose()
}

pub(super) async fn record_trigger_fire(store: &PostgresStore, fire: &TriggerFire) -> Result<bool> {
    store
        .write(|| async {
            // One statement: a concurrent upsert of the same trigger waits
            // for this one and re-checks the condition on its result.
            let applied = sqlx::query(
                "INSERT INTO trigger_state (pipeline, trigger_name, last_fired_at, last_run_id) \
                 VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (pipeline, trigger_name) DO UPDATE \
                 SET last_fired_at = excluded.last_fired_at, last_run_id = excluded.last_run_id \
                 WHERE trigger_state.last_fired_at IS NULL \
                    OR trigger_state.last_fired_at <= excluded.last_fired_at",
            )
            .bind(&fire.pipeline)
            .bind(&fire.trigger)
            .bind(micros(fire.fired_at))
            .bind(fire.run_id.as_ref().map(RunId::as_str))
            .execute(&store.pool)
            .await
            .db()?
            .rows_affected();
            Ok(applied > 0)
        })
        .await
}

pub(super) async fn set_trigger_paused(
    store: &PostgresStore,
    change: &TriggerPause,
) -> Result<bool> {
    store
        .write(|| async {
            // Pausing creates the row of a trigger that never fired;
            // resuming one without a row has nothing to change.
            let query = if change.paused {
                sqlx::query(
                    "INSERT INTO trigger_state (pipeline, trigger_name, paused, paused_by, paused_at) \
                     VALUES ($1, $2, TRUE, $3, $4) \
                     ON CONFLICT (pipeline, trigger_name) DO UPDATE \
                     SET paused = TRUE, paused_by = excluded.paused_by, paused_at = excluded.paused_at \
                     WHERE NOT trigger_state.paused",
                )
                .bind(&change.pipeline)
                .bind(&change.trigger)
                .bind(&change.by)
                .bind(micros(change.at))
            } else {
                sqlx::query(
                    "UPDATE trigger_state SET paused = FALSE, paused_by = NULL, paused_at = NULL \
                     WHERE pipeline = $1 AND trigger_name = $2 AND paused",
                )
                .bind(&change.pipeline)
                .bind(&change.trigger)
            };
            let applied = query.execute(&store.pool).await.db()?.rows_affected();
            Ok(applied > 0)
        })
        .await
}
