//! `sluice runs list|show|logs|cancel`: reading and operating the run ledger.

use sluice_core::ids::{RunId, TryId};
use sluice_core::status::RunStatus;
use sluice_engine::Engine;
use sluice_engine::queries::RunDetails;
use sluice_store::{RunQuery, TryRecord};

use crate::args::{ListArgs, LogsArgs, OutputFormat, ProjectArgs};
use crate::commands::run::actor;
use crate::{CommandResult, Failure, context, output};

fn parse_time(flag: &str, text: &str) -> Result<jiff::Timestamp, Failure> {
    text.parse().map_err(|error| {
        Failure::bad_input(
            format!("--{flag} `{text}` is not an RFC 3339 time: {error}"),
            Some("write it like 2026-11-23T08:00:00Z or 2026-11-23T09:00:00+01:00".to_owned()),
        )
    })
}

pub async fn list(args: ListArgs) -> CommandResult {
    if args.limit == 0 || args.limit > 500 {
        return Err(Failure::bad_input(
            format!("--limit {} is out of range", args.limit),
            Some("pass a limit from 1 to 500".to_owned()),
        ));
    }
    let mut statuses = Vec::new();
    for status in &args.status {
        statuses.push(status.parse::<RunStatus>().map_err(|error| {
            Failure::bad_input(
                error.to_string(),
                Some("statuses are: initial, running, completed, failed, cancelled".to_owned()),
            )
        })?);
    }
    let mut created_after = args
        .after
        .as_deref()
        .map(|text| parse_time("after", text))
        .transpose()?;
    let created_before = args
        .before
        .as_deref()
        .map(|text| parse_time("before", text))
        .transpose()?;
    if let Some(since) = &args.since {
        let duration: sluice_core::duration::Duration = since.parse().map_err(|error| {
            Failure::bad_input(
                format!("--since `{since}`: {error}"),
                Some("write a duration like 90s, 30m, 6h or 2d".to_owned()),
            )
        })?;
        let start = sluice_engine::clock::subtract(jiff::Timestamp::now(), duration.0);
        created_after = Some(created_after.map_or(start, |after| after.max(start)));
    }
    let engine = context::open(&args.project.dir()).await?;
    let page = engine
        .list_runs(&RunQuery {
            pipelines: args.pipeline.clone(),
            statuses,
            tag: args.tag.clone(),
            trigger_kinds: Vec::new(),
            created_after,
            created_before,
            order: Default::default(),
            limit: args.limit,
            cursor: None,
        })
        .await?;
    match args.output {
        OutputFormat::Json => output::print_json(&page.runs)?,
        OutputFormat::Table => {
            let colour = output::colour_enabled_for_stdout();
            let rows: Vec<Vec<String>> = page
                .runs
                .iter()
                .map(|run| {
                    vec![
                        run.id.to_string(),
                        run.pipeline.clone(),
                        output::status(run.status.as_str(), colour),
                        run.attempt.to_string(),
                        run.invoked_by.kind.clone(),
                        output::time(Some(run.created_at)),
                        output::duration(run.started_at, run.finished_at),
                        run.error.clone().unwrap_or_default(),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(
                    &[
                        "RUN",
                        "PIPELINE",
                        "STATUS",
                        "ATTEMPT",
                        "TRIGGER",
                        "CREATED (UTC)",
                        "DURATION",
                        "ERROR"
                    ],
                    &rows
                )
            );
        }
    }
    Ok(0)
}

pub async fn show(run: &str, format: OutputFormat, project: &ProjectArgs) -> CommandResult {
    let engine = context::open(&project.dir()).await?;
    let details = engine.run_details(&RunId(run.to_owned())).await?;
    match format {
        OutputFormat::Json => output::print_json(&details)?,
        OutputFormat::Table => print!("{}", render_details(&details)),
    }
    Ok(0)
}

fn flag_list(run: &sluice_store::RunRecord) -> String {
    let mut flags = Vec::new();
    if run.timed_out {
        flags.push("timed_out");
    }
    if run.sla_missed {
        flags.push("sla_missed");
    }
    if flags.is_empty() {
        "-".to_owned()
    } else {
        flags.join(", ")
    }
}

/// The human view of a run, in the order an operator reads it: what, when,
/// why it failed, with what inputs, then every attempt.
pub fn render_details(details: &RunDetails) -> String {
    let colour = output::colour_enabled_for_stdout();
    let run = &details.run;
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
        ("run", run.id.to_string()),
        ("pipeline", run.pipeline.clone()),
        ("version", run.pipeline_version.chars().take(12).collect()),
        ("status", output::status(run.status.as_str(), colour)),
        ("attempt", run.attempt.to_string()),
        ("invoked by", invoked),
        ("created", output::time(Some(run.created_at))),
        ("started", output::time(run.started_at)),
        ("finished", output::time(run.finished_at)),
        (
            "duration",
            output::duration(run.started_at, run.finished_at),
        ),
        ("flags", flag_list(run)),
    ];
    for (label, value) in lines {
        out.push_str(&format!("{label:<12} {value}\n"));
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
    if !run.variables.0.is_empty() {
        out.push_str("\nvariables\n");
        let rows: Vec<Vec<String>> = run
            .variables
            .0
            .iter()
            .map(|(name, variable)| {
                let value = match &variable.value {
                    serde_json::Value::String(text) => text.clone(),
                    other => other.to_string(),
                };
                vec![
                    format!("  {name}"),
                    value,
                    serde_json::to_value(variable.layer)
                        .ok()
                        .and_then(|layer| layer.as_str().map(str::to_owned))
                        .unwrap_or_default(),
                ]
            })
            .collect();
        out.push_str(&output::table(&["  NAME", "VALUE", "LAYER"], &rows));
    }
    for attempt in details.attempts.iter().rev() {
        let record = &attempt.attempt;
        let mut title = format!(
            "\nattempt {} ({}) {}",
            record.attempt,
            record.mode,
            output::status(record.status.as_str(), colour)
        );
        if let Some(block) = &record.from_block {
            title.push_str(&format!(" from `{block}`"));
        }
        if let Some(by) = &record.created_by {
            title.push_str(&format!(" by {by}"));
        }
        out.push_str(&title);
        out.push('\n');
        let rows: Vec<Vec<String>> = attempt
            .block_runs
            .iter()
            .map(|details| {
                let block_run = &details.block_run;
                let mut note = block_run.error.clone().unwrap_or_default();
                if let Some(from) = block_run.reused_from_attempt {
                    note = format!("reused from attempt {from}");
                }
                if block_run.timed_out {
                    note = format!("timed out; {note}");
                }
                let outputs = block_run
                    .outputs
                    .iter()
                    .map(|(key, value)| format!("{key}={value}"))
                    .collect::<Vec<_>>()
                    .join(" ");
                vec![
                    format!("  {}", block_run.block),
                    output::status(block_run.status.as_str(), colour),
                    format!("{}/{}", block_run.tries, block_run.max_tries),
                    output::duration(block_run.started_at, block_run.finished_at),
                    block_run.id.to_string(),
                    outputs,
                    note,
                ]
            })
            .collect();
        out.push_str(&output::table(
            &[
                "  BLOCK",
                "STATUS",
                "TRIES",
                "DURATION",
                "BLOCK RUN",
                "OUTPUTS",
                "NOTE",
            ],
            &rows,
        ));
        for details in &attempt.block_runs {
            if details.tries.len() > 1 || details.tries.iter().any(|t| t.error.is_some()) {
                for attempt_try in &details.tries {
                    out.push_str(&format!(
                        "    {} try {}: {} {}{}\n",
                        details.block_run.block,
                        attempt_try.try_number,
                        attempt_try.status.as_str(),
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
    out
}

/// The tries whose logs to print, in order.
async fn selected_tries(
    engine: &Engine,
    args: &LogsArgs,
) -> Result<Vec<(String, TryRecord)>, Failure> {
    let details = engine.run_details(&RunId(args.run.clone())).await?;
    let attempt_number = args.attempt.unwrap_or(details.run.attempt);
    let attempt = details
        .attempts
        .iter()
        .find(|attempt| attempt.attempt.attempt == attempt_number)
        .ok_or_else(|| {
            Failure::bad_input(
                format!("run {} has no attempt {attempt_number}", args.run),
                Some(format!("its attempts are 1 to {}", details.run.attempt)),
            )
        })?;
    if let Some(block) = &args.block
        && !attempt
            .block_runs
            .iter()
            .any(|details| &details.block_run.block == block)
    {
        return Err(Failure::bad_input(
            format!("run {} has no block `{block}`", args.run),
            None,
        ));
    }
    let mut tries: Vec<(String, TryRecord)> = attempt
        .block_runs
        .iter()
        .filter(|details| {
            args.block
                .as_ref()
                .is_none_or(|block| &details.block_run.block == block)
        })
        .flat_map(|details| {
            details
                .tries
                .iter()
                .filter(|attempt_try| {
                    args.try_number
                        .is_none_or(|number| attempt_try.try_number == number)
                })
                .map(|attempt_try| (details.block_run.block.clone(), attempt_try.clone()))
        })
        .collect();
    tries.sort_by_key(|(_, attempt_try)| attempt_try.started_at);
    Ok(tries)
}

fn print_chunk(block: &str, try_number: u32, chunk: &sluice_store::LogChunk, prefix: bool) {
    for line in &chunk.lines {
        if prefix {
            println!("{block}#{try_number} | {}", line.text);
        } else {
            println!("{}", line.text);
        }
    }
}

pub async fn logs(args: LogsArgs) -> CommandResult {
    let engine = context::open(&args.project.dir()).await?;
    let prefix = args.block.is_none() || args.try_number.is_none();
    let mut printed: std::collections::HashMap<TryId, u64> = std::collections::HashMap::new();
    loop {
        let tries = selected_tries(&engine, &args).await?;
        for (block, attempt_try) in &tries {
            loop {
                let after = printed.get(&attempt_try.id).copied();
                let chunks = engine.read_log(&attempt_try.id, after, 100).await?;
                if chunks.is_empty() {
                    break;
                }
                for chunk in &chunks {
                    print_chunk(block, attempt_try.try_number, chunk, prefix);
                    printed.insert(attempt_try.id.clone(), chunk.seq);
                }
            }
        }
        if !args.follow {
            return Ok(0);
        }
        let run = engine.get_run(&RunId(args.run.clone())).await?;
        let still_writing = tries
            .iter()
            .any(|(_, attempt_try)| attempt_try.status == sluice_store::TryStatus::Running);
        if run.status.is_terminal() && !still_writing {
            return Ok(0);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

pub async fn cancel(runs: &[String], project: &ProjectArgs) -> CommandResult {
    let engine = context::open(&project.dir()).await?;
    let by = actor();
    let mut code = 0;
    for run in runs {
        match engine.cancel_run(&RunId(run.clone()), &by).await {
            Ok(record) => println!("run {} cancel requested ({})", record.id, record.status),
            Err(error) => {
                let failure = Failure::from(error);
                eprintln!("error: {}", failure.message);
                if let Some(hint) = failure.hint {
                    eprintln!("hint: {hint}");
                }
                code = code.max(failure.code);
            }
        }
    }
    Ok(code)
}
