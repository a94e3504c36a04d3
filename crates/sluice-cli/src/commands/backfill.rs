//! `sluice backfill PIPELINE --from T --to T` and `sluice backfills
//! list|show|pause|resume|cancel`.
//!
//! Without `--server`, `sluice backfill` creates the backfill on the
//! project's database and drives it in this process, like `sluice run`:
//! its runs are owned by this process's executor, and a line is printed as
//! each window ends. With `--server` it creates the backfill on the server
//! and returns its id; the server runs it. `--dry-run` only prints the
//! windows and which would be skipped.

use std::collections::HashSet;

use jiff::Timestamp;
use sluice_core::ids::BackfillId;
use sluice_engine::agent::{LocalAgent, Scope};
use sluice_engine::sluice_store::BackfillStatus;
use sluice_engine::{BackfillRequest, Engine};
use sluice_proto as proto;

use crate::args::{BackfillArgs, BackfillTarget, BackfillsCommand, OutputFormat};
use crate::backend::Backend;
use crate::commands::run::actor;
use crate::{CommandResult, Failure, output};

/// The most backfills one listing prints.
const MAX_LIMIT: u32 = 1_000;

/// An RFC 3339 time, or a date read as midnight UTC.
fn parse_time(flag: &str, text: &str) -> Result<Timestamp, Failure> {
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>()
        && let Ok(zoned) = date.to_zoned(jiff::tz::TimeZone::UTC)
    {
        return Ok(zoned.timestamp());
    }
    Err(Failure::bad_input(
        format!("{flag} `{text}` is not a time"),
        Some(
            "give an RFC 3339 time like 2026-01-01T00:00:00Z, or a date like 2026-01-01".to_owned(),
        ),
    ))
}

pub async fn backfill(args: BackfillArgs) -> CommandResult {
    let from = parse_time("--from", &args.from)?;
    let to = parse_time("--to", &args.to)?;
    let backend = Backend::open(&args.server, &args.project).await?;
    let engine = match backend {
        Backend::Server(client) => {
            let detail = client
                .create_backfill(&proto::BackfillRequest {
                    pipeline: args.pipeline.clone(),
                    trigger: args.trigger.clone(),
                    from,
                    to,
                    reverse: args.reverse,
                    max_concurrent: Some(args.max_concurrent),
                    rerun_completed: args.rerun_completed,
                    priority: args.priority,
                    dry_run: args.dry_run,
                })
                .await?;
            print_detail(&detail, args.output, args.dry_run)?;
            return Ok(0);
        }
        Backend::Embedded(engine) => engine,
    };
    let mut request = BackfillRequest {
        pipeline: args.pipeline.clone(),
        trigger: args.trigger.clone(),
        from,
        to,
        reverse: args.reverse,
        max_concurrent: Some(args.max_concurrent),
        rerun_completed: args.rerun_completed,
        priority: args.priority,
        by: actor(),
        owner: None,
    };
    if args.dry_run {
        let windows = engine.plan_backfill(&request).await?;
        let detail = proto::BackfillDetail {
            backfill: None,
            windows: windows
                .into_iter()
                .map(sluice_api::convert::backfill_window)
                .collect(),
        };
        print_detail(&detail, args.output, true)?;
        return Ok(0);
    }
    let mut agent = LocalAgent::register(engine.clone(), "embedded", Scope::Owned, None).await?;
    request.owner = Some(agent.executor().clone());
    let created = match engine.create_backfill(request).await {
        Ok(created) => created,
        Err(error) => {
            agent.shutdown().await;
            return Err(error.into());
        }
    };
    eprintln!("backfill {} of `{}` started", created.id, created.trigger);
    let driven = drive(&engine, &mut agent, &created.id, args.output).await;
    agent.shutdown().await;
    driven
}

/// Drives a backfill to its end in this process: reconcilers, the local
/// agent and its heartbeat, until the backfill ended and none of its tries
/// still executes. Ctrl-C cancels the backfill.
async fn drive(
    engine: &Engine,
    agent: &mut LocalAgent,
    id: &BackfillId,
    format: OutputFormat,
) -> CommandResult {
    let interrupt_engine = engine.clone();
    let interrupt_id = id.clone();
    let interrupt = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: cancelling backfill {interrupt_id}");
            if let Err(error) = interrupt_engine
                .cancel_backfill(&interrupt_id, &format!("{} (ctrl-c)", actor()))
                .await
            {
                eprintln!("error: could not cancel backfill {interrupt_id}: {error}");
            }
        }
    });
    let result = drive_loop(engine, agent, id, format).await;
    interrupt.abort();
    result
}

async fn drive_loop(
    engine: &Engine,
    agent: &mut LocalAgent,
    id: &BackfillId,
    format: OutputFormat,
) -> CommandResult {
    let heartbeat_every = engine.config().lease_ttl / 3;
    let mut last_heartbeat = tokio::time::Instant::now();
    let mut printed: HashSet<Timestamp> = HashSet::new();
    loop {
        engine.reconcile().await?;
        agent.fill().await?;
        let view = engine.get_backfill(id).await?;
        let detail = sluice_api::convert::backfill_detail(view.clone());
        if format == OutputFormat::Table {
            for window in &detail.windows {
                let ended = match window.state.as_str() {
                    "skipped" => true,
                    "run" => window.run_status.as_deref().is_some_and(|status| {
                        matches!(status, "completed" | "failed" | "cancelled")
                    }),
                    _ => false,
                };
                if ended && printed.insert(window.window_end) {
                    println!("{}", window_line(window));
                }
            }
        }
        if view.backfill.status.is_terminal() && agent.running() == 0 {
            let all_completed = detail.windows.iter().all(|window| {
                window.state == "skipped" || window.run_status.as_deref() == Some("completed")
            });
            if format == OutputFormat::Json {
                output::print_json(&detail)?;
            }
            eprintln!("backfill {id} {}", view.backfill.status);
            let succeeded = view.backfill.status == BackfillStatus::Completed && all_completed;
            return Ok(if succeeded { 0 } else { 1 });
        }
        if last_heartbeat.elapsed() >= heartbeat_every {
            agent.heartbeat().await?;
            last_heartbeat = tokio::time::Instant::now();
        }
        engine.wait_for_change().await;
    }
}

/// `WINDOW_START to WINDOW_END  STATE  RUN`.
fn window_line(window: &proto::BackfillWindow) -> String {
    let state = match window.state.as_str() {
        "run" => window.run_status.clone().unwrap_or_default(),
        other => other.to_owned(),
    };
    let run = window
        .run_id
        .as_deref()
        .or(window.completed_by.as_deref())
        .unwrap_or("-");
    format!(
        "{} to {}  {state}  {run}",
        output::time(Some(window.window_start)),
        output::time(Some(window.window_end)),
    )
}

fn windows_table(windows: &[proto::BackfillWindow], dry_run: bool) -> String {
    let rows: Vec<Vec<String>> = windows
        .iter()
        .map(|window| {
            let state = match (window.state.as_str(), dry_run) {
                ("pending", true) => "would run".to_owned(),
                ("skipped", true) => "would skip".to_owned(),
                ("run", _) => window.run_status.clone().unwrap_or_default(),
                (other, _) => other.to_owned(),
            };
            vec![
                output::time(Some(window.window_start)),
                output::time(Some(window.window_end)),
                state,
                window
                    .run_id
                    .clone()
                    .or(window.completed_by.clone())
                    .unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    output::table(&["WINDOW START", "WINDOW END", "STATE", "RUN"], &rows)
}

fn print_detail(
    detail: &proto::BackfillDetail,
    format: OutputFormat,
    dry_run: bool,
) -> Result<(), Failure> {
    match format {
        OutputFormat::Json => output::print_json(detail)?,
        OutputFormat::Table => {
            if let Some(backfill) = &detail.backfill {
                println!("{}", backfill.id);
                eprintln!(
                    "backfill {} of `{}`/`{}` is {}: {} windows",
                    backfill.id,
                    backfill.pipeline,
                    backfill.trigger,
                    backfill.status,
                    detail.windows.len()
                );
            } else {
                print!("{}", windows_table(&detail.windows, dry_run));
                let skipped = detail
                    .windows
                    .iter()
                    .filter(|window| window.state == "skipped")
                    .count();
                eprintln!(
                    "{} windows: {} would run, {skipped} would be skipped (already completed)",
                    detail.windows.len(),
                    detail.windows.len() - skipped
                );
            }
        }
    }
    Ok(())
}

pub async fn backfills(command: BackfillsCommand) -> CommandResult {
    match command {
        BackfillsCommand::List {
            limit,
            output: format,
            server,
            project,
        } => {
            if limit == 0 || limit > MAX_LIMIT {
                return Err(Failure::bad_input(
                    format!("--limit is {limit}; it must be from 1 to {MAX_LIMIT}"),
                    None,
                ));
            }
            let backfills = match Backend::open(&server, &project).await? {
                Backend::Embedded(engine) => engine
                    .list_backfills(limit)
                    .await?
                    .into_iter()
                    .map(sluice_api::convert::backfill)
                    .collect(),
                Backend::Server(client) => client.list_backfills(limit).await?.backfills,
            };
            match format {
                OutputFormat::Json => output::print_json(&proto::BackfillList { backfills })?,
                OutputFormat::Table => print!("{}", backfills_table(&backfills)),
            }
            Ok(0)
        }
        BackfillsCommand::Show(target) => {
            let detail = match Backend::open(&target.server, &target.project).await? {
                Backend::Embedded(engine) => sluice_api::convert::backfill_detail(
                    engine.get_backfill(&BackfillId(target.id.clone())).await?,
                ),
                Backend::Server(client) => client.backfill(&target.id).await?,
            };
            match target.output {
                OutputFormat::Json => output::print_json(&detail)?,
                OutputFormat::Table => {
                    if let Some(backfill) = &detail.backfill {
                        print!("{}", backfills_table(std::slice::from_ref(backfill)));
                    }
                    print!("{}", windows_table(&detail.windows, false));
                }
            }
            Ok(0)
        }
        BackfillsCommand::Pause(target) => act(target, "pause").await,
        BackfillsCommand::Resume(target) => act(target, "resume").await,
        BackfillsCommand::Cancel(target) => act(target, "cancel").await,
    }
}

async fn act(target: BackfillTarget, action: &str) -> CommandResult {
    let updated = match Backend::open(&target.server, &target.project).await? {
        Backend::Embedded(engine) => {
            let id = BackfillId(target.id.clone());
            let by = actor();
            let record = match action {
                "pause" => engine.pause_backfill(&id, &by).await?,
                "resume" => engine.resume_backfill(&id, &by).await?,
                _ => engine.cancel_backfill(&id, &by).await?,
            };
            sluice_api::convert::backfill(record)
        }
        Backend::Server(client) => client.backfill_action(&target.id, action).await?,
    };
    match target.output {
        OutputFormat::Json => output::print_json(&proto::BackfillEnvelope { backfill: updated })?,
        OutputFormat::Table => eprintln!("backfill {} is {}", updated.id, updated.status),
    }
    Ok(0)
}

fn backfills_table(backfills: &[proto::Backfill]) -> String {
    let rows: Vec<Vec<String>> = backfills
        .iter()
        .map(|backfill| {
            vec![
                backfill.id.clone(),
                backfill.pipeline.clone(),
                backfill.trigger.clone(),
                format!(
                    "{} to {}",
                    output::time(Some(backfill.from)),
                    output::time(Some(backfill.to))
                ),
                backfill.status.clone(),
                backfill.max_concurrent.to_string(),
                backfill.created_by.clone(),
            ]
        })
        .collect();
    output::table(
        &["ID", "PIPELINE", "TRIGGER", "RANGE", "STATUS", "MAX", "BY"],
        &rows,
    )
}
