//! The reconcilers. Each re-reads the world from the store, makes the changes
//! that are due through conditional updates, and can be called on demand (a
//! test steps them by hand). Running one twice at once, or in two processes,
//! is harmless: the losing writer's conditional update simply does nothing.
//!
//! 1. lost executors and expired leases: the try is lost; retried or failed;
//! 2. deadlines: run timeouts, SLA misses and SLA risk (`sla.rs`), each
//!    notified once;
//! 3. admission: `initial` runs start when pipeline and global limits allow,
//!    highest priority first;
//! 4. DAG advance: a block run whose upstreams all ended becomes `queued`,
//!    `condition_failed`, `upstream_failed` or `cancelled`;
//! 5. finish: a run whose block runs all ended gets its final status;
//! 6. notifications: due deliveries are sent (`notify.rs`).
//!
//! With `fire_schedules` on (a server), the scheduler (`scheduler.rs`) runs
//! first: due fires of the project's triggers become runs. Then running
//! backfills (`backfill.rs`) get runs for their next windows.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use sluice_core::expr::{BlockFacts, EvalContext, RunFacts};
use sluice_core::spec::{Pipeline, TimeoutStatus};
use sluice_core::status::{BlockRunStatus, RunStatus};
use sluice_store::{BlockRunNext, BlockRunRecord, RunFlag, RunRecord, TryCompletion, TryStatus};

use crate::limits::RunLimits;
use crate::notify::NotifyEvent;
use crate::{Engine, Result};

/// The actor recorded when sluice itself cancels a run for its timeout.
pub(crate) const TIMEOUT_ACTOR: &str = "sluice:timeout";
/// The error of a run or try whose executor disappeared.
pub(crate) const EXECUTOR_LOST: &str = "executor lost";

/// How many changes one reconcile pass made.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reconciled {
    pub changes: usize,
}

const ACTIVE_BATCH: u32 = 1000;

impl Engine {
    /// One pass of every reconciler, in order.
    pub async fn reconcile(&self) -> Result<Reconciled> {
        let mut changes = 0;
        if self.config().fire_schedules {
            changes += self.fire_schedules().await?;
        }
        changes += self.advance_backfills().await?;
        changes += self.reap_lost_executors().await?;
        changes += self.reap_expired_leases().await?;
        changes += self.enforce_deadlines().await?;
        changes += self.admit_runs().await?;
        changes += self.advance_runs().await?;
        changes += self.send_notifications().await?;
        Ok(Reconciled { changes })
    }

    /// Runs owned by an executor (a `sluice run` process) that is gone end
    /// `failed` with `error: executor lost`: their running tries are lost and
    /// their waiting block runs cancelled. `sluice runs retry` picks them up.
    pub async fn reap_lost_executors(&self) -> Result<usize> {
        let mut changes = 0;
        let now = self.clock().now();
        for run in self.store().active_runs(ACTIVE_BATCH).await? {
            let Some(owner) = &run.owner else { continue };
            if !self.executor_is_lost(owner, now).await? {
                continue;
            }
            tracing::warn!(run = %run.id, executor = %owner, "the executor of the run is gone");
            for attempt_try in self.store().list_run_tries(&run.id).await? {
                if attempt_try.status != TryStatus::Running {
                    continue;
                }
                let completion = TryCompletion {
                    try_id: attempt_try.id.clone(),
                    block_run_id: attempt_try.block_run_id.clone(),
                    epoch: attempt_try.lease_epoch,
                    status: TryStatus::Lost,
                    at: now,
                    exit_code: None,
                    error: Some(EXECUTOR_LOST.to_owned()),
                    timed_out: false,
                    outputs: BTreeMap::new(),
                    data: None,
                    artifacts: Vec::new(),
                    next: BlockRunNext::Finish {
                        status: BlockRunStatus::Failed,
                    },
                };
                match self.store().complete_try(&completion).await {
                    Ok(()) | Err(sluice_store::Error::StaleLease(_)) => changes += 1,
                    Err(other) => return Err(other.into()),
                }
            }
            for block_run in self.store().list_block_runs(&run.id, None).await? {
                if matches!(
                    block_run.status,
                    BlockRunStatus::Initial | BlockRunStatus::Queued
                ) && self
                    .move_block_run(
                        &block_run,
                        BlockRunStatus::Cancelled,
                        now,
                        Some(EXECUTOR_LOST.to_owned()),
                    )
                    .await?
                {
                    changes += 1;
                }
            }
            if self
                .end_run(
                    &run,
                    run.status,
                    RunStatus::Failed,
                    Some(EXECUTOR_LOST.to_owned()),
                )
                .await?
            {
                changes += 1;
                self.audit(
                    "sluice",
                    "run.executor_lost",
                    run.id.as_str(),
                    serde_json::json!({ "executor": owner }),
                )
                .await?;
            }
        }
        Ok(changes)
    }

    /// Running tries whose lease expired are lost: retried when tries remain
    /// and the run is not being cancelled, else failed with `agent lost`.
    pub async fn reap_expired_leases(&self) -> Result<usize> {
        let mut changes = 0;
        let now = self.clock().now();
        for attempt_try in self.store().expired_tries(now, ACTIVE_BATCH).await? {
            let Some(block_run) = self
                .store()
                .get_block_run(&attempt_try.block_run_id)
                .await?
            else {
                continue;
            };
            let run = self.get_run(&block_run.run_id).await?;
            let next = if block_run.tries < block_run.max_tries && run.cancel_requested_at.is_none()
            {
                BlockRunNext::Retry { retry_at: now }
            } else {
                BlockRunNext::Finish {
                    status: BlockRunStatus::Failed,
                }
            };
            let completion = TryCompletion {
                try_id: attempt_try.id.clone(),
                block_run_id: block_run.id.clone(),
                epoch: attempt_try.lease_epoch,
                status: TryStatus::Lost,
                at: now,
                exit_code: None,
                error: Some("agent lost".to_owned()),
                timed_out: false,
                outputs: BTreeMap::new(),
                data: None,
                artifacts: Vec::new(),
                next,
            };
            match self.store().complete_try(&completion).await {
                Ok(()) => {
                    changes += 1;
                    self.metrics().count_lease_expiry();
                    tracing::warn!(try_id = %attempt_try.id, "lease expired; the try is lost");
                }
                Err(sluice_store::Error::StaleLease(_)) => {}
                Err(other) => return Err(other.into()),
            }
        }
        Ok(changes)
    }

    /// Run timeouts and SLA deadlines.
    pub async fn enforce_deadlines(&self) -> Result<usize> {
        let mut changes = 0;
        let now = self.clock().now();
        for run in self.store().active_runs(ACTIVE_BATCH).await? {
            if run.sla_at.is_some_and(|sla_at| sla_at <= now)
                && !run.sla_missed
                && self.flag_sla_missed(&run).await?
            {
                changes += 1;
                tracing::warn!(run = %run.id, "the run missed its SLA");
            }
            if self.check_sla_risk(&run, now).await? {
                changes += 1;
            }
            let due = run.status == RunStatus::Running
                && !run.timed_out
                && run.timeout_at.is_some_and(|timeout_at| timeout_at <= now);
            if !due {
                continue;
            }
            let spec = self
                .pinned_pipeline(&run.pipeline, &run.pipeline_version)
                .await?;
            let limits = RunLimits::for_run(&spec, &run.invoked_by);
            let mut timed_out = run.clone();
            timed_out.timed_out = true;
            self.raise_notification(&timed_out, NotifyEvent::TimedOut)
                .await?;
            if self.store().flag_run(&run.id, RunFlag::TimedOut).await? {
                changes += 1;
                self.audit(
                    "sluice",
                    "run.timeout",
                    run.id.as_str(),
                    serde_json::json!({ "timeout_status": timeout_status_name(limits.timeout_status) }),
                )
                .await?;
            }
            if limits.timeout_status != TimeoutStatus::Warning
                && self
                    .store()
                    .request_cancel(&run.id, TIMEOUT_ACTOR, now)
                    .await?
            {
                changes += 1;
                self.cancel_local_tries(&run.id);
            }
        }
        Ok(changes)
    }

    /// Starts `initial` runs, highest priority first, while the pipeline's
    /// `concurrency` and the global limit allow.
    pub async fn admit_runs(&self) -> Result<usize> {
        let mut changes = 0;
        let mut active = self.store().active_runs(ACTIVE_BATCH).await?;
        let mut running_total = active
            .iter()
            .filter(|run| run.status == RunStatus::Running)
            .count() as u32;
        active.retain(|run| run.status == RunStatus::Initial);
        active.sort_by(|a, b| {
            b.priority
                .cmp(&a.priority)
                .then(a.created_at.cmp(&b.created_at))
                .then(a.id.cmp(&b.id))
        });
        let mut running_by_pipeline: BTreeMap<String, u32> = BTreeMap::new();
        for run in active {
            if run.cancel_requested_at.is_some() {
                self.cancel_waiting_block_runs(&run, self.clock().now())
                    .await?;
                if self
                    .end_run(&run, RunStatus::Initial, RunStatus::Cancelled, None)
                    .await?
                {
                    changes += 1;
                }
                continue;
            }
            if self
                .config()
                .max_active_runs
                .is_some_and(|limit| running_total >= limit)
            {
                break;
            }
            let spec = self
                .pinned_pipeline(&run.pipeline, &run.pipeline_version)
                .await?;
            if let Some(limit) = RunLimits::for_run(&spec, &run.invoked_by).concurrency {
                let running = match running_by_pipeline.get(&run.pipeline) {
                    Some(count) => *count,
                    None => {
                        self.store()
                            .count_runs(&run.pipeline, &[RunStatus::Running])
                            .await?
                    }
                };
                running_by_pipeline.insert(run.pipeline.clone(), running);
                if running >= limit.get() {
                    continue;
                }
            }
            if self.admit(&run, &spec).await? {
                changes += 1;
                running_total += 1;
                *running_by_pipeline.entry(run.pipeline.clone()).or_default() += 1;
            }
        }
        Ok(changes)
    }

    /// Moves every running run's DAG forward and finishes the runs whose
    /// block runs all ended.
    pub async fn advance_runs(&self) -> Result<usize> {
        let mut changes = 0;
        for run in self.store().active_runs(ACTIVE_BATCH).await? {
            if run.status == RunStatus::Running {
                changes += self.advance_run(&run).await?;
            }
        }
        Ok(changes)
    }

    async fn advance_run(&self, run: &RunRecord) -> Result<usize> {
        let spec = self
            .pinned_pipeline(&run.pipeline, &run.pipeline_version)
            .await?;
        let now = self.clock().now();
        let mut changes = 0;
        let cancelling = run.cancel_requested_at.is_some();
        if cancelling {
            self.cancel_local_tries(&run.id);
        }
        let mut block_runs = self.store().list_block_runs(&run.id, None).await?;
        // Deciding one block can unblock the next in the same pass, so the
        // loop repeats until nothing changes (bounded by the block count).
        for _ in 0..=block_runs.len() {
            let mut progressed = false;
            let facts = block_facts(&block_runs);
            for block_run in block_runs.iter_mut() {
                let decided = match block_run.status {
                    BlockRunStatus::Queued if cancelling => Some((BlockRunStatus::Cancelled, None)),
                    BlockRunStatus::Initial => {
                        self.decide(run, &spec, block_run, &facts, cancelling)
                    }
                    _ => None,
                };
                if let Some((to, error)) = decided
                    && self.move_block_run(block_run, to, now, error).await?
                {
                    block_run.status = to;
                    progressed = true;
                    changes += 1;
                }
            }
            if !progressed {
                break;
            }
        }
        if block_runs
            .iter()
            .all(|block_run| block_run.status.is_terminal())
        {
            changes += usize::from(self.finish_run(run, &spec, &block_runs).await?);
        } else if changes > 0 {
            self.wake();
        }
        Ok(changes)
    }

    /// What an `initial` block run becomes once its upstreams ended, or
    /// `None` while some upstream is still going.
    fn decide(
        &self,
        run: &RunRecord,
        spec: &Pipeline,
        block_run: &BlockRunRecord,
        facts: &BTreeMap<String, BlockFacts>,
        cancelling: bool,
    ) -> Option<(BlockRunStatus, Option<String>)> {
        let Some(block) = spec.block(&block_run.block) else {
            return Some((
                BlockRunStatus::Failed,
                Some(format!(
                    "block `{}` is not in the pinned pipeline",
                    block_run.block
                )),
            ));
        };
        let mut upstreams = Vec::with_capacity(block.needs.len());
        for need in &block.needs {
            let status = facts
                .get(need)
                .map_or(BlockRunStatus::Failed, |fact| fact.status);
            if !status.is_terminal() {
                return None;
            }
            upstreams.push(status);
        }
        if cancelling {
            return Some((BlockRunStatus::Cancelled, None));
        }
        let upstream_failed = upstreams.iter().any(|status| {
            matches!(
                status,
                BlockRunStatus::Failed | BlockRunStatus::UpstreamFailed | BlockRunStatus::Cancelled
            )
        });
        let upstream_skipped = upstreams.contains(&BlockRunStatus::ConditionFailed);
        let explicit_status_check = block
            .condition
            .as_ref()
            .is_some_and(|condition| condition.uses_status_functions());
        if !explicit_status_check {
            if upstream_failed {
                return Some((BlockRunStatus::UpstreamFailed, None));
            }
            if upstream_skipped {
                return Some((BlockRunStatus::ConditionFailed, None));
            }
        }
        if let Some(condition) = &block.condition {
            let vars = run.variables.values();
            let run_facts = RunFacts {
                id: run.id.to_string(),
                pipeline: run.pipeline.clone(),
                attempt: run.attempt,
            };
            let context = EvalContext {
                vars: &vars,
                blocks: facts,
                upstreams: &upstreams,
                run: &run_facts,
            };
            match condition.evaluate(&context) {
                Ok(true) => {}
                Ok(false) => return Some((BlockRunStatus::ConditionFailed, None)),
                Err(error) => {
                    return Some((
                        BlockRunStatus::Failed,
                        Some(format!(
                            "cannot evaluate `if: {}`: {error}",
                            condition.source()
                        )),
                    ));
                }
            }
        }
        Some((BlockRunStatus::Queued, None))
    }

    /// Gives a run whose block runs all ended its final status.
    async fn finish_run(
        &self,
        run: &RunRecord,
        spec: &Arc<Pipeline>,
        block_runs: &[BlockRunRecord],
    ) -> Result<bool> {
        let timed_out_by_us =
            run.timed_out && run.cancel_requested_by.as_deref() == Some(TIMEOUT_ACTOR);
        let first_failure = block_runs
            .iter()
            .find(|block_run| block_run.status == BlockRunStatus::Failed);
        let limits = RunLimits::for_run(spec, &run.invoked_by);
        let (status, error) = if timed_out_by_us {
            let status = match limits.timeout_status {
                TimeoutStatus::Cancelled => RunStatus::Cancelled,
                _ => RunStatus::Failed,
            };
            let after = limits
                .timeout
                .map(|timeout| format!(" after {timeout}"))
                .unwrap_or_default();
            (status, Some(format!("run timed out{after}")))
        } else if run.cancel_requested_at.is_some() {
            (RunStatus::Cancelled, None)
        } else if let Some(failed) = first_failure {
            let reason = failed.error.as_deref().unwrap_or("failed");
            (
                RunStatus::Failed,
                Some(format!("block `{}` failed: {reason}", failed.block)),
            )
        } else if block_runs.iter().any(|block_run| {
            matches!(
                block_run.status,
                BlockRunStatus::UpstreamFailed | BlockRunStatus::Cancelled
            )
        }) {
            (
                RunStatus::Failed,
                Some("some blocks did not run".to_owned()),
            )
        } else {
            (RunStatus::Completed, None)
        };
        let now = self.clock().now();
        let mut run = run.clone();
        if run.sla_at.is_some_and(|sla_at| sla_at < now) && !run.sla_missed {
            self.flag_sla_missed(&run).await?;
            run.sla_missed = true;
        }
        self.end_run(&run, RunStatus::Running, status, error).await
    }

    /// Flags a run `sla_missed` and notifies it, once. The notification is
    /// recorded first, so a stop between the two writes is repaired by the
    /// next pass; returns whether this call set the flag.
    async fn flag_sla_missed(&self, run: &RunRecord) -> Result<bool> {
        let mut missed = run.clone();
        missed.sla_missed = true;
        self.raise_notification(&missed, NotifyEvent::SlaMissed)
            .await?;
        Ok(self.store().flag_run(&run.id, RunFlag::SlaMissed).await?)
    }

    /// Whether an executor is gone: its process no longer exists on this
    /// host, or it stopped heartbeating for three lease lifetimes.
    pub(crate) async fn executor_is_lost(
        &self,
        executor: &sluice_core::ids::ExecutorId,
        now: Timestamp,
    ) -> Result<bool> {
        let Some(record) = self.store().get_executor(executor).await? else {
            return Ok(true);
        };
        if record.host == crate::agent::host_name()
            && !std::path::Path::new(&format!("/proc/{}", record.pid)).exists()
            && std::path::Path::new("/proc/self").exists()
        {
            return Ok(true);
        }
        let silence = now.duration_since(record.heartbeat_at);
        let limit = jiff::SignedDuration::try_from(self.config().lease_ttl * 3)
            .unwrap_or(jiff::SignedDuration::MAX);
        Ok(silence > limit)
    }
}

/// The facts of every block run of an attempt, for expressions.
pub(crate) fn block_facts(block_runs: &[BlockRunRecord]) -> BTreeMap<String, BlockFacts> {
    block_runs
        .iter()
        .map(|block_run| {
            (
                block_run.block.clone(),
                BlockFacts {
                    status: block_run.status,
                    outputs: block_run.outputs.clone(),
                },
            )
        })
        .collect()
}

fn timeout_status_name(status: TimeoutStatus) -> &'static str {
    match status {
        TimeoutStatus::Failed => "failed",
        TimeoutStatus::Cancelled => "cancelled",
        TimeoutStatus::Warning => "warning",
    }
}
