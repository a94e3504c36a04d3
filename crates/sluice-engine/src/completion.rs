//! How a try's end moves its block run on: retried (back to `queued` with a
//! backoff) or finished. The built-in agent and the agent protocol both end
//! tries through [`Engine::end_try`], so a try ends the same way wherever it
//! ran.

use std::collections::BTreeMap;

use sluice_core::ids::RunId;
use sluice_core::spec::RetryPolicy;
use sluice_core::status::BlockRunStatus;
use sluice_store::{
    BlockRunNext, BlockRunRecord, DataRef, NewArtifact, TryCompletion, TryRecord, TryStatus,
};

use crate::clock::add;
use crate::{Engine, Event, Result};

/// How the execution of a try ended, as its executor saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TryEnd {
    Completed,
    /// The process failed; a retry may help.
    Failed,
    /// The block's timeout stopped it; a retry may help.
    TimedOut,
    /// Stopped by a cancellation request.
    Cancelled,
    /// Stopped because its executor shut down: it runs again without using
    /// up a retry, unless its run is being cancelled.
    Interrupted,
    /// It could not start (no command, a file could not be stored): a retry
    /// would fail the same way.
    Unrunnable,
}

/// Everything an executor reports about a try's end.
#[derive(Clone, Debug)]
pub(crate) struct Ending {
    pub end: TryEnd,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub outputs: BTreeMap<String, String>,
    pub data: Option<DataRef>,
    pub artifacts: Vec<NewArtifact>,
}

/// The try that ended, with the facts the decision needs.
#[derive(Clone, Copy, Debug)]
pub(crate) struct EndedTry<'a> {
    pub run_id: &'a RunId,
    pub block_run: &'a BlockRunRecord,
    pub attempt_try: &'a TryRecord,
    /// The block's retry policy; `None` when the block is not in the pinned
    /// pipeline (nothing to retry then).
    pub retries: Option<&'a RetryPolicy>,
}

impl Engine {
    /// Records a try's end and moves its block run on, fenced by the try's
    /// lease epoch: a stale epoch is `StaleLease` and changes nothing.
    /// Returns the block run's status afterwards.
    pub(crate) async fn end_try(
        &self,
        ended: EndedTry<'_>,
        ending: Ending,
    ) -> Result<BlockRunStatus> {
        let EndedTry {
            run_id,
            block_run,
            attempt_try,
            retries,
        } = ended;
        let now = self.clock().now();
        let current_run = self.get_run(run_id).await?;
        let cancelling = current_run.cancel_requested_at.is_some();
        let end = match ending.end {
            TryEnd::Interrupted if cancelling => TryEnd::Cancelled,
            other => other,
        };
        let (status, error) = match end {
            TryEnd::Completed => (TryStatus::Completed, ending.error),
            TryEnd::Cancelled => (TryStatus::Cancelled, ending.error),
            TryEnd::Interrupted => (
                TryStatus::Lost,
                Some("interrupted: the executor shut down before the try ended".to_owned()),
            ),
            TryEnd::Failed | TryEnd::TimedOut | TryEnd::Unrunnable => {
                (TryStatus::Failed, ending.error)
            }
        };
        let retryable = matches!(end, TryEnd::Failed | TryEnd::TimedOut);
        let next = if end == TryEnd::Interrupted {
            BlockRunNext::Retry { retry_at: now }
        } else if retryable && attempt_try.try_number < block_run.max_tries && !cancelling {
            let delay = retries
                .map(|policy| policy.delay_before_try(attempt_try.try_number + 1))
                .unwrap_or_default();
            BlockRunNext::Retry {
                retry_at: add(now, delay),
            }
        } else {
            BlockRunNext::Finish {
                status: match status {
                    TryStatus::Completed => BlockRunStatus::Completed,
                    TryStatus::Cancelled => BlockRunStatus::Cancelled,
                    _ => BlockRunStatus::Failed,
                },
            }
        };
        let block_status = match &next {
            BlockRunNext::Retry { .. } => BlockRunStatus::Queued,
            BlockRunNext::Finish { status } => *status,
        };
        let completion = TryCompletion {
            try_id: attempt_try.id.clone(),
            block_run_id: block_run.id.clone(),
            epoch: attempt_try.lease_epoch,
            status,
            at: now,
            exit_code: ending.exit_code,
            error,
            timed_out: end == TryEnd::TimedOut,
            outputs: ending.outputs,
            data: ending.data,
            artifacts: ending.artifacts,
            next,
        };
        self.store().complete_try(&completion).await?;
        if block_status == BlockRunStatus::Queued {
            self.metrics().count_retry("block");
        } else {
            let started = block_run.started_at.unwrap_or(attempt_try.started_at);
            let seconds = now.duration_since(started).as_secs_f64();
            self.metrics()
                .observe_block_run(&current_run.pipeline, block_status.as_str(), seconds);
        }
        self.publish(Event::BlockRun {
            run_id: run_id.clone(),
            block_run_id: block_run.id.clone(),
            block: block_run.block.clone(),
            attempt: block_run.attempt,
            status: block_status,
        });
        self.wake();
        Ok(block_status)
    }
}
