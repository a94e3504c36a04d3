//! Run listings: filtered, keyset-paginated pages of run history, the active
//! runs the reconcilers read, and per-pipeline counts.
//!
//! A page must cost the same on the first day and after millions of runs, so
//! every page is read in index order and stops after `limit + 1` rows:
//! - with a tag filter, the walk follows `run_tag (tag, created_at, run_id)`;
//! - a filter with several values (`status IN (failed, cancelled)`) becomes
//!   one indexed walk per value, merged with `UNION ALL`, so that SQLite
//!   never sorts every matching run to return a few of them.

use sluice_core::status::RunStatus;
use sqlx::AssertSqlSafe;

use super::SqliteStore;
use super::codec::{self, DbResultExt, micros, run_columns};
use crate::{Order, Result, RunCursor, RunPage, RunQuery, RunRecord};

/// The most runs one page of a listing holds.
const MAX_PAGE: u32 = 1_000;

/// A value bound to a placeholder of a query built at run time.
#[derive(Clone)]
pub(super) enum Bind {
    Text(String),
    Integer(i64),
}

/// A listing's query text and its bound values, in placeholder order.
#[derive(Default)]
struct Sql {
    text: String,
    binds: Vec<Bind>,
}

impl Sql {
    fn push(&mut self, text: &str) {
        self.text.push_str(text);
    }

    fn bind_text(&mut self, value: &str) {
        self.binds.push(Bind::Text(value.to_owned()));
    }

    fn bind_integer(&mut self, value: i64) {
        self.binds.push(Bind::Integer(value));
    }
}

pub(super) async fn list_runs(store: &SqliteStore, query: &RunQuery) -> Result<RunPage> {
    let limit = query.limit.clamp(1, MAX_PAGE);
    let fetch = i64::from(limit) + 1;
    let statuses: Vec<String> = query
        .statuses
        .iter()
        .map(|status| status.as_str().to_owned())
        .collect();
    let filters = [
        ("r.status", statuses.as_slice()),
        ("r.pipeline", query.pipelines.as_slice()),
        ("r.trigger_kind", query.trigger_kinds.as_slice()),
    ];
    // Without a tag, the first filter with several values is split into one
    // walk per value; with a tag, the tag's index drives the walk.
    let split = match query.tag {
        Some(_) => None,
        None => filters
            .iter()
            .find(|(_, values)| values.len() > 1)
            .map(|&(column, values)| (column, values)),
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
                sql.push(")");
            }
            sql.push(&format!(
                " ORDER BY key_created {direction}, key_id {direction} LIMIT {fetch}"
            ));
        }
    }

    let mut statement = sqlx::query(AssertSqlSafe(sql.text));
    for bind in sql.binds {
        statement = match bind {
            Bind::Text(text) => statement.bind(text),
            Bind::Integer(integer) => statement.bind(integer),
        };
    }
    let rows = statement.fetch_all(&store.pool).await.db()?;
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
    filters: &[(&str, &[String])],
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
            sql.push("run_tag t JOIN pipeline_run r ON r.id = t.run_id WHERE t.tag = ?");
            sql.bind_text(tag);
        }
        None => sql.push("pipeline_run r WHERE TRUE"),
    }
    for &(column, values) in filters {
        match only {
            Some((split, value)) if split == column => {
                sql.push(&format!(" AND {column} = ?"));
                sql.bind_text(value);
            }
            _ if values.is_empty() => {}
            _ => {
                let placeholders = vec!["?"; values.len()].join(", ");
                sql.push(&format!(" AND {column} IN ({placeholders})"));
                for value in values {
                    sql.bind_text(value);
                }
            }
        }
    }
    if let Some(after) = query.created_after {
        sql.push(&format!(" AND {created} >= ?"));
        sql.bind_integer(micros(after));
    }
    if let Some(before) = query.created_before {
        sql.push(&format!(" AND {created} < ?"));
        sql.bind_integer(micros(before));
    }
    for (condition, value) in extra_filters(query) {
        sql.push(&condition);
        for bind in value {
            match bind {
                Bind::Text(text) => sql.bind_text(&text),
                Bind::Integer(integer) => sql.bind_integer(integer),
            }
        }
    }
    let (beyond, direction) = match query.order {
        Order::NewestFirst => ("<", "DESC"),
        Order::OldestFirst => (">", "ASC"),
    };
    if let Some(cursor) = &query.cursor {
        sql.push(&format!(" AND ({created}, {id}) {beyond} (?, ?)"));
        sql.bind_integer(micros(cursor.created_at));
        sql.bind_text(cursor.id.as_str());
    }
    sql.push(&format!(
        " ORDER BY {created} {direction}, {id} {direction} LIMIT {fetch}"
    ));
}

/// The filters beyond the listing's indexed ones, as SQL conditions on
/// `pipeline_run r` with their bound values: start and finish windows, and
/// the text search over id, pipeline, error and non-secret variable values.
pub(super) fn extra_filters(query: &RunQuery) -> Vec<(String, Vec<Bind>)> {
    let mut filters = Vec::new();
    let windows = [
        ("r.started_at >= ?", query.started_after),
        ("r.started_at < ?", query.started_before),
        ("r.finished_at >= ?", query.finished_after),
        ("r.finished_at < ?", query.finished_before),
    ];
    for (condition, at) in windows {
        if let Some(at) = at {
            filters.push((format!(" AND {condition}"), vec![Bind::Integer(micros(at))]));
        }
    }
    // Written as the partial indexes' conditions, so that SQLite walks them.
    if query.slow {
        filters.push((" AND r.slow = 1".to_owned(), Vec::new()));
    }
    if query.unresolved {
        filters.push((
            " AND r.status = 'failed' AND r.resolved_at IS NULL".to_owned(),
            Vec::new(),
        ));
    }
    if let Some(text) = query.text.as_deref().filter(|text| !text.is_empty()) {
        let needle = text.to_ascii_lowercase();
        // `search_text` holds the id, the pipeline and the non-secret
        // variable values (`encoding::search_text`); secrets are never
        // searched, since a match would tell a caller what one contains.
        filters.push((
            " AND (instr(r.search_text, ?) > 0 \
              OR instr(lower(coalesce(r.error, '')), ?) > 0)"
                .to_owned(),
            vec![Bind::Text(needle); 2],
        ));
    }
    filters
}

pub(super) async fn active_runs(store: &SqliteStore, limit: u32) -> Result<Vec<RunRecord>> {
    let rows = sqlx::query(concat!(
        "SELECT ",
        run_columns!(),
        " FROM pipeline_run WHERE status IN ('initial', 'running') \
          ORDER BY created_at, id LIMIT ?"
    ))
    .bind(codec::bounded_limit(limit))
    .fetch_all(&store.pool)
    .await
    .db()?;
    rows.iter().map(codec::run_from_row).collect()
}

pub(super) async fn count_runs(
    store: &SqliteStore,
    pipeline: &str,
    statuses: &[RunStatus],
) -> Result<u32> {
    if statuses.is_empty() {
        return Ok(0);
    }
    let placeholders = vec!["?"; statuses.len()].join(", ");
    let sql = format!(
        "SELECT COUNT(*) FROM pipeline_run WHERE pipeline = ? AND status IN ({placeholders})"
    );
    let mut statement = sqlx::query_scalar::<_, i64>(AssertSqlSafe(sql)).bind(pipeline);
    for status in statuses {
        statement = statement.bind(status.as_str());
    }
    let count = statement.fetch_one(&store.pool).await.db()?;
    Ok(u32::try_from(count).unwrap_or(u32::MAX))
}
