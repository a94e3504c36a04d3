//! The runs page (`/`): every run with filters and keyset pages, the
//! success rate, average duration and runs per day of what the filters
//! select, what is running now, and batch retry and cancel.

use askama::Template;
use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::StatusCode;
use axum::response::Response;
use jiff::{SignedDuration, Timestamp};
use sluice_core::status::RunStatus;
use sluice_engine::sluice_store::RunQuery;

use super::{Layout, PageError, RunFilters, RunRow, TRIGGER_KINDS, options, query_pairs, render};
use crate::WebState;
use crate::format;
use crate::session::Viewer;
use crate::svg;

/// Days in the runs-per-day chart and the window of the rates.
const DAYS: i64 = 14;
/// Finished runs the average duration is taken over.
const DURATION_SAMPLE: u32 = 100;
/// Runs listed under "running now" and under "needs attention".
const RUNNING_NOW: u32 = 10;

#[derive(Template)]
#[template(path = "runs.html")]
struct RunsPage {
    layout: Layout,
    filters: RunFilters,
    status_options: String,
    trigger_options: String,
    error: Option<String>,
    runs: Vec<RunRow>,
    next_page: Option<String>,
    success_rate: String,
    finished_in_window: u64,
    average_duration: String,
    duration_sample: usize,
    chart: String,
    running_now: Vec<RunRow>,
    /// The newest failed runs nothing resolved yet.
    needs_attention: Vec<RunRow>,
}

/// The statistics of what the filters select.
struct Stats {
    success_rate: String,
    finished: u64,
    average_duration: String,
    sample: usize,
    chart: String,
}

async fn stats(state: &WebState, query: &RunQuery, now: Timestamp) -> Result<Stats, PageError> {
    let engine = &state.engine;
    let today = now
        .to_zoned(jiff::tz::TimeZone::UTC)
        .start_of_day()
        .map_err(|error| PageError::BadRequest(error.to_string()))?
        .timestamp();
    let window_start = today
        .checked_sub(SignedDuration::from_hours(24 * (DAYS - 1)))
        .unwrap_or(today);
    let mut base = query.clone();
    base.cursor = None;

    let mut windowed = base.clone();
    windowed.created_after = Some(
        windowed
            .created_after
            .map_or(window_start, |after| after.max(window_start)),
    );
    let counts = engine.count_runs_by_status(&windowed).await?;
    let count = |status: RunStatus| {
        counts
            .iter()
            .find(|(s, _)| *s == status)
            .map_or(0, |(_, n)| *n)
    };
    let completed = count(RunStatus::Completed);
    let finished = completed + count(RunStatus::Failed) + count(RunStatus::Cancelled);
    let success_rate = if finished == 0 {
        "–".to_owned()
    } else {
        format!("{:.1}%", completed as f64 * 100.0 / finished as f64)
    };

    let mut sample_query = base.clone();
    sample_query.limit = DURATION_SAMPLE;
    if sample_query.statuses.is_empty() {
        sample_query.statuses = vec![
            RunStatus::Completed,
            RunStatus::Failed,
            RunStatus::Cancelled,
        ];
    }
    let sample = engine.list_runs(&sample_query).await?;
    let durations: Vec<i64> = sample
        .runs
        .iter()
        .filter_map(|run| Some(run.finished_at?.duration_since(run.started_at?).as_millis() as i64))
        .collect();
    let average_duration = if durations.is_empty() {
        "–".to_owned()
    } else {
        let total: i64 = durations.iter().sum();
        format::duration(SignedDuration::from_millis(total / durations.len() as i64))
    };

    let mut days = Vec::with_capacity(DAYS as usize);
    for back in (0..DAYS).rev() {
        let start = today
            .checked_sub(SignedDuration::from_hours(24 * back))
            .unwrap_or(today);
        let end = start
            .checked_add(SignedDuration::from_hours(24))
            .unwrap_or(start);
        let mut day = base.clone();
        day.created_after = Some(day.created_after.map_or(start, |after| after.max(start)));
        day.created_before = Some(day.created_before.map_or(end, |before| before.min(end)));
        let total = if day.created_after >= day.created_before {
            0
        } else {
            engine
                .count_runs_by_status(&day)
                .await?
                .iter()
                .map(|(_, n)| n)
                .sum()
        };
        days.push((start.strftime("%Y-%m-%d").to_string(), total));
    }
    Ok(Stats {
        success_rate,
        finished,
        average_duration,
        sample: durations.len(),
        chart: svg::runs_per_day(&days),
    })
}

/// `GET /`.
pub async fn page(
    State(state): State<WebState>,
    Extension(viewer): Extension<Viewer>,
    RawQuery(raw): RawQuery,
) -> Result<Response, PageError> {
    let pairs = query_pairs(raw.as_deref())?;
    let filters = RunFilters::from_pairs(&pairs);
    let now = state.engine.clock().now();
    let (query, error) = match filters.query() {
        Ok(query) => (query, None),
        Err(error) => (
            RunQuery {
                limit: crate::PAGE,
                ..RunQuery::default()
            },
            Some(error),
        ),
    };
    let (runs, next_page, stats) = if error.is_none() {
        let page = state.engine.list_runs(&query).await?;
        let runs = page.runs.iter().map(|run| RunRow::new(run, now)).collect();
        let next = page
            .next_cursor
            .as_ref()
            .map(|cursor| filters.next_page(cursor));
        (runs, next, Some(stats(&state, &query, now).await?))
    } else {
        (Vec::new(), None, None)
    };
    let running = state
        .engine
        .list_runs(&RunQuery {
            statuses: vec![RunStatus::Running],
            limit: RUNNING_NOW,
            ..RunQuery::default()
        })
        .await?;
    let unresolved = state
        .engine
        .list_runs(&RunQuery {
            unresolved: true,
            limit: RUNNING_NOW,
            ..RunQuery::default()
        })
        .await?;
    let statuses: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
    let stats = stats.unwrap_or(Stats {
        success_rate: "–".to_owned(),
        finished: 0,
        average_duration: "–".to_owned(),
        sample: 0,
        chart: svg::runs_per_day(&[]),
    });
    let failed = error.is_some();
    let page = RunsPage {
        layout: Layout::new("Runs", "runs", &viewer, &state),
        status_options: options(&statuses, &filters.status, "any status"),
        trigger_options: options(&TRIGGER_KINDS, &filters.trigger, "any trigger"),
        filters,
        error,
        runs,
        next_page,
        success_rate: stats.success_rate,
        finished_in_window: stats.finished,
        average_duration: stats.average_duration,
        duration_sample: stats.sample,
        chart: stats.chart,
        running_now: running
            .runs
            .iter()
            .map(|run| RunRow::new(run, now))
            .collect(),
        needs_attention: unresolved
            .runs
            .iter()
            .map(|run| RunRow::new(run, now))
            .collect(),
    };
    let mut response = render(&page)?;
    if failed {
        *response.status_mut() = StatusCode::BAD_REQUEST;
    }
    Ok(response)
}
