//! A typed client of sluice's REST API. Every call returns the wire types of
//! `sluice-proto`; every failure is an [`Error`] that keeps what the server
//! said (`{"error": {"code", "message", "hint"}}`), or says which address
//! could not be reached. Live streams (a block run's log, a run's events)
//! are read with the small Server-Sent Events reader in [`sse`].
//!
//! The client speaks plain HTTP/1.1 and knows nothing of the store or the
//! engine (DESIGN §9: client → proto only).

mod agent;
mod backfills;
mod queue;
pub mod sse;
mod triggers;

use std::time::Duration;

use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use sluice_proto::{
    BlockOutputs, ErrorBody, ErrorDetail, LiveEvent, LogLine, LogPage, RetryRunRequest, Run,
    RunDetails, RunEnvelope, RunList, TriggerRunRequest,
};

/// How long a connection attempt may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a request that is not a stream may take, answer included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);
/// How much of an unexpected answer's body an error quotes.
const QUOTED_BODY: usize = 200;

/// Why a call failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The server answered with its error shape.
    #[error("{}", .detail.message)]
    Api { status: u16, detail: ErrorDetail },
    /// Nothing answered at the address.
    #[error("cannot reach the sluice server at {url}: {reason}")]
    Connect { url: String, reason: String },
    /// The request was sent but the exchange broke off or timed out.
    #[error("the request to {url} failed: {reason}")]
    Transport { url: String, reason: String },
    /// Something answered, but not as a sluice server does.
    #[error("{url} answered {status} with something that is not sluice's: {body}")]
    Unexpected {
        url: String,
        status: u16,
        body: String,
    },
    /// The server URL cannot be used.
    #[error("`{url}` is not a server address: {reason}")]
    InvalidUrl { url: String, reason: String },
}

impl Error {
    /// A remedy for the user, when there is one.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Api { detail, .. } => detail.hint.clone(),
            Error::Connect { .. } => Some(
                "check that `sluice up` is running there, or pass the server's address with --server (or SLUICE_SERVER)"
                    .to_owned(),
            ),
            Error::Unexpected { .. } => {
                Some("check that --server points at a sluice server".to_owned())
            }
            Error::InvalidUrl { .. } => {
                Some("write the address like http://127.0.0.1:8421".to_owned())
            }
            Error::Transport { .. } => None,
        }
    }

    /// The server's error code (`not_found`, `unauthorized`, ...) when the
    /// server answered with one.
    pub fn code(&self) -> Option<&str> {
        match self {
            Error::Api { detail, .. } => Some(&detail.code),
            _ => None,
        }
    }

    /// The HTTP status the server answered with, when it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            Error::Api { status, .. } | Error::Unexpected { status, .. } => Some(*status),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Filters of a run listing or export; the same as the API's.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunFilter {
    pub pipelines: Vec<String>,
    pub statuses: Vec<String>,
    pub tag: Option<String>,
    pub triggers: Vec<String>,
    /// Text searched in the run id, pipeline, error and non-secret values.
    pub text: Option<String>,
    /// RFC 3339: runs created at or after this time.
    pub after: Option<String>,
    /// RFC 3339: runs created before this time.
    pub before: Option<String>,
    /// Only runs flagged `slow`.
    pub slow: bool,
    /// Only failed runs not resolved by a later attempt or run.
    pub unresolved: bool,
}

impl RunFilter {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        pairs.extend(self.pipelines.iter().map(|p| ("pipeline", p.clone())));
        pairs.extend(self.statuses.iter().map(|s| ("status", s.clone())));
        pairs.extend(self.tag.iter().map(|t| ("tag", t.clone())));
        pairs.extend(self.triggers.iter().map(|t| ("trigger", t.clone())));
        pairs.extend(self.text.iter().map(|t| ("q", t.clone())));
        pairs.extend(self.after.iter().map(|a| ("after", a.clone())));
        pairs.extend(self.before.iter().map(|b| ("before", b.clone())));
        if self.slow {
            pairs.push(("slow", "true".to_owned()));
        }
        if self.unresolved {
            pairs.push(("unresolved", "true".to_owned()));
        }
        pairs
    }
}

/// Which part of a block run's log to read.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LogQuery {
    /// The same block in this attempt of the run.
    pub attempt: Option<u32>,
    /// This try (default: the latest).
    pub try_number: Option<u32>,
    /// Only chunks after this one.
    pub after_seq: Option<u64>,
    /// Chunks per page (pages only).
    pub limit: Option<u32>,
}

impl LogQuery {
    fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = Vec::new();
        pairs.extend(self.attempt.map(|n| ("attempt", n.to_string())));
        pairs.extend(self.try_number.map(|n| ("try", n.to_string())));
        pairs.extend(self.after_seq.map(|n| ("after_seq", n.to_string())));
        pairs.extend(self.limit.map(|n| ("limit", n.to_string())));
        pairs
    }
}

/// The format of a run export.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExportFormat {
    /// One JSON run per line.
    #[default]
    Jsonl,
    /// A header line, then one run per line.
    Csv,
}

impl ExportFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            ExportFormat::Jsonl => "jsonl",
            ExportFormat::Csv => "csv",
        }
    }
}

/// A client of one sluice server.
#[derive(Clone, Debug)]
pub struct Client {
    http: reqwest::Client,
    base: Url,
    token: Option<String>,
}

impl Client {
    /// A client of the server at `server` (`http://HOST:PORT`, or
    /// `HOST:PORT`), sending `token` as a bearer token when given.
    pub fn new(server: &str, token: Option<String>) -> Result<Client> {
        let invalid = |reason: String| Error::InvalidUrl {
            url: server.to_owned(),
            reason,
        };
        let text = server.trim();
        let text = if text.contains("://") {
            text.to_owned()
        } else {
            format!("http://{text}")
        };
        let base = Url::parse(&text).map_err(|error| invalid(error.to_string()))?;
        match base.scheme() {
            "http" => {}
            "https" if cfg!(feature = "rustls") => {}
            "https" => {
                return Err(invalid(
                    "this build of sluice speaks plain HTTP only (build it with the `rustls` feature for HTTPS)"
                        .to_owned(),
                ));
            }
            other => return Err(invalid(format!("the scheme `{other}` is not http"))),
        }
        if base.cannot_be_a_base() || base.host().is_none() {
            return Err(invalid("it names no host".to_owned()));
        }
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .build()
            .map_err(|error| invalid(error_text(&error)))?;
        Ok(Client {
            http,
            base,
            token: token.filter(|token| !token.is_empty()),
        })
    }

    /// The server's address, as given.
    pub fn server(&self) -> &str {
        self.base.as_str().trim_end_matches('/')
    }

    /// The URL of an API path given as segments (each percent-encoded).
    fn url(&self, segments: &[&str]) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty().extend(segments);
        }
        url
    }

    fn request(&self, method: Method, url: Url) -> RequestBuilder {
        let request = self.http.request(method, url);
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends a request and returns the response if it is a success.
    async fn send(&self, request: RequestBuilder, url: &Url) -> Result<Response> {
        let response = request
            .send()
            .await
            .map_err(|error| transport(url, &error))?;
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(failure(url, response).await)
        }
    }

    /// Sends a request and decodes a JSON answer.
    async fn json<T: DeserializeOwned>(&self, request: RequestBuilder, url: &Url) -> Result<T> {
        let response = self.send(request.timeout(REQUEST_TIMEOUT), url).await?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|error| transport(url, &error))?;
        serde_json::from_slice(&bytes).map_err(|error| Error::Unexpected {
            url: url.to_string(),
            status: status.as_u16(),
            body: format!("{error} in {}", quote(&bytes)),
        })
    }

    async fn get<T: DeserializeOwned>(
        &self,
        segments: &[&str],
        query: &[(&str, String)],
    ) -> Result<T> {
        let url = self.url(segments);
        let request = self.request(Method::GET, url.clone()).query(query);
        self.json(request, &url).await
    }

    /// `GET /healthz`.
    pub async fn health(&self) -> Result<sluice_proto::Health> {
        self.get(&["healthz"], &[]).await
    }

    /// `GET /api/pipeline_runs`: one page of runs, newest first.
    pub async fn list_runs(
        &self,
        filter: &RunFilter,
        limit: u32,
        cursor: Option<&str>,
    ) -> Result<RunList> {
        let mut query = filter.pairs();
        query.push(("limit", limit.to_string()));
        if let Some(cursor) = cursor {
            query.push(("next_cursor", cursor.to_owned()));
        }
        self.get(&["api", "pipeline_runs"], &query).await
    }

    /// `GET /api/pipeline_runs/{id}`: everything recorded about a run.
    pub async fn run_details(&self, run: &str) -> Result<RunDetails> {
        self.get(&["api", "pipeline_runs", run], &[]).await
    }

    /// `GET /api/pipeline_runs/diff`: two runs side by side.
    pub async fn diff_runs(&self, a: &str, b: &str) -> Result<sluice_proto::RunDiff> {
        self.get(
            &["api", "pipeline_runs", "diff"],
            &[("a", a.to_owned()), ("b", b.to_owned())],
        )
        .await
    }

    /// `GET /api/pipeline_runs/{id}/evidence`: a run's incident evidence.
    pub async fn run_evidence(&self, run: &str) -> Result<sluice_proto::Evidence> {
        self.get(&["api", "pipeline_runs", run, "evidence"], &[])
            .await
    }

    /// `POST /api/pipelines/{name}/runs`: starts a run. With an idempotency
    /// key, repeating the call returns the same run.
    pub async fn trigger_run(
        &self,
        pipeline: &str,
        body: &TriggerRunRequest,
        idempotency_key: Option<&str>,
    ) -> Result<Run> {
        let url = self.url(&["api", "pipelines", pipeline, "runs"]);
        let mut request = self.request(Method::POST, url.clone()).json(body);
        if let Some(key) = idempotency_key {
            request = request.header("Idempotency-Key", key);
        }
        let envelope: RunEnvelope = self.json(request, &url).await?;
        Ok(envelope.pipeline_run)
    }

    /// `POST /api/pipeline_runs/{id}/cancel`.
    pub async fn cancel_run(&self, run: &str) -> Result<Run> {
        let url = self.url(&["api", "pipeline_runs", run, "cancel"]);
        let request = self.request(Method::POST, url.clone());
        let envelope: RunEnvelope = self.json(request, &url).await?;
        Ok(envelope.pipeline_run)
    }

    /// `POST /api/pipeline_runs/{id}/retry`: adds an attempt, which the
    /// server executes.
    pub async fn retry_run(&self, run: &str, body: &RetryRunRequest) -> Result<Run> {
        let url = self.url(&["api", "pipeline_runs", run, "retry"]);
        let request = self.request(Method::POST, url.clone()).json(body);
        let envelope: RunEnvelope = self.json(request, &url).await?;
        Ok(envelope.pipeline_run)
    }

    /// `GET /api/block_runs/{id}/outputs`: outputs and a sample of the data
    /// output (`sample_count` rows; the server's default when `None`).
    pub async fn block_outputs(
        &self,
        block_run: &str,
        sample_count: Option<u32>,
    ) -> Result<BlockOutputs> {
        let query: Vec<(&str, String)> = sample_count
            .map(|count| ("sample_count", count.to_string()))
            .into_iter()
            .collect();
        self.get(&["api", "block_runs", block_run, "outputs"], &query)
            .await
    }

    /// `GET /api/block_runs/{id}/data.csv`: the whole data output as CSV.
    pub async fn block_data_csv(&self, block_run: &str) -> Result<String> {
        let url = self.url(&["api", "block_runs", block_run, "data.csv"]);
        let request = self
            .request(Method::GET, url.clone())
            .timeout(REQUEST_TIMEOUT);
        let response = self.send(request, &url).await?;
        response
            .text()
            .await
            .map_err(|error| transport(&url, &error))
    }

    /// `GET /api/block_runs/{id}/logs`: a page of one try's log.
    pub async fn log_page(&self, block_run: &str, query: &LogQuery) -> Result<LogPage> {
        self.get(&["api", "block_runs", block_run, "logs"], &query.pairs())
            .await
    }

    /// Opens a stream of Server-Sent Events.
    async fn stream(&self, segments: &[&str], query: &[(&str, String)]) -> Result<EventStream> {
        let url = self.url(segments);
        let request = self
            .request(Method::GET, url.clone())
            .query(query)
            .header("Accept", "text/event-stream");
        let response = self.send(request, &url).await?;
        Ok(EventStream {
            response,
            url,
            parser: sse::Parser::new(),
            ready: std::collections::VecDeque::new(),
        })
    }

    /// `GET /api/block_runs/{id}/logs/stream`: a block run's log as it is
    /// written, until the block run ends.
    pub async fn log_stream(&self, block_run: &str, query: &LogQuery) -> Result<LogStream> {
        let pairs: Vec<(&str, String)> = LogQuery {
            limit: None,
            ..query.clone()
        }
        .pairs();
        let events = self
            .stream(&["api", "block_runs", block_run, "logs", "stream"], &pairs)
            .await?;
        Ok(LogStream { events })
    }

    /// `GET /api/events`: live status changes, of one run when `run` is
    /// given.
    pub async fn events(&self, run: Option<&str>) -> Result<LiveEvents> {
        let query: Vec<(&str, String)> =
            run.map(|run| ("run", run.to_owned())).into_iter().collect();
        let events = self.stream(&["api", "events"], &query).await?;
        Ok(LiveEvents { events })
    }

    /// `GET /api/pipeline_runs/export`: every matching run, as a stream of
    /// body chunks in `format`.
    pub async fn export_runs(&self, filter: &RunFilter, format: ExportFormat) -> Result<Export> {
        let url = self.url(&["api", "pipeline_runs", "export"]);
        let mut query = filter.pairs();
        query.push(("format", format.as_str().to_owned()));
        let request = self.request(Method::GET, url.clone()).query(&query);
        let response = self.send(request, &url).await?;
        Ok(Export { response, url })
    }
}

/// The body of an export, chunk by chunk.
#[derive(Debug)]
pub struct Export {
    response: Response,
    url: Url,
}

impl Export {
    /// The next chunk of the body; `None` at its end. A body the server
    /// broke off is an error, so a partial export is never taken as whole.
    pub async fn chunk(&mut self) -> Result<Option<Vec<u8>>> {
        self.response
            .chunk()
            .await
            .map(|chunk| chunk.map(|bytes| bytes.to_vec()))
            .map_err(|error| transport(&self.url, &error))
    }
}

/// A stream of Server-Sent Events.
#[derive(Debug)]
pub struct EventStream {
    response: Response,
    url: Url,
    parser: sse::Parser,
    ready: std::collections::VecDeque<sse::Event>,
}

impl EventStream {
    /// The next event; `None` when the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<sse::Event>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Ok(Some(event));
            }
            match self
                .response
                .chunk()
                .await
                .map_err(|error| transport(&self.url, &error))?
            {
                Some(bytes) => self.ready.extend(self.parser.feed(&bytes)),
                None => return Ok(None),
            }
        }
    }

    fn decode<T: DeserializeOwned>(&self, event: &sse::Event) -> Result<T> {
        serde_json::from_str(&event.data).map_err(|error| Error::Unexpected {
            url: self.url.to_string(),
            status: StatusCode::OK.as_u16(),
            body: format!(
                "event `{}`: {error} in {}",
                event.event,
                quote(event.data.as_bytes())
            ),
        })
    }
}

/// The try a log stream shows from now on.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct LogTry {
    pub try_id: String,
    pub try_number: u32,
}

/// The end of a log stream: the block run ended and every line was sent.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
pub struct LogEnd {
    pub block_run_id: String,
    pub status: String,
}

/// One event of a log stream.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LogEvent {
    /// The stream shows this try from now on (a retry started).
    Try(LogTry),
    /// A line of the try shown.
    Line(LogLine),
    /// The block run ended; nothing follows.
    End(LogEnd),
}

/// A block run's log as it is written.
#[derive(Debug)]
pub struct LogStream {
    events: EventStream,
}

impl LogStream {
    /// The next event; `None` when the stream stopped without an `end`
    /// (the server shut down).
    pub async fn next(&mut self) -> Result<Option<LogEvent>> {
        while let Some(event) = self.events.next().await? {
            let decoded = match event.event.as_str() {
                "try" => LogEvent::Try(self.events.decode(&event)?),
                "line" => LogEvent::Line(self.events.decode(&event)?),
                "end" => LogEvent::End(self.events.decode(&event)?),
                // Events of a newer server are skipped, not fatal.
                _ => continue,
            };
            return Ok(Some(decoded));
        }
        Ok(None)
    }
}

/// Live status changes (`/api/events`).
#[derive(Debug)]
pub struct LiveEvents {
    events: EventStream,
}

impl LiveEvents {
    /// The next event; `None` when the server ended the stream.
    pub async fn next(&mut self) -> Result<Option<LiveEvent>> {
        while let Some(event) = self.events.next().await? {
            match self.events.decode::<LiveEvent>(&event) {
                Ok(live) => return Ok(Some(live)),
                // An event type this client does not know is skipped.
                Err(_) if !known_live_event(&event.event) => continue,
                Err(error) => return Err(error),
            }
        }
        Ok(None)
    }
}

fn known_live_event(name: &str) -> bool {
    matches!(name, "run" | "block_run" | "try_started" | "log" | "lagged")
}

/// The error for a response that is not a success.
async fn failure(url: &Url, response: Response) -> Error {
    let status = response.status();
    let bytes = match response.bytes().await {
        Ok(bytes) => bytes,
        Err(error) => return transport(url, &error),
    };
    match serde_json::from_slice::<ErrorBody>(&bytes) {
        Ok(body) => Error::Api {
            status: status.as_u16(),
            detail: body.error,
        },
        Err(_) => Error::Unexpected {
            url: url.to_string(),
            status: status.as_u16(),
            body: quote(&bytes),
        },
    }
}

/// The error for a request that got no answer.
fn transport(url: &Url, error: &reqwest::Error) -> Error {
    let reason = error_text(error);
    let url = url.to_string();
    if error.is_connect() {
        Error::Connect { url, reason }
    } else {
        Error::Transport { url, reason }
    }
}

/// The innermost cause of a reqwest error, which says what happened
/// (`Connection refused (os error 111)`) where the outer ones only repeat
/// the URL.
fn error_text(error: &reqwest::Error) -> String {
    if error.is_timeout() {
        return "timed out".to_owned();
    }
    let mut innermost: &dyn std::error::Error = error;
    while let Some(source) = innermost.source() {
        innermost = source;
    }
    innermost.to_string()
}

/// A short, printable quote of a body.
fn quote(bytes: &[u8]) -> String {
    let text = String::from_utf8_lossy(bytes);
    let text = text.trim();
    if text.is_empty() {
        return "an empty body".to_owned();
    }
    let mut quoted: String = text.chars().take(QUOTED_BODY).collect();
    if text.chars().count() > QUOTED_BODY {
        quoted.push('…');
    }
    format!("`{quoted}`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_addresses_get_a_scheme_and_keep_a_path_prefix() {
        let client = Client::new("127.0.0.1:8421", None).unwrap();
        assert_eq!(client.server(), "http://127.0.0.1:8421");
        assert_eq!(
            client.url(&["api", "pipeline_runs", "r 1"]).as_str(),
            "http://127.0.0.1:8421/api/pipeline_runs/r%201"
        );
        let prefixed = Client::new("http://example.invalid/sluice/", None).unwrap();
        assert_eq!(
            prefixed.url(&["healthz"]).as_str(),
            "http://example.invalid/sluice/healthz"
        );
    }

    #[test]
    fn unusable_addresses_are_refused_with_a_hint() {
        let mut bad_addresses = vec!["ftp://host", "http://"];
        if !cfg!(feature = "rustls") {
            bad_addresses.push("https://127.0.0.1:1");
        }
        for bad in bad_addresses {
            let error = Client::new(bad, None).unwrap_err();
            assert!(matches!(error, Error::InvalidUrl { .. }), "{bad}: {error}");
            assert!(error.hint().is_some());
        }
    }

    #[tokio::test]
    async fn an_unreachable_server_is_named_with_a_hint() {
        // Bind a port, then free it: nothing listens there afterwards.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let client = Client::new(&addr.to_string(), None).unwrap();
        let error = client.health().await.unwrap_err();
        assert!(matches!(error, Error::Connect { .. }), "{error}");
        let text = error.to_string();
        assert!(text.contains(&format!("http://{addr}/healthz")), "{text}");
        assert!(error.hint().unwrap().contains("sluice up"));
    }
}
