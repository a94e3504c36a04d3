//! Throughput: sustained block runs per second with the built-in agent and
//! with four remote agents, on SQLite and PostgreSQL; and a queue of 10,000
//! waiting block runs: how fast tries are claimed from it, and the server's
//! memory while it holds them.

use std::time::{Duration, Instant};

use anyhow::{Result, bail};
use sluice_proto::{ClaimTryRequest, RegisterAgentRequest, TriggerRunRequest};

use crate::harness::{Database, Options, Process, Project, Server, agent, token, wait_for_runs};
use crate::report::{Report, mib};

/// `width` independent blocks, each `true`.
fn wide(width: usize) -> String {
    let mut yaml = String::from("blocks:\n");
    for i in 0..width {
        yaml.push_str(&format!("  b{i}:\n    run: 'true'\n"));
    }
    yaml
}

pub async fn throughput(options: &Options, report: &mut Report) -> Result<()> {
    for agents in [0, 4] {
        sustained(options, &Database::sqlite(), agents, report).await?;
    }
    match &options.postgres {
        Some(url) => {
            for agents in [0, 4] {
                let database = Database::postgres(url, "throughput").await?;
                let outcome = sustained(options, &database, agents, report).await;
                database.drop_schema().await?;
                outcome?;
            }
        }
        None => {
            for agents in ["built-in agent", "4 remote agents"] {
                report.skipped(
                    "throughput",
                    &format!("PostgreSQL, {agents}: block runs/s"),
                    "no --postgres URL",
                );
            }
        }
    }
    queue(options, &Database::sqlite(), report).await?;
    match &options.postgres {
        Some(url) => {
            let database = Database::postgres(url, "queue").await?;
            let outcome = queue(options, &database, report).await;
            database.drop_schema().await?;
            outcome?;
        }
        None => {
            for metric in ["enqueue", "claim rate", "server RSS"] {
                report.skipped(
                    "throughput",
                    &format!("PostgreSQL, 10,000 queued: {metric}"),
                    "no --postgres URL",
                );
            }
        }
    }
    Ok(())
}

/// A server (with its built-in agent when `agents` is 0, else with that
/// many remote agents) and an operator token.
async fn world(
    options: &Options,
    project: &Project,
    database: &Database,
    agents: usize,
) -> Result<(Server, Vec<Process>, String)> {
    let operator = token(options, project, database, "bench", "operator")?;
    let mut extra = vec!["--auth"];
    if agents > 0 {
        extra.push("--no-local-agent");
    }
    let server = Server::start(options, project, database, &extra, Some(&operator)).await?;
    let mut processes = Vec::new();
    if agents > 0 {
        let agent_token = token(options, project, database, "bench-agent", "agent")?;
        for index in 0..agents {
            processes.push(agent(
                options,
                project,
                &server,
                &agent_token,
                &format!("bench-{index}"),
                4,
            )?);
        }
    }
    Ok((server, processes, operator))
}

async fn sustained(
    options: &Options,
    database: &Database,
    agents: usize,
    report: &mut Report,
) -> Result<()> {
    let mode = if agents == 0 {
        "built-in agent".to_owned()
    } else {
        format!("{agents} remote agents")
    };
    eprintln!("throughput, {}, {mode}", database.name());
    let width = options.size(50, 5);
    let runs = options.size(40, 2);
    let project = Project::new()?;
    project.pipeline("wide", &wide(width))?;
    let (server, _agents, operator) = world(options, &project, database, agents).await?;
    let client = server.client(Some(&operator))?;
    // One run first, so every agent is registered and the server warm.
    client
        .trigger_run("wide", &TriggerRunRequest::default(), None)
        .await?;
    wait_for_runs(&server.http, "wide", 1, Duration::from_secs(300)).await?;
    let started = Instant::now();
    for _ in 0..runs {
        client
            .trigger_run("wide", &TriggerRunRequest::default(), None)
            .await?;
    }
    wait_for_runs(
        &server.http,
        "wide",
        runs as u64 + 1,
        Duration::from_secs(900),
    )
    .await?;
    let elapsed = started.elapsed().as_secs_f64();
    let rate = (runs * width) as f64 / elapsed;
    let metric = format!("{}, {mode}: block runs/s", database.name());
    let value = format!(
        "{rate:.0}/s ({} block runs in {elapsed:.2} s)",
        runs * width
    );
    if database.url.is_none() {
        report.judged("throughput", &metric, value, ">= 300/s", rate >= 300.0);
    } else {
        report.info("throughput", &metric, value);
    }
    Ok(())
}

async fn queue(options: &Options, database: &Database, report: &mut Report) -> Result<()> {
    eprintln!("throughput, {}, a queue of 10,000", database.name());
    let width = options.size(100, 10);
    let runs = options.size(100, 5);
    let project = Project::new()?;
    project.pipeline("deep", &wide(width))?;
    // No agent at all: every block run waits in the queue.
    let operator = token(options, &project, database, "bench", "operator")?;
    let agent_token = token(options, &project, database, "bench-agent", "agent")?;
    let server = Server::start(
        options,
        &project,
        database,
        &["--auth", "--no-local-agent", "--lease-ttl", "10m"],
        Some(&operator),
    )
    .await?;
    let client = server.client(Some(&operator))?;
    let started = Instant::now();
    let mut last = String::new();
    for _ in 0..runs {
        last = client
            .trigger_run("deep", &TriggerRunRequest::default(), None)
            .await?
            .id;
    }
    // Queued once every run is admitted and the last run's blocks queued.
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        let page = server
            .http
            .get("/api/pipeline_runs?pipeline=deep&limit=1&summary=true")
            .await?;
        let running = page["summary"]["running"].as_u64().unwrap_or(0);
        let details = client.run_details(&last).await?;
        let queued = details
            .attempts
            .last()
            .map(|attempt| {
                attempt
                    .block_runs
                    .iter()
                    .filter(|block| block.status == "queued")
                    .count()
            })
            .unwrap_or(0);
        if running == runs as u64 && queued == width {
            break;
        }
        if Instant::now() > deadline {
            bail!(
                "the queue did not fill: {running} runs running, {queued} block runs of the last queued"
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let enqueue = started.elapsed().as_secs_f64();
    let total = runs * width;
    let name = database.name();
    report.info(
        "throughput",
        &format!("{name}, 10,000 queued: enqueue"),
        format!("{total} block runs queued in {enqueue:.2} s ({runs} API triggers)"),
    );
    let (rss, _) = server.process.memory_kib()?;

    let agent_client = server.client(Some(&agent_token))?;
    let registered = agent_client
        .register_agent(&RegisterAgentRequest {
            name: "bench-claimer".to_owned(),
            labels: Default::default(),
            version: env!("CARGO_PKG_VERSION").to_owned(),
            host: "localhost".to_owned(),
            pid: std::process::id(),
        })
        .await?;
    let claims = options.size(1000, 20);
    let started = Instant::now();
    for _ in 0..claims {
        let claimed = agent_client
            .claim_try(&ClaimTryRequest {
                agent_id: registered.agent_id.clone(),
                wait_ms: Some(0),
            })
            .await?;
        if claimed.is_none() {
            bail!("a claim found nothing with {total} block runs queued");
        }
    }
    let rate = claims as f64 / started.elapsed().as_secs_f64();
    report.info(
        "throughput",
        &format!("{name}, 10,000 queued: claim rate"),
        format!("{rate:.0} claims/s ({claims} claims over HTTP, one client)"),
    );
    let (after, peak) = server.process.memory_kib()?;
    report.info(
        "throughput",
        &format!("{name}, 10,000 queued: server RSS"),
        format!(
            "{} holding the queue, {} after the claims (peak {})",
            mib(rss),
            mib(after),
            mib(peak)
        ),
    );
    Ok(())
}
