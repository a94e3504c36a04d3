//! `sluice run` and `sluice runs retry` in embedded mode: the engine runs in
//! this process on the project's SQLite file, shows progress, and the exit
//! code is the run's outcome. Ctrl-C cancels the run cleanly: its processes
//! are killed and it ends `cancelled`, never left `running`. With
//! `--server`, both commands hand over to [`super::remote`].

use std::collections::BTreeMap;
use std::io::Write;
use std::time::Instant;

use serde_json::Value;
use sluice_core::ids::RunId;
use sluice_core::status::{BlockRunStatus, RunStatus};
use sluice_core::vars::parse_assignment;
use sluice_engine::agent::{LocalAgent, Scope, drive_run, host_name};
use sluice_engine::{Engine, Event, RetryMode, RetryRequest, TriggerRequest};
use sluice_store::InvokedBy;

use crate::args::{OutputFormat, RetryArgs, RunArgs};
use crate::commands::remote;
use crate::{CommandResult, Failure, context, output, render};

/// Who is at the keyboard, for `invoked_by.actor` and the audit log.
pub fn actor() -> String {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("LOGNAME"))
        .unwrap_or_else(|_| "unknown".to_owned());
    format!("{user}@{}", host_name())
}

/// The exit code for a run's final status.
pub fn exit_code(status: RunStatus) -> u8 {
    match status {
        RunStatus::Completed => 0,
        _ => 1,
    }
}

/// The exit code for a run's final status as the API names it.
pub fn exit_code_of(status: &str) -> u8 {
    if status == RunStatus::Completed.as_str() {
        0
    } else {
        1
    }
}

fn read_variables_file(path: &std::path::Path) -> Result<BTreeMap<String, Value>, Failure> {
    let text = std::fs::read_to_string(path).map_err(|error| {
        Failure::bad_input(
            format!("cannot read variables file {}: {error}", path.display()),
            None,
        )
    })?;
    let is_json = path.extension().and_then(|ext| ext.to_str()) == Some("json");
    let parsed: Result<BTreeMap<String, Value>, String> = if is_json {
        serde_json::from_str(&text).map_err(|error| error.to_string())
    } else {
        serde_saphyr::from_str(&text).map_err(|error| error.to_string())
    };
    parsed.map_err(|error| {
        Failure::bad_input(
            format!("{}: {error}", path.display()),
            Some("the variables file must be a mapping of NAME: value (JSON or YAML)".to_owned()),
        )
    })
}

/// The variables of `-v NAME=VALUE` and `--variables-file`, the flags
/// winning over the file.
fn variables(args: &RunArgs) -> Result<BTreeMap<String, Value>, Failure> {
    let mut variables = match &args.variables_file {
        Some(path) => read_variables_file(path)?,
        None => BTreeMap::new(),
    };
    for assignment in &args.variables {
        let (name, value) = parse_assignment(assignment).map_err(|error| {
            Failure::bad_input(
                error.to_string(),
                Some("pass variables as -v NAME=VALUE".to_owned()),
            )
        })?;
        variables.insert(name, value);
    }
    Ok(variables)
}

pub async fn run(args: RunArgs) -> CommandResult {
    let variables = variables(&args)?;
    if let Some(server) = args.server.address() {
        return remote::run(server, &args, variables).await;
    }
    if args.detach {
        return Err(Failure::bad_input(
            "--detach needs a server: this process would stop the run it started",
            Some("pass --server URL (or set SLUICE_SERVER), or leave out --detach".to_owned()),
        ));
    }
    let engine = context::open(&args.project.dir()).await?;
    let mut agent = LocalAgent::register(engine.clone(), "embedded", Scope::Owned, None).await?;
    let events = engine.subscribe();
    let triggered = engine
        .trigger_run(TriggerRequest {
            pipeline: args.pipeline.clone(),
            variables,
            trigger_variables: BTreeMap::new(),
            priority: args.priority,
            invoked_by: InvokedBy {
                kind: "manual".to_owned(),
                name: None,
                actor: Some(actor()),
                parent_run_id: None,
            },
            idempotency_key: None,
            owner: Some(agent.executor().clone()),
        })
        .await;
    let run_id = match triggered {
        Ok(run_id) => run_id,
        Err(error) => {
            agent.shutdown().await;
            return Err(error.into());
        }
    };
    finish(&engine, &mut agent, &run_id, events, args.output).await
}

pub async fn retry(args: RetryArgs) -> CommandResult {
    if let Some(server) = args.server.address() {
        return remote::retry(server, &args).await;
    }
    let engine = context::open(&args.project.dir()).await?;
    let mode = match (&args.from, args.all) {
        (Some(block), _) => RetryMode::FromBlock(block.clone()),
        (None, true) => RetryMode::All,
        (None, false) => RetryMode::Incomplete,
    };
    let mut agent = LocalAgent::register(engine.clone(), "embedded", Scope::Owned, None).await?;
    let events = engine.subscribe();
    let retried = engine
        .retry_run(RetryRequest {
            run_id: RunId(args.run.clone()),
            mode,
            by: actor(),
            owner: Some(agent.executor().clone()),
            latest: args.latest,
        })
        .await;
    let run = match retried {
        Ok(run) => run,
        Err(error) => {
            agent.shutdown().await;
            return Err(error.into());
        }
    };
    eprintln!("run {} attempt {} started", run.id, run.attempt);
    finish(&engine, &mut agent, &run.id, events, args.output).await
}

/// Drives the run to its end with live progress, then prints the outcome.
async fn finish(
    engine: &Engine,
    agent: &mut LocalAgent,
    run_id: &RunId,
    events: tokio::sync::broadcast::Receiver<Event>,
    format: OutputFormat,
) -> CommandResult {
    let started = Instant::now();
    let progress = tokio::spawn(show_progress(
        engine.clone(),
        run_id.clone(),
        events,
        output::colour_enabled_for_stderr(),
    ));
    let interrupt_engine = engine.clone();
    let interrupt_run = run_id.clone();
    let interrupt = tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            eprintln!("interrupted: cancelling run {interrupt_run}");
            if let Err(error) = interrupt_engine
                .cancel_run(&interrupt_run, &format!("{} (ctrl-c)", actor()))
                .await
            {
                eprintln!("error: could not cancel run {interrupt_run}: {error}");
            }
        }
    });
    let driven = drive_run(engine, agent, run_id).await;
    interrupt.abort();
    let run = match driven {
        Ok(mut run) => {
            sluice_engine::queries::mask_run(&mut run);
            run
        }
        Err(error) => {
            progress.abort();
            return Err(error.into());
        }
    };
    // The progress task ends on the run's final event; give it the event.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(2), progress).await;
    let elapsed = started.elapsed().as_secs_f64();
    let code = exit_code(run.status);
    render::print_outcome(&sluice_api::convert::run(run), elapsed, format)?;
    Ok(code)
}

/// One block's line in the live view.
struct BlockLine {
    status: BlockRunStatus,
    try_number: u32,
    since: Option<Instant>,
    elapsed: Option<f64>,
}

/// Prints the run's progress on stderr until it ends: a live, redrawn list of
/// blocks on a terminal, plain lines otherwise.
async fn show_progress(
    engine: Engine,
    run_id: RunId,
    mut events: tokio::sync::broadcast::Receiver<Event>,
    terminal: bool,
) {
    let Ok(run) = engine.get_run(&run_id).await else {
        return;
    };
    let order: Vec<String> = match engine
        .pinned_pipeline(&run.pipeline, &run.pipeline_version)
        .await
    {
        Ok(spec) => spec.blocks.iter().map(|block| block.id.clone()).collect(),
        Err(_) => Vec::new(),
    };
    let mut lines: BTreeMap<String, BlockLine> = order
        .iter()
        .map(|block| {
            (
                block.clone(),
                BlockLine {
                    status: BlockRunStatus::Initial,
                    try_number: 0,
                    since: None,
                    elapsed: None,
                },
            )
        })
        .collect();
    let mut drawn = 0usize;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    loop {
        let event = tokio::select! {
            event = events.recv() => match event {
                Ok(event) => Some(event),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => None,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
            },
            _ = tick.tick() => None,
        };
        let mut done = false;
        match event {
            Some(Event::BlockRun {
                run_id: of,
                block,
                status,
                ..
            }) if of == run_id => {
                if let Some(line) = lines.get_mut(&block) {
                    if status == BlockRunStatus::Running && line.since.is_none() {
                        line.since = Some(Instant::now());
                    }
                    if status.is_terminal() {
                        line.elapsed = line.since.map(|since| since.elapsed().as_secs_f64());
                    }
                    line.status = status;
                    // A try's start is printed by its `TryStarted` event,
                    // which knows the try number.
                    if !terminal && status != BlockRunStatus::Running {
                        let detail = if status == BlockRunStatus::Queued && line.try_number > 0 {
                            " (retry pending)".to_owned()
                        } else {
                            line.elapsed
                                .filter(|_| status.is_terminal())
                                .map(|seconds| format!(" in {}", output::human(seconds)))
                                .unwrap_or_default()
                        };
                        eprintln!("{block} {status}{detail}");
                    }
                }
            }
            Some(Event::TryStarted {
                run_id: of,
                block,
                try_number,
                ..
            }) if of == run_id => {
                if let Some(line) = lines.get_mut(&block) {
                    line.try_number = try_number;
                    if !terminal {
                        if try_number > 1 {
                            eprintln!("{block} running (try {try_number})");
                        } else {
                            eprintln!("{block} running");
                        }
                    }
                }
            }
            Some(Event::Run {
                run_id: of, status, ..
            }) if of == run_id && status.is_terminal() => done = true,
            _ => {}
        }
        if terminal {
            let mut out = String::new();
            if drawn > 0 {
                out.push_str(&format!("\x1b[{drawn}A"));
            }
            for block in &order {
                let Some(line) = lines.get(block) else {
                    continue;
                };
                let elapsed = match (line.elapsed, line.since) {
                    (Some(seconds), _) => output::human(seconds),
                    (None, Some(since)) => output::human(since.elapsed().as_secs_f64()),
                    _ => String::new(),
                };
                let tries = if line.try_number > 1 {
                    format!(" (try {})", line.try_number)
                } else {
                    String::new()
                };
                out.push_str(&format!(
                    "\x1b[2K  {block:<24} {:<18} {elapsed}{tries}\n",
                    output::status(line.status.as_str(), output::colour_enabled_for_stderr())
                ));
            }
            drawn = order.len();
            let mut stderr = std::io::stderr().lock();
            let _ = stderr.write_all(out.as_bytes());
            let _ = stderr.flush();
        }
        if done {
            return;
        }
    }
}
