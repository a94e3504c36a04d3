//! Overhead, cold: whole `sluice run` processes of chain40, fan100 and
//! shell40 on SQLite, against the cost of a bare process spawn measured in
//! the same run.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, Result, bail};

use crate::harness::{Options, Project};
use crate::report::{Report, mib};

/// Runs a command, then prints its wall time in seconds and the peak RSS
/// of its largest process in KiB (`getrusage(RUSAGE_CHILDREN)` of this
/// process, which has no other child).
pub fn measure_one(program: &str, args: &[String]) -> Result<()> {
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

/// `n` blocks, each needing the previous one.
pub fn chain(n: usize, kind: &str) -> String {
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

/// One root, `n` blocks in parallel, one join.
pub fn fan(n: usize) -> String {
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

pub fn overhead(options: &Options, repeat: usize, report: &mut Report) -> Result<()> {
    let repeat = if options.quick { 1 } else { repeat.max(5) };
    let (chain_len, fan_width) = if options.quick { (5, 5) } else { (40, 100) };
    let project = Project::new()?;
    std::fs::create_dir_all(project.path().join("scripts"))?;
    std::fs::write(project.path().join("scripts/true.sh"), "true\n")?;
    let cases: [(String, String, usize); 3] = [
        (
            format!("chain{chain_len}"),
            chain(chain_len, "run"),
            chain_len,
        ),
        (format!("fan{fan_width}"), fan(fan_width), fan_width + 2),
        (
            format!("shell{chain_len}"),
            chain(chain_len, "script"),
            chain_len,
        ),
    ];
    for (name, yaml, _) in &cases {
        project.pipeline(name, yaml)?;
    }
    // The spawn floor: what starting the same block processes costs without
    // sluice (`bash -c true`, as a `run:` block is started).
    let mut floor = Vec::new();
    for _ in 0..repeat.max(5) {
        let started = Instant::now();
        for _ in 0..40 {
            Command::new("bash")
                .args(["--noprofile", "--norc", "-eo", "pipefail", "-c", "true"])
                .status()?;
        }
        floor.push(started.elapsed().as_secs_f64() / 40.0);
    }
    let floor = median(&mut floor);
    let project_dir = project.path_str()?;
    report.info(
        "overhead",
        "spawn floor (`bash -c true`)",
        format!("{:.2} ms", floor * 1000.0),
    );
    for (index, (name, _, blocks)) in cases.iter().enumerate() {
        // One warm-up run creates the database file.
        measure(&options.sluice, &["run", name, "--project", project_dir])?;
        let mut walls = Vec::new();
        let mut peak = 0;
        for _ in 0..repeat {
            let (wall, rss) = measure(&options.sluice, &["run", name, "--project", project_dir])?;
            walls.push(wall);
            peak = peak.max(rss);
        }
        let wall = median(&mut walls);
        let per_block = wall / *blocks as f64;
        let over_spawn = per_block - floor;
        let label = ["chain", "fan", "shell"][index];
        let value = format!("{wall:.3} s ({name}, median of {repeat})");
        if index == 0 {
            report.judged(
                "overhead",
                &format!("{label} wall"),
                value,
                "< 0.25 s (chain40)",
                wall < 0.25,
            );
        } else {
            report.info("overhead", &format!("{label} wall"), value);
        }
        report.judged(
            "overhead",
            &format!("{label} per block over the spawn"),
            format!(
                "{:.2} ms ({:.2} ms per block)",
                over_spawn * 1000.0,
                per_block * 1000.0
            ),
            "< 1 ms",
            over_spawn < 0.001,
        );
        report.info("overhead", &format!("{label} peak RSS"), mib(peak));
    }
    Ok(())
}
