//! The `sluice` binary: parses the command line, opens the project and its
//! database, and hands the command to the engine, or, with `--server`, to a
//! server's REST API.
//!
//! Exit codes: 0 success (a run completed), 1 a run failed or was cancelled,
//! or sluice could not do what was asked, 2 bad input (invalid pipeline
//! files, unknown names, missing variables, bad arguments).

mod args;
mod backend;
mod commands;
mod context;
mod output;
mod render;

use std::process::ExitCode;

use clap::Parser;

use crate::args::{AgentsCommand, BlocksCommand, Cli, Command, RunsCommand, TokenCommand};

/// A command's failure: a message for stderr, an optional remedy, and the
/// exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
    pub hint: Option<String>,
}

impl Failure {
    pub fn bad_input(message: impl Into<String>, hint: Option<String>) -> Failure {
        Failure {
            code: 2,
            message: message.into(),
            hint,
        }
    }
}

impl From<sluice_engine::Error> for Failure {
    fn from(error: sluice_engine::Error) -> Failure {
        use sluice_engine::Error;
        let code = match &error {
            Error::NotFound(_)
            | Error::Conflict { .. }
            | Error::Invalid { .. }
            | Error::Variables(_)
            | Error::Pipeline(_) => 2,
            _ => 1,
        };
        let hint = error.hint().map(str::to_owned);
        let message = match &error {
            Error::Pipeline(diagnostics) => diagnostics
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n"),
            other => error_chain(other),
        };
        Failure {
            code,
            message,
            hint,
        }
    }
}

/// An error with its whole source chain: `outer: inner: innermost`.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

impl From<sluice_store::Error> for Failure {
    fn from(error: sluice_store::Error) -> Failure {
        sluice_engine::Error::from(error).into()
    }
}

impl From<sluice_store::blobs::Error> for Failure {
    fn from(error: sluice_store::blobs::Error) -> Failure {
        match error {
            sluice_store::blobs::Error::Config { message, hint } => {
                Failure::bad_input(message, Some(hint))
            }
            other => Failure {
                code: 1,
                message: error_chain(&other),
                hint: Some(
                    "check --blobs, --blobs-endpoint and the AWS_* credentials, and that the bucket exists"
                        .to_owned(),
                ),
            },
        }
    }
}

impl From<sluice_client::Error> for Failure {
    fn from(error: sluice_client::Error) -> Failure {
        // The server refused the request as asked (4xx): bad input, like the
        // same mistake in embedded mode. Anything else is sluice failing.
        let code = match error.status() {
            Some(status) if (400..500).contains(&status) => 2,
            _ => 1,
        };
        let hint = match error.code() {
            Some("unauthorized") => Some(
                "pass a valid API token with --token (or SLUICE_TOKEN); an admin creates one with `sluice token create`"
                    .to_owned(),
            ),
            _ => error.hint(),
        };
        Failure {
            code,
            message: error.to_string(),
            hint,
        }
    }
}

pub type CommandResult = Result<u8, Failure>;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("SLUICE_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(output::colour_enabled_for_stderr())
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(dispatch(cli));
    match result {
        Ok(code) => ExitCode::from(code),
        Err(failure) => {
            eprintln!("error: {}", failure.message);
            if let Some(hint) = failure.hint {
                eprintln!("hint: {hint}");
            }
            ExitCode::from(failure.code)
        }
    }
}

async fn dispatch(cli: Cli) -> CommandResult {
    match cli.command {
        Command::Init { dir } => commands::init(dir),
        Command::Validate { project } => commands::validate(&project),
        Command::Schema => commands::schema(),
        Command::Run(args) => commands::run::run(args).await,
        Command::Runs { command } => match command {
            RunsCommand::List(args) => commands::runs::list(args).await,
            RunsCommand::Show {
                run,
                output,
                server,
                project,
            } => commands::runs::show(&run, output, &server, &project).await,
            RunsCommand::Query(args) => commands::runs::query(args).await,
            RunsCommand::Diff {
                a,
                b,
                output,
                server,
                project,
            } => commands::diagnose::diff(&a, &b, output, &server, &project).await,
            RunsCommand::Evidence {
                run,
                format,
                server,
                project,
            } => commands::diagnose::evidence(&run, format, &server, &project).await,
            RunsCommand::Export(args) => commands::runs::export(args).await,
            RunsCommand::Logs(args) => commands::logs::logs(args).await,
            RunsCommand::Cancel {
                runs,
                server,
                project,
            } => commands::runs::cancel(&runs, &server, &project).await,
            RunsCommand::Retry(args) => commands::run::retry(args).await,
        },
        Command::Blocks { command } => match command {
            BlocksCommand::Output {
                block_run,
                sample,
                format,
                server,
                project,
            } => commands::blocks_output(&block_run, sample, format, &server, &project).await,
        },
        Command::Up(args) => commands::server::up(args).await,
        Command::Agent(args) => commands::agent::agent(args).await,
        Command::Agents {
            command:
                AgentsCommand::List {
                    output,
                    server,
                    project,
                },
        } => commands::agent::list(output, &server, &project).await,
        Command::Queue { command } => commands::queue::queue(command).await,
        Command::Triggers { command } => commands::triggers::triggers(command).await,
        Command::Backfill(args) => commands::backfill::backfill(args).await,
        Command::Backfills { command } => commands::backfill::backfills(command).await,
        Command::Gc(args) => commands::gc::gc(args).await,
        Command::Token { command } => match command {
            TokenCommand::Create {
                name,
                role,
                database,
                project,
            } => commands::server::token_create(&name, role, &database, &project).await,
            TokenCommand::List {
                output,
                database,
                project,
            } => commands::server::token_list(output, &database, &project).await,
            TokenCommand::Revoke {
                name,
                database,
                project,
            } => commands::server::token_revoke(&name, &database, &project).await,
        },
    }
}
