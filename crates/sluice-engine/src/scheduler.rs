//! The scheduler reconciler: every enabled, unpaused `schedule`, `every`,
//! `once` and `always_on` trigger of the project's pipelines gets the runs
//! that are due.
//!
//! Exactly one run per trigger and fire, whatever happens. Each pass
//! re-reads the trigger's last fire from the store and asks
//! `sluice_core::schedule` which fires are due after it. Each fire becomes a
//! run under a deterministic idempotency key (`schedule:TRIGGER:SCHEDULED_FOR`),
//! and only then is the fire recorded, by an update that never moves the
//! last fire back. A crash between the two, or a second server evaluating
//! the same trigger, only makes the next creation find the run that exists
//! and record the fire again; neither can create a second run.
//!
//! `always_on` has no times: its next run is due `min_gap` after its last
//! run ended, and its key names that run (`always_on:TRIGGER:after:RUN`), so
//! racing servers agree on the one run that follows it.

use std::collections::HashMap;

use jiff::Timestamp;
use sluice_core::duration::Duration;
use sluice_core::schedule::{DueQuery, Fire, Schedule, earliest_next_start};
use sluice_core::spec::{Pipeline, TriggerKind, TriggerSpec};
use sluice_store::{InvokedBy, RunWindow, TriggerFire, TriggerState};

use crate::clock::add;
use crate::services::TriggerRequest;
use crate::{Engine, Error, Result};

/// How long an `always_on` trigger whose last fire could not create a run
/// waits before it tries again.
const FAILED_FIRE_BACKOFF: std::time::Duration = std::time::Duration::from_secs(60);

/// The actor recorded on runs the scheduler creates.
pub(crate) const SCHEDULER_ACTOR: &str = "sluice:scheduler";

/// The idempotency key of the run of a trigger's fire.
pub(crate) fn fire_key(trigger: &str, scheduled_for: Timestamp) -> String {
    format!("schedule:{trigger}:{scheduled_for}")
}

/// A fire about to become a run: what the scheduler creates and records.
struct Firing<'a> {
    spec: &'a Pipeline,
    trigger: &'a TriggerSpec,
    key: String,
    fired_at: Timestamp,
    window: Option<RunWindow>,
}

impl Engine {
    /// Creates the runs that are due for every enabled, unpaused timed or
    /// `always_on` trigger of the project. Returns how many runs it
    /// created.
    pub async fn fire_schedules(&self) -> Result<usize> {
        let project = self.project();
        let states: HashMap<(String, String), TriggerState> = self
            .store()
            .list_trigger_states()
            .await?
            .into_iter()
            .map(|state| ((state.pipeline.clone(), state.trigger.clone()), state))
            .collect();
        let now = self.clock().now();
        let mut changes = 0;
        for loaded in project.pipelines.values() {
            let spec = &loaded.spec;
            for trigger in &spec.triggers {
                if !trigger.enabled {
                    continue;
                }
                let state = states.get(&(spec.name.clone(), trigger.name.clone()));
                if state.is_some_and(|state| state.paused) {
                    continue;
                }
                let last_fired = state.and_then(|state| state.last_fired_at);
                changes += match &trigger.kind {
                    TriggerKind::AlwaysOn { min_gap } => {
                        self.fire_always_on(spec, trigger, *min_gap, state, now)
                            .await?
                    }
                    kind => {
                        let schedule = match Schedule::from_kind(kind) {
                            Ok(Some(schedule)) => schedule,
                            Ok(None) => continue,
                            Err(error) => {
                                // Validation refuses such a trigger; a
                                // pipeline loaded anyway must not stop the
                                // other triggers.
                                tracing::error!(pipeline = %spec.name, trigger = %trigger.name, "cannot build the schedule: {error}");
                                continue;
                            }
                        };
                        let query = DueQuery::for_trigger(trigger, last_fired, now);
                        let mut created = 0;
                        for fire in schedule.due_fires(&query) {
                            created += self.fire_one(scheduled(spec, trigger, fire)).await?;
                        }
                        created
                    }
                };
            }
        }
        Ok(changes)
    }

    /// The next run of an `always_on` trigger, if its last run ended at
    /// least `min_gap` ago (or it never ran).
    async fn fire_always_on(
        &self,
        spec: &Pipeline,
        trigger: &TriggerSpec,
        min_gap: Option<Duration>,
        state: Option<&TriggerState>,
        now: Timestamp,
    ) -> Result<usize> {
        let within_bounds = trigger.start.is_none_or(|start| start <= now)
            && trigger.end.is_none_or(|end| now <= end);
        if !within_bounds {
            return Ok(0);
        }
        let previous = match state.and_then(|state| state.last_run_id.as_ref()) {
            Some(run_id) => self.store().get_run(run_id).await?,
            None => None,
        };
        let (key, fired_at) = match previous {
            // Never overlapping itself: the next run waits for this one.
            Some(run) if !run.status.is_terminal() => return Ok(0),
            Some(run) => {
                let due = earliest_next_start(min_gap, run.finished_at).unwrap_or(now);
                if due > now {
                    return Ok(0);
                }
                (format!("always_on:{}:after:{}", trigger.name, run.id), due)
            }
            None => match state.and_then(|state| state.last_fired_at) {
                // The last fire could not create a run: try again after a
                // pause rather than on every pass.
                Some(failed_at) => {
                    if now < add(failed_at, FAILED_FIRE_BACKOFF) {
                        return Ok(0);
                    }
                    (
                        format!("always_on:{}:after-failure:{failed_at}", trigger.name),
                        now,
                    )
                }
                None => (format!("always_on:{}:first", trigger.name), now),
            },
        };
        self.fire_one(Firing {
            spec,
            trigger,
            key,
            fired_at,
            window: None,
        })
        .await
    }

    /// Creates the run of one fire (or finds it, when it exists) and then
    /// records the fire. Returns 1 when it created the run.
    async fn fire_one(&self, firing: Firing<'_>) -> Result<usize> {
        let Firing {
            spec,
            trigger,
            key,
            fired_at,
            window,
        } = firing;
        let request = TriggerRequest {
            pipeline: spec.name.clone(),
            variables: Default::default(),
            trigger_variables: trigger.variables.clone(),
            priority: None,
            invoked_by: InvokedBy {
                kind: "schedule".to_owned(),
                name: Some(trigger.name.clone()),
                actor: Some(SCHEDULER_ACTOR.to_owned()),
                parent_run_id: None,
            },
            idempotency_key: Some(key.clone()),
            owner: None,
        };
        let (run_id, created) = match self.create_run(request, window).await {
            Ok(created) => (Some(created.id), created.created),
            Err(Error::Store(error)) => return Err(Error::Store(error)),
            Err(error) => {
                // A fire whose run cannot be made (a required variable the
                // trigger does not set) would fail again on every pass: it
                // is skipped for good, and the audit log says why.
                tracing::error!(pipeline = %spec.name, trigger = %trigger.name, key, "cannot create the scheduled run: {error:#}");
                self.audit(
                    SCHEDULER_ACTOR,
                    "trigger.fire_failed",
                    &format!("{}/{}", spec.name, trigger.name),
                    serde_json::json!({ "fired_at": fired_at, "error": format!("{error:#}") }),
                )
                .await?;
                (None, false)
            }
        };
        if created {
            tracing::info!(pipeline = %spec.name, trigger = %trigger.name, %fired_at, "fired");
        }
        self.store()
            .record_trigger_fire(&TriggerFire {
                pipeline: spec.name.clone(),
                trigger: trigger.name.clone(),
                fired_at,
                run_id,
            })
            .await?;
        Ok(usize::from(created))
    }
}

/// The firing of a timed trigger's fire, with its window.
fn scheduled<'a>(spec: &'a Pipeline, trigger: &'a TriggerSpec, fire: Fire) -> Firing<'a> {
    Firing {
        spec,
        trigger,
        key: fire_key(&trigger.name, fire.scheduled_for),
        fired_at: fire.scheduled_for,
        window: Some(run_window(fire)),
    }
}

/// A core fire as the store records it.
pub(crate) fn run_window(fire: Fire) -> RunWindow {
    RunWindow {
        scheduled_for: fire.scheduled_for,
        window_start: fire.window_start,
        window_end: fire.window_end,
    }
}

/// A block's environment with its run's fire and window added first
/// (`SLUICE_SCHEDULED_FOR`, `SLUICE_WINDOW_START`, `SLUICE_WINDOW_END`, in
/// RFC 3339 UTC), so the block's own `env:` still has the last word. A run
/// no schedule started adds nothing.
pub fn block_env(
    run: &sluice_store::RunRecord,
    block_env: &std::collections::BTreeMap<String, String>,
) -> std::collections::BTreeMap<String, String> {
    let mut env = std::collections::BTreeMap::new();
    if let Some(window) = run.window {
        env.insert(
            "SLUICE_SCHEDULED_FOR".to_owned(),
            window.scheduled_for.to_string(),
        );
        env.insert(
            "SLUICE_WINDOW_START".to_owned(),
            window.window_start.to_string(),
        );
        env.insert(
            "SLUICE_WINDOW_END".to_owned(),
            window.window_end.to_string(),
        );
    }
    env.extend(
        block_env
            .iter()
            .map(|(name, value)| (name.clone(), value.clone())),
    );
    env
}
