//! The one renderer of runs, block runs and outputs, from the wire types of
//! `sluice-proto`: tables for people and JSON for machines, the same whether
//! the data came from the embedded engine or from a server.

use std::collections::BTreeMap;

use serde::Serialize;
use sluice_proto as proto;

use crate::args::OutputFormat;
use crate::{Failure, output};

const RUN_COLUMNS: [&str; 8] = [
    "RUN",
    "PIPELINE",
    "STATUS",
    "ATTEMPT",
    "TRIGGER",
    "CREATED (UTC)",
    "DURATION",
    "ERROR",
];

/// Runs as a table (one line each) or a JSON array.
pub fn print_runs(runs: &[proto::Run], format: OutputFormat) -> Result<(), Failure> {
    match format {
        OutputFormat::Json => output::print_json(&runs),
        OutputFormat::Table => {
            print!("{}", runs_table(runs));
            Ok(())
        }
    }
}

pub fn runs_table(runs: &[proto::Run]) -> String {
    let colour = output::colour_enabled_for_stdout();
    let rows: Vec<Vec<String>> = runs
        .iter()
        .map(|run| {
            vec![
                run.id.clone(),
                run.pipeline.clone(),
                output::status(&run.status, colour),
                run.attempt.to_string(),
                run.invoked_by.kind.clone(),
                output::time(Some(run.created_at)),
                output::duration(run.started_at, run.finished_at),
                run.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(&RUN_COLUMNS, &rows)
}

/// The JSON of `runs show`: the API's run details with the run under
/// `run`, as the command has always printed it.
#[derive(Serialize)]
struct DetailsJson<'a> {
    run: &'a proto::Run,
    attempts: &'a [proto::Attempt],
    artifacts: &'a [proto::Artifact],
    notifications: &'a [proto::Notification],
}

pub fn print_details(details: &proto::RunDetails, format: OutputFormat) -> Result<(), Failure> {
    match format {
        OutputFormat::Json => output::print_json(&DetailsJson {
            run: &details.pipeline_run,
            attempts: &details.attempts,
            artifacts: &details.artifacts,
            notifications: &details.notifications,
        }),
        OutputFormat::Table => {
            print!("{}", details_text(details));
            Ok(())
        }
    }
}

/// The outcome of a run that was waited for: `run ID STATUS in 12.3s`, or
/// the run as JSON.
pub fn print_outcome(run: &proto::Run, elapsed: f64, format: OutputFormat) -> Result<(), Failure> {
    match format {
        OutputFormat::Json => output::print_json(run),
        OutputFormat::Table => {
            let colour = output::colour_enabled_for_stdout();
            let mut line = format!(
                "run {} {} in {}",
                run.id,
                output::status(&run.status, colour),
                output::human(elapsed)
            );
            if let Some(error) = &run.error {
                line.push_str(&format!(": {error}"));
            }
            println!("{line}");
            Ok(())
        }
    }
}

fn flag_list(run: &proto::Run) -> String {
    let mut flags = Vec::new();
    if run.timed_out {
        flags.push("timed_out");
    }
    if run.sla_missed {
        flags.push("sla_missed");
    }
    if run.sla_at_risk {
        flags.push("sla_at_risk");
    }
    if run.slow {
        flags.push("slow");
    }
    if run.resolved.is_some() {
        flags.push("resolved");
    }
    if flags.is_empty() {
        "-".to_owned()
    } else {
        flags.join(", ")
    }
}

/// Milliseconds as the durations of a run are shown.
fn millis(ms: u64) -> String {
    output::human(ms as f64 / 1000.0)
}

/// `median 1.2s, p95 3.4s`.
fn stats_text(stats: &proto::DurationStats) -> String {
    format!(
        "median {}, p95 {}",
        millis(stats.median_ms),
        millis(stats.p95_ms)
    )
}

/// The run's baseline line: its figures, how many runs they come from, and
/// the duration above which the run counts as slow.
fn baseline_text(baseline: &proto::RunBaseline) -> String {
    let threshold = (baseline.run.p95_ms as f64 * baseline.factor).round() as u64;
    format!(
        "{} of {} runs; slow above {}",
        stats_text(&baseline.run),
        baseline.run.samples,
        millis(threshold)
    )
}

/// The run's duration, with its baseline when it has one.
fn duration_text(run: &proto::Run) -> String {
    let actual = output::duration(run.started_at, run.finished_at);
    match &run.baseline {
        Some(baseline) => format!("{actual} (baseline {})", baseline_text(baseline)),
        None => actual,
    }
}

/// Who resolved a failed run: a later attempt of it, or another run.
fn resolution_text(run: &proto::Run, resolution: &proto::Resolution) -> String {
    let by = if resolution.run_id == run.id {
        format!("attempt {}", resolution.attempt)
    } else {
        format!("run {} (attempt {})", resolution.run_id, resolution.attempt)
    };
    format!("by {by} at {}", output::time(Some(resolution.at)))
}

fn notifications_table(notifications: &[proto::Notification]) -> String {
    let rows: Vec<Vec<String>> = notifications
        .iter()
        .map(|notification| {
            let status = if notification.status == "pending" {
                match notification.next_attempt_at {
                    Some(at) => format!("pending until {}", output::time(Some(at))),
                    None => "pending".to_owned(),
                }
            } else {
                notification.status.clone()
            };
            vec![
                format!("  {}", notification.event),
                notification.channel.clone(),
                notification.kind.clone(),
                notification
                    .target
                    .clone()
                    .unwrap_or_else(|| "-".to_owned()),
                status,
                format!("{}/{}", notification.attempts, notification.max_attempts),
                output::time(Some(notification.updated_at)),
                notification.last_error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    output::table(
        &[
            "  EVENT",
            "CHANNEL",
            "KIND",
            "TARGET",
            "STATUS",
            "ATTEMPTS",
            "UPDATED (UTC)",
            "LAST ERROR",
        ],
        &rows,
    )
}

fn variables_table(variables: &BTreeMap<String, proto::Variable>) -> String {
    let rows: Vec<Vec<String>> = variables
        .iter()
        .map(|(name, variable)| {
            let value = match &variable.value {
                serde_json::Value::String(text) => text.clone(),
                other => other.to_string(),
            };
            vec![format!("  {name}"), value, variable.layer.clone()]
        })
        .collect();
    output::table(&["  NAME", "VALUE", "LAYER"], &rows)
}

/// The human view of a run, in the order an operator reads it: what, when,
/// why it failed, with what inputs, then every attempt.
pub fn details_text(details: &proto::RunDetails) -> String {
    let colour = output::colour_enabled_for_stdout();
    let run = &details.pipeline_run;
    let mut out = String::new();
    let invoked = {
        let mut text = run.invoked_by.kind.clone();
        if let Some(name) = &run.invoked_by.name {
            text.push_str(&format!(" `{name}`"));
        }
        if let Some(actor) = &run.invoked_by.actor {
            text.push_str(&format!(" by {actor}"));
        }
        text
    };
    let lines = [
        ("run", run.id.clone()),
        ("pipeline", run.pipeline.clone()),
        ("version", run.pipeline_version.chars().take(12).collect()),
        (
            "files",
            run.project_version.as_deref().map_or_else(
                || "not pinned".to_owned(),
                |version| version.chars().take(12).collect(),
            ),
        ),
        ("status", output::status(&run.status, colour)),
        ("attempt", run.attempt.to_string()),
        ("invoked by", invoked),
        ("created", output::time(Some(run.created_at))),
        ("started", output::time(run.started_at)),
        ("finished", output::time(run.finished_at)),
        ("duration", duration_text(run)),
        ("flags", flag_list(run)),
    ];
    for (label, value) in lines {
        out.push_str(&format!("{label:<12} {value}\n"));
    }
    if let Some(at) = run.sla_at_risk_at {
        out.push_str(&format!(
            "{:<12} at risk since {}, deadline {}\n",
            "sla",
            output::time(Some(at)),
            output::time(run.sla_at)
        ));
    }
    if let Some(resolution) = &run.resolved {
        out.push_str(&format!(
            "{:<12} {}\n",
            "resolved",
            resolution_text(run, resolution)
        ));
    }
    if let (Some(scheduled_for), Some(start), Some(end)) =
        (run.scheduled_for, run.window_start, run.window_end)
    {
        out.push_str(&format!(
            "{:<12} {}\n{:<12} {} to {}\n",
            "scheduled",
            output::time(Some(scheduled_for)),
            "window",
            output::time(Some(start)),
            output::time(Some(end))
        ));
    }
    if let Some(at) = run.cancel_requested_at {
        out.push_str(&format!(
            "{:<12} {} by {}\n",
            "cancelled",
            output::time(Some(at)),
            run.cancel_requested_by.as_deref().unwrap_or("unknown")
        ));
    }
    if let Some(error) = &run.error {
        out.push_str(&format!("{:<12} {error}\n", "error"));
    }
    if !run.variables.is_empty() {
        out.push_str("\nvariables\n");
        out.push_str(&variables_table(&run.variables));
    }
    for attempt in details.attempts.iter().rev() {
        out.push_str(&attempt_text(attempt, run, colour));
    }
    if !details.artifacts.is_empty() {
        out.push_str("\nartifacts\n");
        let rows: Vec<Vec<String>> = details
            .artifacts
            .iter()
            .map(|artifact| {
                vec![
                    format!("  {}", artifact.name),
                    artifact.size.to_string(),
                    artifact.sha256.clone(),
                ]
            })
            .collect();
        out.push_str(&output::table(&["  NAME", "SIZE", "SHA-256"], &rows));
    }
    if !details.notifications.is_empty() {
        out.push_str("\nnotifications\n");
        out.push_str(&notifications_table(&details.notifications));
    }
    out
}

/// An attempt's block runs; with a baseline, each block's median and p95
/// stand next to its duration.
fn attempt_text(attempt: &proto::Attempt, run: &proto::Run, colour: bool) -> String {
    let baseline = run.baseline.as_ref();
    let mut out = format!(
        "\nattempt {} ({}) {}",
        attempt.attempt,
        attempt.mode,
        output::status(&attempt.status, colour)
    );
    if let Some(block) = &attempt.from_block {
        out.push_str(&format!(" from `{block}`"));
    }
    if let Some(by) = &attempt.created_by {
        out.push_str(&format!(" by {by}"));
    }
    // An attempt that ran other versions than the run is pinned to now
    // (before a retry with --latest) says which.
    let short = |version: Option<&str>| {
        version.map_or_else(
            || "not pinned".to_owned(),
            |version| version.chars().take(12).collect::<String>(),
        )
    };
    let other_pipeline = attempt
        .pipeline_version
        .as_deref()
        .is_some_and(|version| version != run.pipeline_version);
    let other_files =
        attempt.pipeline_version.is_some() && attempt.project_version != run.project_version;
    if other_pipeline || other_files {
        out.push_str(&format!(
            " with version {} files {}",
            short(attempt.pipeline_version.as_deref()),
            short(attempt.project_version.as_deref())
        ));
    }
    out.push('\n');
    let rows: Vec<Vec<String>> = attempt
        .block_runs
        .iter()
        .map(|block_run| {
            let mut note = block_run.error.clone().unwrap_or_default();
            if let Some(from) = block_run.reused_from_attempt {
                note = format!("reused from attempt {from}");
            }
            if block_run.timed_out {
                note = format!("timed out; {note}");
            }
            if let Some(reason) = &block_run.queue_reason {
                note = format!("waiting: {}", reason.message);
            }
            let outputs = block_run
                .outputs
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect::<Vec<_>>()
                .join(" ");
            let mut row = vec![
                format!("  {}", block_run.block),
                output::status(&block_run.status, colour),
                format!("{}/{}", block_run.tries.len(), block_run.max_tries),
                output::duration(block_run.started_at, block_run.finished_at),
            ];
            if let Some(baseline) = baseline {
                row.push(
                    baseline
                        .blocks
                        .get(&block_run.block)
                        .map_or_else(|| "-".to_owned(), stats_text),
                );
            }
            row.extend([block_run.id.clone(), outputs, note]);
            row
        })
        .collect();
    let mut header = vec!["  BLOCK", "STATUS", "TRIES", "DURATION"];
    if baseline.is_some() {
        header.push("BASELINE");
    }
    header.extend(["BLOCK RUN", "OUTPUTS", "NOTE"]);
    out.push_str(&output::table(&header, &rows));
    for block_run in &attempt.block_runs {
        if block_run.tries.len() > 1 || block_run.tries.iter().any(|t| t.error.is_some()) {
            for attempt_try in &block_run.tries {
                out.push_str(&format!(
                    "    {} try {}: {} {}{}\n",
                    block_run.block,
                    attempt_try.try_number,
                    attempt_try.status,
                    output::duration(Some(attempt_try.started_at), attempt_try.finished_at),
                    attempt_try
                        .error
                        .as_deref()
                        .map(|error| format!(" ({error})"))
                        .unwrap_or_default()
                ));
            }
        }
    }
    out
}

/// The table as CSV text with a header line, written as the engine writes
/// a data output.
pub fn table_csv(table: &proto::Table) -> Result<String, Failure> {
    let failed = |error: String| Failure {
        code: 1,
        message: format!("cannot write CSV: {error}"),
        hint: None,
    };
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer
        .write_record(&table.columns)
        .map_err(|error| failed(error.to_string()))?;
    for row in &table.rows {
        writer
            .write_record(row)
            .map_err(|error| failed(error.to_string()))?;
    }
    let bytes = writer
        .into_inner()
        .map_err(|error| failed(error.to_string()))?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
