//! `sluice run` and `sluice runs retry` with `--server`: the server creates
//! and executes the run; this process only asks, watches and reports. `run`
//! waits for the outcome (following the run's live events, and reading the
//! run again now and then, since events are only hints) and exits with it,
//! like embedded mode; Ctrl-C asks the server to cancel the run.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::Value;
use sluice_client::{Client, LiveEvents};
use sluice_proto as proto;
use tokio::signal::unix::{Signal, SignalKind};

use crate::args::{OutputFormat, RetryArgs, RunArgs};
use crate::backend::client;
use crate::commands::run::exit_code_of;
use crate::{CommandResult, Failure, render};

/// How long to wait for an event before reading the run again.
const RECHECK: Duration = Duration::from_secs(1);

pub async fn run(
    server: &str,
    args: &RunArgs,
    variables: BTreeMap<String, Value>,
) -> CommandResult {
    let client = client(server, args.server.token.clone())?;
    // Listen for Ctrl-C before the run exists, so an interrupt at any moment
    // after it was created cancels it instead of killing this process.
    let mut interrupts =
        tokio::signal::unix::signal(SignalKind::interrupt()).map_err(|error| Failure {
            code: 1,
            message: format!("cannot listen for Ctrl-C: {error}"),
            hint: None,
        })?;
    let started = Instant::now();
    let request = proto::TriggerRunRequest {
        variables,
        priority: args.priority,
    };
    let run = tokio::select! {
        run = client.trigger_run(&args.pipeline, &request, None) => run?,
        _ = interrupts.recv() => {
            return Err(Failure {
                code: 1,
                message: "interrupted before the server answered; the run may exist".to_owned(),
                hint: Some(format!(
                    "look for it with `sluice runs list --server {}`",
                    client.server()
                )),
            });
        }
    };
    if args.detach {
        match args.output {
            OutputFormat::Json => crate::output::print_json(&run)?,
            OutputFormat::Table => println!("{}", run.id),
        }
        return Ok(0);
    }
    eprintln!("run {} started on {}", run.id, client.server());
    let run = wait(&client, &run.id, interrupts).await?;
    render::print_outcome(&run, started.elapsed().as_secs_f64(), args.output)?;
    Ok(exit_code_of(&run.status))
}

/// Asks the server for a new attempt and returns once it exists; the server
/// executes it.
pub async fn retry(server: &str, args: &RetryArgs) -> CommandResult {
    let client = client(server, args.server.token.clone())?;
    let (mode, block) = match (&args.from, args.all) {
        (Some(block), _) => (proto::RetryMode::FromBlock, Some(block.clone())),
        (None, true) => (proto::RetryMode::All, None),
        (None, false) => (proto::RetryMode::default(), None),
    };
    let request = proto::RetryRunRequest {
        mode,
        block,
        latest: args.latest,
    };
    let run = client.retry_run(&args.run, &request).await?;
    eprintln!(
        "run {} attempt {} started on {}",
        run.id,
        run.attempt,
        client.server()
    );
    render::print_runs(std::slice::from_ref(&run), args.output)?;
    Ok(0)
}

fn is_terminal(status: &str) -> bool {
    matches!(status, "completed" | "failed" | "cancelled")
}

/// Waits for the run to end, printing block progress on stderr, and
/// returns it as it ended.
async fn wait(
    client: &Client,
    run_id: &str,
    mut interrupts: Signal,
) -> Result<proto::Run, Failure> {
    // Subscribe before the first read, so no change falls between them. A
    // server whose stream cannot be opened is still waited for, by reading.
    let mut events: Option<LiveEvents> = client.events(Some(run_id)).await.ok();
    let mut cancel_sent = false;
    loop {
        let run = client.run_details(run_id).await?.pipeline_run;
        if is_terminal(&run.status) {
            return Ok(run);
        }
        let deadline = tokio::time::sleep(RECHECK);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                () = &mut deadline => break,
                interrupted = interrupts.recv(), if !cancel_sent => {
                    if interrupted.is_some() {
                        cancel_sent = true;
                        eprintln!("interrupted: cancelling run {run_id}");
                        if let Err(error) = client.cancel_run(run_id).await {
                            eprintln!("error: could not cancel run {run_id}: {error}");
                        }
                    }
                    break;
                }
                event = next_event(&mut events) => match event {
                    Some(proto::LiveEvent::Run { status, .. }) if is_terminal(&status) => break,
                    Some(event) => show_progress(&event),
                    // The stream ended: go on by reading.
                    None => events = None,
                },
            }
        }
    }
}

/// The next event, or never when there is no stream.
async fn next_event(events: &mut Option<LiveEvents>) -> Option<proto::LiveEvent> {
    match events {
        Some(stream) => stream.next().await.ok().flatten(),
        None => std::future::pending().await,
    }
}

/// A block's progress as a plain line on stderr.
fn show_progress(event: &proto::LiveEvent) {
    match event {
        proto::LiveEvent::TryStarted {
            block, try_number, ..
        } => {
            if *try_number > 1 {
                eprintln!("{block} running (try {try_number})");
            } else {
                eprintln!("{block} running");
            }
        }
        proto::LiveEvent::BlockRun { block, status, .. } if status != "running" => {
            eprintln!("{block} {status}");
        }
        _ => {}
    }
}
