//! The benchmark suite of sluice: measures, never asserts. Every benchmark
//! drives sluice only through its stable boundaries (the `sluice` binary,
//! its HTTP API, and the store's bulk loader for generated history), adds
//! rows to one table, and `all` prints the table and writes it as markdown.
//! `docs/benchmarks.md` explains the method and holds this machine's
//! results.
//!
//! `cargo run --release -p sluice-bench -- all`

mod footprint;
mod harness;
mod history;
mod latency;
mod logs;
mod overhead;
mod report;
mod throughput;

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use harness::Options;
use report::Report;

#[derive(Debug, Parser)]
#[command(name = "sluice-bench", about = "Benchmarks of sluice")]
struct Cli {
    /// The `sluice` binary to measure (default: the one next to this
    /// binary, built first when run through cargo).
    #[arg(long, global = true, value_name = "PATH", env = "SLUICE_BENCH_SLUICE")]
    sluice: Option<PathBuf>,
    /// Small sizes: for development and the smoke test, not for results.
    #[arg(long, global = true)]
    quick: bool,
    /// A PostgreSQL database for the PostgreSQL variants (each benchmark
    /// makes and drops a schema of its own); skipped without one.
    #[arg(
        long,
        global = true,
        value_name = "URL",
        env = "SLUICE_TEST_DATABASE_URL"
    )]
    postgres: Option<String>,
    /// Where to write the table as markdown (default:
    /// `sluice-bench-results.md` next to this binary).
    #[arg(long, global = true, value_name = "FILE")]
    markdown: Option<PathBuf>,
    #[command(subcommand)]
    command: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Every benchmark, one table.
    All {
        /// Cold runs per overhead case (the median is reported).
        #[arg(long, default_value_t = 7)]
        repeat: usize,
        /// Runs the history benchmark loads (default 1,000,000).
        #[arg(long)]
        runs: Option<usize>,
    },
    /// Cold `sluice run` of chain40, fan100 and shell40 on SQLite.
    Overhead {
        #[arg(long, default_value_t = 7)]
        repeat: usize,
    },
    /// Trigger to first block start and completion to successor start on a
    /// warm server, with the built-in agent and a remote agent.
    Latency,
    /// Sustained block runs per second, and claims from a queue of 10,000.
    Throughput,
    /// Bulk-load a year of history, then time the run listing over it.
    History {
        /// Runs to load (default 1,000,000).
        #[arg(long)]
        runs: Option<usize>,
    },
    /// A block printing 200 MB, and the live-follow lag of its log stream.
    Logs,
    /// Binary size, start to ready, idle memory of `sluice up`.
    Footprint,
    /// Internal: runs a command, then prints its wall time in seconds and
    /// its peak RSS in KiB.
    #[command(hide = true)]
    MeasureOne { program: String, args: Vec<String> },
}

fn main() -> Result<()> {
    let cli = Cli::parse();
    if let Bench::MeasureOne { program, args } = &cli.command {
        return overhead::measure_one(program, args);
    }
    let options = Options {
        sluice: harness::sluice_binary(cli.sluice.clone())?,
        quick: cli.quick,
        postgres: cli.postgres.clone().filter(|url| !url.is_empty()),
    };
    if options.postgres.is_none() {
        eprintln!(
            "note: no --postgres URL (or SLUICE_TEST_DATABASE_URL): the PostgreSQL variants are skipped"
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let started = Instant::now();
    let mut report = Report::default();
    runtime.block_on(run(&cli.command, &options, &mut report))?;
    let text = report.text();
    println!("{text}");
    let markdown = match &cli.markdown {
        Some(path) => path.clone(),
        None => std::env::current_exe()?.with_file_name("sluice-bench-results.md"),
    };
    let mut document = format!(
        "sluice-bench{} on `{}`, {:.0} s\n\n",
        if options.quick { " --quick" } else { "" },
        options.sluice.display(),
        started.elapsed().as_secs_f64()
    );
    document.push_str(&report.markdown());
    std::fs::write(&markdown, document)
        .with_context(|| format!("cannot write {}", markdown.display()))?;
    eprintln!(
        "finished in {:.0} s; the table is in {}",
        started.elapsed().as_secs_f64(),
        markdown.display()
    );
    Ok(())
}

async fn run(command: &Bench, options: &Options, report: &mut Report) -> Result<()> {
    match command {
        Bench::All { repeat, runs } => {
            overhead::overhead(options, *repeat, report)?;
            latency::latency(options, report).await?;
            throughput::throughput(options, report).await?;
            history::history(options, *runs, report).await?;
            logs::logs(options, report).await?;
            footprint::footprint(options, report).await
        }
        Bench::Overhead { repeat } => overhead::overhead(options, *repeat, report),
        Bench::Latency => latency::latency(options, report).await,
        Bench::Throughput => throughput::throughput(options, report).await,
        Bench::History { runs } => history::history(options, *runs, report).await,
        Bench::Logs => logs::logs(options, report).await,
        Bench::Footprint => footprint::footprint(options, report).await,
        Bench::MeasureOne { .. } => Ok(()),
    }
}
