//! `sluice agent`: a remote agent taking tries from a server over HTTP;
//! `sluice agents list`: the agents a server knows.

use sluice_agent::AgentOptions;
use tokio_util::sync::CancellationToken;

use crate::args::{AgentArgs, OutputFormat, ProjectArgs, ServerArgs};
use crate::commands::server::{parse_duration, parse_labels};
use crate::{CommandResult, Failure, context, output};

/// Registers with the server and executes tries until SIGTERM or Ctrl-C,
/// then drains.
pub async fn agent(args: AgentArgs) -> CommandResult {
    let drain_grace = parse_duration("--drain-grace", &args.drain_grace)?;
    let labels = parse_labels(&args.labels)?;
    let client = sluice_client::Client::new(&args.server, args.token.clone())
        .map_err(|error| Failure::bad_input(crate::error_chain(&error), error.hint()))?;
    // Tries run in copies of their runs' pinned project files; `--project`
    // is only where runs recorded without pinned files run.
    let base_dir = std::path::absolute(args.project.dir()).map_err(|error| {
        Failure::bad_input(
            format!("cannot resolve the project directory: {error}"),
            None,
        )
    })?;
    let project_dir = args.project.project.is_some().then(|| base_dir.clone());
    let host = sluice_engine::agent::host_name();
    let options = AgentOptions {
        name: args.name.clone().unwrap_or_else(|| host.clone()),
        labels,
        concurrency: args.concurrency,
        work_dir: args
            .work_dir
            .clone()
            .unwrap_or_else(|| base_dir.join(".sluice").join("agent")),
        project_dir,
        drain_grace,
        version: env!("CARGO_PKG_VERSION").to_owned(),
        host,
    };
    let drain = CancellationToken::new();
    // The signal watcher is owned here: it ends with the first signal, and
    // is aborted when the agent stops by itself.
    let watcher = tokio::spawn({
        let drain = drain.clone();
        async move {
            crate::commands::server::shutdown_signal().await;
            drain.cancel();
        }
    });
    eprintln!(
        "sluice agent `{}` is taking work from {}",
        options.name,
        client.server()
    );
    let result = sluice_agent::run(client, options, drain).await;
    watcher.abort();
    match result {
        Ok(summary) => {
            eprintln!(
                "sluice agent stopped after {} tries ({} interrupted)",
                summary.tries, summary.interrupted
            );
            Ok(0)
        }
        Err(error) => Err(Failure {
            code: 1,
            message: crate::error_chain(&error),
            hint: match &error {
                sluice_agent::Error::Register(inner) => inner.hint(),
                sluice_agent::Error::WorkDir { .. } | sluice_agent::Error::ProjectCache(_) => {
                    Some("choose a writable directory with --work-dir".to_owned())
                }
                sluice_agent::Error::Guardian(_) => None,
            },
        }),
    }
}

/// Lists remote agents, from a server with `--server`, otherwise from the
/// project's database.
pub async fn list(
    format: OutputFormat,
    server: &ServerArgs,
    project: &ProjectArgs,
) -> CommandResult {
    let agents = match server.address() {
        Some(address) => {
            let client = sluice_client::Client::new(address, server.token.clone())
                .map_err(|error| Failure::bad_input(crate::error_chain(&error), error.hint()))?;
            client
                .list_agents()
                .await
                .map_err(|error| Failure {
                    code: 1,
                    message: crate::error_chain(&error),
                    hint: error.hint(),
                })?
                .agents
        }
        None => {
            let engine = context::open(&project.dir()).await?;
            engine
                .list_agents()
                .await?
                .into_iter()
                .map(sluice_api::convert::agent)
                .collect()
        }
    };
    match format {
        OutputFormat::Json => output::print_json(&agents)?,
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = agents
                .iter()
                .map(|agent| {
                    vec![
                        agent.name.clone(),
                        agent
                            .labels
                            .iter()
                            .map(|(key, value)| format!("{key}={value}"))
                            .collect::<Vec<_>>()
                            .join(","),
                        agent.status.clone(),
                        agent.running_tries.to_string(),
                        output::time(Some(agent.last_heartbeat_at)),
                        agent.version.clone(),
                        agent.host.clone(),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(
                    &[
                        "NAME",
                        "LABELS",
                        "STATUS",
                        "RUNNING",
                        "LAST HEARTBEAT",
                        "VERSION",
                        "HOST"
                    ],
                    &rows
                )
            );
        }
    }
    Ok(0)
}
