//! The pages, one module each, and what they share: the layout, the error
//! page, the runs table and its filters.

pub mod agents;
pub mod artifacts;
pub mod pipelines;
pub mod queue;
pub mod run;
pub mod runs;
pub mod triggers;

use askama::Template;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use sluice_core::ids::RunId;
use sluice_core::status::RunStatus;
use sluice_engine::sluice_store::{Order, RunCursor, RunQuery, RunRecord};

use crate::WebState;
use crate::format::{self, escape};
use crate::session::Viewer;

/// What the frame of every page needs.
#[derive(Clone, Debug)]
pub struct Layout {
    pub title: String,
    /// Which nav link is the current page.
    pub nav: &'static str,
    pub csrf: String,
    pub user: String,
    pub role: String,
    pub auth: bool,
    pub can_operate: bool,
}

impl Layout {
    pub fn new(
        title: impl Into<String>,
        nav: &'static str,
        viewer: &Viewer,
        state: &WebState,
    ) -> Layout {
        Layout {
            title: title.into(),
            nav,
            csrf: viewer.csrf.clone(),
            user: viewer.name.clone(),
            role: viewer.role.as_str().to_owned(),
            auth: state.auth,
            can_operate: viewer.can_operate(),
        }
    }

    /// `aria-current` for the nav link of `page`.
    pub fn current(&self, page: &str) -> &'static str {
        if self.nav == page { "page" } else { "false" }
    }
}

/// Renders a template as an HTML response.
pub fn render(template: &impl Template) -> Result<Response, PageError> {
    let html = template.render().map_err(PageError::Render)?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response())
}

/// Why a page could not be shown.
#[derive(Debug)]
pub enum PageError {
    NotFound(String),
    BadRequest(String),
    Conflict(String),
    Unauthorized,
    /// The viewer's role may not do this.
    Forbidden(String),
    /// A form post without the session's CSRF token.
    Csrf,
    Engine(sluice_engine::Error),
    Render(askama::Error),
}

impl From<sluice_engine::Error> for PageError {
    fn from(error: sluice_engine::Error) -> Self {
        use sluice_engine::Error;
        match error {
            Error::NotFound(message) => PageError::NotFound(message),
            Error::Conflict { message, hint } => PageError::Conflict(with_hint(message, hint)),
            Error::Invalid { message, hint } => PageError::BadRequest(with_hint(message, hint)),
            Error::Variables(error) => PageError::BadRequest(error.to_string()),
            Error::Pipeline(diagnostics) => PageError::BadRequest(
                diagnostics
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n"),
            ),
            other => PageError::Engine(other),
        }
    }
}

fn with_hint(message: String, hint: Option<String>) -> String {
    match hint {
        Some(hint) => format!("{message} ({hint})"),
        None => message,
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    title: &'static str,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            PageError::NotFound(message) => (StatusCode::NOT_FOUND, "Not found", message),
            PageError::BadRequest(message) => (StatusCode::BAD_REQUEST, "Bad request", message),
            PageError::Conflict(message) => (StatusCode::CONFLICT, "Not possible now", message),
            PageError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "Sign in",
                "This needs a signed-in session; sign in at /login.".to_owned(),
            ),
            PageError::Forbidden(message) => (StatusCode::FORBIDDEN, "Not allowed", message),
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                "Refused",
                "The form did not carry this session's CSRF token. Reload the page and try again."
                    .to_owned(),
            ),
            PageError::Engine(error) => {
                tracing::error!(error = %format!("{error:#}"), "a page failed");
                let status = match error {
                    sluice_engine::Error::Store(
                        sluice_engine::sluice_store::Error::Unavailable(_),
                    ) => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                (
                    status,
                    "Something went wrong",
                    "The server could not show this page; its log says why. Try again in a moment."
                        .to_owned(),
                )
            }
            PageError::Render(error) => {
                tracing::error!(%error, "a page could not be rendered");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "Something went wrong",
                    "The server could not show this page; its log says why.".to_owned(),
                )
            }
        };
        let page = ErrorPage { title, message };
        match page.render() {
            Ok(html) => (
                status,
                [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                html,
            )
                .into_response(),
            Err(_) => (status, title).into_response(),
        }
    }
}

/// The query string's pairs, in order.
pub fn query_pairs(raw: Option<&str>) -> Result<Vec<(String, String)>, PageError> {
    serde_urlencoded::from_str(raw.unwrap_or_default()).map_err(|error| {
        PageError::BadRequest(format!("the query string could not be read: {error}"))
    })
}

/// The last value of a query parameter, trimmed; empty counts as absent.
pub fn param(pairs: &[(String, String)], name: &str) -> Option<String> {
    pairs
        .iter()
        .rev()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.trim().to_owned())
        .filter(|value| !value.is_empty())
}

/// The trigger kinds a run can have (`invoked_by.kind`).
pub const TRIGGER_KINDS: [&str; 8] = [
    "manual", "schedule", "api", "webhook", "parent", "backfill", "agent", "retry",
];

/// The run filters of a runs table, as typed into its form.
#[derive(Clone, Debug, Default)]
pub struct RunFilters {
    pub status: String,
    pub pipeline: String,
    pub tag: String,
    pub trigger: String,
    pub after: String,
    pub before: String,
    pub q: String,
    /// Only failed runs that no later attempt or run resolved.
    pub unresolved: bool,
    /// Only runs flagged `slow` against their baseline.
    pub slow: bool,
    pub cursor: Option<String>,
}

impl RunFilters {
    pub fn from_pairs(pairs: &[(String, String)]) -> RunFilters {
        let get = |name| param(pairs, name).unwrap_or_default();
        RunFilters {
            status: get("status"),
            pipeline: get("pipeline"),
            tag: get("tag"),
            trigger: get("trigger"),
            after: get("after"),
            before: get("before"),
            q: get("q"),
            unresolved: is_on(&get("unresolved")),
            slow: is_on(&get("slow")),
            cursor: param(pairs, "cursor"),
        }
    }

    /// The store query of these filters (a page of [`crate::PAGE`]), or
    /// what is wrong with them.
    pub fn query(&self) -> Result<RunQuery, String> {
        let mut query = RunQuery {
            order: Order::NewestFirst,
            limit: crate::PAGE,
            ..RunQuery::default()
        };
        if !self.status.is_empty() {
            let status: RunStatus = self.status.parse().map_err(|_| {
                format!(
                    "`{}` is not a run status; use one of initial, running, completed, failed, cancelled",
                    self.status
                )
            })?;
            query.statuses = vec![status];
        }
        if !self.pipeline.is_empty() {
            query.pipelines = vec![self.pipeline.clone()];
        }
        if !self.tag.is_empty() {
            query.tag = Some(self.tag.clone());
        }
        if !self.trigger.is_empty() {
            if !TRIGGER_KINDS.contains(&self.trigger.as_str()) {
                return Err(format!(
                    "`{}` is not a trigger kind; use one of {}",
                    self.trigger,
                    TRIGGER_KINDS.join(", ")
                ));
            }
            query.trigger_kinds = vec![self.trigger.clone()];
        }
        let instant = |name: &str, text: &str| -> Result<Option<Timestamp>, String> {
            if text.is_empty() {
                return Ok(None);
            }
            format::parse_instant(text).map(Some).ok_or_else(|| {
                format!(
                    "`{name}` is `{text}`; write a date (2026-11-23), a UTC time (2026-11-23T14:05) or RFC 3339"
                )
            })
        };
        query.created_after = instant("after", &self.after)?;
        query.created_before = instant("before", &self.before)?;
        if let (Some(after), Some(before)) = (query.created_after, query.created_before)
            && after >= before
        {
            return Err("`after` must be earlier than `before`".to_owned());
        }
        if !self.q.is_empty() {
            if self.q.len() > 200 {
                return Err("the search text is longer than 200 characters".to_owned());
            }
            query.text = Some(self.q.clone());
        }
        query.unresolved = self.unresolved;
        query.slow = self.slow;
        if let Some(cursor) = &self.cursor {
            query.cursor = Some(decode_cursor(cursor).ok_or_else(|| {
                "the page cursor is not valid; start again from the first page".to_owned()
            })?);
        }
        Ok(query)
    }

    /// The query string of the page after `cursor`, with the same filters.
    pub fn next_page(&self, cursor: &RunCursor) -> String {
        let mut pairs: Vec<(&str, &str)> = Vec::new();
        for (name, value) in [
            ("status", &self.status),
            ("pipeline", &self.pipeline),
            ("tag", &self.tag),
            ("trigger", &self.trigger),
            ("after", &self.after),
            ("before", &self.before),
            ("q", &self.q),
        ] {
            if !value.is_empty() {
                pairs.push((name, value));
            }
        }
        for (name, on) in [("unresolved", self.unresolved), ("slow", self.slow)] {
            if on {
                pairs.push((name, "1"));
            }
        }
        let cursor = encode_cursor(cursor);
        pairs.push(("cursor", &cursor));
        serde_urlencoded::to_string(&pairs).unwrap_or_default()
    }
}

/// A checkbox's or a link's `1`, `true` or `on`.
fn is_on(value: &str) -> bool {
    matches!(value, "1" | "true" | "on")
}

/// A keyset cursor as text: `MICROS_ID`.
pub fn encode_cursor(cursor: &RunCursor) -> String {
    format!("{}_{}", cursor.created_at.as_microsecond(), cursor.id)
}

fn decode_cursor(text: &str) -> Option<RunCursor> {
    let (micros, id) = text.split_once('_')?;
    let created_at = Timestamp::from_microsecond(micros.parse().ok()?).ok()?;
    if id.is_empty() || id.len() > 100 || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return None;
    }
    Some(RunCursor {
        created_at,
        id: RunId(id.to_owned()),
    })
}

/// One row of a runs table.
#[derive(Clone, Debug)]
pub struct RunRow {
    pub id: String,
    pub short_id: String,
    pub pipeline: String,
    pub status: String,
    pub attempt: u32,
    pub trigger: String,
    pub tags: String,
    pub created: String,
    pub duration: String,
    pub error: String,
}

impl RunRow {
    pub fn new(run: &RunRecord, now: Timestamp) -> RunRow {
        let trigger = match &run.invoked_by.name {
            Some(name) => format!("{} {name}", run.invoked_by.kind),
            None => run.invoked_by.kind.clone(),
        };
        RunRow {
            id: run.id.0.clone(),
            short_id: run.id.0.chars().take(8).collect(),
            pipeline: run.pipeline.clone(),
            status: run.status.as_str().to_owned(),
            attempt: run.attempt,
            trigger,
            tags: run.tags.join(", "),
            created: format::time(run.created_at),
            duration: format::elapsed(run.started_at, run.finished_at, now),
            error: run
                .error
                .as_deref()
                .map(|error| error.chars().take(120).collect())
                .unwrap_or_default(),
        }
    }
}

/// An `<option>` list with one selected value, escaped.
pub fn options(values: &[&str], selected: &str, empty_label: &str) -> String {
    let mut html = format!("<option value=\"\">{}</option>", escape(empty_label));
    for value in values {
        let value = escape(value);
        let mark = if value == selected { " selected" } else { "" };
        html.push_str(&format!("<option value=\"{value}\"{mark}>{value}</option>"));
    }
    html
}
