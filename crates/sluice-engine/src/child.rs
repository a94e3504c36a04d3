//! Child pipeline blocks: a `pipeline:` block's try starts a run of the named
//! pipeline (invoked by the parent run and block), waits for it while
//! renewing its own lease, and takes its final status. Cancelling the parent
//! cancels the child.
//!
//! The child run's idempotency key names the parent run, block, attempt and
//! try, so a try that is retried after its agent crashed in the middle of
//! starting the child finds the run it started instead of starting another;
//! each automatic retry starts a fresh child.
//!
//! The try's outputs are the outputs of the child's completed block runs in
//! its last attempt (a later block in the child's file wins a clash), plus
//! `run_id`, the child run's id.

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_core::expr::EvalContext;
use sluice_core::ids::RunId;
use sluice_core::status::{BlockRunStatus, RunStatus};
use sluice_core::template::Template;
use sluice_exec::{TryOutcome, TryResult};
use sluice_store::{BlockRunRecord, InvokedBy, LogChunk, LogLine, RunRecord, TryRecord};
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;

use crate::clock::add;
use crate::services::TriggerRequest;
use crate::{Engine, Event};

/// How often the waiting try looks at the child without an event.
const POLL: Duration = Duration::from_secs(1);

/// What a child block needs to know about its parent.
pub(crate) struct Parent<'a> {
    pub run: &'a RunRecord,
    pub block_run: &'a BlockRunRecord,
    pub attempt_try: &'a TryRecord,
}

/// Starts the child run and waits for its end.
pub(crate) async fn run_child(
    engine: &Engine,
    parent: Parent<'_>,
    pipeline: &str,
    variables: &BTreeMap<String, Template>,
    context: &EvalContext<'_>,
    cancel: CancellationToken,
) -> TryOutcome {
    let mut values = BTreeMap::new();
    for (name, template) in variables {
        match template.render_value(context) {
            Ok(value) => {
                values.insert(name.clone(), value);
            }
            Err(error) => {
                return TryOutcome::failed(format!(
                    "cannot render variable `{name}` for pipeline `{pipeline}`: {error}"
                ));
            }
        }
    }
    let request = TriggerRequest {
        pipeline: pipeline.to_owned(),
        variables: BTreeMap::new(),
        trigger_variables: values,
        priority: Some(parent.run.priority),
        invoked_by: InvokedBy {
            kind: "parent".to_owned(),
            name: Some(parent.block_run.block.clone()),
            actor: Some(format!("run {}", parent.run.id)),
            parent_run_id: Some(parent.run.id.clone()),
        },
        idempotency_key: Some(format!(
            "parent:{}:{}:{}:{}",
            parent.run.id,
            parent.block_run.block,
            parent.block_run.attempt,
            parent.attempt_try.try_number
        )),
        owner: parent.run.owner.clone(),
    };
    let child = match engine.trigger_run(request).await {
        Ok(child) => child,
        Err(error) => {
            return TryOutcome::failed(format!(
                "cannot start a run of pipeline `{pipeline}`: {error:#}"
            ));
        }
    };
    let log = TryLog {
        engine,
        attempt_try: parent.attempt_try,
        run_id: &parent.run.id,
    };
    log.line(0, format!("started run {child} of pipeline `{pipeline}`"))
        .await;
    engine.wake();

    let ended = match wait(engine, &parent, &child, &cancel).await {
        Ok(ended) => ended,
        Err(error) => {
            return TryOutcome::failed(format!(
                "lost track of run {child} of pipeline `{pipeline}`: {error:#}"
            ));
        }
    };
    log.line(
        1,
        format!(
            "run {child} of pipeline `{pipeline}` ended {}",
            ended.status.as_str()
        ),
    )
    .await;

    let mut outputs = child_outputs(engine, &ended).await;
    outputs.insert("run_id".to_owned(), child.to_string());
    let (result, error) = match ended.status {
        RunStatus::Completed => (TryResult::Completed, None),
        RunStatus::Cancelled if cancel.is_cancelled() => (
            TryResult::Cancelled,
            Some(format!("cancelled with its child run {child}")),
        ),
        status => (
            TryResult::Failed,
            Some(format!(
                "run {child} of pipeline `{pipeline}` ended {}{}",
                status.as_str(),
                ended
                    .error
                    .as_deref()
                    .map(|error| format!(": {error}"))
                    .unwrap_or_default()
            )),
        ),
    };
    TryOutcome {
        result,
        exit_code: None,
        signal: None,
        error,
        outputs,
        data: None,
        artifacts: Vec::new(),
    }
}

/// Why waiting for a child stopped early.
#[derive(Debug, thiserror::Error)]
enum WaitError {
    #[error("the lease of the parent's try was lost")]
    LeaseLost,
    #[error(transparent)]
    Engine(#[from] crate::Error),
}

/// Waits until the child run is terminal, renewing the parent try's lease
/// and cancelling the child when the parent's try is cancelled (locally or
/// through the lease renewal's answer).
async fn wait(
    engine: &Engine,
    parent: &Parent<'_>,
    child: &RunId,
    cancel: &CancellationToken,
) -> Result<RunRecord, WaitError> {
    let attempt_try = parent.attempt_try;
    let mut events = engine.subscribe();
    let renew_every = engine.config().lease_ttl / 3;
    let mut next_renewal = tokio::time::Instant::now() + renew_every;
    let mut cancelled_child = false;
    loop {
        if cancel.is_cancelled() && !cancelled_child {
            cancelled_child = true;
            let by = format!("run {} (the parent was cancelled)", parent.run.id);
            match engine.cancel_run(child, &by).await {
                Ok(_) | Err(crate::Error::Conflict { .. }) => {}
                Err(error) => return Err(error.into()),
            }
            engine.wake();
        }
        let run = engine.get_run(child).await?;
        if run.status.is_terminal() {
            return Ok(run);
        }
        if tokio::time::Instant::now() >= next_renewal {
            next_renewal = tokio::time::Instant::now() + renew_every;
            let expires = add(engine.clock().now(), engine.config().lease_ttl);
            match engine
                .store()
                .renew_lease(&attempt_try.id, attempt_try.lease_epoch, expires)
                .await
            {
                Ok(state) if state.cancel_requested => cancel.cancel(),
                Ok(_) => {}
                Err(sluice_store::Error::StaleLease(_)) => {
                    // Whoever retries this try starts a new child: this one
                    // must not go on running beside it.
                    let _ = engine
                        .cancel_run(child, "sluice (the parent's lease was lost)")
                        .await;
                    return Err(WaitError::LeaseLost);
                }
                Err(error) => {
                    tracing::warn!(try_id = %attempt_try.id, error = %format!("{error:#}"), "could not renew the lease");
                }
            }
        }
        let poll = tokio::time::sleep(POLL.min(renew_every));
        tokio::pin!(poll);
        loop {
            tokio::select! {
                () = &mut poll => break,
                () = cancel.cancelled(), if !cancelled_child => break,
                received = events.recv() => match received {
                    Ok(Event::Run { run_id, .. }) if &run_id == child => break,
                    Ok(_) => {}
                    Err(broadcast::error::RecvError::Lagged(_)) => break,
                    Err(broadcast::error::RecvError::Closed) => break,
                },
            }
        }
    }
}

/// The outputs of the child's completed block runs in its last attempt, in
/// the order of its file (a later block wins a clash).
async fn child_outputs(engine: &Engine, child: &RunRecord) -> BTreeMap<String, String> {
    let mut outputs = BTreeMap::new();
    let Ok(block_runs) = engine
        .store()
        .list_block_runs(&child.id, Some(child.attempt))
        .await
    else {
        return outputs;
    };
    let order: Vec<String> = match engine
        .pinned_pipeline(&child.pipeline, &child.pipeline_version)
        .await
    {
        Ok(spec) => spec.blocks.iter().map(|block| block.id.clone()).collect(),
        Err(_) => Vec::new(),
    };
    let mut completed: Vec<&BlockRunRecord> = block_runs
        .iter()
        .filter(|block_run| block_run.status == BlockRunStatus::Completed)
        .collect();
    completed.sort_by_key(|block_run| {
        order
            .iter()
            .position(|id| id == &block_run.block)
            .unwrap_or(usize::MAX)
    });
    for block_run in completed {
        outputs.extend(block_run.outputs.clone());
    }
    outputs
}

/// Lines the parent's try writes to its own log.
struct TryLog<'a> {
    engine: &'a Engine,
    attempt_try: &'a TryRecord,
    run_id: &'a RunId,
}

impl TryLog<'_> {
    async fn line(&self, seq: u64, text: String) {
        let chunk = LogChunk {
            try_id: self.attempt_try.id.clone(),
            seq,
            lines: vec![LogLine {
                at: self.engine.clock().now(),
                stream: "sluice".to_owned(),
                text,
            }],
        };
        match self
            .engine
            .store()
            .append_log_chunk(&chunk, self.attempt_try.lease_epoch)
            .await
        {
            Ok(()) => self.engine.publish(Event::Log {
                run_id: self.run_id.clone(),
                try_id: self.attempt_try.id.clone(),
                seq,
            }),
            Err(error) => {
                tracing::warn!(try_id = %self.attempt_try.id, error = %format!("{error:#}"), "could not store a log line");
            }
        }
    }
}
