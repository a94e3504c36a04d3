//! Application services: the operations the CLI (and, later, the API) call.
//! Each validates its input, writes through the store in one conditional
//! step, records an audit event, and wakes the reconcilers.

use std::collections::BTreeMap;

use serde_json::Value;
use sluice_core::ids::{BlockRunId, ExecutorId, RunId};
use sluice_core::spec::Pipeline;
use sluice_core::status::{BlockRunStatus, RunStatus};
use sluice_core::vars::{VariableLayer, resolve_variables};
use sluice_store::{
    BlockRunRecord, BlockRunTransition, CreatedRun, InvokedBy, NewAttempt, NewAuditEvent,
    NewBlockRun, NewRun, RunRecord, RunTransition, RunWindow,
};

use crate::clock::add;
use crate::limits::RunLimits;
use crate::{Engine, Error, Event, Result};

/// A request to start a run.
#[derive(Clone, Debug)]
pub struct TriggerRequest {
    pub pipeline: String,
    /// Values given at run time (manual, API, webhook): the top layer.
    pub variables: BTreeMap<String, Value>,
    /// Values set by the trigger that started the run.
    pub trigger_variables: BTreeMap<String, Value>,
    pub priority: Option<i32>,
    pub invoked_by: InvokedBy,
    pub idempotency_key: Option<String>,
    /// The executor that will drive the run (embedded mode), if any.
    pub owner: Option<ExecutorId>,
}

/// Which block runs a retry runs again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RetryMode {
    /// Every block run that did not complete; completed ones are reused.
    Incomplete,
    /// This block and everything downstream of it; upstream ones are reused.
    FromBlock(String),
    /// Every block again.
    All,
}

impl RetryMode {
    pub fn as_str(&self) -> &'static str {
        match self {
            RetryMode::Incomplete => "incomplete",
            RetryMode::FromBlock(_) => "from_block",
            RetryMode::All => "all",
        }
    }
}

/// A request to retry a finished run as a new attempt.
#[derive(Clone, Debug)]
pub struct RetryRequest {
    pub run_id: RunId,
    pub mode: RetryMode,
    pub by: String,
    pub owner: Option<ExecutorId>,
    /// Run the pipeline file and project files as they are now instead of
    /// the versions the run is pinned to; the run is pinned to them from
    /// this attempt on.
    pub latest: bool,
}

/// A new time-ordered unique id.
pub(crate) fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

fn new_block_run(pipeline: &Pipeline, run_id: &RunId, run_priority: i32) -> Vec<NewBlockRun> {
    pipeline
        .blocks
        .iter()
        .map(|block| NewBlockRun {
            id: BlockRunId(new_id()),
            block: block.id.clone(),
            status: BlockRunStatus::Initial,
            priority: block.priority.unwrap_or(run_priority),
            max_tries: block.retries.max_tries(),
            labels: block.labels.clone(),
            idempotency_key: format!("{run_id}/{}", block.id),
            outputs: BTreeMap::new(),
            reused_from_attempt: None,
            data: None,
        })
        .collect()
}

impl Engine {
    /// Creates a run of a pipeline of the current project. Refuses, before
    /// anything is written, a run whose required variables are missing.
    pub async fn trigger_run(&self, request: TriggerRequest) -> Result<RunId> {
        Ok(self.create_run(request, None).await?.id)
    }

    /// Creates a run, recording the fire and window of a scheduled one.
    /// Reports whether the run is new or already existed under the
    /// request's idempotency key.
    pub(crate) async fn create_run(
        &self,
        request: TriggerRequest,
        window: Option<RunWindow>,
    ) -> Result<CreatedRun> {
        let project = self.project();
        let loaded = project.pipeline(&request.pipeline).ok_or_else(|| {
            let known: Vec<&str> = project.pipelines.keys().map(String::as_str).collect();
            Error::NotFound(format!(
                "no pipeline named `{}` in {} (known: {})",
                request.pipeline,
                project.dir.display(),
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            ))
        })?;
        let spec = loaded.spec.clone();
        let limits = RunLimits::for_run(&spec, &request.invoked_by);
        let variables = resolve_variables(
            &spec.variables,
            &[
                (VariableLayer::Trigger, &request.trigger_variables),
                (VariableLayer::Run, &request.variables),
            ],
        )?;
        let store = self.store();
        store
            .put_pipeline_version(&loaded.version, &spec.name, &loaded.source)
            .await?;
        // A child run runs with its parent's files; any other run pins the
        // project's files as they are now.
        let parent_files = match &request.invoked_by.parent_run_id {
            Some(parent) if request.invoked_by.kind == "parent" => store
                .get_run(parent)
                .await?
                .and_then(|parent| parent.project_version),
            _ => None,
        };
        let project_version = match parent_files {
            Some(version) => version,
            None => self.pin_project_files().await?,
        };

        let now = self.clock().now();
        let run_id = RunId(new_id());
        let priority = request.priority.unwrap_or(spec.priority);
        let mut blocks = new_block_run(&spec, &run_id, priority);

        // `on_limit: skip` records the skipped run, cancelled, so the ledger
        // shows that a run was asked for and why it did not happen.
        let mut status = RunStatus::Initial;
        let mut error = None;
        if let (Some(limit), sluice_core::spec::OnLimit::Skip) =
            (limits.concurrency, limits.on_limit)
        {
            let active = self.count_active_runs(&spec.name).await?;
            if active >= limit.get() {
                status = RunStatus::Cancelled;
                error = Some("concurrency limit reached".to_owned());
                for block in &mut blocks {
                    block.status = BlockRunStatus::Cancelled;
                }
            }
        }

        let created = store
            .create_run(NewRun {
                id: run_id,
                pipeline: spec.name.clone(),
                pipeline_version: loaded.version.clone(),
                project_version: Some(project_version),
                status,
                priority,
                invoked_by: request.invoked_by.clone(),
                tags: spec.tags.clone(),
                variables,
                created_at: now,
                sla_at: limits.sla.map(|sla| add(now, sla.0)),
                idempotency_key: request.idempotency_key.clone(),
                owner: request.owner.clone(),
                block_concurrency: spec.block_concurrency.map(|limit| limit.get()),
                error,
                window,
                blocks,
            })
            .await?;
        if created.created {
            self.audit(
                request.invoked_by.actor.as_deref().unwrap_or("unknown"),
                "run.trigger",
                created.id.as_str(),
                serde_json::json!({
                    "pipeline": spec.name,
                    "invoked_by": request.invoked_by.kind,
                    "status": status.as_str(),
                }),
            )
            .await?;
            self.publish(Event::Run {
                run_id: created.id.clone(),
                status,
            });
            self.wake();
        }
        Ok(created)
    }

    /// Runs of a pipeline that are `initial` or `running`.
    async fn count_active_runs(&self, pipeline: &str) -> Result<u32> {
        Ok(self
            .store()
            .count_runs(pipeline, &[RunStatus::Initial, RunStatus::Running])
            .await?)
    }

    /// Cancels a run: queued and waiting block runs end `cancelled` at once,
    /// running tries are killed by their executor, and the run ends
    /// `cancelled`. Who and when are recorded. Cancelling a finished run is a
    /// conflict.
    pub async fn cancel_run(&self, run_id: &RunId, by: &str) -> Result<RunRecord> {
        let store = self.store();
        let run = self.get_run(run_id).await?;
        if run.status.is_terminal() {
            return Err(Error::conflict(
                format!("run {run_id} already ended `{}`", run.status),
                Some("only an `initial` or `running` run can be cancelled".to_owned()),
            ));
        }
        let now = self.clock().now();
        let newly = store.request_cancel(run_id, by, now).await?;
        if newly {
            self.audit(by, "run.cancel", run_id.as_str(), serde_json::json!({}))
                .await?;
        }
        self.cancel_waiting_block_runs(&run, now).await?;
        if run.status == RunStatus::Initial {
            self.end_run(&run, RunStatus::Initial, RunStatus::Cancelled, None)
                .await?;
        }
        self.wake();
        let mut run = self.get_run(run_id).await?;
        crate::queries::mask_run(&mut run);
        Ok(run)
    }

    /// Ends every block run of the run's latest attempt that has not started.
    pub(crate) async fn cancel_waiting_block_runs(
        &self,
        run: &RunRecord,
        now: jiff::Timestamp,
    ) -> Result<()> {
        for block_run in self.store().list_block_runs(&run.id, None).await? {
            if matches!(
                block_run.status,
                BlockRunStatus::Initial | BlockRunStatus::Queued
            ) {
                self.move_block_run(&block_run, BlockRunStatus::Cancelled, now, None)
                    .await?;
            }
        }
        Ok(())
    }

    /// A conditional block-run status change that publishes its event.
    pub(crate) async fn move_block_run(
        &self,
        block_run: &BlockRunRecord,
        to: BlockRunStatus,
        at: jiff::Timestamp,
        error: Option<String>,
    ) -> Result<bool> {
        let applied = self
            .store()
            .transition_block_run(&BlockRunTransition {
                id: block_run.id.clone(),
                from: block_run.status,
                to,
                at,
                error,
            })
            .await?;
        if applied {
            self.publish(Event::BlockRun {
                run_id: block_run.run_id.clone(),
                block_run_id: block_run.id.clone(),
                block: block_run.block.clone(),
                attempt: block_run.attempt,
                status: to,
            });
        }
        Ok(applied)
    }

    /// A conditional run status change that publishes its event.
    pub(crate) async fn end_run(
        &self,
        run: &RunRecord,
        from: RunStatus,
        to: RunStatus,
        error: Option<String>,
    ) -> Result<bool> {
        let at = self.clock().now();
        // The notifications of the end are recorded with it, in one
        // transaction (see `notify.rs`).
        let mut ended = run.clone();
        ended.status = to;
        ended.finished_at = Some(at);
        ended.error.clone_from(&error);
        let deliveries = self.end_deliveries(&ended).await?;
        let applied = self
            .store()
            .transition_run_notifying(
                &RunTransition {
                    id: run.id.clone(),
                    attempt: run.attempt,
                    from,
                    to,
                    at,
                    error,
                    timeout_at: None,
                    timed_out: run.timed_out,
                },
                &deliveries,
            )
            .await?;
        if applied {
            self.publish(Event::Run {
                run_id: run.id.clone(),
                status: to,
            });
            // Baseline, `slow` and resolved failures (`operations.rs`).
            self.settle_finished_run(run, to, at).await;
            self.wake();
        }
        Ok(applied)
    }

    /// Retries a finished run as a new attempt; earlier attempts stay as
    /// they were.
    pub async fn retry_run(&self, request: RetryRequest) -> Result<RunRecord> {
        let store = self.store();
        let run = self.get_run(&request.run_id).await?;
        if !run.status.is_terminal() {
            return Err(Error::conflict(
                format!(
                    "run {} is still `{}`; only a finished run can be retried",
                    run.id, run.status
                ),
                Some(format!(
                    "wait for it to finish, or cancel it first: sluice runs cancel {}",
                    run.id
                )),
            ));
        }
        let (spec, pipeline_version, project_version) = if request.latest {
            let project = self.project();
            let loaded = project.pipeline(&run.pipeline).ok_or_else(|| {
                Error::conflict(
                    format!(
                        "pipeline `{}` is no longer in the project, so there is no latest version to retry with",
                        run.pipeline
                    ),
                    Some(format!(
                        "retry with the version the run is pinned to: sluice runs retry {}",
                        run.id
                    )),
                )
            })?;
            store
                .put_pipeline_version(&loaded.version, &run.pipeline, &loaded.source)
                .await?;
            let files = self.pin_project_files().await?;
            (loaded.spec.clone(), loaded.version.clone(), Some(files))
        } else {
            let spec = self
                .pinned_pipeline(&run.pipeline, &run.pipeline_version)
                .await?;
            (
                spec,
                run.pipeline_version.clone(),
                run.project_version.clone(),
            )
        };
        let previous = store.list_block_runs(&run.id, Some(run.attempt)).await?;
        let by_block: BTreeMap<&str, &BlockRunRecord> = previous
            .iter()
            .map(|block_run| (block_run.block.as_str(), block_run))
            .collect();

        let rerun: std::collections::BTreeSet<String> = match &request.mode {
            RetryMode::All => spec.blocks.iter().map(|block| block.id.clone()).collect(),
            RetryMode::Incomplete => spec
                .blocks
                .iter()
                .filter(|block| {
                    by_block
                        .get(block.id.as_str())
                        .is_none_or(|block_run| block_run.status != BlockRunStatus::Completed)
                })
                .map(|block| block.id.clone())
                .collect(),
            RetryMode::FromBlock(from) => {
                if spec.block(from).is_none() {
                    let known: Vec<&str> = spec.blocks.iter().map(|b| b.id.as_str()).collect();
                    return Err(Error::invalid(
                        format!("pipeline `{}` has no block `{from}`", spec.name),
                        Some(format!("its blocks are: {}", known.join(", "))),
                    ));
                }
                for upstream in spec.upstream_closure(from) {
                    let status = by_block
                        .get(upstream.as_str())
                        .map(|block_run| block_run.status);
                    if status != Some(BlockRunStatus::Completed) {
                        return Err(Error::conflict(
                            format!(
                                "cannot retry from `{from}`: its upstream block `{upstream}` never completed (it is `{}`)",
                                status.map_or("missing", |status| status.as_str())
                            ),
                            Some(format!(
                                "retry the incomplete blocks instead: sluice runs retry {}",
                                run.id
                            )),
                        ));
                    }
                }
                let mut set = spec.downstream_closure(from);
                set.insert(from.clone());
                for block in &spec.blocks {
                    let done = by_block
                        .get(block.id.as_str())
                        .is_some_and(|block_run| block_run.status == BlockRunStatus::Completed);
                    if !done {
                        set.insert(block.id.clone());
                    }
                }
                set
            }
        };

        let mut blocks = new_block_run(&spec, &run.id, run.priority);
        for block in &mut blocks {
            if rerun.contains(&block.block) {
                continue;
            }
            if let Some(previous) = by_block.get(block.block.as_str()) {
                block.status = BlockRunStatus::Completed;
                block.outputs = previous.outputs.clone();
                block.data = previous.data.clone();
                block.reused_from_attempt =
                    Some(previous.reused_from_attempt.unwrap_or(previous.attempt));
            }
        }
        let from_block = match &request.mode {
            RetryMode::FromBlock(block) => Some(block.clone()),
            _ => None,
        };
        store
            .start_attempt(&NewAttempt {
                run_id: run.id.clone(),
                previous_attempt: run.attempt,
                mode: request.mode.as_str().to_owned(),
                from_block: from_block.clone(),
                created_by: Some(request.by.clone()),
                at: self.clock().now(),
                owner: request.owner.clone(),
                pipeline_version: pipeline_version.clone(),
                project_version: project_version.clone(),
                blocks,
            })
            .await
            .map_err(|error| match error {
                sluice_store::Error::Conflict(message) => Error::conflict(message, None),
                other => Error::Store(other),
            })?;
        self.metrics().count_retry("run");
        self.audit(
            &request.by,
            "run.retry",
            run.id.as_str(),
            serde_json::json!({
                "mode": request.mode.as_str(),
                "from_block": from_block,
                "attempt": run.attempt + 1,
                "latest": request.latest,
                "pipeline_version": pipeline_version,
                "project_version": project_version,
            }),
        )
        .await?;
        self.publish(Event::Run {
            run_id: run.id.clone(),
            status: RunStatus::Initial,
        });
        self.wake();
        let mut run = self.get_run(&run.id).await?;
        crate::queries::mask_run(&mut run);
        Ok(run)
    }

    /// A run by id, or `NotFound`.
    pub async fn get_run(&self, run_id: &RunId) -> Result<RunRecord> {
        self.store()
            .get_run(run_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no run with id `{run_id}`")))
    }

    pub(crate) async fn audit(
        &self,
        actor: &str,
        action: &str,
        target: &str,
        details: Value,
    ) -> Result<()> {
        self.store()
            .append_audit(&NewAuditEvent {
                at: self.clock().now(),
                actor: actor.to_owned(),
                action: action.to_owned(),
                target: target.to_owned(),
                details,
            })
            .await?;
        Ok(())
    }

    /// Records that a run was started at `now` with its timeout deadline.
    pub(crate) async fn admit(&self, run: &RunRecord, spec: &Pipeline) -> Result<bool> {
        let now = self.clock().now();
        let applied = self
            .store()
            .transition_run(&RunTransition {
                id: run.id.clone(),
                attempt: run.attempt,
                from: RunStatus::Initial,
                to: RunStatus::Running,
                at: now,
                error: None,
                timeout_at: RunLimits::for_run(spec, &run.invoked_by)
                    .timeout
                    .map(|timeout| add(now, timeout.0)),
                timed_out: false,
            })
            .await?;
        if applied {
            self.publish(Event::Run {
                run_id: run.id.clone(),
                status: RunStatus::Running,
            });
        }
        Ok(applied)
    }
}
