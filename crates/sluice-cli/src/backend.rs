//! Where the run commands read and operate the ledger: the engine on the
//! project's own database (embedded mode), or a server's REST API (with
//! `--server`). Both answer with the wire types of `sluice-proto` (the
//! embedded engine's records go through the API's own conversions), so one
//! renderer prints both and their output cannot drift apart.

use jiff::Timestamp;
use sluice_client::Client;
use sluice_core::ids::{BlockRunId, RunId};
use sluice_core::status::RunStatus;
use sluice_engine::Engine;
use sluice_engine::sluice_store::{RunCursor, RunQuery};
use sluice_proto as proto;

use crate::args::{ProjectArgs, ServerArgs};
use crate::{Failure, context};

/// The most runs one page holds, in both modes.
pub const MAX_PAGE: u32 = 500;
/// The largest data sample the server hands out in one answer.
const MAX_SERVER_SAMPLE: usize = 1_000;

/// The engine in this process, or a client of a server.
#[derive(Debug)]
pub enum Backend {
    Embedded(Engine),
    Server(Client),
}

/// The run filters every listing takes, already checked.
#[derive(Clone, Debug, Default)]
pub struct RunFilter {
    pub pipelines: Vec<String>,
    pub statuses: Vec<RunStatus>,
    pub tag: Option<String>,
    pub triggers: Vec<String>,
    /// Text in the run id, pipeline, error or a non-secret variable value.
    pub text: Option<String>,
    pub after: Option<Timestamp>,
    pub before: Option<Timestamp>,
    /// Only runs flagged `slow`.
    pub slow: bool,
    /// Only failed runs not resolved by a later attempt or run.
    pub unresolved: bool,
}

/// Where the next page of a listing starts.
#[derive(Clone, Debug)]
pub enum Cursor {
    Embedded(RunCursor),
    Server(String),
}

/// One page of runs.
#[derive(Debug)]
pub struct Page {
    pub runs: Vec<proto::Run>,
    pub next: Option<Cursor>,
}

impl RunFilter {
    fn query(&self, limit: u32, cursor: Option<RunCursor>) -> RunQuery {
        RunQuery {
            pipelines: self.pipelines.clone(),
            statuses: self.statuses.clone(),
            tag: self.tag.clone(),
            trigger_kinds: self.triggers.clone(),
            created_after: self.after,
            created_before: self.before,
            order: Default::default(),
            limit,
            cursor,
            text: self.text.clone(),
            slow: self.slow,
            unresolved: self.unresolved,
            ..RunQuery::default()
        }
    }

    pub fn wire(&self) -> sluice_client::RunFilter {
        sluice_client::RunFilter {
            pipelines: self.pipelines.clone(),
            statuses: self
                .statuses
                .iter()
                .map(|status| status.as_str().to_owned())
                .collect(),
            tag: self.tag.clone(),
            triggers: self.triggers.clone(),
            text: self.text.clone(),
            after: self.after.map(|at| at.to_string()),
            before: self.before.map(|at| at.to_string()),
            slow: self.slow,
            unresolved: self.unresolved,
        }
    }
}

impl Backend {
    /// The server's client with `--server`, otherwise the project's engine.
    pub async fn open(server: &ServerArgs, project: &ProjectArgs) -> Result<Backend, Failure> {
        match server.address() {
            Some(address) => Ok(Backend::Server(client(address, server.token.clone())?)),
            None => Ok(Backend::Embedded(context::open(&project.dir()).await?)),
        }
    }

    /// One page of runs matching `filter`, newest first.
    pub async fn list_runs(
        &self,
        filter: &RunFilter,
        limit: u32,
        cursor: Option<Cursor>,
    ) -> Result<Page, Failure> {
        match self {
            Backend::Embedded(engine) => {
                let cursor = match cursor {
                    Some(Cursor::Embedded(cursor)) => Some(cursor),
                    _ => None,
                };
                let page = engine.list_runs(&filter.query(limit, cursor)).await?;
                Ok(Page {
                    runs: page
                        .runs
                        .into_iter()
                        .map(sluice_api::convert::run)
                        .collect(),
                    next: page.next_cursor.map(Cursor::Embedded),
                })
            }
            Backend::Server(client) => {
                let cursor = match &cursor {
                    Some(Cursor::Server(cursor)) => Some(cursor.as_str()),
                    _ => None,
                };
                let page = client.list_runs(&filter.wire(), limit, cursor).await?;
                Ok(Page {
                    runs: page.pipeline_runs,
                    next: page.next_cursor.map(Cursor::Server),
                })
            }
        }
    }

    /// Every run matching `filter`, newest first, read page by page.
    pub async fn all_runs(&self, filter: &RunFilter) -> Result<Vec<proto::Run>, Failure> {
        let mut runs = Vec::new();
        let mut cursor = None;
        loop {
            let page = self.list_runs(filter, MAX_PAGE, cursor).await?;
            runs.extend(page.runs);
            match page.next {
                Some(next) => cursor = Some(next),
                None => return Ok(runs),
            }
        }
    }

    /// Everything recorded about a run, secrets masked.
    pub async fn run_details(&self, run: &str) -> Result<proto::RunDetails, Failure> {
        match self {
            Backend::Embedded(engine) => Ok(sluice_api::convert::run_details(
                engine.run_details(&RunId(run.to_owned())).await?,
            )),
            Backend::Server(client) => Ok(client.run_details(run).await?),
        }
    }

    /// Two runs side by side, differences first.
    pub async fn diff_runs(&self, a: &str, b: &str) -> Result<proto::RunDiff, Failure> {
        match self {
            Backend::Embedded(engine) => Ok(sluice_api::diagnose::run_diff(
                engine
                    .diff_runs(&RunId(a.to_owned()), &RunId(b.to_owned()))
                    .await?,
            )),
            Backend::Server(client) => Ok(client.diff_runs(a, b).await?),
        }
    }

    /// A run's incident evidence.
    pub async fn run_evidence(&self, run: &str) -> Result<proto::Evidence, Failure> {
        match self {
            Backend::Embedded(engine) => Ok(sluice_api::diagnose::evidence(
                engine.run_evidence(&RunId(run.to_owned())).await?,
            )),
            Backend::Server(client) => Ok(client.run_evidence(run).await?),
        }
    }

    /// Asks for a run to be cancelled; `by` names who asked (a server
    /// records its caller instead).
    pub async fn cancel_run(&self, run: &str, by: &str) -> Result<proto::Run, Failure> {
        match self {
            Backend::Embedded(engine) => Ok(sluice_api::convert::run(
                engine.cancel_run(&RunId(run.to_owned()), by).await?,
            )),
            Backend::Server(client) => Ok(client.cancel_run(run).await?),
        }
    }

    /// A block run's outputs and its data output: the first `sample` rows,
    /// or all of them.
    pub async fn block_outputs(
        &self,
        block_run: &str,
        sample: Option<usize>,
    ) -> Result<proto::BlockOutputs, Failure> {
        match self {
            Backend::Embedded(engine) => Ok(sluice_api::convert::block_outputs(
                engine
                    .block_output(&BlockRunId(block_run.to_owned()), sample)
                    .await?,
            )),
            Backend::Server(client) => match sample {
                Some(rows) if (1..=MAX_SERVER_SAMPLE).contains(&rows) => {
                    Ok(client.block_outputs(block_run, Some(rows as u32)).await?)
                }
                // The sample endpoint caps its rows; the whole table comes
                // from the CSV download and is cut here.
                _ => {
                    let mut outputs = client.block_outputs(block_run, Some(1)).await?;
                    if outputs.data.is_some() {
                        let csv = client.block_data_csv(block_run).await?;
                        let mut table = parse_csv(&csv)?;
                        if let Some(rows) = sample
                            && table.rows.len() > rows
                        {
                            table.rows.truncate(rows);
                            table.truncated = true;
                        }
                        outputs.data = Some(table);
                    }
                    Ok(outputs)
                }
            },
        }
    }
}

/// A client of the server at `address`.
pub fn client(address: &str, token: Option<String>) -> Result<Client, Failure> {
    Client::new(address, token).map_err(|error| Failure {
        code: 2,
        hint: error.hint(),
        message: error.to_string(),
    })
}

/// A table from CSV text with a header line.
fn parse_csv(text: &str) -> Result<proto::Table, Failure> {
    let bad = |error: csv::Error| Failure {
        code: 1,
        message: format!("the server's data output is not CSV: {error}"),
        hint: None,
    };
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_reader(text.as_bytes());
    let columns = reader
        .headers()
        .map_err(bad)?
        .iter()
        .map(str::to_owned)
        .collect();
    let mut rows = Vec::new();
    for record in reader.records() {
        rows.push(record.map_err(bad)?.iter().map(str::to_owned).collect());
    }
    Ok(proto::Table {
        columns,
        rows,
        truncated: false,
    })
}
