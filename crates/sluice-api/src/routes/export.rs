//! `GET /api/pipeline_runs/export`: every run matching the listing's
//! filters as JSON lines or CSV, streamed page by page (keyset pagination),
//! so an export of millions of runs never sits in memory. Secrets are
//! masked like everywhere else.

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use sluice_engine::Engine;
use sluice_engine::sluice_store::RunQuery;
use sluice_proto::{ErrorBody, Run};

use crate::AppState;
use crate::convert;
use crate::error::{ApiError, ApiResult};
use crate::extract::QueryParams;
use crate::routes::runs::{MAX_PAGE, parse_order, query_filter, run_query};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Jsonl,
    Csv,
}

/// The columns of a CSV export, in order.
pub const CSV_COLUMNS: [&str; 13] = [
    "id",
    "pipeline",
    "status",
    "attempt",
    "trigger",
    "actor",
    "created_at",
    "started_at",
    "finished_at",
    "error",
    "tags",
    "sla_missed",
    "variables",
];

fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_owned()
    }
}

/// The header line of a CSV export, with its line ending.
pub fn csv_header() -> String {
    format!("{}\n", CSV_COLUMNS.join(","))
}

/// One run as a line of a JSON lines export, with its line ending.
pub fn jsonl_line(run: &Run) -> String {
    let mut line = serde_json::to_string(run).unwrap_or_default();
    line.push('\n');
    line
}

/// One run as a line of a CSV export, with its line ending.
pub fn csv_line(run: &Run) -> String {
    let time = |at: Option<jiff::Timestamp>| at.map(|at| at.to_string()).unwrap_or_default();
    let variables: serde_json::Map<String, serde_json::Value> = run
        .variables
        .iter()
        .map(|(name, variable)| (name.clone(), variable.value.clone()))
        .collect();
    let fields = [
        run.id.clone(),
        run.pipeline.clone(),
        run.status.clone(),
        run.attempt.to_string(),
        run.invoked_by.kind.clone(),
        run.invoked_by.actor.clone().unwrap_or_default(),
        run.created_at.to_string(),
        time(run.started_at),
        time(run.finished_at),
        run.error.clone().unwrap_or_default(),
        run.tags.join(" "),
        run.sla_missed.to_string(),
        serde_json::Value::Object(variables).to_string(),
    ];
    let mut line = fields
        .iter()
        .map(|field| csv_field(field))
        .collect::<Vec<_>>()
        .join(",");
    line.push('\n');
    line
}

/// The state of an export between pages.
struct Export {
    engine: Engine,
    query: RunQuery,
    format: Format,
    header_sent: bool,
    done: bool,
}

impl Export {
    /// The next piece of the body: the header, or one page of runs.
    async fn next(&mut self) -> Option<Result<Bytes, std::io::Error>> {
        if self.done {
            return None;
        }
        if !self.header_sent {
            self.header_sent = true;
            if self.format == Format::Csv {
                return Some(Ok(Bytes::from(csv_header())));
            }
        }
        let page = match self.engine.list_runs(&self.query).await {
            Ok(page) => page,
            Err(error) => {
                // The status line is gone; the best signal left is to break
                // the response off, so the client sees it incomplete.
                tracing::error!(error = %format!("{error:#}"), "an export failed midway");
                self.done = true;
                return Some(Err(std::io::Error::other("the export failed midway")));
            }
        };
        let mut chunk = String::new();
        for record in page.runs {
            let run = convert::run(record);
            match self.format {
                Format::Csv => chunk.push_str(&csv_line(&run)),
                Format::Jsonl => chunk.push_str(&jsonl_line(&run)),
            }
        }
        match page.next_cursor {
            Some(cursor) => self.query.cursor = Some(cursor),
            None => self.done = true,
        }
        Some(Ok(Bytes::from(chunk)))
    }
}

/// Every matching run, streamed as JSON lines or CSV.
#[utoipa::path(get, path = "/api/pipeline_runs/export", tag = "runs",
    params(
        ("format" = Option<String>, Query, description = "`jsonl` (default) or `csv`"),
        ("pipeline" = Option<Vec<String>>, Query, description = "Only these pipelines"),
        ("status" = Option<Vec<String>>, Query, description = "Only these statuses"),
        ("tag" = Option<String>, Query, description = "Only runs with this tag"),
        ("trigger" = Option<Vec<String>>, Query, description = "Only these trigger kinds"),
        ("after" = Option<String>, Query, description = "Created at or after (RFC 3339)"),
        ("before" = Option<String>, Query, description = "Created before (RFC 3339)"),
        ("started_after" = Option<String>, Query, description = "Started at or after (RFC 3339)"),
        ("started_before" = Option<String>, Query, description = "Started before (RFC 3339)"),
        ("finished_after" = Option<String>, Query, description = "Finished at or after (RFC 3339)"),
        ("finished_before" = Option<String>, Query, description = "Finished before (RFC 3339)"),
        ("q" = Option<String>, Query, description = "Text in the run id, pipeline, error or a non-secret variable value"),
        ("order" = Option<String>, Query, description = "`newest` (default) or `oldest`")),
    responses(
        (status = 200, description = "One run per line", content_type = "application/x-ndjson", body = String),
        (status = 400, body = ErrorBody)))]
pub async fn export(State(state): State<AppState>, RawQuery(raw): RawQuery) -> ApiResult<Response> {
    let mut params = QueryParams::parse(raw.as_deref())?;
    let format = match params.one("format")?.as_deref() {
        None | Some("jsonl") => Format::Jsonl,
        Some("csv") => Format::Csv,
        Some(other) => {
            return Err(ApiError::bad_request(format!(
                "`format` is `{other}`, not `jsonl` or `csv`"
            )));
        }
    };
    let filter = query_filter(&mut params)?;
    let mut query = run_query(&filter)?;
    query.order = parse_order(&mut params)?;
    query.limit = MAX_PAGE;
    params.finish()?;

    let export = Export {
        engine: state.engine.clone(),
        query,
        format,
        header_sent: false,
        done: false,
    };
    let stream = futures_util::stream::unfold(export, |mut export| async move {
        export.next().await.map(|chunk| (chunk, export))
    });
    let (content_type, file) = match format {
        Format::Jsonl => ("application/x-ndjson", "pipeline_runs.jsonl"),
        Format::Csv => ("text/csv; charset=utf-8", "pipeline_runs.csv"),
    };
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::csv_field;

    #[test]
    fn csv_fields_are_quoted_when_needed() {
        assert_eq!(csv_field("plain"), "plain");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("two\nlines"), "\"two\nlines\"");
    }
}
