//! The benchmark suite of sluice: measures, never asserts. Each benchmark
//! prints a table; `docs/benchmarks.md` explains the method and holds this
//! machine's results.
//!
//! `cargo run --release -p sluice-bench -- all`

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(name = "sluice-bench", about = "Benchmarks of sluice")]
struct Cli {
    #[command(subcommand)]
    command: Bench,
}

#[derive(Debug, Subcommand)]
enum Bench {
    /// Every benchmark.
    All {
        /// Runs per measurement (the median is reported).
        #[arg(long, default_value_t = 7)]
        repeat: usize,
    },
    /// Cold `sluice run` of chain40, fan100 and shell40 on SQLite.
    Overhead {
        #[arg(long, default_value_t = 7)]
        repeat: usize,
    },
    /// Internal: runs a command, then prints its wall time in seconds and the
    /// peak RSS of its process tree's largest process in KiB.
    #[command(hide = true)]
    MeasureOne { program: String, args: Vec<String> },
}

fn main() -> Result<()> {
    match Cli::parse().command {
        Bench::All { repeat } | Bench::Overhead { repeat } => overhead(repeat),
        Bench::MeasureOne { program, args } => measure_one(&program, &args),
    }
}

fn measure_one(program: &str, args: &[String]) -> Result<()> {
    let started = Instant::now();
    let status = Command::new(program)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .with_context(|| format!("cannot start {program}"))?;
    let wall = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!("{program} exited with {status}");
    }
    let usage = nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN)?;
    println!("{wall} {}", usage.max_rss());
    Ok(())
}

/// The `sluice` binary next to this one, built first when run through cargo.
fn sluice_binary() -> Result<PathBuf> {
    if let Ok(cargo) = std::env::var("CARGO") {
        let status = Command::new(cargo)
            .args(["build", "--release", "--quiet", "--bin", "sluice"])
            .status()
            .context("cannot run cargo build")?;
        if !status.success() {
            bail!("building sluice failed");
        }
    }
    let me = std::env::current_exe()?;
    let binary = me.with_file_name("sluice");
    if !binary.exists() {
        bail!(
            "{} not found; build it with `cargo build --release --bin sluice`",
            binary.display()
        );
    }
    Ok(binary)
}

/// One measurement of a command through `measure-one`: (wall seconds, peak RSS KiB).
fn measure(program: &Path, args: &[&str]) -> Result<(f64, u64)> {
    let me = std::env::current_exe()?;
    let output = Command::new(me)
        .arg("measure-one")
        .arg(program)
        .arg("--")
        .args(args)
        .output()?;
    if !output.status.success() {
        bail!(
            "measurement of {} failed: {}",
            program.display(),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let text = String::from_utf8(output.stdout)?;
    let mut fields = text.split_whitespace();
    let wall: f64 = fields.next().context("no wall time")?.parse()?;
    let rss: u64 = fields.next().context("no RSS")?.parse()?;
    Ok((wall, rss))
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn chain(n: usize, kind: &str) -> String {
    let mut yaml = String::from("blocks:\n");
    for i in 0..n {
        yaml.push_str(&format!("  b{i}:\n"));
        match kind {
            "script" => yaml.push_str("    script: scripts/true.sh\n"),
            _ => yaml.push_str("    run: 'true'\n"),
        }
        if i > 0 {
            yaml.push_str(&format!("    needs: [b{}]\n", i - 1));
        }
    }
    yaml
}

fn fan(n: usize) -> String {
    let mut yaml = String::from("blocks:\n  root:\n    run: 'true'\n");
    for i in 0..n {
        yaml.push_str(&format!("  f{i}:\n    run: 'true'\n    needs: [root]\n"));
    }
    yaml.push_str("  join:\n    run: 'true'\n    needs: [");
    yaml.push_str(
        &(0..n)
            .map(|i| format!("f{i}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    yaml.push_str("]\n");
    yaml
}

fn overhead(repeat: usize) -> Result<()> {
    let repeat = repeat.max(5);
    let sluice = sluice_binary()?;
    let project = tempfile::tempdir()?;
    std::fs::create_dir_all(project.path().join("pipelines"))?;
    std::fs::create_dir_all(project.path().join("scripts"))?;
    std::fs::write(project.path().join("scripts/true.sh"), "true\n")?;
    let cases: [(&str, String, usize); 3] = [
        ("chain40", chain(40, "run"), 40),
        ("fan100", fan(100), 102),
        ("shell40", chain(40, "script"), 40),
    ];
    for (name, yaml, _) in &cases {
        std::fs::write(project.path().join(format!("pipelines/{name}.yaml")), yaml)?;
    }
    // The spawn floor: what starting the same block processes costs without
    // sluice (`bash -c true`, as a `run:` block is started).
    let mut floor = Vec::new();
    for _ in 0..repeat {
        let started = Instant::now();
        for _ in 0..40 {
            Command::new("bash")
                .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", "true"])
                .status()?;
        }
        floor.push(started.elapsed().as_secs_f64() / 40.0);
    }
    let floor = median(&mut floor);
    let project_dir = project.path().to_str().context("temp path is not UTF-8")?;

    println!("sluice run, cold process, SQLite ({repeat} runs each, median)");
    println!(
        "{:<10} {:>10} {:>14} {:>16} {:>12}",
        "case", "wall", "per block", "over spawn", "peak RSS"
    );
    for (name, _, blocks) in &cases {
        // One warm-up run creates the database file.
        measure(&sluice, &["run", name, "--project", project_dir])?;
        let mut walls = Vec::new();
        let mut peak = 0;
        for _ in 0..repeat {
            let (wall, rss) = measure(&sluice, &["run", name, "--project", project_dir])?;
            walls.push(wall);
            peak = peak.max(rss);
        }
        let wall = median(&mut walls);
        let per_block = wall / *blocks as f64;
        println!(
            "{:<10} {:>9.3}s {:>12.2}ms {:>14.2}ms {:>9.1}MiB",
            name,
            wall,
            per_block * 1000.0,
            (per_block - floor) * 1000.0,
            peak as f64 / 1024.0
        );
    }
    println!("spawn floor: {:.2}ms per `bash -c true`", floor * 1000.0);
    Ok(())
}
