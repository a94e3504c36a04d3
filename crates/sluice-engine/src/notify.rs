//! Notifications: raising an event of a run, and the reconciler step that
//! sends the deliveries it recorded.
//!
//! Raising, for any caller in the engine:
//!
//! ```text
//! Engine::raise_notification(&self, run: &RunRecord, event: NotifyEvent) -> Result<u32>
//! ```
//!
//! records one delivery per channel the run's `notify:` (the pipeline's,
//! merged with its trigger's) routes `event` to, and returns how many this
//! call added. It is idempotent per `(run, attempt, event, channel)`: the
//! attempt is the run's current one, or 0 for the events raised once per
//! run (`sla_missed`, `sla_at_risk`, `timed_out`), so raising twice, or from
//! two servers, records one delivery. A run's end (`failed`, `completed`,
//! `cancelled`, and `recovered`) is raised by `Engine::end_run` in the same
//! transaction as the status change, so no end goes unnotified.
//!
//! Sending ([`Engine::send_notifications`], step 6 of the reconcilers):
//!
//! ```text
//!  pending ──claim (attempts+1, held 2 min)──> send ──2xx / 250──> delivered
//!     ^                                          │
//!     └── retry at now + 10s·2^(attempts-1) <────┤ transient error, attempts left
//!                                                └──> failed (permanent error,
//!                                                     or attempts used up)
//! ```
//!
//! A claim is a conditional update, so two servers never send one attempt
//! twice; a sender that dies leaves its claim to expire, and the next claim
//! counts as a new attempt. Channel settings are read from the pinned
//! pipeline at send time and secrets from the server's environment; URLs
//! are masked (`https://host/***`) in every error and log line.

use std::sync::OnceLock;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::json;
use sluice_core::ids::RunId;
use sluice_core::spec::{ChannelSpec, NotifySpec, Pipeline};
use sluice_core::status::RunStatus;
use sluice_store::{
    DeliveryClaim, DeliveryOutcome, DeliveryRecord, DeliveryResult, NewDelivery, Order, RunQuery,
    RunRecord,
};

pub use sluice_core::spec::NotifyEvent;

use crate::clock::add;
use crate::limits::trigger_of;
use crate::{Engine, Result, signature, smtp};

/// Deliveries one reconcile pass sends at most.
const BATCH: u32 = 20;
/// How long a claimed delivery is held by its sender: longer than the
/// slowest send (the SMTP timeout).
const CLAIM: Duration = Duration::from_secs(120);
/// The wait before the second attempt; it doubles with each further one.
const FIRST_BACKOFF: Duration = Duration::from_secs(10);
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(600);
/// How long one HTTP send may take.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The `notify:` that applies to a run: the pipeline's, merged with that of
/// the trigger that started it.
pub(crate) fn notify_spec(spec: &Pipeline, run: &RunRecord) -> NotifySpec {
    match trigger_of(spec, &run.invoked_by) {
        Some(trigger) => spec.notify.merged(&trigger.notify),
        None => spec.notify.clone(),
    }
}

/// Why one send failed, and whether trying again may help.
#[derive(Debug)]
struct SendError {
    message: String,
    transient: bool,
}

impl SendError {
    fn transient(message: impl Into<String>) -> Self {
        SendError {
            message: message.into(),
            transient: true,
        }
    }

    fn permanent(message: impl Into<String>) -> Self {
        SendError {
            message: message.into(),
            transient: false,
        }
    }
}

impl Engine {
    /// Records the deliveries of `event` for `run` (see the module
    /// documentation); returns how many this call added.
    pub async fn raise_notification(&self, run: &RunRecord, event: NotifyEvent) -> Result<u32> {
        let deliveries = self.deliveries_for(run, event).await?;
        if deliveries.is_empty() {
            return Ok(0);
        }
        let added = self.store().record_deliveries(&deliveries).await?;
        if added > 0 {
            tracing::info!(run = %run.id, event = %event, deliveries = added, "notification raised");
            self.wake();
        }
        Ok(added)
    }

    /// The deliveries `event` of `run` makes, one per routed channel; none
    /// when the run's `notify:` does not route it.
    pub(crate) async fn deliveries_for(
        &self,
        run: &RunRecord,
        event: NotifyEvent,
    ) -> Result<Vec<NewDelivery>> {
        let spec = self
            .pinned_pipeline(&run.pipeline, &run.pipeline_version)
            .await?;
        let notify = notify_spec(&spec, run);
        let channels = notify.channels_for(event);
        if channels.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.clock().now();
        let payload = payload(run, event, now);
        let attempt = if event.once_per_run() { 0 } else { run.attempt };
        Ok(channels
            .into_iter()
            .map(|(name, channel)| NewDelivery {
                run_id: run.id.clone(),
                attempt,
                event: event.as_str().to_owned(),
                channel: name.to_owned(),
                kind: channel.kind().to_owned(),
                max_attempts: notify.max_attempts(),
                payload: payload.clone(),
                created_at: now,
            })
            .collect())
    }

    /// The deliveries of a run's end: its status as an event, and
    /// `recovered` when it completed after a failure.
    pub(crate) async fn end_deliveries(&self, ended: &RunRecord) -> Result<Vec<NewDelivery>> {
        let event = match ended.status {
            RunStatus::Failed => NotifyEvent::Failed,
            RunStatus::Completed => NotifyEvent::Completed,
            RunStatus::Cancelled => NotifyEvent::Cancelled,
            RunStatus::Initial | RunStatus::Running => return Ok(Vec::new()),
        };
        let mut deliveries = self.deliveries_for(ended, event).await?;
        if event == NotifyEvent::Completed {
            let recovered = self.deliveries_for(ended, NotifyEvent::Recovered).await?;
            if !recovered.is_empty() && self.follows_a_failure(ended).await? {
                deliveries.extend(recovered);
            }
        }
        Ok(deliveries)
    }

    /// Whether a completing run follows a failure: an earlier attempt of it
    /// failed, or the previous finished run of its pipeline did.
    async fn follows_a_failure(&self, run: &RunRecord) -> Result<bool> {
        if run.attempt > 1 {
            let attempts = self.store().list_attempts(&run.id).await?;
            if attempts.iter().any(|attempt| {
                attempt.attempt == run.attempt - 1 && attempt.status == RunStatus::Failed
            }) {
                return Ok(true);
            }
        }
        let previous = self
            .store()
            .list_runs(&RunQuery {
                pipelines: vec![run.pipeline.clone()],
                statuses: vec![RunStatus::Completed, RunStatus::Failed],
                created_before: Some(run.created_at),
                order: Order::NewestFirst,
                limit: 1,
                ..RunQuery::default()
            })
            .await?;
        Ok(previous
            .runs
            .first()
            .is_some_and(|previous| previous.status == RunStatus::Failed))
    }

    /// The notification deliveries of a run, all attempts, oldest first.
    pub async fn run_notifications(&self, run_id: &RunId) -> Result<Vec<DeliveryRecord>> {
        Ok(self.store().list_deliveries(run_id).await?)
    }

    /// Reconciler step: sends the deliveries that are due, each claimed
    /// first so that no other server sends it at the same time. Returns how
    /// many sends ended (delivered, failed, or scheduled again).
    pub async fn send_notifications(&self) -> Result<usize> {
        let now = self.clock().now();
        let claimed = self
            .store()
            .claim_deliveries(&DeliveryClaim {
                now,
                claimed_until: add(now, CLAIM),
                limit: BATCH,
            })
            .await?;
        let mut changes = 0;
        for delivery in claimed {
            let outcome = match self.send(&delivery).await {
                Ok(()) => DeliveryResult::Delivered,
                Err(error) => {
                    tracing::warn!(
                        run = %delivery.run_id,
                        event = %delivery.event,
                        channel = %delivery.channel,
                        attempt = delivery.attempts,
                        "notification not delivered: {}",
                        error.message
                    );
                    let at = self.clock().now();
                    if error.transient && delivery.attempts < delivery.max_attempts {
                        DeliveryResult::Retry {
                            error: error.message,
                            retry_at: add(at, backoff(delivery.attempts)),
                        }
                    } else {
                        DeliveryResult::Failed {
                            error: error.message,
                        }
                    }
                }
            };
            let applied = self
                .store()
                .finish_delivery(&DeliveryOutcome {
                    id: delivery.id,
                    attempts: delivery.attempts,
                    at: self.clock().now(),
                    result: outcome,
                })
                .await?;
            changes += usize::from(applied);
        }
        Ok(changes)
    }

    /// One send of a claimed delivery to its channel.
    async fn send(&self, delivery: &DeliveryRecord) -> Result<(), SendError> {
        let run = self
            .get_run(&delivery.run_id)
            .await
            .map_err(|error| SendError::transient(format!("cannot read the run: {error:#}")))?;
        let spec = self
            .pinned_pipeline(&run.pipeline, &run.pipeline_version)
            .await
            .map_err(|error| {
                SendError::transient(format!("cannot read the pipeline: {error:#}"))
            })?;
        let notify = notify_spec(&spec, &run);
        let Some(channel) = notify.channels.get(&delivery.channel) else {
            return Err(SendError::permanent(format!(
                "the channel `{}` is not in the pipeline's `notify` any more",
                delivery.channel
            )));
        };
        match channel {
            ChannelSpec::Webhook { url, secret_env } => {
                let body = serde_json::to_vec(&delivery.payload)
                    .map_err(|error| SendError::permanent(error.to_string()))?;
                let id = webhook_id(delivery);
                let timestamp = self.clock().now().as_second();
                let mut headers = vec![
                    ("webhook-id", id.clone()),
                    ("webhook-timestamp", timestamp.to_string()),
                ];
                if let Some(env) = secret_env {
                    let secrets = std::env::var(env).unwrap_or_default();
                    let secrets = signature::parse_secrets(&secrets);
                    if secrets.is_empty() {
                        return Err(SendError::transient(format!(
                            "the environment variable `{env}` (the signing secret of channel `{}`) \
                             is not set on the server",
                            delivery.channel
                        )));
                    }
                    let signatures: Vec<String> = secrets
                        .iter()
                        .map(|secret| signature::sign_standard(secret, &id, timestamp, &body))
                        .collect();
                    headers.push(("webhook-signature", signatures.join(" ")));
                }
                post(url, body, &headers).await
            }
            ChannelSpec::Slack { url } => {
                let text = summary(&delivery.payload);
                let body = serde_json::to_vec(&json!({ "text": text }))
                    .map_err(|error| SendError::permanent(error.to_string()))?;
                post(url, body, &[]).await
            }
            ChannelSpec::Email {
                host,
                port,
                from,
                to,
            } => {
                let now = self.clock().now();
                let message = smtp::Message {
                    from: from.clone(),
                    to: to.clone(),
                    subject: format!("[sluice] {}", summary(&delivery.payload)),
                    date: jiff::fmt::rfc2822::DateTimePrinter::new()
                        .timestamp_to_string(&now)
                        .unwrap_or_default(),
                    message_id: format!("{}@sluice", webhook_id(delivery)),
                    body: email_body(&delivery.payload),
                };
                smtp::send(host, *port, &message).await.map_err(|error| {
                    let message = format!("smtp://{host}:{port}: {error:#}");
                    if error.is_transient() {
                        SendError::transient(message)
                    } else {
                        SendError::permanent(message)
                    }
                })
            }
        }
    }
}

/// The wait after failed attempt `attempts` (1-based).
fn backoff(attempts: u32) -> Duration {
    let doublings = attempts.saturating_sub(1).min(16);
    FIRST_BACKOFF
        .saturating_mul(1 << doublings)
        .min(MAX_BACKOFF)
}

/// The Standard Webhooks message id: the same for every attempt of one
/// delivery, so a receiver can drop repeats.
fn webhook_id(delivery: &DeliveryRecord) -> String {
    format!(
        "{}.{}.{}.{}",
        delivery.run_id, delivery.attempt, delivery.event, delivery.channel
    )
}

/// The body of a notification: Standard Webhooks' `type`, `timestamp` and
/// `data` (the run's facts, never its variables).
fn payload(run: &RunRecord, event: NotifyEvent, now: Timestamp) -> serde_json::Value {
    let message = describe(run, event);
    json!({
        "type": format!("run.{event}"),
        "timestamp": now,
        "data": {
            "event": event.as_str(),
            "message": message,
            "run_id": run.id,
            "pipeline": run.pipeline,
            "pipeline_version": run.pipeline_version,
            "attempt": run.attempt,
            "status": run.status.as_str(),
            "error": run.error,
            "invoked_by": run.invoked_by,
            "created_at": run.created_at,
            "started_at": run.started_at,
            "finished_at": run.finished_at,
            "sla_at": run.sla_at,
            "sla_missed": run.sla_missed,
            "sla_at_risk_at": run.sla_at_risk_at,
            "timed_out": run.timed_out,
        }
    })
}

/// One sentence about the event, for chat and email.
fn describe(run: &RunRecord, event: NotifyEvent) -> String {
    let subject = format!("run {} of `{}`", run.id, run.pipeline);
    let error = run
        .error
        .as_deref()
        .map(|error| format!(": {error}"))
        .unwrap_or_default();
    match event {
        NotifyEvent::Failed => format!("{subject} failed{error}"),
        NotifyEvent::Completed => format!("{subject} completed"),
        NotifyEvent::Cancelled => format!("{subject} was cancelled"),
        NotifyEvent::SlaMissed => format!("{subject} missed its SLA"),
        NotifyEvent::SlaAtRisk => format!("{subject} is expected to miss its SLA"),
        NotifyEvent::TimedOut => format!("{subject} timed out"),
        NotifyEvent::Slow => format!("{subject} was slow against its baseline"),
        NotifyEvent::Recovered => format!("{subject} completed after a failure"),
    }
}

fn summary(payload: &serde_json::Value) -> String {
    payload["data"]["message"]
        .as_str()
        .unwrap_or("a run of sluice has news")
        .to_owned()
}

fn email_body(payload: &serde_json::Value) -> String {
    let data = &payload["data"];
    let mut body = summary(payload);
    body.push_str("\n\n");
    for key in [
        "run_id",
        "pipeline",
        "attempt",
        "status",
        "error",
        "created_at",
        "started_at",
        "finished_at",
        "sla_at",
    ] {
        let value = &data[key];
        if value.is_null() {
            continue;
        }
        let text = value
            .as_str()
            .map_or_else(|| value.to_string(), str::to_owned);
        body.push_str(&format!("{key}: {text}\n"));
    }
    body
}

/// A URL as it may be shown: scheme, host and port, never its path or
/// query (where incoming-webhook tokens live) nor credentials.
pub fn masked_url(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(parsed) => {
            let host = parsed.host_str().unwrap_or("");
            match parsed.port() {
                Some(port) => format!("{}://{host}:{port}/***", parsed.scheme()),
                None => format!("{}://{host}/***", parsed.scheme()),
            }
        }
        Err(_) => "***".to_owned(),
    }
}

fn client() -> Result<&'static reqwest::Client, SendError> {
    static CLIENT: OnceLock<Option<reqwest::Client>> = OnceLock::new();
    CLIENT
        .get_or_init(|| {
            reqwest::Client::builder()
                .timeout(HTTP_TIMEOUT)
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .ok()
        })
        .as_ref()
        .ok_or_else(|| SendError::transient("cannot build the HTTP client"))
}

/// POSTs a JSON body; a 2xx answer is a delivery.
async fn post(url: &str, body: Vec<u8>, headers: &[(&str, String)]) -> Result<(), SendError> {
    let shown = masked_url(url);
    if url.starts_with("https://") && !cfg!(feature = "rustls") {
        return Err(SendError::permanent(format!(
            "{shown}: this build of sluice has no TLS support; use an http:// URL (a local \
             relay) or build sluice with `--features rustls`"
        )));
    }
    let mut request = client()?
        .post(url)
        .header("content-type", "application/json")
        .header("user-agent", concat!("sluice/", env!("CARGO_PKG_VERSION")))
        .body(body);
    for (name, value) in headers {
        request = request.header(*name, value);
    }
    let response = request.send().await.map_err(|error| {
        SendError::transient(format!(
            "POST {shown} failed: {:#}",
            anyhow_chain(&error.without_url())
        ))
    })?;
    let status = response.status();
    if status.is_success() {
        return Ok(());
    }
    let message = format!("POST {shown} answered {status}");
    // A 4xx says the request itself is wrong (a revoked URL, a refused
    // signature), except for "too many requests" and timeouts.
    let permanent = status.is_client_error() && !matches!(status.as_u16(), 408 | 409 | 425 | 429);
    Err(if permanent {
        SendError::permanent(message)
    } else {
        SendError::transient(message)
    })
}

/// An error with its sources, as one line.
fn anyhow_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_shown_without_path_query_or_credentials() {
        assert_eq!(
            masked_url("https://user:pw@hooks.example.com/services/T0/B0/XYZ?token=1"),
            "https://hooks.example.com/***"
        );
        assert_eq!(
            masked_url("http://127.0.0.1:8080/hook"),
            "http://127.0.0.1:8080/***"
        );
        assert_eq!(masked_url("not a url"), "***");
    }

    #[test]
    fn the_backoff_doubles_up_to_a_bound() {
        assert_eq!(backoff(1), Duration::from_secs(10));
        assert_eq!(backoff(2), Duration::from_secs(20));
        assert_eq!(backoff(4), Duration::from_secs(80));
        assert_eq!(backoff(30), MAX_BACKOFF);
    }
}
