//! SLA risk: while a run is going, its finish is estimated from the history
//! of its blocks, and the run is marked `sla_at_risk_at` (and `sla_at_risk`
//! is notified, once) as soon as the estimate passes its SLA deadline.
//!
//! The estimate walks the DAG in topological order from now:
//! - a block run that ended, ended when it did;
//! - a running one ends at its start plus its block's median duration, but
//!   not before now;
//! - one still waiting starts when the last of its upstreams ends (not
//!   before now) and takes its block's median.
//!
//! The run ends when its last block does. A block's median comes from its
//! completed block runs in the latest completed runs of the pipeline (the
//! `runs` of `drift:`, 20 by default); a block with no history counts as
//! taking no time, so the estimate never exceeds what history shows.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::Timestamp;
use sluice_core::spec::Pipeline;
use sluice_core::status::{BlockRunStatus, RunStatus};
use sluice_store::{BlockRunRecord, BlockTiming, RunRecord};

use crate::clock::add;
use crate::notify::NotifyEvent;
use crate::{Engine, Result};

/// The median duration of each block, from its history.
pub(crate) fn block_medians(timings: &[BlockTiming]) -> BTreeMap<String, Duration> {
    let mut by_block: BTreeMap<&str, Vec<Duration>> = BTreeMap::new();
    for timing in timings {
        let took = timing.finished_at.duration_since(timing.started_at);
        let took = Duration::try_from(took).unwrap_or(Duration::ZERO);
        by_block.entry(&timing.block).or_default().push(took);
    }
    by_block
        .into_iter()
        .map(|(block, mut durations)| {
            durations.sort();
            let middle = durations.len() / 2;
            let median = if durations.len() % 2 == 1 {
                durations[middle]
            } else {
                (durations[middle - 1] + durations[middle]) / 2
            };
            (block.to_owned(), median)
        })
        .collect()
}

/// When the run is expected to finish, from `now`.
pub(crate) fn estimate_finish(
    spec: &Pipeline,
    block_runs: &[BlockRunRecord],
    medians: &BTreeMap<String, Duration>,
    now: Timestamp,
) -> Timestamp {
    let by_block: BTreeMap<&str, &BlockRunRecord> = block_runs
        .iter()
        .map(|block_run| (block_run.block.as_str(), block_run))
        .collect();
    let mut ends: BTreeMap<&str, Timestamp> = BTreeMap::new();
    let mut finish = now;
    // `spec.blocks` is in topological order, so every upstream's end is
    // known before its downstream blocks are reached.
    for block in &spec.blocks {
        let median = medians.get(&block.id).copied().unwrap_or(Duration::ZERO);
        let end = match by_block.get(block.id.as_str()) {
            Some(block_run) if block_run.status.is_terminal() => {
                block_run.finished_at.unwrap_or(now)
            }
            Some(block_run) if block_run.status == BlockRunStatus::Running => {
                let started = block_run.started_at.unwrap_or(now);
                add(started, median).max(now)
            }
            _ => {
                let start = block
                    .needs
                    .iter()
                    .filter_map(|need| ends.get(need.as_str()).copied())
                    .fold(now, Timestamp::max);
                add(start, median)
            }
        };
        ends.insert(&block.id, end);
        finish = finish.max(end);
    }
    finish
}

impl Engine {
    /// When a running run is expected to finish, from its blocks' history;
    /// `None` for a run that is not running.
    pub async fn estimated_finish(&self, run: &RunRecord) -> Result<Option<Timestamp>> {
        if run.status != RunStatus::Running {
            return Ok(None);
        }
        let spec = self
            .pinned_pipeline(&run.pipeline, &run.pipeline_version)
            .await?;
        let timings = self
            .store()
            .completed_block_timings(&run.pipeline, spec.drift.runs)
            .await?;
        let medians = block_medians(&timings);
        let block_runs = self.store().list_block_runs(&run.id, None).await?;
        Ok(Some(estimate_finish(
            &spec,
            &block_runs,
            &medians,
            self.clock().now(),
        )))
    }

    /// Marks a running run at risk of missing its SLA, and notifies it
    /// once, when its estimated finish passes its deadline before the
    /// deadline itself. Returns whether this call marked it.
    pub(crate) async fn check_sla_risk(&self, run: &RunRecord, now: Timestamp) -> Result<bool> {
        let Some(sla_at) = run.sla_at else {
            return Ok(false);
        };
        if run.status != RunStatus::Running
            || run.sla_at_risk_at.is_some()
            || run.sla_missed
            || sla_at <= now
        {
            return Ok(false);
        }
        let Some(estimate) = self.estimated_finish(run).await? else {
            return Ok(false);
        };
        if estimate <= sla_at {
            return Ok(false);
        }
        // The notification is recorded first: if this process stops
        // between the two writes, the next pass finds the run unmarked and
        // raises it again, which records nothing new.
        let mut marked = run.clone();
        marked.sla_at_risk_at = Some(now);
        self.raise_notification(&marked, NotifyEvent::SlaAtRisk)
            .await?;
        let set = self.store().mark_sla_at_risk(&run.id, now).await?;
        if set {
            tracing::warn!(
                run = %run.id,
                estimate = %estimate,
                deadline = %sla_at,
                "the run is expected to miss its SLA"
            );
        }
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_median_of_an_even_count_is_the_mean_of_the_middle_two() {
        let at = |seconds: i64| Timestamp::from_second(seconds).unwrap();
        let timing = |block: &str, took: i64| BlockTiming {
            run_id: sluice_core::ids::RunId("r".to_owned()),
            block: block.to_owned(),
            started_at: at(0),
            finished_at: at(took),
        };
        let medians = block_medians(&[
            timing("a", 10),
            timing("a", 30),
            timing("a", 20),
            timing("b", 10),
            timing("b", 20),
        ]);
        assert_eq!(medians["a"], Duration::from_secs(20));
        assert_eq!(medians["b"], Duration::from_secs(15));
    }
}
