//! Latency on a warm server: from the trigger request to the first block's
//! process running, and from a block's end to its successor's process
//! running, with the built-in agent and with a remote `sluice agent`.
//!
//! Both ends are read from the same clock: the bench notes the time just
//! before it sends `POST /api/pipelines/pair/runs`, and each block appends
//! bash's `$EPOCHREALTIME` (a builtin, no extra process) to a file as its
//! first and last command. So a sample holds everything a user waits for,
//! including bash's own start (the spawn floor of `overhead`).

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result};
use sluice_proto::TriggerRunRequest;

use crate::harness::{Database, Options, Project, Server, agent, now_secs, token, wait_until};
use crate::report::{Report, millis_summary, quantile};

fn pair(times: &str) -> String {
    format!(
        "blocks:\n  first:\n    run: |\n      echo \"$SLUICE_RUN_ID first_start $EPOCHREALTIME\" >> '{times}'\n      echo \"$SLUICE_RUN_ID first_end $EPOCHREALTIME\" >> '{times}'\n  second:\n    needs: [first]\n    run: |\n      echo \"$SLUICE_RUN_ID second_start $EPOCHREALTIME\" >> '{times}'\n"
    )
}

pub async fn latency(options: &Options, report: &mut Report) -> Result<()> {
    for remote in [false, true] {
        one(options, remote, report).await?;
    }
    Ok(())
}

async fn one(options: &Options, remote: bool, report: &mut Report) -> Result<()> {
    let mode = if remote {
        "remote agent"
    } else {
        "built-in agent"
    };
    eprintln!("latency, {mode}");
    let project = Project::new()?;
    // The blocks' timestamps are kept outside the project: a file that
    // changes with every run would make every run pin a new version of
    // the project's files.
    let outside = tempfile::Builder::new()
        .prefix("sluice-bench-times")
        .tempdir()?;
    let times = outside.path().join("times.log");
    let times_text = times.to_str().context("the temporary path is not UTF-8")?;
    project.pipeline("pair", &pair(times_text))?;
    let database = Database::sqlite();
    let operator = token(options, &project, &database, "bench", "operator")?;
    let mut extra = vec!["--auth"];
    if remote {
        extra.push("--no-local-agent");
    }
    let server = Server::start(options, &project, &database, &extra, Some(&operator)).await?;
    let _agent = if remote {
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
    let warmup = options.size(5, 1);
    let samples = options.size(200, 10);
    let mut sent = Vec::new();
    for index in 0..warmup + samples {
        let before = now_secs();
        let run = client
            .trigger_run("pair", &TriggerRunRequest::default(), None)
            .await?;
        let marker = format!("{} second_start", run.id);
        wait_until("the second block to start", Duration::from_secs(60), || {
            Ok(std::fs::read_to_string(&times)
                .unwrap_or_default()
                .contains(&marker))
        })
        .await?;
        // The next sample starts on an idle server: wait for the run's end.
        loop {
            let details = client.run_details(&run.id).await?;
            match details.pipeline_run.status.as_str() {
                "completed" => break,
                "failed" | "cancelled" => {
                    anyhow::bail!(
                        "run {} of pair ended {}",
                        run.id,
                        details.pipeline_run.status
                    )
                }
                _ => tokio::time::sleep(Duration::from_millis(5)).await,
            }
        }
        if index >= warmup {
            sent.push((run.id, before));
        }
    }
    let mut marks: HashMap<(String, String), f64> = HashMap::new();
    for line in std::fs::read_to_string(&times)?.lines() {
        let mut fields = line.split_whitespace();
        if let (Some(run), Some(mark), Some(at)) = (fields.next(), fields.next(), fields.next()) {
            marks.insert((run.to_owned(), mark.to_owned()), at.parse()?);
        }
    }
    let mark = |run: &str, name: &str| -> Result<f64> {
        marks
            .get(&(run.to_owned(), name.to_owned()))
            .copied()
            .with_context(|| format!("run {run} wrote no {name}"))
    };
    let mut to_start = Vec::new();
    let mut to_successor = Vec::new();
    for (run, before) in &sent {
        to_start.push(mark(run, "first_start")? - before);
        to_successor.push(mark(run, "second_start")? - mark(run, "first_end")?);
    }
    let p50 = quantile(&to_start, 0.5);
    report.judged(
        "latency",
        &format!("{mode}: trigger to first block start"),
        millis_summary(&to_start),
        "p50 < 10 ms",
        p50 < 0.010,
    );
    let p50 = quantile(&to_successor, 0.5);
    report.judged(
        "latency",
        &format!("{mode}: completion to successor start"),
        millis_summary(&to_successor),
        "p50 < 5 ms",
        p50 < 0.005,
    );
    Ok(())
}
