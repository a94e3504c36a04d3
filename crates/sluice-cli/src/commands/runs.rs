//! `sluice runs list|show|query|export|cancel`: reading and operating the
//! run ledger, on the project's database or through a server's API.

use std::io::Write;

use jiff::Timestamp;
use sluice_core::status::RunStatus;

use crate::args::{
    ExportArgs, ExportFormatArg, ListArgs, OutputFormat, ProjectArgs, QueryArgs, ServerArgs,
};
use crate::backend::{Backend, MAX_PAGE, RunFilter};
use crate::commands::run::actor;
use crate::{CommandResult, Failure, render};

fn parse_time(flag: &str, text: &str) -> Result<Timestamp, Failure> {
    text.parse().map_err(|error| {
        Failure::bad_input(
            format!("--{flag} `{text}` is not an RFC 3339 time: {error}"),
            Some("write it like 2026-11-23T08:00:00Z or 2026-11-23T09:00:00+01:00".to_owned()),
        )
    })
}

fn parse_statuses(values: &[String]) -> Result<Vec<RunStatus>, Failure> {
    values
        .iter()
        .map(|status| {
            status.parse::<RunStatus>().map_err(|error| {
                Failure::bad_input(
                    error.to_string(),
                    Some("statuses are: initial, running, completed, failed, cancelled".to_owned()),
                )
            })
        })
        .collect()
}

/// The filters as given on the command line, before they are checked.
struct FilterArgs<'a> {
    pipelines: &'a [String],
    statuses: &'a [String],
    tag: Option<&'a String>,
    triggers: &'a [String],
    text: Option<&'a String>,
    since: Option<&'a String>,
    after: Option<&'a String>,
    before: Option<&'a String>,
}

impl FilterArgs<'_> {
    fn check(&self) -> Result<RunFilter, Failure> {
        let mut after = self
            .after
            .map(|text| parse_time("after", text))
            .transpose()?;
        let before = self
            .before
            .map(|text| parse_time("before", text))
            .transpose()?;
        if let Some(since) = self.since {
            let duration: sluice_core::duration::Duration = since.parse().map_err(|error| {
                Failure::bad_input(
                    format!("--since `{since}`: {error}"),
                    Some("write a duration like 90s, 30m, 6h or 2d".to_owned()),
                )
            })?;
            let start = sluice_engine::clock::subtract(Timestamp::now(), duration.0);
            after = Some(after.map_or(start, |after| after.max(start)));
        }
        if let (Some(after), Some(before)) = (after, before)
            && after >= before
        {
            return Err(Failure::bad_input(
                format!("the window is empty: {after} is not before {before}"),
                Some("pass an --after time earlier than the --before time".to_owned()),
            ));
        }
        Ok(RunFilter {
            pipelines: self.pipelines.to_vec(),
            statuses: parse_statuses(self.statuses)?,
            tag: self.tag.cloned(),
            triggers: self.triggers.to_vec(),
            text: self.text.cloned(),
            after,
            before,
            ..RunFilter::default()
        })
    }
}

pub async fn list(args: ListArgs) -> CommandResult {
    if args.limit == 0 || args.limit > MAX_PAGE {
        return Err(Failure::bad_input(
            format!("--limit {} is out of range", args.limit),
            Some(format!("pass a limit from 1 to {MAX_PAGE}")),
        ));
    }
    let filter = FilterArgs {
        pipelines: &args.pipeline,
        statuses: &args.status,
        tag: args.tag.as_ref(),
        triggers: &args.trigger,
        text: args.search.as_ref(),
        since: args.since.as_ref(),
        after: args.after.as_ref(),
        before: args.before.as_ref(),
    }
    .check()?;
    let filter = RunFilter {
        slow: args.slow,
        unresolved: args.unresolved,
        ..filter
    };
    let backend = Backend::open(&args.server, &args.project).await?;
    let page = backend.list_runs(&filter, args.limit, None).await?;
    render::print_runs(&page.runs, args.output)?;
    Ok(0)
}

/// Every run created in `[after, before)`, read page by page.
pub async fn query(args: QueryArgs) -> CommandResult {
    let filter = FilterArgs {
        pipelines: &args.pipeline,
        statuses: &args.status,
        tag: None,
        triggers: &[],
        text: None,
        since: None,
        after: Some(&args.after),
        before: Some(&args.before),
    }
    .check()?;
    let backend = Backend::open(&args.server, &args.project).await?;
    let runs = backend.all_runs(&filter).await?;
    render::print_runs(&runs, args.output)?;
    Ok(0)
}

pub async fn show(
    run: &str,
    format: OutputFormat,
    server: &ServerArgs,
    project: &ProjectArgs,
) -> CommandResult {
    let backend = Backend::open(server, project).await?;
    let details = backend.run_details(run).await?;
    render::print_details(&details, format)?;
    Ok(0)
}

pub async fn cancel(runs: &[String], server: &ServerArgs, project: &ProjectArgs) -> CommandResult {
    let backend = Backend::open(server, project).await?;
    let by = actor();
    let mut code = 0;
    for run in runs {
        match backend.cancel_run(run, &by).await {
            Ok(run) => println!("run {} cancel requested ({})", run.id, run.status),
            Err(failure) => {
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

/// Writes every matching run to stdout: streamed from the server's export,
/// or read page by page from the engine and encoded exactly as the server
/// encodes it.
pub async fn export(args: ExportArgs) -> CommandResult {
    let filter = FilterArgs {
        pipelines: &args.pipeline,
        statuses: &args.status,
        tag: args.tag.as_ref(),
        triggers: &args.trigger,
        text: None,
        since: args.since.as_ref(),
        after: args.after.as_ref(),
        before: args.before.as_ref(),
    }
    .check()?;
    let backend = Backend::open(&args.server, &args.project).await?;
    let mut stdout = std::io::stdout().lock();
    let written = match &backend {
        Backend::Server(client) => {
            let format = match args.format {
                ExportFormatArg::Jsonl => sluice_client::ExportFormat::Jsonl,
                ExportFormatArg::Csv => sluice_client::ExportFormat::Csv,
            };
            let mut export = client.export_runs(&filter.wire(), format).await?;
            loop {
                match export.chunk().await? {
                    Some(bytes) => {
                        if let Err(error) = stdout.write_all(&bytes) {
                            break Err(error);
                        }
                    }
                    None => break Ok(()),
                }
            }
        }
        Backend::Embedded(_) => {
            let mut result = Ok(());
            if args.format == ExportFormatArg::Csv {
                result = stdout.write_all(sluice_api::export::csv_header().as_bytes());
            }
            let mut cursor = None;
            while result.is_ok() {
                let page = backend.list_runs(&filter, MAX_PAGE, cursor).await?;
                let mut chunk = String::new();
                for run in &page.runs {
                    chunk.push_str(&match args.format {
                        ExportFormatArg::Jsonl => sluice_api::export::jsonl_line(run),
                        ExportFormatArg::Csv => sluice_api::export::csv_line(run),
                    });
                }
                result = stdout.write_all(chunk.as_bytes());
                match page.next {
                    Some(next) => cursor = Some(next),
                    None => break,
                }
            }
            result
        }
    };
    match written.and_then(|()| stdout.flush()) {
        Ok(()) => Ok(0),
        // A reader that stopped early (`| head`) is not an error.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => Ok(0),
        Err(error) => Err(Failure {
            code: 1,
            message: format!("cannot write the export: {error}"),
            hint: None,
        }),
    }
}
