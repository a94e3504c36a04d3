//! Live updates as Server-Sent Events: `/api/events` (run and block run
//! status changes, tries starting, log chunks stored) and
//! `/api/block_runs/{id}/logs/stream` (a block run's log lines as they are
//! written, following retries).
//!
//! Events are hints, the store is the truth: the log stream reads what the
//! store holds after each hint and also polls once a second, so it follows
//! a try executed by another process on the same database too. Each stream
//! is fed by a task that ends when the client goes away (its channel
//! closes), when the log is complete, or when the server shuts down.

use std::convert::Infallible;
use std::time::Duration;

use axum::extract::{Path, RawQuery, State};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use futures_util::Stream;
use sluice_core::ids::{BlockRunId, RunId};
use sluice_engine::sluice_store::{BlockRunRecord, TryRecord};
use sluice_engine::{Engine, Event};
use sluice_proto::{ErrorBody, LiveEvent, LogLine};
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use crate::AppState;
use crate::convert;
use crate::error::ApiResult;
use crate::extract::{QueryParams, check_id};
use crate::routes::blocks::{block_run_id, chosen_try};

/// How often a log stream looks at the store without a hint.
const POLL: Duration = Duration::from_secs(1);
/// Chunks read from the store at once.
const CHUNKS_PER_READ: u32 = 200;
/// Events buffered per client before the producer waits.
const BUFFER: usize = 256;

type EventStream = Sse<
    axum::response::sse::KeepAliveStream<
        futures_util::stream::BoxStream<'static, Result<SseEvent, Infallible>>,
    >,
>;

fn sse_from(receiver: mpsc::Receiver<SseEvent>) -> EventStream {
    let stream = futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|event| (Ok(event), receiver))
    });
    Sse::new(boxed(stream)).keep_alive(KeepAlive::default())
}

fn boxed<S>(stream: S) -> futures_util::stream::BoxStream<'static, Result<SseEvent, Infallible>>
where
    S: Stream<Item = Result<SseEvent, Infallible>> + Send + 'static,
{
    Box::pin(stream)
}

fn json_event(name: &str, body: &impl serde::Serialize) -> SseEvent {
    SseEvent::default()
        .event(name)
        .data(serde_json::to_string(body).unwrap_or_else(|_| "{}".to_owned()))
}

fn live_event_name(event: &LiveEvent) -> &'static str {
    match event {
        LiveEvent::Run { .. } => "run",
        LiveEvent::BlockRun { .. } => "block_run",
        LiveEvent::TryStarted { .. } => "try_started",
        LiveEvent::Log { .. } => "log",
        LiveEvent::Lagged { .. } => "lagged",
    }
}

fn event_run(event: &Event) -> &RunId {
    match event {
        Event::Run { run_id, .. }
        | Event::BlockRun { run_id, .. }
        | Event::TryStarted { run_id, .. }
        | Event::Log { run_id, .. } => run_id,
    }
}

/// Status changes, tries starting and log chunks, as they happen; the SSE
/// event name is the `type` of each [`LiveEvent`].
#[utoipa::path(get, path = "/api/events", tag = "live",
    params(("run" = Option<String>, Query, description = "Only events of this run")),
    responses(
        (status = 200, description = "A stream of `LiveEvent`s", content_type = "text/event-stream", body = LiveEvent),
        (status = 400, body = ErrorBody)))]
pub async fn events(
    State(state): State<AppState>,
    RawQuery(raw): RawQuery,
) -> ApiResult<EventStream> {
    let mut params = QueryParams::parse(raw.as_deref())?;
    let run = params.one("run")?;
    params.finish()?;
    if let Some(run) = &run {
        check_id("run id", run)?;
    }
    let run = run.map(RunId);
    let mut events = state.engine.subscribe();
    let (sender, receiver) = mpsc::channel(BUFFER);
    let shutdown = state.shutdown.clone();
    tokio::spawn(async move {
        loop {
            let received = tokio::select! {
                () = shutdown.cancelled() => break,
                () = sender.closed() => break,
                received = events.recv() => received,
            };
            let live = match received {
                Ok(event) => {
                    if run.as_ref().is_some_and(|run| run != event_run(&event)) {
                        continue;
                    }
                    convert::live_event(event)
                }
                Err(broadcast::error::RecvError::Lagged(missed)) => LiveEvent::Lagged { missed },
                Err(broadcast::error::RecvError::Closed) => break,
            };
            if sender
                .send(json_event(live_event_name(&live), &live))
                .await
                .is_err()
            {
                break;
            }
        }
    });
    Ok(sse_from(receiver))
}

/// The end of a log stream.
#[derive(Debug, serde::Serialize)]
struct LogEnd {
    block_run_id: String,
    status: String,
}

/// A try the stream switched to.
#[derive(Debug, serde::Serialize)]
struct TryInfo {
    try_id: String,
    try_number: u32,
}

/// A block run's log lines as they are written. With `try`, one try;
/// otherwise the latest, switching to each new try as retries start. Each
/// line is a `line` event (a [`LogLine`]); `try` announces the try being
/// shown; `end` comes once the block run has ended and every line was sent.
///
/// The last line of each stored chunk carries the event id `TRY:SEQ`; a
/// client that reconnects with `Last-Event-ID` resumes after that chunk (of
/// that try, or from the start of a newer try that began meanwhile).
#[utoipa::path(get, path = "/api/block_runs/{id}/logs/stream", tag = "live",
    params(
        ("id" = String, Path, description = "The block run's id"),
        ("attempt" = Option<u32>, Query, description = "The same block in this attempt of the run"),
        ("try" = Option<u32>, Query, description = "Only this try (default: follow the latest)"),
        ("after_seq" = Option<u64>, Query, description = "Only chunks after this one"),
        ("Last-Event-ID" = Option<String>, Header, description = "Resume after this event (`TRY:SEQ`, the id of the last event received)")),
    responses(
        (status = 200, description = "A stream of `line`, `try` and `end` events", content_type = "text/event-stream", body = LogLine),
        (status = 404, body = ErrorBody)))]
pub async fn log_stream(
    State(state): State<AppState>,
    Path(id): Path<String>,
    RawQuery(raw): RawQuery,
    headers: axum::http::HeaderMap,
) -> ApiResult<EventStream> {
    let resume = match headers.get("last-event-id") {
        None => None,
        Some(value) => Some(parse_event_id(value.to_str().unwrap_or_default())?),
    };
    let mut params = QueryParams::parse(raw.as_deref())?;
    let attempt = params.parsed::<u32>("attempt", "an attempt number")?;
    let try_number = params.parsed::<u32>("try", "a try number")?;
    let after_seq = params.parsed::<u64>("after_seq", "a chunk number")?;
    params.finish()?;
    let block_run = state.engine.get_block_run(&block_run_id(id)?).await?;
    // Resolve the attempt and check the try exists before answering, so a
    // bad request gets its 404 instead of an empty stream.
    let (block_run, _) = chosen_try(&state.engine, &block_run, attempt, try_number).await?;

    let (sender, receiver) = mpsc::channel(BUFFER);
    let follow = LogFollow {
        engine: state.engine.clone(),
        block_run: block_run.id.clone(),
        run: block_run.run_id.clone(),
        try_number,
        after_seq,
        resume,
        sender,
        shutdown: state.shutdown.clone(),
    };
    tokio::spawn(async move {
        if let Err(FollowError::Engine(error)) = follow.run().await {
            tracing::warn!(error = %format!("{error:#}"), "a log stream ended early");
        }
    });
    Ok(sse_from(receiver))
}

/// Reads a `Last-Event-ID` this stream sent: `TRY:SEQ`.
fn parse_event_id(text: &str) -> ApiResult<(u32, u64)> {
    text.split_once(':')
        .and_then(|(try_number, seq)| Some((try_number.parse().ok()?, seq.parse().ok()?)))
        .ok_or_else(|| {
            crate::error::ApiError::bad_request(format!(
                "`Last-Event-ID: {text}` is not an event id of this stream"
            ))
            .with_hint("send back the id of the last event received, such as `1:7`")
        })
}

/// The task behind one log stream.
struct LogFollow {
    engine: Engine,
    block_run: BlockRunId,
    run: RunId,
    try_number: Option<u32>,
    after_seq: Option<u64>,
    /// Where a reconnecting client stopped: try number and chunk.
    resume: Option<(u32, u64)>,
    sender: mpsc::Sender<SseEvent>,
    shutdown: CancellationToken,
}

/// Why a log stream stopped before its end.
#[derive(Debug, thiserror::Error)]
enum FollowError {
    #[error("the client went away")]
    Gone,
    #[error(transparent)]
    Engine(#[from] sluice_engine::Error),
}

impl LogFollow {
    async fn send(&self, event: SseEvent) -> Result<(), FollowError> {
        self.sender.send(event).await.map_err(|_| FollowError::Gone)
    }

    async fn current_try(&self) -> Result<(BlockRunRecord, Option<TryRecord>), FollowError> {
        let details = self.engine.block_run_details(&self.block_run).await?;
        let chosen = match self.try_number {
            Some(number) => details
                .tries
                .into_iter()
                .find(|attempt_try| attempt_try.try_number == number),
            None => details
                .tries
                .into_iter()
                .max_by_key(|attempt_try| attempt_try.try_number),
        };
        Ok((details.block_run, chosen))
    }

    async fn run(mut self) -> Result<(), FollowError> {
        let mut events = self.engine.subscribe();
        let mut shown: Option<TryRecord> = None;
        loop {
            let (block_run, current) = self.current_try().await?;
            if let Some(current) = &current
                && shown.as_ref().map(|shown| &shown.id) != Some(&current.id)
            {
                if shown.is_some() {
                    // A retry started: its log starts from the beginning.
                    self.after_seq = None;
                }
                if let Some((try_number, seq)) = self.resume.take()
                    && try_number == current.try_number
                {
                    self.after_seq = Some(seq);
                }
                self.send(json_event(
                    "try",
                    &TryInfo {
                        try_id: current.id.0.clone(),
                        try_number: current.try_number,
                    },
                ))
                .await?;
                shown = Some(current.clone());
            }
            if let Some(current) = &current {
                // Drain what is stored so far.
                loop {
                    let chunks = self
                        .engine
                        .read_log(&current.id, self.after_seq, CHUNKS_PER_READ)
                        .await?;
                    let full = chunks.len() == CHUNKS_PER_READ as usize;
                    for chunk in chunks {
                        self.after_seq = Some(chunk.seq);
                        let last = chunk.lines.len().saturating_sub(1);
                        for (index, line) in chunk.lines.into_iter().enumerate() {
                            let line = LogLine {
                                seq: chunk.seq,
                                at: line.at,
                                stream: line.stream,
                                text: line.text,
                            };
                            let mut event = json_event("line", &line);
                            if index == last {
                                event = event.id(format!("{}:{}", current.try_number, chunk.seq));
                            }
                            self.send(event).await?;
                        }
                    }
                    if !full {
                        break;
                    }
                }
            }
            let try_ended = current
                .as_ref()
                .is_some_and(|attempt_try| attempt_try.status.as_str() != "running");
            let finished = match self.try_number {
                Some(_) => try_ended,
                None => block_run.status.is_terminal(),
            };
            if finished {
                // One more read after the end: chunks stored between the
                // last read and the status change must not be missed.
                let current = current.as_ref().map(|attempt_try| attempt_try.id.clone());
                if let Some(try_id) = current {
                    let late = self
                        .engine
                        .read_log(&try_id, self.after_seq, CHUNKS_PER_READ)
                        .await?;
                    if !late.is_empty() {
                        continue;
                    }
                }
                self.send(json_event(
                    "end",
                    &LogEnd {
                        block_run_id: block_run.id.0.clone(),
                        status: block_run.status.as_str().to_owned(),
                    },
                ))
                .await?;
                return Ok(());
            }
            // Wait for a hint about this run, the poll interval, the
            // client leaving or the server stopping.
            let deadline = tokio::time::sleep(POLL);
            tokio::pin!(deadline);
            loop {
                tokio::select! {
                    () = &mut deadline => break,
                    () = self.shutdown.cancelled() => return Ok(()),
                    () = self.sender.closed() => return Err(FollowError::Gone),
                    received = events.recv() => match received {
                        Ok(event) if event_run(&event) == &self.run => break,
                        Ok(_) => {}
                        Err(broadcast::error::RecvError::Lagged(_)) => break,
                        Err(broadcast::error::RecvError::Closed) => return Ok(()),
                    },
                }
            }
        }
    }
}
