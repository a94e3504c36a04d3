//! `sluice queue list|move|cancel`: the queued block runs in claim order
//! with the reason each waits, reordering them, and cancelling the runs
//! whose queued block runs match a filter; on the project's database or
//! through a server's API (`--server`), printed the same either way.

use std::collections::BTreeMap;

use sluice_core::ids::BlockRunId;
use sluice_engine::queue::QueueCancel;
use sluice_engine::sluice_store::{QueueMove, QueuePlace};
use sluice_proto as proto;

use crate::args::{OutputFormat, ProjectArgs, QueueCancelArgs, QueueCommand, ServerArgs};
use crate::backend::Backend;
use crate::commands::run::actor;
use crate::commands::server::parse_labels;
use crate::{CommandResult, Failure, output};

pub async fn queue(command: QueueCommand) -> CommandResult {
    match command {
        QueueCommand::List {
            output,
            server,
            project,
        } => {
            let queue = match Backend::open(&server, &project).await? {
                Backend::Embedded(engine) => sluice_api::convert::queue_view(engine.queue().await?),
                Backend::Server(client) => client.list_queue().await?,
            };
            print_queue(&queue, output)
        }
        QueueCommand::Move {
            block_run,
            to,
            before,
            output,
            server,
            project,
        } => move_block_run(block_run, to, before, output, &server, &project).await,
        QueueCommand::Cancel(args) => cancel(args).await,
    }
}

async fn move_block_run(
    block_run: String,
    to: Option<u32>,
    before: Option<String>,
    format: OutputFormat,
    server: &ServerArgs,
    project: &ProjectArgs,
) -> CommandResult {
    if to == Some(0) {
        return Err(Failure::bad_input(
            "--to counts from 1",
            Some("`--to 1` puts the block run first among those of its priority".to_owned()),
        ));
    }
    let queue = match Backend::open(server, project).await? {
        Backend::Embedded(engine) => {
            let place = match (to, &before) {
                (Some(to), _) => QueuePlace::Position(to),
                (None, Some(before)) => QueuePlace::Before(BlockRunId(before.clone())),
                (None, None) => {
                    return Err(Failure::bad_input(
                        "give --to N or --before BLOCK_RUN",
                        None,
                    ));
                }
            };
            let change = QueueMove {
                block_run: BlockRunId(block_run.clone()),
                place,
            };
            engine.move_in_queue(&change, &actor()).await?;
            sluice_api::convert::queue_view(engine.queue().await?)
        }
        Backend::Server(client) => {
            client
                .move_in_queue(&proto::QueueMoveRequest {
                    block_run_id: block_run.clone(),
                    to,
                    before,
                })
                .await?
        }
    };
    eprintln!("moved block run {block_run}");
    print_queue(&queue, format)
}

async fn cancel(args: QueueCancelArgs) -> CommandResult {
    let labels: BTreeMap<String, String> = parse_labels(&args.labels.join(","))?;
    if args.pipeline.is_none() && labels.is_empty() && !args.all {
        return Err(Failure::bad_input(
            "no filter given: this would cancel every queued run",
            Some("filter with --pipeline or --label, or pass --all".to_owned()),
        ));
    }
    let response = match Backend::open(&args.server, &args.project).await? {
        Backend::Embedded(engine) => {
            let filter = QueueCancel {
                pipeline: args.pipeline.clone(),
                labels,
                dry_run: args.dry_run,
            };
            let runs = engine.cancel_queued(&filter, &actor()).await?;
            proto::QueueCancelResponse {
                run_ids: runs.into_iter().map(|run| run.0).collect(),
                dry_run: args.dry_run,
            }
        }
        Backend::Server(client) => {
            client
                .cancel_queued(&proto::QueueCancelRequest {
                    pipeline: args.pipeline.clone(),
                    labels,
                    dry_run: args.dry_run,
                })
                .await?
        }
    };
    match args.output {
        OutputFormat::Json => output::print_json(&response)?,
        OutputFormat::Table => {
            for run in &response.run_ids {
                println!("{run}");
            }
        }
    }
    let verb = if response.dry_run {
        "would cancel"
    } else {
        "cancelled"
    };
    eprintln!("{verb} {} run(s)", response.run_ids.len());
    Ok(0)
}

fn print_queue(queue: &proto::Queue, format: OutputFormat) -> CommandResult {
    match format {
        OutputFormat::Json => output::print_json(queue)?,
        OutputFormat::Table => print!("{}", queue_text(queue)),
    }
    Ok(0)
}

/// The queue as tables: queued block runs in claim order, then the runs
/// waiting to be admitted (when there are any).
pub fn queue_text(queue: &proto::Queue) -> String {
    let rows: Vec<Vec<String>> = queue
        .block_runs
        .iter()
        .map(|queued| {
            vec![
                queued.position.to_string(),
                queued.priority.to_string(),
                queued.pipeline.clone(),
                queued.block.clone(),
                queued.block_run_id.clone(),
                output::time(queued.queued_at),
                labels_text(&queued.labels),
                queued.reason.message.clone(),
            ]
        })
        .collect();
    let mut out = output::table(
        &[
            "POS",
            "PRIORITY",
            "PIPELINE",
            "BLOCK",
            "BLOCK RUN",
            "QUEUED",
            "LABELS",
            "WAITING FOR",
        ],
        &rows,
    );
    if !queue.runs.is_empty() {
        let rows: Vec<Vec<String>> = queue
            .runs
            .iter()
            .map(|waiting| {
                vec![
                    waiting.run_id.clone(),
                    waiting.pipeline.clone(),
                    waiting.priority.to_string(),
                    output::time(Some(waiting.created_at)),
                    waiting.reason.message.clone(),
                ]
            })
            .collect();
        out.push_str("\nruns waiting to start\n");
        out.push_str(&output::table(
            &["RUN", "PIPELINE", "PRIORITY", "CREATED", "WAITING FOR"],
            &rows,
        ));
    }
    out
}

fn labels_text(labels: &BTreeMap<String, String>) -> String {
    if labels.is_empty() {
        return "-".to_owned();
    }
    labels
        .iter()
        .map(|(key, value)| format!("{key}={value}"))
        .collect::<Vec<_>>()
        .join(",")
}
