//! Footprint: the size of the `sluice` binary, the time from starting
//! `sluice up` to its `/readyz` answering 200, and its memory once idle.

use std::time::{Duration, Instant};

use anyhow::Result;

use crate::harness::{Database, Options, Project, Server, memory_kib};
use crate::report::{Report, mib};

pub async fn footprint(options: &Options, report: &mut Report) -> Result<()> {
    let size = std::fs::metadata(&options.sluice)?.len();
    report.info(
        "footprint",
        "binary size",
        format!(
            "{:.1} MiB ({})",
            size as f64 / (1024.0 * 1024.0),
            options.sluice.display()
        ),
    );
    let mut ready = Vec::new();
    let mut idle = Vec::new();
    let idle_for = Duration::from_millis(if options.quick { 300 } else { 3000 });
    for _ in 0..options.size(5, 2) {
        let project = Project::new()?;
        project.pipeline("hello", "blocks:\n  hello:\n    run: echo hello\n")?;
        let started = Instant::now();
        let server = Server::start(options, &project, &Database::sqlite(), &[], None).await?;
        let deadline = started + Duration::from_secs(60);
        while server.http.status("/readyz").await.unwrap_or(0) != 200 {
            if Instant::now() > deadline {
                anyhow::bail!("sluice up was not ready within a minute");
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        ready.push(started.elapsed().as_secs_f64());
        // Idle: nothing to run; the reconcilers poll on their own.
        tokio::time::sleep(idle_for).await;
        idle.push(memory_kib(server.process.pid())?.0);
    }
    ready.sort_by(f64::total_cmp);
    idle.sort_unstable();
    report.info(
        "footprint",
        "start to ready (/readyz)",
        format!(
            "{:.0} ms (median of {})",
            ready[ready.len() / 2] * 1000.0,
            ready.len()
        ),
    );
    let rss = idle[idle.len() / 2];
    report.judged(
        "footprint",
        "idle server RSS",
        mib(rss),
        "< 30 MiB",
        rss < 30 * 1024,
    );
    Ok(())
}
