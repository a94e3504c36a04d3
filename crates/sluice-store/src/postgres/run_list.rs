//! Run listings: filtered, keyset-paginated pages of run history, the active
//! runs the reconcilers read, and counts per pipeline and per status.
//!
//! A page must cost the same on the first day and after millions of runs, so
//! every page is read in index order and stops after `limit + 1` rows:
//! - the cursor is a row comparison, `(created_at, id) < (…, …)`, which
//!   PostgreSQL answers from the `(…, created_at, id)` indexes directly;
//! - with a tag filter, the walk follows `run_tag (tag, created_at, run_id)`;
//! - a filter with several values (`status IN (failed, cancelled)`) becomes
//!   one indexed walk per value, merged with `UNION ALL`, so that the
//!   database never sorts every matching run to return a few of them.

use sluice_core::status::RunStatus;
use sqlx::AssertSqlSafe;

use super::PostgresStore;
use super::codec::{self, DbResultExt, get, run_columns};
use crate::encoding::{bounded_limit, micros, narrow, run_status};
use crate::{Order, Result, RunCursor, RunPage, RunQuery, RunRecord};

/// The most runs one page of a listing holds.
const MAX_PAGE: u32 = 1_000;

/// A value bound to a placeholder of a query built at run time.
enum Bind {
    Text(String),
    Texts(Vec<String>),
    Integer(i64),
}

/// A query's text and its bound values; `$n` placeholders are numbered as
/// values are bound.
#[derive(Default)]
struct Sql {
    text: String,
    binds: Vec<Bind>,
}

impl Sql {
    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    /// Binds a value and returns its placeholder.
    fn bind(&mut self, value: Bind) -> String {
        self.binds.push(value);
        format!("${}", self.binds.len())
    }

    /// Appends `AND column = $n` for one value, or `AND column = ANY($n)`
    /// for several.
    fn push_filter(&mut self, column: &str, values: &[String]) {
        match values {
            [] => {}
            [value] => {
                let placeholder = self.bind(Bind::Text(value.clone()));
                self.push(&format!(" AND {column} = {placeholder}"));
            }
            values => {
                let placeholder = self.bind(Bind::Texts(values.to_vec()));
                self.push(&format!(" AND {column} = ANY({placeholder}::TEXT[])"));
            }
        }
    }

    async fn fetch_all(self, store: &PostgresStore) -> Result<Vec<sqlx::postgres::PgRow>> {
        let mut statement = sqlx::query(AssertSqlSafe(self.text));
        for bind in self.binds {
            statement = match bind {
                Bind::Text(text) => statement.bind(text),
                Bind::Texts(texts) => statement.bind(texts),
                Bind::Integer(integer) => statement.bind(integer),
            };
        }
        statement.fetch_all(&store.pool).await.db()
    }
}

/// The filters of a run listing that compare one column with a list of
/// values, as `(column, values)`.
fn list_filters(query: &RunQuery) -> [(&'static str, Vec<String>); 3] {
    let statuses = query
        .statuses
        .iter()
        .map(|status| status.as_str().to_owned())
        .collect();
    [
        ("r.status", statuses),
        ("r.pipeline", query.pipelines.clone()),
        ("r.trigger_kind", query.trigger_kinds.clone()),
    ]
}

pub(super) async fn list_runs(store: &PostgresStore, query: &RunQuery) -> Result<RunPage> {
    let limit = query.limit.clamp(1, MAX_PAGE);
    let fetch = i64::from(limit) + 1;
    let filters = list_filters(query);
    // Without a tag, the first filter with several values is split into one
    // walk per value; with a tag, the tag's index drives the walk.
    let split = match query.tag {
        Some(_) => None,
        None => filters
            .iter()
            .find(|(_, values)| values.len() > 1)
            .map(|(column, values)| (*column, values.as_slice())),
    };
    let direction = match query.order {
        Order::NewestFirst => "DESC",
        Order::OldestFirst => "ASC",
    };

    let mut sql = Sql::default();
    match split {
        None => push_walk(&mut sql, query, &filters, None, fetch),
        Some((column, values)) => {
            for (index, value) in values.iter().enumerate() {
                if index > 0 {
                    sql.push(" UNION ALL ");
                }
                sql.push("SELECT * FROM (");
                push_walk(&mut sql, query, &filters, Some((column, value)), fetch);
                sql.push(&format!(") AS walk_{index}"));
            }
            sql.push(&format!(
                " ORDER BY key_created {direction}, key_id {direction} LIMIT {fetch}"
            ));
        }
    }

    let rows = sql.fetch_all(store).await?;
    let mut runs = rows
        .iter()
        .map(codec::run_from_row)
        .collect::<Result<Vec<_>>>()?;
    // The row beyond the page only says that another page follows.
    let next_cursor = if runs.len() > limit as usize {
        runs.truncate(limit as usize);
        runs.last().map(|run| RunCursor {
            created_at: run.created_at,
            id: run.id.clone(),
        })
    } else {
        None
    };
    Ok(RunPage { runs, next_cursor })
}

/// One walk over an index in listing order, after the cursor, with every
/// filter; `only` narrows the split filter to one of its values.
fn push_walk(
    sql: &mut Sql,
    query: &RunQuery,
    filters: &[(&'static str, Vec<String>)],
    only: Option<(&str, &String)>,
    fetch: i64,
) {
    // The keys of the walk: a tagged run's `run_tag` row repeats its
    // creation time and id, so ordering by either is the same.
    let (created, id) = match query.tag {
        Some(_) => ("t.created_at", "t.run_id"),
        None => ("r.created_at", "r.id"),
    };
    sql.push(&format!(
        "SELECT r.*, {created} AS key_created, {id} AS key_id FROM "
    ));
    match &query.tag {
        Some(tag) => {
            let placeholder = sql.bind(Bind::Text(tag.clone()));
            sql.push(&format!(
                "run_tag t JOIN pipeline_run r ON r.id = t.run_id WHERE t.tag = {placeholder}"
            ));
        }
        None => sql.push("pipeline_run r WHERE TRUE"),
    }
    for (column, values) in filters {
        match only {
            Some((split, value)) if split == *column => {
                sql.push_filter(column, std::slice::from_ref(value));
            }
            _ => sql.push_filter(column, values),
        }
    }
    if let Some(after) = query.created_after {
        let placeholder = sql.bind(Bind::Integer(micros(after)));
        sql.push(&format!(" AND {created} >= {placeholder}"));
    }
    if let Some(before) = query.created_before {
        let placeholder = sql.bind(Bind::Integer(micros(before)));
        sql.push(&format!(" AND {created} < {placeholder}"));
    }
    push_extra_filters(sql, query);
    let (beyond, direction) = match query.order {
        Order::NewestFirst => ("<", "DESC"),
        Order::OldestFirst => (">", "ASC"),
    };
    if let Some(cursor) = &query.cursor {
        let created_at = sql.bind(Bind::Integer(micros(cursor.created_at)));
        let run_id = sql.bind(Bind::Text(cursor.id.as_str().to_owned()));
        sql.push(&format!(
            " AND ({created}, {id}) {beyond} ({created_at}, {run_id})"
        ));
    }
    sql.push(&format!(
        " ORDER BY {created} {direction}, {id} {direction} LIMIT {fetch}"
    ));
}

pub(super) async fn active_runs(store: &PostgresStore, limit: u32) -> Result<Vec<RunRecord>> {
    // The condition repeats the partial index's, so that it serves the walk.
    let rows = sqlx::query(concat!(
        "SELECT ",
        run_columns!(),
        " FROM pipeline_run WHERE status IN ('initial', 'running') \
          ORDER BY created_at, id LIMIT $1"
    ))
    .bind(bounded_limit(limit))
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter().map(codec::run_from_row).collect()
}

pub(super) async fn count_runs(
    store: &PostgresStore,
    pipeline: &str,
    statuses: &[RunStatus],
) -> Result<u32> {
    if statuses.is_empty() {
        return Ok(0);
    }
    let statuses: Vec<&str> = statuses.iter().map(|status| status.as_str()).collect();
    let count: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM pipeline_run WHERE pipeline = $1 AND status = ANY($2::TEXT[])",
    )
    .bind(pipeline)
    .bind(statuses.as_slice())
    .fetch_one(&store.pool)
    .await
    .db()?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}

/// The filters beyond the listing's indexed ones: start and finish windows,
/// and the text search over id, pipeline, error and non-secret variable
/// values.
fn push_extra_filters(sql: &mut Sql, query: &RunQuery) {
    let windows = [
        ("r.started_at >=", query.started_after),
        ("r.started_at <", query.started_before),
        ("r.finished_at >=", query.finished_after),
        ("r.finished_at <", query.finished_before),
    ];
    for (condition, at) in windows {
        if let Some(at) = at {
            let placeholder = sql.bind(Bind::Integer(micros(at)));
            sql.push(&format!(" AND {condition} {placeholder}"));
        }
    }
    // Written as the partial indexes' conditions, so that PostgreSQL can
    // walk them.
    if query.slow {
        sql.push(" AND r.slow");
    }
    if query.unresolved {
        sql.push(" AND r.status = 'failed' AND r.resolved_at IS NULL");
    }
    if let Some(text) = query.text.as_deref().filter(|text| !text.is_empty()) {
        // Secret values are stored (blocks need them) but never searched:
        // a match would tell a caller what a secret contains. `lower` of
        // ASCII only, as SQLite does, so both backends find the same runs.
        let needle = sql.bind(Bind::Text(text.to_ascii_lowercase()));
        let lower = |column: &str| {
            format!(
                "translate({column}, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
            )
        };
        // `search_text` holds the id, the pipeline and the non-secret
        // variable values, lower-cased (`encoding::search_text`).
        sql.push(&format!(
            " AND (strpos(r.search_text, {needle}) > 0 OR strpos({error}, {needle}) > 0)",
            error = lower("coalesce(r.error, '')"),
        ));
    }
}

pub(super) async fn count_runs_by_status(
    store: &PostgresStore,
    query: &RunQuery,
) -> Result<Vec<(RunStatus, u64)>> {
    let mut sql = Sql::default();
    sql.push("SELECT r.status AS status, COUNT(*) AS count FROM ");
    match &query.tag {
        Some(tag) => {
            let placeholder = sql.bind(Bind::Text(tag.clone()));
            sql.push(&format!(
                "run_tag t JOIN pipeline_run r ON r.id = t.run_id WHERE t.tag = {placeholder}"
            ));
        }
        None => sql.push("pipeline_run r WHERE TRUE"),
    }
    for (column, values) in list_filters(query) {
        sql.push_filter(column, &values);
    }
    if let Some(after) = query.created_after {
        let placeholder = sql.bind(Bind::Integer(micros(after)));
        sql.push(&format!(" AND r.created_at >= {placeholder}"));
    }
    if let Some(before) = query.created_before {
        let placeholder = sql.bind(Bind::Integer(micros(before)));
        sql.push(&format!(" AND r.created_at < {placeholder}"));
    }
    push_extra_filters(&mut sql, query);
    sql.push(" GROUP BY r.status ORDER BY r.status");
    let rows = sql.fetch_all(store).await?;
    rows.iter()
        .map(|row| {
            let status: String = get(row, "status")?;
            let count: i64 = get(row, "count")?;
            Ok((run_status(&status)?, narrow(count, "count")?))
        })
        .collect()
}
