//! Log ingest: a block printing 200 MB, against the same command writing to
//! /dev/null, with the built-in agent and with a remote agent, and the peak
//! memory of the server and the agent meanwhile; and the live-follow lag
//! from a line printed to the same line read from the log's SSE stream.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use sluice_client::{LogEvent, LogQuery};
use sluice_proto::TriggerRunRequest;

use crate::harness::{Database, Options, Project, Server, agent, now_secs, token, wait_for_runs};
use crate::report::{Report, mib, millis_summary};

/// 99 characters and a newline.
const LINE: &str = "2026-11-23T12:00:00Z INFO loader: wrote batch of 5000 rows to warehouse.orders in 0.42 s (ok)....";

fn loud_command(bytes: usize) -> String {
    // `yes` ends by SIGPIPE when `head` is done, which `pipefail` would
    // count as a failure of the block.
    format!("(yes '{LINE}' || true) | head -c {bytes}")
}

pub async fn logs(options: &Options, report: &mut Report) -> Result<()> {
    let bytes = options.size(200_000_000, 2_000_000);
    let command = loud_command(bytes);
    // The same command without sluice, its output thrown away.
    let mut baseline = Vec::new();
    for _ in 0..options.size(3, 1) {
        let started = Instant::now();
        let status = Command::new("bash")
            .args(["--noprofile", "--norc", "-eo", "pipefail", "-c"])
            .arg(format!("{command} > /dev/null"))
            .status()?;
        if !status.success() {
            bail!("the log command failed without sluice: {status}");
        }
        baseline.push(started.elapsed().as_secs_f64());
    }
    baseline.sort_by(f64::total_cmp);
    let baseline = baseline[baseline.len() / 2];
    report.info(
        "logs",
        "the command alone, to /dev/null",
        format!("{baseline:.2} s for {} MB", bytes / 1_000_000),
    );
    for remote in [false, true] {
        ingest(options, &command, bytes, remote, report).await?;
    }
    follow(options, report).await
}

async fn ingest(
    options: &Options,
    command: &str,
    bytes: usize,
    remote: bool,
    report: &mut Report,
) -> Result<()> {
    let mode = if remote {
        "remote agent"
    } else {
        "built-in agent"
    };
    eprintln!("logs, {mode}");
    let project = Project::new()?;
    project.pipeline(
        "loud",
        &format!("blocks:\n  print:\n    run: \"{command}\"\n"),
    )?;
    let database = Database::sqlite();
    let operator = token(options, &project, &database, "bench", "operator")?;
    let mut extra = vec!["--auth"];
    if remote {
        extra.push("--no-local-agent");
    }
    let server = Server::start(options, &project, &database, &extra, Some(&operator)).await?;
    let agent = if remote {
        let agent_token = token(options, &project, &database, "bench-agent", "agent")?;
        Some(agent(
            options,
            &project,
            &server,
            &agent_token,
            "bench-1",
            4,
        )?)
    } else {
        None
    };
    let client = server.client(Some(&operator))?;
    let started = Instant::now();
    client
        .trigger_run("loud", &TriggerRunRequest::default(), None)
        .await?;
    wait_for_runs(&server.http, "loud", 1, Duration::from_secs(900)).await?;
    let wall = started.elapsed().as_secs_f64();
    let rate = bytes as f64 / 1e6 / wall;
    report.judged(
        "logs",
        &format!("{mode}: log block, trigger to end"),
        format!("{wall:.2} s for {} MB ({rate:.0} MB/s)", bytes / 1_000_000),
        ">= 100 MB/s",
        rate >= 100.0,
    );
    let (_, server_peak) = server.process.memory_kib()?;
    report.judged(
        "logs",
        &format!("{mode}: server peak RSS"),
        mib(server_peak),
        "bounded: < 100 MiB",
        server_peak < 100 * 1024,
    );
    if let Some(agent) = &agent {
        let (_, agent_peak) = agent.memory_kib()?;
        report.judged(
            "logs",
            "remote agent: agent peak RSS",
            mib(agent_peak),
            "bounded: < 100 MiB",
            agent_peak < 100 * 1024,
        );
    }
    Ok(())
}

/// Prints `lines` lines 20 ms apart, each holding the time it was printed.
fn ticker(lines: usize) -> String {
    format!(
        "blocks:\n  tick:\n    run: |\n      sleep 1\n      for i in $(seq {lines}); do echo \"tick $EPOCHREALTIME\"; sleep 0.02; done\n"
    )
}

async fn follow(options: &Options, report: &mut Report) -> Result<()> {
    eprintln!("logs, live follow");
    let project = Project::new()?;
    let lines = options.size(250, 20);
    project.pipeline("ticker", &ticker(lines))?;
    let database = Database::sqlite();
    let operator = token(options, &project, &database, "bench", "operator")?;
    let server = Server::start(options, &project, &database, &["--auth"], Some(&operator)).await?;
    let client = server.client(Some(&operator))?;
    let run = client
        .trigger_run("ticker", &TriggerRunRequest::default(), None)
        .await?;
    let details = client.run_details(&run.id).await?;
    let block_run = details
        .attempts
        .last()
        .and_then(|attempt| attempt.block_runs.first())
        .context("the run has no block run")?
        .id
        .clone();
    let mut stream = client.log_stream(&block_run, &LogQuery::default()).await?;
    let mut lags = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while let Some(event) = tokio::time::timeout_at(deadline.into(), stream.next())
        .await
        .context("the log stream did not end in time")??
    {
        match event {
            LogEvent::Line(line) => {
                let seen = now_secs();
                if let Some(printed) = line.text.strip_prefix("tick ") {
                    lags.push(seen - printed.trim().parse::<f64>()?);
                }
            }
            LogEvent::End(_) => break,
            LogEvent::Try(_) => {}
        }
    }
    if lags.len() < lines {
        bail!("the log stream showed {} of {lines} lines", lags.len());
    }
    report.info(
        "logs",
        "live-follow lag (printed to read from SSE)",
        millis_summary(&lags),
    );
    Ok(())
}
