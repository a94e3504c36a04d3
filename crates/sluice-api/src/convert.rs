//! Explicit conversions from the engine's records to the wire types of
//! `sluice-proto`. Secret variables are masked here as well as in the
//! engine's queries, so no path from a record to a response skips it.

use std::collections::BTreeMap;

use sluice_core::vars::MASK;
use sluice_engine::queries::{AttemptDetails, BlockRunDetails, DeliveryDetails, RunDetails};
use sluice_engine::sluice_store::{
    ApiTokenRecord, ArtifactRecord, AuditEvent, BlockRunRecord, RunRecord, TryRecord,
};
use sluice_engine::{Event, data};
use sluice_proto as proto;

pub use crate::routes::queue::{queue_view, wait_reason};

pub fn run(record: RunRecord) -> proto::Run {
    let variables = record
        .variables
        .0
        .into_iter()
        .map(|(name, variable)| {
            let value = if variable.secret {
                serde_json::Value::String(MASK.to_owned())
            } else {
                variable.value
            };
            (
                name,
                proto::Variable {
                    value,
                    layer: variable.layer.as_str().to_owned(),
                    secret: variable.secret,
                },
            )
        })
        .collect();
    proto::Run {
        id: record.id.0,
        pipeline: record.pipeline,
        status: record.status.as_str().to_owned(),
        attempt: record.attempt,
        priority: record.priority,
        invoked_by: proto::InvokedBy {
            kind: record.invoked_by.kind,
            name: record.invoked_by.name,
            actor: record.invoked_by.actor,
            parent_run_id: record.invoked_by.parent_run_id.map(|id| id.0),
        },
        tags: record.tags,
        variables,
        pipeline_version: record.pipeline_version,
        project_version: record.project_version,
        created_at: record.created_at,
        started_at: record.started_at,
        finished_at: record.finished_at,
        error: record.error,
        cancel_requested_at: record.cancel_requested_at,
        cancel_requested_by: record.cancel_requested_by,
        timed_out: record.timed_out,
        sla_missed: record.sla_missed,
        timeout_at: record.timeout_at,
        sla_at: record.sla_at,
        sla_at_risk: record.sla_at_risk_at.is_some(),
        sla_at_risk_at: record.sla_at_risk_at,
        idempotency_key: record.idempotency_key,
        scheduled_for: record.window.map(|window| window.scheduled_for),
        window_start: record.window.map(|window| window.window_start),
        window_end: record.window.map(|window| window.window_end),
        slow: record.slow,
        baseline: record.baseline.map(baseline),
        resolved: record.resolved.map(|resolution| proto::Resolution {
            at: resolution.at,
            run_id: resolution.run_id.0,
            attempt: resolution.attempt,
        }),
    }
}

fn duration_stats(stats: sluice_engine::sluice_store::DurationStats) -> proto::DurationStats {
    proto::DurationStats {
        samples: stats.samples,
        median_ms: stats.median_ms,
        p95_ms: stats.p95_ms,
    }
}

fn baseline(record: sluice_engine::sluice_store::RunBaseline) -> proto::RunBaseline {
    proto::RunBaseline {
        run: duration_stats(record.run),
        blocks: record
            .blocks
            .into_iter()
            .map(|(block, stats)| (block, duration_stats(stats)))
            .collect(),
        factor: record.factor,
    }
}

pub fn envelope(record: RunRecord) -> proto::RunEnvelope {
    proto::RunEnvelope {
        pipeline_run: run(record),
    }
}

pub fn attempt_try(record: TryRecord) -> proto::Try {
    proto::Try {
        id: record.id.0,
        try_number: record.try_number,
        status: record.status.as_str().to_owned(),
        executor: record.executor.0,
        started_at: record.started_at,
        finished_at: record.finished_at,
        lease_expires_at: record.lease_expires_at,
        exit_code: record.exit_code,
        error: record.error,
        timed_out: record.timed_out,
    }
}

pub fn block_run(record: BlockRunRecord, tries: Vec<TryRecord>) -> proto::BlockRun {
    proto::BlockRun {
        id: record.id.0,
        run_id: record.run_id.0,
        attempt: record.attempt,
        block: record.block,
        status: record.status.as_str().to_owned(),
        priority: record.priority,
        max_tries: record.max_tries,
        created_at: record.created_at,
        queued_at: record.queued_at,
        started_at: record.started_at,
        finished_at: record.finished_at,
        retry_at: record.retry_at,
        outputs: record.outputs,
        error: record.error,
        exit_code: record.exit_code,
        timed_out: record.timed_out,
        reused_from_attempt: record.reused_from_attempt,
        data: record.data.map(|data| proto::DataInfo {
            format: data.format,
            size: data.size,
            sha256: data.sha256,
        }),
        labels: record.labels,
        idempotency_key: record.idempotency_key,
        tries: tries.into_iter().map(attempt_try).collect(),
        queue_reason: None,
    }
}

pub fn block_run_details(details: BlockRunDetails) -> proto::BlockRun {
    let mut wire = block_run(details.block_run, details.tries);
    wire.queue_reason = details.queue_reason.map(wait_reason);
    wire
}

pub fn artifact(record: ArtifactRecord) -> proto::Artifact {
    proto::Artifact {
        download_url: format!("/api/artifacts/{}/download", record.id),
        id: record.id,
        run_id: record.run_id.0,
        block_run_id: record.block_run_id.0,
        try_id: record.try_id.0,
        name: record.name,
        size: record.size,
        sha256: record.sha256,
        created_at: record.created_at,
    }
}

fn attempt(details: AttemptDetails) -> proto::Attempt {
    let record = details.attempt;
    proto::Attempt {
        attempt: record.attempt,
        status: record.status.as_str().to_owned(),
        mode: record.mode,
        from_block: record.from_block,
        created_at: record.created_at,
        created_by: record.created_by,
        started_at: record.started_at,
        finished_at: record.finished_at,
        error: record.error,
        pipeline_version: record.pipeline_version,
        project_version: record.project_version,
        block_runs: details
            .block_runs
            .into_iter()
            .map(block_run_details)
            .collect(),
    }
}

pub fn run_details(details: RunDetails) -> proto::RunDetails {
    proto::RunDetails {
        pipeline_run: run(details.run),
        attempts: details.attempts.into_iter().map(attempt).collect(),
        artifacts: details.artifacts.into_iter().map(artifact).collect(),
        notifications: details
            .notifications
            .into_iter()
            .map(notification)
            .collect(),
    }
}

/// A delivery on the wire: its facts without its payload (the run's own
/// fields, already in the answer).
pub fn notification(details: DeliveryDetails) -> proto::Notification {
    let record = details.delivery;
    proto::Notification {
        event: record.event,
        attempt: record.attempt,
        channel: record.channel,
        kind: record.kind,
        target: details.target,
        status: record.status.as_str().to_owned(),
        attempts: record.attempts,
        max_attempts: record.max_attempts,
        last_error: record.last_error,
        created_at: record.created_at,
        updated_at: record.updated_at,
        next_attempt_at: record.next_attempt_at,
        delivered_at: record.delivered_at,
    }
}

pub fn table(table: data::Table) -> proto::Table {
    proto::Table {
        columns: table.columns,
        rows: table.rows,
        truncated: table.truncated,
    }
}

pub fn block_outputs(output: data::BlockOutput) -> proto::BlockOutputs {
    proto::BlockOutputs {
        block_run_id: output.block_run_id.0,
        block: output.block,
        outputs: output.outputs,
        data_format: output.data_format,
        data: output.data.map(table),
    }
}

pub fn audit_event(event: AuditEvent) -> proto::AuditEvent {
    proto::AuditEvent {
        id: event.id,
        at: event.at,
        actor: event.actor,
        action: event.action,
        target: event.target,
        details: event.details,
    }
}

pub fn token(record: ApiTokenRecord) -> proto::TokenInfo {
    proto::TokenInfo {
        name: record.name,
        role: record.role,
        created_at: record.created_at,
        created_by: record.created_by,
        revoked_at: record.revoked_at,
    }
}

pub fn live_event(event: Event) -> proto::LiveEvent {
    match event {
        Event::Run { run_id, status } => proto::LiveEvent::Run {
            run_id: run_id.0,
            status: status.as_str().to_owned(),
        },
        Event::BlockRun {
            run_id,
            block_run_id,
            block,
            attempt,
            status,
        } => proto::LiveEvent::BlockRun {
            run_id: run_id.0,
            block_run_id: block_run_id.0,
            block,
            attempt,
            status: status.as_str().to_owned(),
        },
        Event::TryStarted {
            run_id,
            block_run_id,
            block,
            try_id,
            try_number,
        } => proto::LiveEvent::TryStarted {
            run_id: run_id.0,
            block_run_id: block_run_id.0,
            block,
            try_id: try_id.0,
            try_number,
        },
        Event::Log {
            run_id,
            try_id,
            seq,
        } => proto::LiveEvent::Log {
            run_id: run_id.0,
            try_id: try_id.0,
            seq,
        },
    }
}

/// Counts per status, with every status present.
pub fn summary(counts: Vec<(sluice_core::status::RunStatus, u64)>) -> BTreeMap<String, u64> {
    let mut summary: BTreeMap<String, u64> = sluice_core::status::RunStatus::ALL
        .iter()
        .map(|status| (status.as_str().to_owned(), 0))
        .collect();
    for (status, count) in counts {
        summary.insert(status.as_str().to_owned(), count);
    }
    summary
}

fn fire(window: sluice_engine::sluice_store::RunWindow) -> proto::Fire {
    proto::Fire {
        scheduled_for: window.scheduled_for,
        window_start: window.window_start,
        window_end: window.window_end,
    }
}

/// A trigger of the project with its state and next fires.
pub fn trigger(overview: sluice_engine::triggers::TriggerOverview) -> proto::Trigger {
    proto::Trigger {
        pipeline: overview.pipeline,
        trigger: overview.trigger,
        kind: overview.kind,
        enabled: overview.enabled,
        paused: overview.paused,
        paused_by: overview.paused_by,
        paused_at: overview.paused_at,
        last_fired_at: overview.last_fired_at,
        last_run_id: overview.last_run_id,
        next_fires: overview.next_fires.into_iter().map(fire).collect(),
    }
}

/// A run a timed trigger will create.
pub fn upcoming(fire_record: sluice_engine::triggers::UpcomingFire) -> proto::UpcomingFire {
    let window = fire(fire_record.window);
    proto::UpcomingFire {
        pipeline: fire_record.pipeline,
        trigger: fire_record.trigger,
        kind: fire_record.kind,
        scheduled_for: window.scheduled_for,
        window_start: window.window_start,
        window_end: window.window_end,
    }
}

/// A remote agent in a listing.
pub fn agent(summary: sluice_engine::remote::AgentSummary) -> proto::Agent {
    let listing = summary.listing;
    proto::Agent {
        id: listing.agent.id.0,
        name: listing.agent.name,
        labels: listing.labels,
        status: summary.status.as_str().to_owned(),
        running_tries: listing.running_tries,
        last_heartbeat_at: listing.heartbeat_at,
        version: listing.agent.version,
        host: listing.host,
    }
}

pub fn backfill(record: sluice_engine::sluice_store::BackfillRecord) -> proto::Backfill {
    proto::Backfill {
        id: record.id.0,
        pipeline: record.pipeline,
        trigger: record.trigger,
        from: record.from,
        to: record.to,
        reverse: record.reverse,
        max_concurrent: record.max_concurrent,
        rerun_completed: record.rerun_completed,
        priority: record.priority,
        status: record.status.as_str().to_owned(),
        created_at: record.created_at,
        created_by: record.created_by,
        changed_at: record.changed_at,
    }
}

pub fn backfill_window(window: sluice_engine::BackfillWindow) -> proto::BackfillWindow {
    let (state, run_id, run_status, completed_by) = match window.state {
        sluice_engine::WindowState::Pending => ("pending", None, None, None),
        sluice_engine::WindowState::Skipped { completed_by } => {
            ("skipped", None, None, Some(completed_by.0))
        }
        sluice_engine::WindowState::Run(run) => (
            "run",
            Some(run.id.0),
            Some(run.status.as_str().to_owned()),
            None,
        ),
    };
    proto::BackfillWindow {
        scheduled_for: window.window.scheduled_for,
        window_start: window.window.window_start,
        window_end: window.window.window_end,
        state: state.to_owned(),
        run_id,
        run_status,
        completed_by,
    }
}

pub fn backfill_detail(view: sluice_engine::BackfillView) -> proto::BackfillDetail {
    proto::BackfillDetail {
        backfill: Some(backfill(view.backfill)),
        windows: view.windows.into_iter().map(backfill_window).collect(),
    }
}
