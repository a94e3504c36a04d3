//! Queue control: the queued block runs in claim order, each with the
//! reason it is not running yet; the runs waiting to be admitted; an
//! operator's move of a block run's place; and cancelling, in bulk, the runs
//! whose queued block runs match a filter.
//!
//! A reason is computed from what the store says now, never stored: the
//! first that applies of retry backoff, labels no live executor offers, the
//! run's `block_concurrency`, and otherwise the claimable block runs ahead.

use std::collections::{BTreeMap, BTreeSet};

use jiff::{SignedDuration, Timestamp};
use serde::Serialize;
use sluice_core::ids::{BlockRunId, RunId};
use sluice_core::status::RunStatus;
use sluice_store::{QueueMove, QueuePlace, QueuedBlockRun, RunRecord};

use crate::limits::RunLimits;
use crate::remote::AgentStatus;
use crate::{Engine, Error, Result};

/// The most queued block runs a listing shows.
pub const MAX_QUEUE: u32 = 10_000;
/// The most executors considered when asking who offers a block's labels.
const MAX_EXECUTORS: u32 = 1_000;

/// Why a queued block run (or an `initial` run) is not running yet.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WaitReason {
    /// A failed try's retry waits out its backoff.
    RetryBackoff { until: Timestamp },
    /// No live agent (built-in or remote) offers every label the block
    /// requires.
    Labels { labels: BTreeMap<String, String> },
    /// Its run already runs as many block runs as `block_concurrency` allows.
    BlockConcurrency { limit: u32 },
    /// Claimable; this many claimable block runs come before it.
    Behind { tries: u32 },
    /// The pipeline already runs as many runs as its `concurrency` allows.
    PipelineConcurrency { limit: u32 },
    /// The server already runs as many runs as `max_active_runs` allows.
    MaxActiveRuns { limit: u32 },
    /// Nothing holds it back; the next reconcile pass starts it.
    Starting,
}

impl std::fmt::Display for WaitReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WaitReason::RetryBackoff { until } => {
                write!(f, "waiting for retry backoff until {until}")
            }
            WaitReason::Labels { labels } if labels.is_empty() => write!(f, "no agent is online"),
            WaitReason::Labels { labels } => {
                let labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
                write!(f, "no online agent offers labels {}", labels.join(","))
            }
            WaitReason::BlockConcurrency { limit } => {
                write!(f, "block concurrency of its run reached ({limit})")
            }
            WaitReason::Behind { tries: 0 } => write!(f, "next to be claimed"),
            WaitReason::Behind { tries: 1 } => write!(f, "behind 1 try"),
            WaitReason::Behind { tries } => write!(f, "behind {tries} tries"),
            WaitReason::PipelineConcurrency { limit } => {
                write!(f, "pipeline concurrency reached ({limit})")
            }
            WaitReason::MaxActiveRuns { limit } => write!(f, "most active runs reached ({limit})"),
            WaitReason::Starting => write!(f, "starting"),
        }
    }
}

/// A queued block run at its place in claim order.
#[derive(Clone, Debug, PartialEq)]
pub struct QueueEntry {
    /// 1-based, in claim order.
    pub position: u32,
    pub queued: QueuedBlockRun,
    pub reason: WaitReason,
}

/// A run waiting in `initial` to be admitted.
#[derive(Clone, Debug, PartialEq)]
pub struct WaitingRun {
    pub run: RunRecord,
    pub reason: WaitReason,
}

/// The queue as an operator sees it.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QueueView {
    pub block_runs: Vec<QueueEntry>,
    pub runs: Vec<WaitingRun>,
}

/// Which runs a bulk cancel takes: those with a queued block run matching
/// every given filter.
#[derive(Clone, Debug, Default)]
pub struct QueueCancel {
    pub pipeline: Option<String>,
    /// Labels the queued block run requires (each of them).
    pub labels: BTreeMap<String, String>,
    /// Only say which runs would be cancelled.
    pub dry_run: bool,
}

impl Engine {
    /// Queued block runs in claim order with their reasons, and the runs
    /// waiting to be admitted with theirs.
    pub async fn queue(&self) -> Result<QueueView> {
        Ok(QueueView {
            block_runs: self.queued_block_runs().await?,
            runs: self.waiting_runs().await?,
        })
    }

    /// Queued block runs in claim order with their reasons.
    async fn queued_block_runs(&self) -> Result<Vec<QueueEntry>> {
        let now = self.clock().now();
        let queued = self.store().list_queue(MAX_QUEUE).await?;
        let offered = self.offered_labels(now).await?;
        let mut block_runs = Vec::with_capacity(queued.len());
        // Claimable block runs seen so far, overall and per run attempt:
        // those of one run count against its `block_concurrency` too.
        let mut ready = 0u32;
        let mut ready_by_run: BTreeMap<RunId, u32> = BTreeMap::new();
        for (index, queued) in queued.into_iter().enumerate() {
            let block_run = &queued.block_run;
            let ahead_in_run = ready_by_run.get(&block_run.run_id).copied().unwrap_or(0);
            let reason = match block_run.retry_at {
                Some(until) if until > now => WaitReason::RetryBackoff { until },
                _ if queued.owner.is_none()
                    && !offered
                        .iter()
                        .any(|labels| offers(labels, &block_run.labels)) =>
                {
                    WaitReason::Labels {
                        labels: block_run.labels.clone(),
                    }
                }
                _ => match queued.block_concurrency {
                    Some(limit) if queued.running_in_attempt + ahead_in_run >= limit => {
                        WaitReason::BlockConcurrency { limit }
                    }
                    _ => {
                        ready += 1;
                        *ready_by_run.entry(block_run.run_id.clone()).or_default() += 1;
                        WaitReason::Behind { tries: ready - 1 }
                    }
                },
            };
            block_runs.push(QueueEntry {
                position: u32::try_from(index + 1).unwrap_or(u32::MAX),
                queued,
                reason,
            });
        }
        Ok(block_runs)
    }

    /// The reason of each queued block run of one run, for its details.
    pub(crate) async fn queue_reasons(
        &self,
        run: &RunId,
    ) -> Result<BTreeMap<BlockRunId, WaitReason>> {
        Ok(self
            .queued_block_runs()
            .await?
            .into_iter()
            .filter(|entry| &entry.queued.block_run.run_id == run)
            .map(|entry| (entry.queued.block_run.id, entry.reason))
            .collect())
    }

    /// The labels of every executor that may take a server's block runs
    /// now: built-in agents of servers and remote agents heard of within a
    /// lease TTL, without those that drain.
    async fn offered_labels(&self, now: Timestamp) -> Result<Vec<BTreeMap<String, String>>> {
        let ttl = SignedDuration::try_from(self.config().lease_ttl).unwrap_or(SignedDuration::MAX);
        let draining: BTreeSet<String> = self
            .list_agents()
            .await?
            .into_iter()
            .filter(|agent| agent.status == AgentStatus::Draining)
            .map(|agent| agent.listing.agent.id.as_str().to_owned())
            .collect();
        Ok(self
            .store()
            .list_executors(MAX_EXECUTORS)
            .await?
            .into_iter()
            .filter(|executor| matches!(executor.kind.as_str(), "server" | "agent"))
            .filter(|executor| now.duration_since(executor.heartbeat_at) <= ttl)
            .filter(|executor| !draining.contains(executor.id.as_str()))
            .map(|executor| executor.labels)
            .collect())
    }

    /// `initial` runs, in admission order, with what holds each back (the
    /// same limits the admission reconciler applies).
    async fn waiting_runs(&self) -> Result<Vec<WaitingRun>> {
        let mut active = self.store().active_runs(MAX_QUEUE).await?;
        let mut running_total = active
            .iter()
            .filter(|run| run.status == RunStatus::Running)
            .count() as u32;
        active.retain(|run| run.status == RunStatus::Initial && run.cancel_requested_at.is_none());
        active.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.created_at.cmp(&b.created_at))
                .then(a.id.cmp(&b.id))
        });
        let mut running_by_pipeline: BTreeMap<String, u32> = BTreeMap::new();
        let mut waiting = Vec::with_capacity(active.len());
        for run in active {
            let reason = if let Some(limit) = self
                .config()
                .max_active_runs
                .filter(|limit| running_total >= *limit)
            {
                WaitReason::MaxActiveRuns { limit }
            } else {
                let spec = self
                    .pinned_pipeline(&run.pipeline, &run.pipeline_version)
                    .await?;
                let running = match running_by_pipeline.get(&run.pipeline) {
                    Some(count) => *count,
                    None => {
                        self.store()
                            .count_runs(&run.pipeline, &[RunStatus::Running])
                            .await?
                    }
                };
                running_by_pipeline.insert(run.pipeline.clone(), running);
                match RunLimits::for_run(&spec, &run.invoked_by).concurrency {
                    Some(limit) if running >= limit.get() => {
                        WaitReason::PipelineConcurrency { limit: limit.get() }
                    }
                    _ => {
                        // The admission pass would start it, which counts
                        // against the limits of the runs after it.
                        running_total += 1;
                        *running_by_pipeline.entry(run.pipeline.clone()).or_default() += 1;
                        WaitReason::Starting
                    }
                }
            };
            waiting.push(WaitingRun { run, reason });
        }
        Ok(waiting)
    }

    /// Moves a queued block run to another place among those of its
    /// priority; claims follow the new order. Recorded in the audit log.
    pub async fn move_in_queue(&self, change: &QueueMove, by: &str) -> Result<()> {
        if self
            .store()
            .get_block_run(&change.block_run)
            .await?
            .is_none()
        {
            return Err(Error::NotFound(format!(
                "no block run `{}`",
                change.block_run
            )));
        }
        self.store()
            .move_in_queue(change)
            .await
            .map_err(|error| match error {
                sluice_store::Error::Conflict(message) => Error::conflict(
                    message,
                    Some(
                        "`sluice queue list` shows the queued block runs and their priorities"
                            .to_owned(),
                    ),
                ),
                error => error.into(),
            })?;
        let place = match &change.place {
            QueuePlace::Position(position) => serde_json::json!({ "to": position }),
            QueuePlace::Before(other) => serde_json::json!({ "before": other.as_str() }),
        };
        self.audit(by, "queue.move", change.block_run.as_str(), place)
            .await?;
        self.wake();
        Ok(())
    }

    /// Cancels every run with a queued block run that matches the filter
    /// (or, with `dry_run`, only says which); returns those runs.
    pub async fn cancel_queued(&self, filter: &QueueCancel, by: &str) -> Result<Vec<RunId>> {
        let queued = self.store().list_queue(MAX_QUEUE).await?;
        let mut runs: Vec<RunId> = Vec::new();
        for queued in queued {
            let matches = filter
                .pipeline
                .as_ref()
                .is_none_or(|pipeline| pipeline == &queued.pipeline)
                && offers(&queued.block_run.labels, &filter.labels);
            if matches && !runs.contains(&queued.block_run.run_id) {
                runs.push(queued.block_run.run_id);
            }
        }
        if filter.dry_run {
            return Ok(runs);
        }
        let mut cancelled = Vec::with_capacity(runs.len());
        for run in runs {
            match self.cancel_run(&run, by).await {
                Ok(_) => cancelled.push(run),
                // The run ended between the listing and the cancel: there is
                // nothing left to cancel.
                Err(Error::Conflict { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(cancelled)
    }
}

/// Whether `offered` has every label of `required`.
fn offers(offered: &BTreeMap<String, String>, required: &BTreeMap<String, String>) -> bool {
    required
        .iter()
        .all(|(key, value)| offered.get(key) == Some(value))
}
