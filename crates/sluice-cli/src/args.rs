//! The command line: every command, argument and option of `sluice`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// sluice: a pipeline orchestrator whose centre is the run ledger.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

/// How listings and `show` commands print.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    #[default]
    Table,
    Json,
}

/// Where the project lives.
#[derive(Debug, Clone, Args)]
pub struct ProjectArgs {
    /// The project directory (holding `pipelines/`); defaults to the current directory.
    #[arg(long, global = true, value_name = "DIR", env = "SLUICE_PROJECT")]
    pub project: Option<PathBuf>,
}

impl ProjectArgs {
    pub fn dir(&self) -> PathBuf {
        self.project.clone().unwrap_or_else(|| PathBuf::from("."))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create a project with an example pipeline.
    Init {
        /// The directory to create (default: the current directory).
        dir: Option<PathBuf>,
    },
    /// Check every pipeline file of the project and report every error.
    Validate {
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Print the JSON Schema of pipeline files, for editors.
    Schema,
    /// Run a pipeline and exit with its outcome (0 completed, 1 failed or
    /// cancelled, 2 bad input): in this process, or on a server with --server.
    Run(RunArgs),
    /// Inspect and operate runs.
    Runs {
        #[command(subcommand)]
        command: RunsCommand,
    },
    /// Inspect block runs.
    Blocks {
        #[command(subcommand)]
        command: BlocksCommand,
    },
    /// Start the server: the REST API, the reconcilers and a built-in agent.
    Up(UpArgs),
    /// Run a remote agent: claim tries from a server and execute them on
    /// this host (see docs/agents.md).
    Agent(AgentArgs),
    /// Inspect remote agents.
    Agents {
        #[command(subcommand)]
        command: AgentsCommand,
    },
    /// See the queue and why each block run waits; reorder it; cancel in bulk.
    Queue {
        #[command(subcommand)]
        command: QueueCommand,
    },
    /// List triggers and their next fires; pause and resume them.
    Triggers {
        #[command(subcommand)]
        command: TriggersCommand,
    },
    /// Run a timed trigger's windows over a range of time, one run per
    /// window: in this process until done, or on a server with --server.
    Backfill(BackfillArgs),
    /// List, show, pause, resume and cancel backfills.
    Backfills {
        #[command(subcommand)]
        command: BackfillsCommand,
    },
    /// Delete finished runs past their pipeline's `retention:` with their
    /// block runs, tries, logs, outputs and artifacts, then the blobs no
    /// row references (see docs/operations.md).
    Gc(GcArgs),
    /// Manage API tokens (against the project's database, or --database).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
}

/// Where run commands read and operate the ledger: through a server's API
/// with `--server`, otherwise on the project's own database in this process.
#[derive(Debug, Clone, Default, Args)]
pub struct ServerArgs {
    /// Talk to the sluice server at this address (like
    /// http://127.0.0.1:8421) instead of opening the project's database.
    #[arg(long, value_name = "URL", env = "SLUICE_SERVER")]
    pub server: Option<String>,
    /// The API token to send to the server (`Authorization: Bearer`).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SLUICE_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
}

impl ServerArgs {
    /// The server to talk to; an empty `SLUICE_SERVER` means none.
    pub fn address(&self) -> Option<&str> {
        self.server
            .as_deref()
            .map(str::trim)
            .filter(|address| !address.is_empty())
    }
}

/// Where a command keeps artifacts and data outputs.
#[derive(Debug, Clone, Default, Args)]
pub struct BlobArgs {
    /// Where artifacts and data outputs are kept: a directory, or
    /// `s3://bucket/prefix` for an S3-compatible object store (credentials
    /// and region from the `AWS_*` environment; needs a sluice built with
    /// `--features s3`). Default: the project's `.sluice/blobs`.
    #[arg(long, value_name = "LOCATION", env = "SLUICE_BLOBS")]
    pub blobs: Option<String>,
    /// The endpoint of an S3-compatible server that is not AWS (MinIO,
    /// Ceph, ...), like `http://127.0.0.1:9000`.
    #[arg(long, value_name = "URL", env = "SLUICE_BLOBS_ENDPOINT")]
    pub blobs_endpoint: Option<String>,
}

impl BlobArgs {
    /// The same settings from the environment alone, for the commands
    /// without the options (`run`, `runs ...`).
    pub fn from_environment() -> BlobArgs {
        let read = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        BlobArgs {
            blobs: read("SLUICE_BLOBS"),
            blobs_endpoint: read("SLUICE_BLOBS_ENDPOINT"),
        }
    }
}

/// Which database a command opens.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// The database: a SQLite file path (or `sqlite://PATH`) or a
    /// `postgres://` URL. Default: the project's `.sluice/sluice.db`.
    #[arg(long, value_name = "URL", env = "SLUICE_DATABASE_URL")]
    pub database: Option<String>,
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// The address to listen on; a non-loopback address needs --auth.
    #[arg(long, default_value = "127.0.0.1:8421", value_name = "ADDR")]
    pub listen: std::net::SocketAddr,
    /// Require an API token (`Authorization: Bearer`) on every request.
    #[arg(long)]
    pub auth: bool,
    /// How long running tries may take to finish after SIGTERM or Ctrl-C
    /// before they are interrupted (and run again after a restart).
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub drain_grace: String,
    /// How long a try's lease lasts without a heartbeat; a try whose agent
    /// is silent that long is lost and retried.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub lease_ttl: String,
    /// The labels the built-in agent offers (`k=v,k2=v2`): it runs blocks
    /// whose `labels:` are a subset; with none, only blocks without labels.
    #[arg(long, default_value = "", value_name = "LABELS")]
    pub labels: String,
    /// Run no tries in the server; leave them to remote agents.
    #[arg(long)]
    pub no_local_agent: bool,
    /// How often the server looks at the database when nothing woke it
    /// (its own changes and, on PostgreSQL, other servers' wake it at once).
    #[arg(long, default_value = "500ms", value_name = "DURATION")]
    pub poll_interval: String,
    /// Days to keep the runs of pipelines without `retention:` (their
    /// latest 10 runs are kept whatever their age); without it, those
    /// pipelines keep every run. Retention runs at startup and hourly.
    #[arg(long, value_name = "DAYS")]
    pub retention_days: Option<u32>,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub blobs: BlobArgs,
    #[command(flatten)]
    pub project: ProjectArgs,
}

#[derive(Debug, Args)]
pub struct GcArgs {
    /// Print what would be deleted, and delete nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Days to keep the runs of pipelines without `retention:` (their
    /// latest 10 runs are kept whatever their age); without it, those
    /// pipelines keep every run.
    #[arg(long, value_name = "DAYS")]
    pub retention_days: Option<u32>,
    /// Blobs written more recently than this are never deleted, so that an
    /// upload in flight keeps its blob.
    #[arg(long, default_value = "1h", value_name = "DURATION")]
    pub blob_grace: String,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub blobs: BlobArgs,
    #[command(flatten)]
    pub project: ProjectArgs,
}

#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// List remote agents: name, labels, status (online, busy, draining,
    /// offline), running tries, last heartbeat, version.
    List {
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: OutputFormat,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        project: ProjectArgs,
    },
}

/// `sluice agent`.
#[derive(Debug, Args)]
pub struct AgentArgs {
    /// The sluice server to take work from (like http://10.0.0.5:8421).
    #[arg(long, value_name = "URL", env = "SLUICE_SERVER")]
    pub server: String,
    /// A token with the `agent` role (`sluice token create --role agent`).
    #[arg(
        long,
        value_name = "TOKEN",
        env = "SLUICE_TOKEN",
        hide_env_values = true
    )]
    pub token: Option<String>,
    /// The labels this agent offers (`k=v,k2=v2`); it runs blocks whose
    /// `labels:` are a subset.
    #[arg(long, default_value = "", value_name = "LABELS")]
    pub labels: String,
    /// Most tries executing at once.
    #[arg(long, default_value_t = 4, value_name = "N")]
    pub concurrency: usize,
    /// The agent's name in `sluice agents list` (default: the host name).
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// How long running tries may take to finish after SIGTERM or Ctrl-C
    /// before they are stopped (and run again elsewhere).
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub drain_grace: String,
    /// Where tries get their scratch directories and the agent caches the
    /// project versions it fetched (default: `.sluice/agent` under
    /// `--project`, or under the current directory).
    #[arg(long, value_name = "DIR")]
    pub work_dir: Option<PathBuf>,
    /// Tries run in a copy of the project files their run is pinned to,
    /// fetched from the server; `--project` is only needed for runs
    /// recorded without pinned files, which run in it.
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// The roles of API tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum RoleArg {
    Viewer,
    Operator,
    Admin,
    /// For `sluice agent`: the agent protocol only.
    Agent,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token and print it once; only its SHA-256 is stored.
    Create {
        /// A name for the token (who or what uses it).
        #[arg(long)]
        name: String,
        #[arg(long, value_enum)]
        role: RoleArg,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// List tokens (never the tokens themselves).
    List {
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: OutputFormat,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Revoke a token.
    Revoke {
        name: String,
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        project: ProjectArgs,
    },
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The pipeline to run (its file name without `.yaml`).
    pub pipeline: String,
    /// A variable for this run, as NAME=VALUE (repeatable).
    #[arg(short = 'v', long = "var", value_name = "NAME=VALUE")]
    pub variables: Vec<String>,
    /// A JSON or YAML file of variables for this run.
    #[arg(long, value_name = "FILE")]
    pub variables_file: Option<PathBuf>,
    /// The run's priority (higher runs first).
    #[arg(long)]
    pub priority: Option<i32>,
    /// With --server: print the run's id as soon as it is created and exit 0
    /// instead of waiting for its outcome.
    #[arg(long)]
    pub detach: bool,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub project: ProjectArgs,
}

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// List runs, newest first.
    List(ListArgs),
    /// Show a run: attempts, block runs, tries, durations, errors, variables and outputs.
    Show {
        run: String,
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: OutputFormat,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// List every run created in an explicit time window, newest first (for
    /// scripts: both bounds are required).
    Query(QueryArgs),
    /// Compare two runs (say the last good one and a failed one): version,
    /// variables, invoked-by, each block's status, duration and outputs,
    /// errors; differences first.
    Diff {
        a: String,
        b: String,
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: OutputFormat,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Print a run's incident evidence: ids, version, variables (masked),
    /// invoked-by, UTC times, each attempt's blocks, errors with the last
    /// log lines of failing blocks, artifacts with SHA-256, what resolved it.
    Evidence {
        run: String,
        #[arg(long, value_enum, default_value_t)]
        format: EvidenceFormat,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Write every matching run to stdout as JSON lines or CSV.
    Export(ExportArgs),
    /// Print the logs of a run's tries.
    Logs(LogsArgs),
    /// Cancel runs: waiting block runs end at once, running ones are killed.
    Cancel {
        #[arg(required = true)]
        runs: Vec<String>,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Retry a finished run as a new attempt (the incomplete blocks by default).
    Retry(RetryArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only runs of this pipeline (repeatable).
    #[arg(long)]
    pub pipeline: Vec<String>,
    /// Only runs with this status (repeatable): initial, running, completed, failed, cancelled.
    #[arg(long)]
    pub status: Vec<String>,
    /// Only runs of pipelines with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Only runs started by this kind of trigger (repeatable): manual,
    /// schedule, api, webhook, parent, backfill.
    #[arg(long)]
    pub trigger: Vec<String>,
    /// Only runs whose id, pipeline, error or a non-secret variable value
    /// contains this text.
    #[arg(long, value_name = "TEXT")]
    pub search: Option<String>,
    /// Only runs created within this duration before now, e.g. `6h`, `2d`.
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Only runs created at or after this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub after: Option<String>,
    /// Only runs created before this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub before: Option<String>,
    /// How many runs to print (at most 500).
    #[arg(long, default_value_t = 50)]
    pub limit: u32,
    /// Only runs flagged `slow`: slower than their baseline's p95 times
    /// the pipeline's `drift.factor`.
    #[arg(long)]
    pub slow: bool,
    /// Only failed runs that still need attention: no later attempt of
    /// them, nor later run of the same window, completed.
    #[arg(long)]
    pub unresolved: bool,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub project: ProjectArgs,
}

#[derive(Debug, Args)]
pub struct QueryArgs {
    /// Runs created at or after this RFC 3339 time (required).
    #[arg(long, value_name = "TIME")]
    pub after: String,
    /// Runs created before this RFC 3339 time (required).
    #[arg(long, value_name = "TIME")]
    pub before: String,
    /// Only runs with this status (repeatable).
    #[arg(long)]
    pub status: Vec<String>,
    /// Only runs of this pipeline (repeatable).
    #[arg(long)]
    pub pipeline: Vec<String>,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// The formats of a run export.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ExportFormatArg {
    /// One JSON run per line.
    #[default]
    Jsonl,
    /// A header line, then one run per line.
    Csv,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    #[arg(long, value_enum, default_value_t)]
    pub format: ExportFormatArg,
    /// Only runs of this pipeline (repeatable).
    #[arg(long)]
    pub pipeline: Vec<String>,
    /// Only runs with this status (repeatable).
    #[arg(long)]
    pub status: Vec<String>,
    /// Only runs of pipelines with this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Only runs with this trigger kind (repeatable): manual, schedule, api, ...
    #[arg(long)]
    pub trigger: Vec<String>,
    /// Only runs created within this duration before now, e.g. `6h`, `2d`.
    #[arg(long, value_name = "DURATION")]
    pub since: Option<String>,
    /// Only runs created at or after this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub after: Option<String>,
    /// Only runs created before this RFC 3339 time.
    #[arg(long, value_name = "TIME")]
    pub before: Option<String>,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub project: ProjectArgs,
}

#[derive(Debug, Args)]
pub struct LogsArgs {
    pub run: String,
    /// Only this block.
    #[arg(long)]
    pub block: Option<String>,
    /// This attempt (default: the latest).
    #[arg(long)]
    pub attempt: Option<u32>,
    /// Only this try number.
    #[arg(long = "try", value_name = "N")]
    pub try_number: Option<u32>,
    /// Keep printing new lines until the run ends.
    #[arg(long, short = 'f')]
    pub follow: bool,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub project: ProjectArgs,
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    pub run: String,
    /// Rerun this block and everything downstream of it.
    #[arg(long, value_name = "BLOCK", conflicts_with = "all")]
    pub from: Option<String>,
    /// Rerun every block.
    #[arg(long)]
    pub all: bool,
    /// Run the pipeline file and project files as they are now, instead of
    /// the versions the run is pinned to; later retries keep these.
    #[arg(long)]
    pub latest: bool,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub project: ProjectArgs,
}

/// How `runs evidence` prints.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum EvidenceFormat {
    /// Markdown, for an incident ticket.
    #[default]
    Md,
    Json,
}

/// The export formats of a data output.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum DataFormatArg {
    #[default]
    Csv,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum BlocksCommand {
    /// Print a block run's outputs and data output.
    Output {
        block_run: String,
        /// Only the first N rows of the data output.
        #[arg(long, value_name = "N")]
        sample: Option<usize>,
        #[arg(long, value_enum, default_value_t)]
        format: DataFormatArg,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        project: ProjectArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TriggersCommand {
    /// List every trigger: kind, enabled or paused, last and next fires.
    List {
        /// Next fires shown per trigger.
        #[arg(long, default_value_t = 3)]
        next: u32,
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: OutputFormat,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// The runs the schedules will create, soonest first, across pipelines.
    Upcoming {
        /// How many.
        #[arg(long, default_value_t = 10)]
        next: u32,
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: OutputFormat,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Pause a trigger: it starts no runs until it is resumed.
    Pause(TriggerTarget),
    /// Resume a paused trigger.
    Resume(TriggerTarget),
}

/// One trigger of one pipeline.
#[derive(Debug, Args)]
pub struct TriggerTarget {
    pub pipeline: String,
    pub trigger: String,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub project: ProjectArgs,
}

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// List queued block runs in claim order with the reason each waits,
    /// then the runs waiting to be admitted.
    List {
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: OutputFormat,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Move a queued block run to another place among those of its
    /// priority; claims follow the new order.
    Move {
        /// The block run to move (its id, as `sluice queue list` shows).
        block_run: String,
        /// Its new 1-based place in claim order.
        #[arg(
            long,
            value_name = "N",
            conflicts_with = "before",
            required_unless_present = "before"
        )]
        to: Option<u32>,
        /// Put it just before this queued block run of the same priority.
        #[arg(long, value_name = "BLOCK_RUN")]
        before: Option<String>,
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: OutputFormat,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Cancel every run with a queued block run matching all the filters.
    Cancel(QueueCancelArgs),
}

/// `sluice queue cancel`.
#[derive(Debug, Args)]
pub struct QueueCancelArgs {
    /// Only runs of this pipeline.
    #[arg(long)]
    pub pipeline: Option<String>,
    /// Only queued block runs requiring this label (repeatable).
    #[arg(long = "label", value_name = "KEY=VALUE")]
    pub labels: Vec<String>,
    /// Cancel every queued run when no filter is given.
    #[arg(long)]
    pub all: bool,
    /// Only list the runs that would be cancelled.
    #[arg(long)]
    pub dry_run: bool,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub project: ProjectArgs,
}

#[derive(Debug, Args)]
pub struct BackfillArgs {
    pub pipeline: String,
    /// The first window end to cover: an RFC 3339 time or a date (UTC midnight).
    #[arg(long, value_name = "TIME")]
    pub from: String,
    /// The last window end to cover (inclusive), as for --from.
    #[arg(long, value_name = "TIME")]
    pub to: String,
    /// The `schedule`, `every` or `once` trigger whose windows to run
    /// (default: the pipeline's only one).
    #[arg(long, value_name = "NAME")]
    pub trigger: Option<String>,
    /// Most runs of the backfill active at once.
    #[arg(long, default_value_t = 1, value_name = "N")]
    pub max_concurrent: u32,
    /// Newest window first.
    #[arg(long)]
    pub reverse: bool,
    /// Print the windows and which would be skipped; create nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Run windows that already have a completed run again.
    #[arg(long)]
    pub rerun_completed: bool,
    /// The runs' priority (default: the pipeline's minus 10).
    #[arg(long, allow_negative_numbers = true)]
    pub priority: Option<i32>,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub project: ProjectArgs,
}

#[derive(Debug, Subcommand)]
pub enum BackfillsCommand {
    /// List backfills, newest first.
    List {
        /// How many.
        #[arg(long, default_value_t = 20)]
        limit: u32,
        #[arg(long, short = 'o', value_enum, default_value_t)]
        output: OutputFormat,
        #[command(flatten)]
        server: ServerArgs,
        #[command(flatten)]
        project: ProjectArgs,
    },
    /// Show a backfill with each window: its run, or why it is skipped.
    Show(BackfillTarget),
    /// Stop a backfill from creating runs; its active runs go on.
    Pause(BackfillTarget),
    /// Let a paused backfill create runs again.
    Resume(BackfillTarget),
    /// End a backfill for good and cancel its active runs.
    Cancel(BackfillTarget),
}

/// One backfill.
#[derive(Debug, Args)]
pub struct BackfillTarget {
    pub id: String,
    #[arg(long, short = 'o', value_enum, default_value_t)]
    pub output: OutputFormat,
    #[command(flatten)]
    pub server: ServerArgs,
    #[command(flatten)]
    pub project: ProjectArgs,
}
