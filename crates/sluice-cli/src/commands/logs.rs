//! `sluice runs logs`: the logs of a run's tries, in the order they started.
//! `--follow` keeps printing until the run ends: by reading the store again
//! in embedded mode, and over each block run's live log stream (Server-Sent
//! Events) with `--server`.

use std::collections::HashMap;

use jiff::Timestamp;
use sluice_client::{Client, LogEvent, LogQuery};
use sluice_core::ids::TryId;
use sluice_core::status::RunStatus;
use sluice_proto as proto;

use crate::args::LogsArgs;
use crate::backend::Backend;
use crate::{CommandResult, Failure};

/// Chunks read at once.
const CHUNKS_PER_READ: u32 = 100;

/// One try whose log is printed.
#[derive(Clone, Debug)]
struct Selected {
    block: String,
    block_run_id: String,
    try_id: String,
    try_number: u32,
    started_at: Timestamp,
    status: String,
}

/// The attempt asked for (the latest by default) and the tries of it whose
/// logs to print, in the order they started.
fn select<'a>(
    details: &'a proto::RunDetails,
    args: &LogsArgs,
) -> Result<(&'a proto::Attempt, Vec<Selected>), Failure> {
    let latest = details.pipeline_run.attempt;
    let attempt_number = args.attempt.unwrap_or(latest);
    let attempt = details
        .attempts
        .iter()
        .find(|attempt| attempt.attempt == attempt_number)
        .ok_or_else(|| {
            Failure::bad_input(
                format!("run {} has no attempt {attempt_number}", args.run),
                Some(format!("its attempts are 1 to {latest}")),
            )
        })?;
    if let Some(block) = &args.block
        && !attempt
            .block_runs
            .iter()
            .any(|block_run| &block_run.block == block)
    {
        return Err(Failure::bad_input(
            format!("run {} has no block `{block}`", args.run),
            None,
        ));
    }
    let mut tries: Vec<Selected> = attempt
        .block_runs
        .iter()
        .filter(|block_run| wanted_block(args, block_run))
        .flat_map(|block_run| {
            block_run
                .tries
                .iter()
                .filter(|attempt_try| {
                    args.try_number
                        .is_none_or(|number| attempt_try.try_number == number)
                })
                .map(|attempt_try| Selected {
                    block: block_run.block.clone(),
                    block_run_id: block_run.id.clone(),
                    try_id: attempt_try.id.clone(),
                    try_number: attempt_try.try_number,
                    started_at: attempt_try.started_at,
                    status: attempt_try.status.clone(),
                })
        })
        .collect();
    tries.sort_by_key(|selected| selected.started_at);
    Ok((attempt, tries))
}

fn wanted_block(args: &LogsArgs, block_run: &proto::BlockRun) -> bool {
    args.block
        .as_ref()
        .is_none_or(|block| &block_run.block == block)
}

fn print_line(block: &str, try_number: u32, text: &str, prefix: bool) {
    if prefix {
        println!("{block}#{try_number} | {text}");
    } else {
        println!("{text}");
    }
}

/// The lines of a try's log after chunk `after`, and the last chunk read;
/// `None` when nothing more is stored.
async fn read_page(
    backend: &Backend,
    selected: &Selected,
    after: Option<u64>,
) -> Result<Option<(Vec<String>, u64)>, Failure> {
    match backend {
        Backend::Embedded(engine) => {
            let chunks = engine
                .read_log(&TryId(selected.try_id.clone()), after, CHUNKS_PER_READ)
                .await?;
            let Some(last) = chunks.last().map(|chunk| chunk.seq) else {
                return Ok(None);
            };
            let lines = chunks
                .into_iter()
                .flat_map(|chunk| chunk.lines.into_iter().map(|line| line.text))
                .collect();
            Ok(Some((lines, last)))
        }
        Backend::Server(client) => {
            let page = client
                .log_page(
                    &selected.block_run_id,
                    &LogQuery {
                        attempt: None,
                        try_number: Some(selected.try_number),
                        after_seq: after,
                        limit: Some(CHUNKS_PER_READ),
                    },
                )
                .await?;
            match page.next_after_seq {
                Some(last) if Some(last) != after => Ok(Some((
                    page.lines.into_iter().map(|line| line.text).collect(),
                    last,
                ))),
                _ => Ok(None),
            }
        }
    }
}

/// Prints what each try has stored beyond what was printed already.
async fn print_stored(
    backend: &Backend,
    tries: &[Selected],
    printed: &mut HashMap<String, u64>,
    prefix: bool,
) -> Result<(), Failure> {
    for selected in tries {
        while let Some((lines, last)) =
            read_page(backend, selected, printed.get(&selected.try_id).copied()).await?
        {
            for line in &lines {
                print_line(&selected.block, selected.try_number, line, prefix);
            }
            printed.insert(selected.try_id.clone(), last);
        }
    }
    Ok(())
}

fn is_terminal(status: &str) -> bool {
    status
        .parse::<RunStatus>()
        .is_ok_and(RunStatus::is_terminal)
}

pub async fn logs(args: LogsArgs) -> CommandResult {
    let backend = Backend::open(&args.server, &args.project).await?;
    let prefix = args.block.is_none() || args.try_number.is_none();
    let mut printed: HashMap<String, u64> = HashMap::new();
    loop {
        let details = backend.run_details(&args.run).await?;
        let (attempt, tries) = select(&details, &args)?;
        print_stored(&backend, &tries, &mut printed, prefix).await?;
        if !args.follow {
            return Ok(0);
        }
        let still_writing = tries.iter().any(|selected| selected.status == "running");
        if is_terminal(&details.pipeline_run.status) && !still_writing {
            return Ok(0);
        }
        if let Backend::Server(client) = &backend {
            follow_streams(client, attempt, &args, &printed, prefix).await?;
            return Ok(0);
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}

/// Follows every selected block run's live log stream until each ends,
/// printing the lines not printed yet.
async fn follow_streams(
    client: &Client,
    attempt: &proto::Attempt,
    args: &LogsArgs,
    printed: &HashMap<String, u64>,
    prefix: bool,
) -> Result<(), Failure> {
    let mut streams = tokio::task::JoinSet::new();
    for block_run in attempt
        .block_runs
        .iter()
        .filter(|block_run| wanted_block(args, block_run))
    {
        let client = client.clone();
        let block = block_run.block.clone();
        let block_run_id = block_run.id.clone();
        let try_number = args.try_number;
        let printed = printed.clone();
        streams.spawn(async move {
            let query = LogQuery {
                try_number,
                ..LogQuery::default()
            };
            let mut stream = client.log_stream(&block_run_id, &query).await?;
            let mut shown: Option<(String, u32)> = None;
            while let Some(event) = stream.next().await? {
                match event {
                    LogEvent::Try(info) => shown = Some((info.try_id, info.try_number)),
                    LogEvent::Line(line) => {
                        let Some((try_id, try_number)) = &shown else {
                            continue;
                        };
                        // The stream starts at the beginning of the try; the
                        // lines printed before it opened are skipped.
                        let seen = printed.get(try_id).copied();
                        if seen.is_some_and(|seen| line.seq <= seen) {
                            continue;
                        }
                        print_line(&block, *try_number, &line.text, prefix);
                    }
                    LogEvent::End(_) => break,
                }
            }
            Ok::<(), sluice_client::Error>(())
        });
    }
    while let Some(joined) = streams.join_next().await {
        match joined {
            Ok(Ok(())) => {}
            Ok(Err(error)) => {
                streams.abort_all();
                return Err(error.into());
            }
            Err(error) => {
                return Err(Failure {
                    code: 1,
                    message: format!("a log stream stopped: {error}"),
                    hint: None,
                });
            }
        }
    }
    Ok(())
}
