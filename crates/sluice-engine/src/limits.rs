//! The limits a run lives under: the pipeline's `concurrency`, `on_limit`,
//! `timeout`, `timeout_status` and `sla`, each replaced by its trigger's
//! when the run was started by a trigger that sets it.

use std::num::NonZeroU32;

use sluice_core::duration::Duration;
use sluice_core::spec::{OnLimit, Pipeline, TimeoutStatus, TriggerSpec};
use sluice_store::InvokedBy;

/// The `invoked_by.kind` values whose `name` is a trigger of the run's own
/// pipeline (a `parent` run names the parent's block instead).
const TRIGGER_KINDS: &[&str] = &["schedule", "api", "webhook", "backfill"];

/// The effective limits of one run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct RunLimits {
    pub concurrency: Option<NonZeroU32>,
    pub on_limit: OnLimit,
    pub timeout: Option<Duration>,
    pub timeout_status: TimeoutStatus,
    pub sla: Option<Duration>,
}

/// The trigger of the pipeline that started a run, if a trigger did.
pub(crate) fn trigger_of<'a>(
    spec: &'a Pipeline,
    invoked_by: &InvokedBy,
) -> Option<&'a TriggerSpec> {
    if !TRIGGER_KINDS.contains(&invoked_by.kind.as_str()) {
        return None;
    }
    spec.trigger(invoked_by.name.as_deref()?)
}

impl RunLimits {
    /// The limits of a run of `spec` started as `invoked_by`.
    pub fn for_run(spec: &Pipeline, invoked_by: &InvokedBy) -> RunLimits {
        let pipeline = RunLimits {
            concurrency: spec.concurrency,
            on_limit: spec.on_limit,
            timeout: spec.timeout,
            timeout_status: spec.timeout_status,
            sla: spec.sla,
        };
        match trigger_of(spec, invoked_by) {
            Some(trigger) => RunLimits {
                concurrency: trigger.concurrency.or(pipeline.concurrency),
                on_limit: trigger.on_limit.unwrap_or(pipeline.on_limit),
                timeout: trigger.timeout.or(pipeline.timeout),
                timeout_status: trigger.timeout_status.unwrap_or(pipeline.timeout_status),
                sla: trigger.sla.or(pipeline.sla),
            },
            None => pipeline,
        }
    }
}
