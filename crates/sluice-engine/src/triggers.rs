//! Operating triggers: what each trigger of the project is and when it
//! fires next, the runs that will happen soonest across pipelines, and
//! pausing and resuming a trigger (kept in the database, audited).
//!
//! Next fires are computed the way the scheduler computes due fires, from
//! the same last fire in the store, so what `triggers upcoming` promises is
//! what the scheduler will do (unless someone pauses the trigger first).

use jiff::Timestamp;
use sluice_core::schedule::{DueQuery, Schedule};
use sluice_core::spec::{TriggerKind, TriggerSpec};
use sluice_store::{RunWindow, TriggerPause, TriggerState};

use crate::scheduler::run_window;
use crate::{Engine, Error, Result};

/// The most next fires one listing computes per trigger.
pub const MAX_NEXT: usize = 1_000;

/// One trigger of a pipeline of the project, with its state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TriggerOverview {
    pub pipeline: String,
    pub trigger: String,
    /// `schedule`, `every`, `once`, `always_on`, `api` or `webhook`.
    pub kind: String,
    /// As the pipeline file says.
    pub enabled: bool,
    pub paused: bool,
    pub paused_by: Option<String>,
    pub paused_at: Option<Timestamp>,
    pub last_fired_at: Option<Timestamp>,
    /// The run the trigger's latest fire created.
    pub last_run_id: Option<String>,
    /// The next fires of a timed trigger, soonest first; empty for other
    /// kinds and for a disabled or paused trigger.
    pub next_fires: Vec<RunWindow>,
}

/// A run a timed trigger will create.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UpcomingFire {
    pub pipeline: String,
    pub trigger: String,
    pub kind: String,
    pub window: RunWindow,
}

/// Which kinds can be paused: those the scheduler fires.
fn pausable(kind: &TriggerKind) -> bool {
    matches!(
        kind,
        TriggerKind::Schedule { .. }
            | TriggerKind::Every { .. }
            | TriggerKind::Once { .. }
            | TriggerKind::AlwaysOn { .. }
    )
}

/// The next `count` fires of a timed trigger after its last recorded fire
/// and `now`, with their windows. A fire that is already due but not yet
/// created comes first.
fn next_fires(
    trigger: &TriggerSpec,
    state: Option<&TriggerState>,
    now: Timestamp,
    count: usize,
) -> Vec<RunWindow> {
    if !trigger.enabled || state.is_some_and(|state| state.paused) || count == 0 {
        return Vec::new();
    }
    let Ok(Some(schedule)) = Schedule::from_kind(&trigger.kind) else {
        return Vec::new();
    };
    let query = DueQuery::for_trigger(trigger, state.and_then(|state| state.last_fired_at), now);
    let mut fires: Vec<RunWindow> = schedule
        .due_fires(&query)
        .into_iter()
        .map(run_window)
        .collect();
    if let Some(first) = schedule.next_due_at(&query) {
        let until = trigger.end.unwrap_or(Timestamp::MAX);
        fires.extend(
            schedule
                .fires_between(first, until)
                .take(count)
                .map(run_window),
        );
    }
    fires.truncate(count);
    fires
}

impl Engine {
    /// Every trigger of the project's pipelines, by pipeline and trigger,
    /// with at most `next` next fires each (at most [`MAX_NEXT`]).
    pub async fn list_triggers(&self, next: usize) -> Result<Vec<TriggerOverview>> {
        let project = self.project();
        let states = self.store().list_trigger_states().await?;
        let now = self.clock().now();
        let next = next.min(MAX_NEXT);
        let mut triggers = Vec::new();
        for loaded in project.pipelines.values() {
            let spec = &loaded.spec;
            for trigger in &spec.triggers {
                let state = states
                    .iter()
                    .find(|state| state.pipeline == spec.name && state.trigger == trigger.name);
                triggers.push(TriggerOverview {
                    pipeline: spec.name.clone(),
                    trigger: trigger.name.clone(),
                    kind: trigger.kind.key().to_owned(),
                    enabled: trigger.enabled,
                    paused: state.is_some_and(|state| state.paused),
                    paused_by: state.and_then(|state| state.paused_by.clone()),
                    paused_at: state.and_then(|state| state.paused_at),
                    last_fired_at: state.and_then(|state| state.last_fired_at),
                    last_run_id: state
                        .and_then(|state| state.last_run_id.as_ref())
                        .map(ToString::to_string),
                    next_fires: next_fires(trigger, state, now, next),
                });
            }
        }
        triggers.sort_by(|a, b| (&a.pipeline, &a.trigger).cmp(&(&b.pipeline, &b.trigger)));
        Ok(triggers)
    }

    /// The next `count` runs the timed triggers will create, soonest first,
    /// across pipelines (at most [`MAX_NEXT`]).
    pub async fn upcoming_fires(&self, count: usize) -> Result<Vec<UpcomingFire>> {
        let count = count.min(MAX_NEXT);
        let mut upcoming: Vec<UpcomingFire> = self
            .list_triggers(count)
            .await?
            .into_iter()
            .flat_map(|overview| {
                overview
                    .next_fires
                    .into_iter()
                    .map(move |window| UpcomingFire {
                        pipeline: overview.pipeline.clone(),
                        trigger: overview.trigger.clone(),
                        kind: overview.kind.clone(),
                        window,
                    })
            })
            .collect();
        upcoming.sort_by(|a, b| {
            (a.window.scheduled_for, &a.pipeline, &a.trigger).cmp(&(
                b.window.scheduled_for,
                &b.pipeline,
                &b.trigger,
            ))
        });
        upcoming.truncate(count);
        Ok(upcoming)
    }

    /// Pauses a trigger: the scheduler creates no runs for it until it is
    /// resumed. Fires that fall in the pause are missed, and `catchup`
    /// decides what happens to them on resume. Pausing a paused trigger
    /// changes nothing.
    pub async fn pause_trigger(
        &self,
        pipeline: &str,
        trigger: &str,
        by: &str,
    ) -> Result<TriggerOverview> {
        self.set_paused(self.pause_change(pipeline, trigger, by, true))
            .await
    }

    /// Resumes a paused trigger. Resuming one that is not paused changes
    /// nothing.
    pub async fn resume_trigger(
        &self,
        pipeline: &str,
        trigger: &str,
        by: &str,
    ) -> Result<TriggerOverview> {
        self.set_paused(self.pause_change(pipeline, trigger, by, false))
            .await
    }

    fn pause_change(&self, pipeline: &str, trigger: &str, by: &str, paused: bool) -> TriggerPause {
        TriggerPause {
            pipeline: pipeline.to_owned(),
            trigger: trigger.to_owned(),
            paused,
            by: by.to_owned(),
            at: self.clock().now(),
        }
    }

    async fn set_paused(&self, change: TriggerPause) -> Result<TriggerOverview> {
        let (pipeline, trigger) = (change.pipeline.as_str(), change.trigger.as_str());
        let project = self.project();
        let spec = project
            .pipeline(pipeline)
            .ok_or_else(|| Error::NotFound(format!("no pipeline named `{pipeline}`")))?
            .spec
            .clone();
        let Some(found) = spec.trigger(trigger) else {
            let known: Vec<&str> = spec.triggers.iter().map(|t| t.name.as_str()).collect();
            return Err(Error::NotFound(format!(
                "pipeline `{pipeline}` has no trigger named `{trigger}` (its triggers: {})",
                if known.is_empty() {
                    "none".to_owned()
                } else {
                    known.join(", ")
                }
            )));
        };
        if !pausable(&found.kind) {
            return Err(Error::invalid(
                format!(
                    "trigger `{trigger}` of pipeline `{pipeline}` is an `{}` trigger, which the scheduler does not fire",
                    found.kind.key()
                ),
                Some(
                    "only schedule, every, once and always_on triggers can be paused; set `enabled: false` in the pipeline file to stop the others".to_owned(),
                ),
            ));
        }
        let changed = self.store().set_trigger_paused(&change).await?;
        if changed {
            self.audit(
                &change.by,
                if change.paused {
                    "trigger.pause"
                } else {
                    "trigger.resume"
                },
                &format!("{pipeline}/{trigger}"),
                serde_json::json!({}),
            )
            .await?;
            self.wake();
        }
        self.list_triggers(5)
            .await?
            .into_iter()
            .find(|overview| overview.pipeline == pipeline && overview.trigger == trigger)
            .ok_or_else(|| Error::NotFound(format!("no trigger `{trigger}` in `{pipeline}`")))
    }
}
