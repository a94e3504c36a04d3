//! Backfills: one run per window of a timed trigger over a range of time,
//! grouped under a [`BackfillId`] that can be listed, paused, resumed and
//! cancelled.
//!
//! Nothing about a backfill's progress is kept but its record. Its windows
//! follow from the trigger's schedule and the range; its runs are found by
//! their idempotency keys (`backfill:ID:WINDOW_END`, unique per pipeline),
//! so the reconciler step [`Engine::advance_backfills`] re-reads the world on
//! every pass, and two servers advancing the same backfill create each
//! window's run once. A window that already has a completed run of the
//! pipeline (whoever started it) is skipped, unless the backfill reruns
//! completed windows.

use jiff::Timestamp;
use sluice_core::ids::{BackfillId, ExecutorId};
use sluice_core::schedule::Schedule;
use sluice_core::spec::{Pipeline, TriggerSpec};
use sluice_core::status::RunStatus;
use sluice_store::{
    BackfillRecord, BackfillStatus, BackfillStatusChange, InvokedBy, RunRecord, RunWindow,
    WindowRunQuery,
};

use crate::scheduler::run_window;
use crate::services::{TriggerRequest, new_id};
use crate::{Engine, Error, Result};

/// The most windows one backfill may cover; a larger range is split.
pub const MAX_WINDOWS: usize = 10_000;
/// The most runs of one backfill that may be active at once.
pub const MAX_CONCURRENT: u32 = 100;
/// How much lower than the pipeline's priority a backfill's runs are by
/// default, so fresh runs go first.
pub const PRIORITY_OFFSET: i32 = 10;
/// The actor recorded when the reconciler itself acts on a backfill.
const BACKFILL_ACTOR: &str = "sluice:backfill";
/// The most backfills the reconciler advances in one pass.
const RUNNING_BATCH: u32 = 1000;

/// A request to backfill a trigger's windows over a range.
#[derive(Clone, Debug)]
pub struct BackfillRequest {
    pub pipeline: String,
    /// The timed trigger whose windows to run; the pipeline's only timed
    /// trigger when `None`.
    pub trigger: Option<String>,
    /// The first window end to cover (inclusive).
    pub from: Timestamp,
    /// The last window end to cover (inclusive).
    pub to: Timestamp,
    pub reverse: bool,
    /// Most runs active at once; 1 when `None`.
    pub max_concurrent: Option<u32>,
    pub rerun_completed: bool,
    /// The runs' priority; the pipeline's minus [`PRIORITY_OFFSET`] when `None`.
    pub priority: Option<i32>,
    pub by: String,
    /// The executor that drives the runs (embedded mode), if any.
    pub owner: Option<ExecutorId>,
}

/// Where one window of a backfill stands.
#[derive(Clone, Debug)]
pub enum WindowState {
    /// No run yet: the backfill will create one.
    Pending,
    /// Another run of the pipeline completed this window already.
    Skipped {
        completed_by: sluice_core::ids::RunId,
    },
    /// The backfill's run of this window (active or ended).
    Run(Box<RunRecord>),
}

/// One window of a backfill and where it stands.
#[derive(Clone, Debug)]
pub struct BackfillWindow {
    pub window: RunWindow,
    pub state: WindowState,
}

/// A backfill with its windows, in the order it runs them.
#[derive(Clone, Debug)]
pub struct BackfillView {
    pub backfill: BackfillRecord,
    pub windows: Vec<BackfillWindow>,
}

/// The idempotency key of a backfill's run of a window.
pub(crate) fn backfill_key(id: &BackfillId, window_end: Timestamp) -> String {
    format!("backfill:{id}:{window_end}")
}

/// A validated request: the pipeline, its trigger and the windows, in the
/// order they run.
struct Plan {
    trigger: String,
    windows: Vec<RunWindow>,
    priority: i32,
    max_concurrent: u32,
}

impl Engine {
    /// The windows a backfill would run and which it would skip, without
    /// creating anything (`--dry-run`).
    pub async fn plan_backfill(&self, request: &BackfillRequest) -> Result<Vec<BackfillWindow>> {
        let plan = self.plan(request)?;
        let runs = self
            .window_runs(&request.pipeline, request.from, request.to)
            .await?;
        Ok(plan
            .windows
            .into_iter()
            .map(|window| BackfillWindow {
                window,
                state: match completed_run(&runs, &window) {
                    Some(run) if !request.rerun_completed => WindowState::Skipped {
                        completed_by: run.id.clone(),
                    },
                    _ => WindowState::Pending,
                },
            })
            .collect())
    }

    /// Records a backfill; the reconcilers create its runs.
    pub async fn create_backfill(&self, request: BackfillRequest) -> Result<BackfillRecord> {
        let plan = self.plan(&request)?;
        let backfill = BackfillRecord {
            id: BackfillId(new_id()),
            pipeline: request.pipeline,
            trigger: plan.trigger,
            from: request.from,
            to: request.to,
            reverse: request.reverse,
            max_concurrent: plan.max_concurrent,
            rerun_completed: request.rerun_completed,
            priority: plan.priority,
            status: BackfillStatus::Running,
            created_at: self.clock().now(),
            created_by: request.by,
            changed_at: None,
            owner: request.owner,
        };
        self.store().create_backfill(&backfill).await?;
        self.audit(
            &backfill.created_by,
            "backfill.create",
            backfill.id.as_str(),
            serde_json::json!({
                "pipeline": backfill.pipeline,
                "trigger": backfill.trigger,
                "from": backfill.from,
                "to": backfill.to,
                "windows": plan.windows.len(),
            }),
        )
        .await?;
        self.wake();
        Ok(backfill)
    }

    /// A backfill with its windows. [`Error::NotFound`] for an unknown id.
    pub async fn get_backfill(&self, id: &BackfillId) -> Result<BackfillView> {
        let backfill = self
            .store()
            .get_backfill(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no backfill with id `{id}`")))?;
        let windows = self.backfill_windows(&backfill).await?;
        Ok(BackfillView { backfill, windows })
    }

    /// Backfills, newest first, at most `limit`.
    pub async fn list_backfills(&self, limit: u32) -> Result<Vec<BackfillRecord>> {
        Ok(self.store().list_backfills(None, limit).await?)
    }

    /// Stops a running backfill from creating runs; its active runs go on.
    pub async fn pause_backfill(&self, id: &BackfillId, by: &str) -> Result<BackfillRecord> {
        self.change_backfill(id, by, &[BackfillStatus::Running], BackfillStatus::Paused)
            .await
    }

    /// Lets a paused backfill create runs again.
    pub async fn resume_backfill(&self, id: &BackfillId, by: &str) -> Result<BackfillRecord> {
        self.change_backfill(id, by, &[BackfillStatus::Paused], BackfillStatus::Running)
            .await
    }

    /// Ends a backfill for good and cancels its active runs.
    pub async fn cancel_backfill(&self, id: &BackfillId, by: &str) -> Result<BackfillRecord> {
        let backfill = self
            .change_backfill(
                id,
                by,
                &[BackfillStatus::Running, BackfillStatus::Paused],
                BackfillStatus::Cancelled,
            )
            .await?;
        for window in self.backfill_windows(&backfill).await? {
            if let WindowState::Run(run) = window.state
                && !run.status.is_terminal()
            {
                match self.cancel_run(&run.id, by).await {
                    // The run ended meanwhile: nothing left to cancel.
                    Ok(_) | Err(Error::Conflict { .. }) => {}
                    Err(error) => return Err(error),
                }
            }
        }
        Ok(backfill)
    }

    /// The reconciler step: every running backfill gets runs for its next
    /// windows while fewer than its `max_concurrent` runs are active, and is
    /// completed once every window has ended or was skipped. Returns how
    /// many changes it made.
    pub async fn advance_backfills(&self) -> Result<usize> {
        let running = self
            .store()
            .list_backfills(Some(BackfillStatus::Running), RUNNING_BATCH)
            .await?;
        let mut changes = 0;
        for backfill in running {
            changes += self.advance_backfill(&backfill).await?;
        }
        Ok(changes)
    }

    async fn advance_backfill(&self, backfill: &BackfillRecord) -> Result<usize> {
        let project = self.project();
        let Some(spec) = project
            .pipeline(&backfill.pipeline)
            .map(|loaded| &loaded.spec)
        else {
            // The pipeline may come back with the next reload; the backfill
            // waits rather than failing on a transient edit.
            tracing::warn!(backfill = %backfill.id, pipeline = %backfill.pipeline, "the backfill's pipeline is not in the project");
            return Ok(0);
        };
        let Some(trigger) = spec.trigger(&backfill.trigger) else {
            tracing::warn!(backfill = %backfill.id, trigger = %backfill.trigger, "the backfill's trigger is not in the pipeline");
            return Ok(0);
        };
        if let Some(owner) = &backfill.owner
            && self.executor_is_lost(owner, self.clock().now()).await?
        {
            // The `sluice backfill` process that drove it is gone: its runs
            // end `failed` (executor lost), and no one would run new ones.
            let cancelled = self
                .set_backfill_status(backfill, BackfillStatus::Running, BackfillStatus::Cancelled)
                .await?;
            if cancelled {
                tracing::warn!(backfill = %backfill.id, "the backfill's executor is lost; cancelled");
            }
            return Ok(usize::from(cancelled));
        }
        let windows = self.backfill_windows(backfill).await?;
        let mut active = windows
            .iter()
            .filter(|window| matches!(&window.state, WindowState::Run(run) if !run.status.is_terminal()))
            .count();
        let mut changes = 0;
        let mut pending = 0;
        let mut new_runs = Vec::new();
        for window in windows {
            if !matches!(window.state, WindowState::Pending) {
                continue;
            }
            if active >= backfill.max_concurrent as usize {
                pending += 1;
                continue;
            }
            let created = self
                .create_run(
                    backfill_run(backfill, spec, trigger, &window.window),
                    Some(window.window),
                )
                .await;
            match created {
                Ok(created) => {
                    active += 1;
                    if created.created {
                        changes += 1;
                        new_runs.push(created.id);
                    }
                }
                Err(Error::Store(error)) => return Err(Error::Store(error)),
                Err(error) => {
                    // A window whose run cannot be made (a required variable
                    // the trigger does not set) would fail on every pass: the
                    // backfill is paused, and the audit log says why.
                    tracing::error!(backfill = %backfill.id, "cannot create the backfill's run: {error:#}");
                    self.audit(
                        BACKFILL_ACTOR,
                        "backfill.run_failed",
                        backfill.id.as_str(),
                        serde_json::json!({ "window_end": window.window.window_end, "error": format!("{error:#}") }),
                    )
                    .await?;
                    let paused = self
                        .set_backfill_status(
                            backfill,
                            BackfillStatus::Running,
                            BackfillStatus::Paused,
                        )
                        .await?;
                    return Ok(changes + usize::from(paused));
                }
            }
        }
        if !new_runs.is_empty() {
            self.cancel_if_backfill_cancelled(backfill, &new_runs)
                .await?;
        }
        if pending == 0 && active == 0 {
            let completed = self
                .set_backfill_status(backfill, BackfillStatus::Running, BackfillStatus::Completed)
                .await?;
            if completed {
                tracing::info!(backfill = %backfill.id, "backfill completed");
                changes += 1;
            }
        }
        Ok(changes)
    }

    /// A cancellation that landed while this pass created runs listed the
    /// backfill's runs before these existed: they are cancelled here, so a
    /// cancelled backfill leaves no run behind.
    async fn cancel_if_backfill_cancelled(
        &self,
        backfill: &BackfillRecord,
        runs: &[sluice_core::ids::RunId],
    ) -> Result<()> {
        let current = self.store().get_backfill(&backfill.id).await?;
        let Some(current) = current else {
            return Ok(());
        };
        if current.status != BackfillStatus::Cancelled {
            return Ok(());
        }
        for run in runs {
            match self.cancel_run(run, BACKFILL_ACTOR).await {
                Ok(_) | Err(Error::Conflict { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }

    async fn set_backfill_status(
        &self,
        backfill: &BackfillRecord,
        from: BackfillStatus,
        to: BackfillStatus,
    ) -> Result<bool> {
        Ok(self
            .store()
            .set_backfill_status(&BackfillStatusChange {
                id: backfill.id.clone(),
                from,
                to,
                at: self.clock().now(),
            })
            .await?)
    }

    /// Moves a backfill from one of `from` to `to`, audited; a backfill in
    /// another status is a conflict.
    async fn change_backfill(
        &self,
        id: &BackfillId,
        by: &str,
        from: &[BackfillStatus],
        to: BackfillStatus,
    ) -> Result<BackfillRecord> {
        let store = self.store();
        let current = store
            .get_backfill(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no backfill with id `{id}`")))?;
        let applied = from.contains(&current.status)
            && self
                .set_backfill_status(&current, current.status, to)
                .await?;
        if !applied {
            let allowed: Vec<&str> = from.iter().map(|status| status.as_str()).collect();
            return Err(Error::conflict(
                format!("backfill {id} is `{}`", current.status),
                Some(format!(
                    "only a backfill that is `{}` can become `{to}`",
                    allowed.join("` or `")
                )),
            ));
        }
        self.audit(
            by,
            &format!("backfill.{}", verb(to)),
            id.as_str(),
            serde_json::json!({ "from": current.status }),
        )
        .await?;
        self.wake();
        store
            .get_backfill(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no backfill with id `{id}`")))
    }

    /// Checks a request against the project and works out its windows.
    fn plan(&self, request: &BackfillRequest) -> Result<Plan> {
        let project = self.project();
        let spec = &project
            .pipeline(&request.pipeline)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "no pipeline named `{}` in {}",
                    request.pipeline,
                    project.dir.display()
                ))
            })?
            .spec;
        if request.from > request.to {
            return Err(Error::invalid(
                format!(
                    "the range starts ({}) after it ends ({})",
                    request.from, request.to
                ),
                Some("give `--from` a time before `--to`".to_owned()),
            ));
        }
        let max_concurrent = request.max_concurrent.unwrap_or(1);
        if !(1..=MAX_CONCURRENT).contains(&max_concurrent) {
            return Err(Error::invalid(
                format!("max_concurrent {max_concurrent} is out of range"),
                Some(format!("give a number from 1 to {MAX_CONCURRENT}")),
            ));
        }
        let (trigger, schedule) = timed_trigger(spec, request.trigger.as_deref())?;
        let mut windows: Vec<RunWindow> = Vec::new();
        for fire in schedule.fires_between(request.from, request.to) {
            if windows.len() == MAX_WINDOWS {
                return Err(Error::invalid(
                    format!(
                        "the range holds more than {MAX_WINDOWS} windows of `{}`",
                        trigger.name
                    ),
                    Some("split it into several backfills".to_owned()),
                ));
            }
            windows.push(run_window(fire));
        }
        if request.reverse {
            windows.reverse();
        }
        Ok(Plan {
            trigger: trigger.name.clone(),
            windows,
            priority: request
                .priority
                .unwrap_or(spec.priority.saturating_sub(PRIORITY_OFFSET)),
            max_concurrent,
        })
    }

    /// The windows of a stored backfill, each with its run or why it is
    /// skipped, in the order the backfill runs them.
    async fn backfill_windows(&self, backfill: &BackfillRecord) -> Result<Vec<BackfillWindow>> {
        let project = self.project();
        let windows: Vec<RunWindow> = match project
            .pipeline(&backfill.pipeline)
            .and_then(|loaded| timed_trigger(&loaded.spec, Some(&backfill.trigger)).ok())
        {
            Some((_, schedule)) => schedule
                .fires_between(backfill.from, backfill.to)
                .take(MAX_WINDOWS)
                .map(run_window)
                .collect(),
            None => Vec::new(),
        };
        let runs = self
            .window_runs(&backfill.pipeline, backfill.from, backfill.to)
            .await?;
        let mut result: Vec<BackfillWindow> = windows
            .into_iter()
            .map(|window| {
                let key = backfill_key(&backfill.id, window.window_end);
                let own = runs
                    .iter()
                    .find(|run| run.idempotency_key.as_deref() == Some(key.as_str()));
                let state = match own {
                    Some(run) => WindowState::Run(Box::new(run.clone())),
                    None => match completed_run(&runs, &window) {
                        Some(run) if !backfill.rerun_completed => WindowState::Skipped {
                            completed_by: run.id.clone(),
                        },
                        _ => WindowState::Pending,
                    },
                };
                BackfillWindow { window, state }
            })
            .collect();
        if backfill.reverse {
            result.reverse();
        }
        Ok(result)
    }

    async fn window_runs(
        &self,
        pipeline: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<RunRecord>> {
        Ok(self
            .store()
            .list_window_runs(&WindowRunQuery {
                pipeline: pipeline.to_owned(),
                from,
                to,
            })
            .await?)
    }
}

/// The run a backfill asks for to cover one window.
fn backfill_run(
    backfill: &BackfillRecord,
    spec: &Pipeline,
    trigger: &TriggerSpec,
    window: &RunWindow,
) -> TriggerRequest {
    TriggerRequest {
        pipeline: spec.name.clone(),
        variables: Default::default(),
        trigger_variables: trigger.variables.clone(),
        priority: Some(backfill.priority),
        invoked_by: InvokedBy {
            kind: "backfill".to_owned(),
            name: Some(trigger.name.clone()),
            actor: Some(backfill.created_by.clone()),
            parent_run_id: None,
        },
        idempotency_key: Some(backfill_key(&backfill.id, window.window_end)),
        owner: backfill.owner.clone(),
    }
}

/// A completed run of the pipeline that covers exactly this window.
fn completed_run<'a>(runs: &'a [RunRecord], window: &RunWindow) -> Option<&'a RunRecord> {
    runs.iter().find(|run| {
        run.status == RunStatus::Completed
            && run.window.is_some_and(|covered| {
                covered.window_start == window.window_start
                    && covered.window_end == window.window_end
            })
    })
}

/// The timed trigger named `name`, or the pipeline's only timed trigger.
fn timed_trigger<'a>(
    spec: &'a Pipeline,
    name: Option<&str>,
) -> Result<(&'a TriggerSpec, Schedule)> {
    let timed: Vec<(&TriggerSpec, Schedule)> = spec
        .triggers
        .iter()
        .filter(|trigger| name.is_none_or(|name| trigger.name == name))
        .filter_map(|trigger| match Schedule::from_kind(&trigger.kind) {
            Ok(Some(schedule)) => Some((trigger, schedule)),
            _ => None,
        })
        .collect();
    let names = || {
        let names: Vec<&str> = spec
            .triggers
            .iter()
            .filter(|trigger| matches!(Schedule::from_kind(&trigger.kind), Ok(Some(_))))
            .map(|trigger| trigger.name.as_str())
            .collect();
        if names.is_empty() {
            "none".to_owned()
        } else {
            names.join(", ")
        }
    };
    match (name, timed.len()) {
        (_, 1) => Ok(timed.into_iter().next().expect("one trigger")),
        (Some(name), _) => Err(Error::invalid(
            format!(
                "pipeline `{}` has no `schedule`, `every` or `once` trigger named `{name}`",
                spec.name
            ),
            Some(format!("its timed triggers: {}", names())),
        )),
        (None, 0) => Err(Error::invalid(
            format!(
                "pipeline `{}` has no `schedule`, `every` or `once` trigger to backfill",
                spec.name
            ),
            Some("a backfill runs the windows of a timed trigger; add one".to_owned()),
        )),
        (None, _) => Err(Error::invalid(
            format!("pipeline `{}` has several timed triggers", spec.name),
            Some(format!("name one with `--trigger` ({})", names())),
        )),
    }
}

/// The audit verb of a change to `status`.
fn verb(status: BackfillStatus) -> &'static str {
    match status {
        BackfillStatus::Running => "resume",
        BackfillStatus::Paused => "pause",
        BackfillStatus::Cancelled => "cancel",
        BackfillStatus::Completed => "complete",
    }
}
