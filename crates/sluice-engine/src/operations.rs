//! What happens once a run has finished: its duration baseline and the
//! `slow` verdict, the failures it resolves; and retention, which deletes
//! old finished runs with their blobs.
//!
//! Baseline: the median and p95 of the latest `drift.runs` completed runs
//! of the pipeline (their latest attempt, from start to finish) and of each
//! block that ran in them. A run that completes slower than p95 ×
//! `drift.factor` is flagged `slow`, but only when at least
//! `drift.min_runs` runs make the baseline.
//!
//! Retention, per pipeline of the project: finished runs created more than
//! `retention.days` ago, except the pipeline's latest `keep_last` runs, are
//! deleted one at a time, each in one transaction with its audit event.
//! Blobs are deleted afterwards, only when no row references them any more
//! and their file is older than a grace period:
//!
//! ```text
//!  expired runs ──> purge run (rows + audit, one transaction) ──> its blobs
//!                                                                  │
//!  every blob in the directory ──> unreferenced and older than ────┴──> delete
//!                                  the grace period?
//! ```
//!
//! A process killed at any point leaves either a run fully present or fully
//! gone, and at worst blobs no row references; the next pass sweeps the
//! whole blob directory and deletes them. The grace period protects an
//! upload in flight: its blob is written (or rewritten, which renews its
//! modification time) before the completion that references it is
//! recorded, so a fresh unreferenced blob is left alone.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use serde::Serialize;
use sluice_core::ids::RunId;
use sluice_core::spec::{NotifyEvent, RetentionPolicy};
use sluice_core::status::RunStatus;
use sluice_store::{
    BaselineRecord, DurationHistoryQuery, DurationStats, ExpiredRunQuery, NewAuditEvent,
    ResolvingRun, RunBaseline, RunDurations, RunPurge, RunRecord,
};

use crate::{Engine, Result};

/// The actor of the audit events retention writes.
pub const RETENTION_ACTOR: &str = "sluice:retention";
/// How many expired runs one read returns.
const PURGE_BATCH: u32 = 100;

/// The median (the mean of the two middle values for an even count) and
/// the p95 (nearest rank) of some durations. `None` for no durations.
pub fn duration_stats(durations: &[u64]) -> Option<DurationStats> {
    if durations.is_empty() {
        return None;
    }
    let mut sorted = durations.to_vec();
    sorted.sort_unstable();
    let count = sorted.len();
    let median_ms = if count % 2 == 1 {
        sorted[count / 2]
    } else {
        (sorted[count / 2 - 1] + sorted[count / 2]) / 2
    };
    // Nearest rank: the smallest value with at least 95% of the values at
    // or below it.
    let rank = (count * 95).div_ceil(100).max(1);
    Some(DurationStats {
        samples: u32::try_from(count).unwrap_or(u32::MAX),
        median_ms,
        p95_ms: sorted[rank - 1],
    })
}

/// The baseline made of `history`; `None` without history.
pub fn baseline_of(history: &[RunDurations], factor: f64) -> Option<RunBaseline> {
    let runs: Vec<u64> = history.iter().map(|run| run.run_ms).collect();
    let run = duration_stats(&runs)?;
    let mut by_block: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for durations in history {
        for (block, ms) in &durations.blocks {
            by_block.entry(block.clone()).or_default().push(*ms);
        }
    }
    let blocks = by_block
        .into_iter()
        .filter_map(|(block, durations)| Some((block, duration_stats(&durations)?)))
        .collect();
    Some(RunBaseline {
        run,
        blocks,
        factor,
    })
}

/// Whether a run that took `actual_ms` is slow against `baseline`.
pub fn is_slow(baseline: &RunBaseline, actual_ms: u64, min_runs: u32) -> bool {
    baseline.run.samples >= min_runs
        && (actual_ms as f64) > (baseline.run.p95_ms as f64) * baseline.factor
}

/// What retention does on one pass.
#[derive(Clone, Debug)]
pub struct RetentionParams {
    /// The days for pipelines without `retention:` (`sluice up
    /// --retention-days`); such pipelines keep every run when `None`.
    pub default_days: Option<u32>,
    /// Report what would be deleted and delete nothing.
    pub dry_run: bool,
    /// Blobs whose file changed more recently than this are left alone.
    pub blob_grace: Duration,
    /// Who the audit events name.
    pub actor: String,
}

/// A run retention deleted (or would delete, in a dry run).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ExpiredRun {
    pub id: RunId,
    pub pipeline: String,
    pub status: RunStatus,
    pub created_at: Timestamp,
}

/// What one retention pass did.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct RetentionReport {
    pub dry_run: bool,
    pub runs: Vec<ExpiredRun>,
    /// Digests of the blobs deleted (none in a dry run).
    pub blobs: Vec<String>,
}

impl Engine {
    /// Observes how long a claimed block run waited in the queue.
    pub(crate) fn observe_claim(&self, claim: &sluice_store::Claim) {
        if let Some(queued_at) = claim.block_run.queued_at {
            let waited = claim.attempt_try.started_at.duration_since(queued_at);
            self.metrics()
                .observe_queue_wait(&claim.run.pipeline, waited.as_secs_f64());
        }
    }

    /// Records a finished run's baseline and `slow` flag, and the failures
    /// a completed run resolves. Called once the run's end is committed; a
    /// failure here is logged and does not undo the end.
    pub(crate) async fn settle_finished_run(&self, run: &RunRecord, to: RunStatus, at: Timestamp) {
        if !to.is_terminal() {
            return;
        }
        if let Err(error) = self.record_duration_baseline(run, to, at).await {
            tracing::warn!(run = %run.id, error = %format!("{error:#}"), "cannot record the run's baseline");
        }
        if to == RunStatus::Completed {
            let resolving = ResolvingRun {
                run_id: run.id.clone(),
                attempt: run.attempt,
                pipeline: run.pipeline.clone(),
                window: run.window,
                at,
            };
            match self.store().resolve_failures(&resolving).await {
                Ok(resolved) if !resolved.is_empty() => {
                    tracing::info!(run = %run.id, ?resolved, "failures resolved");
                }
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(run = %run.id, error = %format!("{error:#}"), "cannot record resolved failures");
                }
            }
        }
    }

    async fn record_duration_baseline(
        &self,
        run: &RunRecord,
        to: RunStatus,
        at: Timestamp,
    ) -> Result<()> {
        let spec = self
            .pinned_pipeline(&run.pipeline, &run.pipeline_version)
            .await?;
        let policy = spec.drift;
        let history = self
            .store()
            .duration_history(&DurationHistoryQuery {
                pipeline: run.pipeline.clone(),
                finished_before: at,
                exclude: Some(run.id.clone()),
                limit: policy.runs,
            })
            .await?;
        let Some(baseline) = baseline_of(&history, policy.factor) else {
            return Ok(());
        };
        let attempts = self.store().list_attempts(&run.id).await?;
        let started = attempts
            .iter()
            .find(|attempt| attempt.attempt == run.attempt)
            .and_then(|attempt| attempt.started_at)
            .or(run.started_at);
        let actual_ms = started
            .map(|started| u64::try_from(at.duration_since(started).as_millis()).unwrap_or(0))
            .unwrap_or(0);
        let slow = to == RunStatus::Completed && is_slow(&baseline, actual_ms, policy.min_runs);
        let recorded = self
            .store()
            .record_baseline(&BaselineRecord {
                run_id: run.id.clone(),
                attempt: run.attempt,
                baseline: baseline.clone(),
                slow,
            })
            .await?;
        if recorded && slow {
            tracing::info!(
                run = %run.id,
                actual_ms,
                p95_ms = baseline.run.p95_ms,
                "the run is slow against its baseline"
            );
            let run = self.get_run(&run.id).await?;
            self.raise_notification(&run, NotifyEvent::Slow).await?;
        }
        Ok(())
    }

    /// One retention pass over the project's pipelines (see the module
    /// documentation).
    pub async fn apply_retention(&self, params: &RetentionParams) -> Result<RetentionReport> {
        let mut report = RetentionReport {
            dry_run: params.dry_run,
            ..RetentionReport::default()
        };
        let now = self.clock().now();
        let project = self.project();
        let mut freed: Vec<String> = Vec::new();
        for (name, loaded) in &project.pipelines {
            let policy =
                loaded
                    .spec
                    .retention
                    .or(params.default_days.map(|days| RetentionPolicy {
                        days,
                        keep_last: RetentionPolicy::DEFAULT_KEEP_LAST,
                    }));
            let Some(policy) = policy else {
                continue;
            };
            let created_before =
                crate::clock::subtract(now, Duration::from_secs(u64::from(policy.days) * 86_400));
            let query = ExpiredRunQuery {
                pipeline: name.clone(),
                created_before,
                keep_last: policy.keep_last,
                limit: if params.dry_run { 1_000 } else { PURGE_BATCH },
            };
            loop {
                let expired = self.store().expired_runs(&query).await?;
                if expired.is_empty() {
                    break;
                }
                for run in &expired {
                    let summary = ExpiredRun {
                        id: run.id.clone(),
                        pipeline: run.pipeline.clone(),
                        status: run.status,
                        created_at: run.created_at,
                    };
                    if params.dry_run {
                        report.runs.push(summary);
                        continue;
                    }
                    let purge = RunPurge {
                        id: run.id.clone(),
                        audit: NewAuditEvent {
                            at: self.clock().now(),
                            actor: params.actor.clone(),
                            action: "run.purge".to_owned(),
                            target: run.id.to_string(),
                            details: serde_json::json!({
                                "pipeline": run.pipeline,
                                "status": run.status,
                                "created_at": run.created_at,
                                "retention_days": policy.days,
                                "keep_last": policy.keep_last,
                            }),
                        },
                    };
                    if let Some(purged) = self.store().purge_run(&purge).await? {
                        freed.extend(purged.blobs);
                        report.runs.push(summary);
                    }
                }
                if params.dry_run || expired.len() < PURGE_BATCH as usize {
                    break;
                }
            }
        }
        if params.dry_run {
            return Ok(report);
        }
        // The purged runs' blobs first, then every other blob no row
        // references (left by a pass that was killed before deleting them).
        freed.sort();
        freed.dedup();
        let mut candidates = freed;
        candidates.extend(
            self.blobs()
                .stale_blobs(params.blob_grace)
                .await?
                .unwrap_or_default(),
        );
        candidates.sort();
        candidates.dedup();
        for sha256 in candidates {
            if self.store().blob_referenced(&sha256).await? {
                continue;
            }
            if self
                .blobs()
                .delete_if_stale(&sha256, params.blob_grace)
                .await?
            {
                report.blobs.push(sha256);
            }
        }
        self.blobs().sweep_incoming(params.blob_grace).await?;
        if !report.runs.is_empty() || !report.blobs.is_empty() {
            tracing::info!(
                runs = report.runs.len(),
                blobs = report.blobs.len(),
                "retention deleted old runs"
            );
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_and_nearest_rank_p95() {
        assert_eq!(duration_stats(&[]), None);
        let one = duration_stats(&[7]).unwrap();
        assert_eq!((one.samples, one.median_ms, one.p95_ms), (1, 7, 7));
        let four = duration_stats(&[40, 10, 30, 20]).unwrap();
        assert_eq!((four.median_ms, four.p95_ms), (25, 40));
        let twenty: Vec<u64> = (1..=20).collect();
        let stats = duration_stats(&twenty).unwrap();
        assert_eq!((stats.median_ms, stats.p95_ms), (10, 19));
    }

    #[test]
    fn slow_needs_enough_history_and_a_margin() {
        let history: Vec<RunDurations> = (0..5)
            .map(|index| RunDurations {
                run_id: RunId(format!("r{index}")),
                run_ms: 10_000,
                blocks: vec![("a".to_owned(), 4_000)],
            })
            .collect();
        let baseline = baseline_of(&history, 1.5).unwrap();
        assert_eq!(baseline.blocks["a"].median_ms, 4_000);
        assert!(!is_slow(&baseline, 15_000, 5), "at p95 × factor exactly");
        assert!(is_slow(&baseline, 15_001, 5));
        assert!(!is_slow(&baseline, 60_000, 6), "too little history");
    }
}
