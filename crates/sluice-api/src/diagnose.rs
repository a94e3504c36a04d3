//! Run diff and incident evidence as wire types, and evidence as Markdown
//! for a ticket. Both the API and the CLI print from here, so they agree.

use sluice_engine::diagnose::{BlockSide, Evidence, Resolution, RunDiff};
use sluice_proto as proto;

use crate::convert;

fn side(side: BlockSide) -> proto::BlockSide {
    proto::BlockSide {
        status: side.status.as_str().to_owned(),
        duration_ms: side.duration_ms,
        tries: side.tries,
        outputs: side.outputs,
        error: side.error,
    }
}

pub fn run_diff(diff: RunDiff) -> proto::RunDiff {
    proto::RunDiff {
        a: convert::run(diff.a),
        b: convert::run(diff.b),
        fields: diff
            .fields
            .into_iter()
            .map(|field| proto::FieldDiff {
                differs: field.differs(),
                field: field.field,
                a: field.a,
                b: field.b,
            })
            .collect(),
        blocks: diff
            .blocks
            .into_iter()
            .map(|block| proto::BlockDiff {
                differs: block.differs(),
                block: block.block,
                a: block.a.map(side),
                b: block.b.map(side),
            })
            .collect(),
    }
}

pub fn evidence(evidence: Evidence) -> proto::Evidence {
    let details = evidence.details;
    proto::Evidence {
        pipeline_run: convert::run(details.run),
        attempts: details
            .attempts
            .into_iter()
            .map(|attempt| proto::EvidenceAttempt {
                attempt: attempt.attempt.attempt,
                status: attempt.attempt.status.as_str().to_owned(),
                mode: attempt.attempt.mode,
                created_by: attempt.attempt.created_by,
                started_at: attempt.attempt.started_at,
                finished_at: attempt.attempt.finished_at,
                error: attempt.attempt.error,
                blocks: attempt
                    .block_runs
                    .into_iter()
                    .map(|details| {
                        let block_run = details.block_run;
                        proto::EvidenceBlock {
                            block: block_run.block,
                            status: block_run.status.as_str().to_owned(),
                            tries: block_run.tries,
                            started_at: block_run.started_at,
                            finished_at: block_run.finished_at,
                            error: block_run.error,
                            reused_from_attempt: block_run.reused_from_attempt,
                        }
                    })
                    .collect(),
            })
            .collect(),
        failures: evidence
            .failures
            .into_iter()
            .map(|failure| proto::EvidenceFailure {
                attempt: failure.attempt,
                block: failure.block,
                error: failure.error,
                try_id: failure.try_id.map(|id| id.0),
                log_tail: failure
                    .log_tail
                    .into_iter()
                    .map(|line| proto::LogLine {
                        seq: 0,
                        at: line.at,
                        stream: line.stream,
                        text: line.text,
                    })
                    .collect(),
            })
            .collect(),
        artifacts: details
            .artifacts
            .into_iter()
            .map(convert::artifact)
            .collect(),
        resolved_by: evidence.resolved_by.map(|resolution| match resolution {
            Resolution::Attempt(attempt) => format!("attempt {attempt}"),
        }),
    }
}

fn time(at: Option<jiff::Timestamp>) -> String {
    at.map(|at| at.to_string())
        .unwrap_or_else(|| "-".to_owned())
}

/// Table cells cannot hold `|` or line breaks.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// Evidence as a Markdown document for an incident ticket.
pub fn evidence_markdown(evidence: &proto::Evidence) -> String {
    use std::fmt::Write;
    let run = &evidence.pipeline_run;
    let mut md = String::new();
    let _ = writeln!(md, "# Run {} of `{}`\n", run.id, run.pipeline);
    let _ = writeln!(md, "| | |\n|---|---|");
    let _ = writeln!(md, "| status | {} |", run.status);
    let _ = writeln!(md, "| pipeline version | `{}` |", run.pipeline_version);
    let invoked = &run.invoked_by;
    let _ = writeln!(
        md,
        "| invoked by | {}{}{} |",
        invoked.kind,
        invoked
            .name
            .as_deref()
            .map(|name| format!(" `{name}`"))
            .unwrap_or_default(),
        invoked
            .actor
            .as_deref()
            .map(|actor| format!(" by {}", cell(actor)))
            .unwrap_or_default()
    );
    let _ = writeln!(md, "| created (UTC) | {} |", run.created_at);
    let _ = writeln!(md, "| started (UTC) | {} |", time(run.started_at));
    let _ = writeln!(md, "| finished (UTC) | {} |", time(run.finished_at));
    if let Some(error) = &run.error {
        let _ = writeln!(md, "| error | {} |", cell(error));
    }
    if let Some(by) = &run.cancel_requested_by {
        let _ = writeln!(md, "| cancelled by | {} |", cell(by));
    }
    let _ = writeln!(md, "| SLA missed | {} |", run.sla_missed);
    let _ = writeln!(
        md,
        "| resolved by | {} |",
        evidence.resolved_by.as_deref().unwrap_or("not resolved")
    );

    let _ = writeln!(
        md,
        "\n## Variables\n\n| name | value | layer |\n|---|---|---|"
    );
    for (name, variable) in &run.variables {
        let value = match &variable.value {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        let _ = writeln!(md, "| {name} | {} | {} |", cell(&value), variable.layer);
    }

    for attempt in &evidence.attempts {
        let _ = writeln!(
            md,
            "\n## Attempt {} ({}, {})\n\n| block | status | tries | started (UTC) | finished (UTC) | error |\n|---|---|---|---|---|---|",
            attempt.attempt, attempt.status, attempt.mode
        );
        for block in &attempt.blocks {
            let status = match block.reused_from_attempt {
                Some(from) => format!("{} (reused from attempt {from})", block.status),
                None => block.status.clone(),
            };
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {} |",
                block.block,
                status,
                block.tries,
                time(block.started_at),
                time(block.finished_at),
                cell(block.error.as_deref().unwrap_or(""))
            );
        }
    }

    if !evidence.failures.is_empty() {
        let _ = writeln!(md, "\n## Failures");
        for failure in &evidence.failures {
            let _ = writeln!(
                md,
                "\n### `{}` in attempt {}: {}\n",
                failure.block,
                failure.attempt,
                failure.error.as_deref().unwrap_or("failed")
            );
            let _ = writeln!(md, "```text");
            for line in &failure.log_tail {
                let _ = writeln!(md, "{} {} {}", line.at, line.stream, line.text);
            }
            let _ = writeln!(md, "```");
        }
    }

    if !evidence.artifacts.is_empty() {
        let _ = writeln!(
            md,
            "\n## Artifacts\n\n| name | size | SHA-256 |\n|---|---|---|"
        );
        for artifact in &evidence.artifacts {
            let _ = writeln!(
                md,
                "| {} | {} | `{}` |",
                cell(&artifact.name),
                artifact.size,
                artifact.sha256
            );
        }
    }
    md
}
