//! History at scale: a generator bulk-loads a year of finished runs (with
//! block runs and tries, realistic statuses, several pipelines, tags and
//! trigger kinds) through the store's bulk loader, then the run listing is
//! timed as the history pages and dashboards use it: first and deep pages
//! with filters, text search, status counts, and `sluice runs list`.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use jiff::{SignedDuration, Timestamp};
use sha2::{Digest, Sha256};
use sluice_core::ids::{BlockRunId, RunId, TryId};
use sluice_core::status::{BlockRunStatus, RunStatus};
use sluice_core::vars::{ResolvedVariable, ResolvedVariables, VariableLayer};
use sluice_store::InvokedBy;
use sluice_store::bulk::{HistoryBlockRun, HistoryLoader, HistoryRun};

use crate::harness::{Database, Http, Options, Project, Server};
use crate::report::{Report, millis_summary, quantile};

/// The generated pipelines: name, blocks (a chain), typical run seconds,
/// share of runs (per mille), tags.
const PIPELINES: &[(&str, usize, i64, u64, &[&str])] = &[
    ("orders_etl", 4, 300, 250, &["team-data", "prod"]),
    ("daily_report", 3, 120, 150, &["team-finance", "prod"]),
    ("ml_training", 5, 3600, 50, &["team-ml"]),
    ("events_ingest", 2, 30, 250, &["team-data", "prod"]),
    ("billing_sync", 3, 90, 100, &["team-finance"]),
    ("search_index", 4, 600, 100, &["team-search", "prod"]),
    ("data_quality", 6, 240, 70, &["team-data"]),
    ("backups", 2, 900, 30, &["team-infra", "prod"]),
];

/// A small deterministic generator (xorshift64*), so every run of the bench
/// loads the same history.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn pipeline_yaml(blocks: usize) -> String {
    let mut yaml = String::from("blocks:\n");
    for i in 0..blocks {
        yaml.push_str(&format!("  step{i}:\n    run: 'true'\n"));
        if i > 0 {
            yaml.push_str(&format!("    needs: [step{}]\n", i - 1));
        }
    }
    yaml
}

fn sha256_hex(text: &str) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The history generator: run `index` of `total`, created in order over the
/// year before `end`.
struct Generator {
    random: Random,
    end: Timestamp,
    total: usize,
    versions: Vec<String>,
}

impl Generator {
    fn run(&mut self, index: usize) -> HistoryRun {
        let year = 365 * 86_400_i64;
        let step = year as f64 / self.total as f64;
        let offset =
            (index as f64 * step) as i64 + self.random.below(step.max(1.0) as u64 + 1) as i64;
        let created_at = self.end - SignedDuration::from_secs(year - offset);
        let mut pick = self.random.below(1000);
        let mut chosen = 0;
        for (position, pipeline) in PIPELINES.iter().enumerate() {
            if pick < pipeline.3 {
                chosen = position;
                break;
            }
            pick -= pipeline.3;
        }
        let (name, blocks, seconds, _, tags) = PIPELINES[chosen];
        let roll = self.random.below(1000);
        let status = match roll {
            0..900 => RunStatus::Completed,
            900..970 => RunStatus::Failed,
            _ => RunStatus::Cancelled,
        };
        let kind = match self.random.below(100) {
            0..70 => "schedule",
            70..80 => "manual",
            80..92 => "api",
            92..97 => "webhook",
            _ => "backfill",
        };
        let started_at =
            created_at + SignedDuration::from_millis(self.random.below(5000) as i64 + 50);
        let duration = seconds / 2 + self.random.below(seconds as u64 + 1) as i64;
        // Which block ends the run early (failed or cancelled).
        let breaking = match status {
            RunStatus::Completed => blocks,
            _ => self.random.below(blocks as u64) as usize,
        };
        let mut block_runs = Vec::with_capacity(blocks);
        let share = duration * 1000 / blocks as i64;
        let mut clock = started_at;
        let mut error = None;
        for block in 0..blocks {
            let (block_status, ran) = if block < breaking {
                (BlockRunStatus::Completed, true)
            } else if block == breaking && status == RunStatus::Failed {
                (BlockRunStatus::Failed, true)
            } else if block == breaking {
                (BlockRunStatus::Cancelled, true)
            } else if status == RunStatus::Failed {
                (BlockRunStatus::UpstreamFailed, false)
            } else {
                (BlockRunStatus::Cancelled, false)
            };
            let block_started = ran.then_some(clock);
            if ran {
                clock += SignedDuration::from_millis(share);
            }
            let block_error = (block_status == BlockRunStatus::Failed).then(|| {
                format!(
                    "exit code 1: ERR-{:04} in step{block}",
                    self.random.below(10_000)
                )
            });
            if block_error.is_some() {
                error = Some(format!("block `step{block}` failed"));
            }
            block_runs.push(HistoryBlockRun {
                id: BlockRunId(uuid::Uuid::now_v7().to_string()),
                try_id: TryId(uuid::Uuid::now_v7().to_string()),
                block: format!("step{block}"),
                status: block_status,
                started_at: block_started,
                finished_at: clock,
                exit_code: ran.then_some(i32::from(block_status == BlockRunStatus::Failed)),
                error: block_error,
            });
        }
        if status == RunStatus::Cancelled {
            error = Some("cancelled by an operator".to_owned());
        }
        let mut variables = ResolvedVariables::default();
        variables.0.insert(
            "window_date".to_owned(),
            ResolvedVariable {
                value: serde_json::Value::String(created_at.strftime("%Y-%m-%d").to_string()),
                layer: VariableLayer::Trigger,
                secret: false,
            },
        );
        HistoryRun {
            id: RunId(uuid::Uuid::now_v7().to_string()),
            pipeline: name.to_owned(),
            pipeline_version: self.versions[chosen].clone(),
            status,
            priority: 0,
            invoked_by: InvokedBy {
                kind: kind.to_owned(),
                name: (kind == "schedule").then(|| "nightly".to_owned()),
                actor: (kind == "manual").then(|| "alice".to_owned()),
                parent_run_id: None,
            },
            tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
            variables,
            created_at,
            started_at: Some(started_at),
            finished_at: clock,
            error,
            blocks: block_runs,
        }
    }
}

pub async fn history(options: &Options, runs: Option<usize>, report: &mut Report) -> Result<()> {
    let total = runs.unwrap_or(options.size(1_000_000, 2_000));
    let sqlite = Database::sqlite();
    match &options.postgres {
        Some(url) => {
            let postgres = Database::postgres(url, "history").await?;
            let outcome = async {
                // The two loads overlap (one mostly in this process, one
                // mostly in PostgreSQL's), which saves minutes on two
                // cores; the queries are timed one backend at a time.
                let (first, second) = tokio::join!(
                    load(&sqlite, total, "alongside the PostgreSQL load"),
                    load(&postgres, total, "alongside the SQLite load"),
                );
                let (first, second) = (first?, second?);
                measure(options, &sqlite, first, report).await?;
                measure(options, &postgres, second, report).await
            }
            .await;
            postgres.drop_schema().await?;
            outcome?;
        }
        None => {
            let loaded = load(&sqlite, total, "").await?;
            measure(options, &sqlite, loaded, report).await?;
            for metric in METRICS {
                report.skipped(
                    "history",
                    &format!("PostgreSQL: {metric}"),
                    "no --postgres URL",
                );
            }
        }
    }
    Ok(())
}

/// Every metric of one backend, in order (for the rows of a skipped one).
const METRICS: &[&str] = &[
    "bulk load",
    "first page",
    "first page, status + pipeline + window",
    "deep page, status + pipeline + window",
    "text search",
    "text search + pipeline",
    "dashboard: status counts, 30 days",
    "dashboard: runs per day, 30 days",
    "dashboard: average duration",
    "dashboard page (web UI)",
    "sluice runs list",
];

/// A backend's loaded history: its project, the end of its year, and the
/// bulk load's row.
struct Loaded {
    project: Project,
    end: Timestamp,
    load: String,
}

async fn load(database: &Database, total: usize, note: &str) -> Result<Loaded> {
    let name = database.name();
    eprintln!("history, {name}, loading {total} runs");
    let project = Project::new()?;
    let location = database.location(&project);
    let store = sluice_store::open(&location)
        .await
        .with_context(|| format!("cannot open {location}"))?;
    let mut versions = Vec::new();
    for (pipeline, blocks, ..) in PIPELINES {
        let yaml = pipeline_yaml(*blocks);
        project.pipeline(pipeline, &yaml)?;
        let sha = sha256_hex(&yaml);
        store.put_pipeline_version(&sha, pipeline, &yaml).await?;
        versions.push(sha);
    }
    drop(store);

    let end = Timestamp::now();
    let mut generator = Generator {
        random: Random(0x5EED_1234_ABCD_0001),
        end,
        total,
        versions,
    };
    let mut loader = HistoryLoader::open(&location).await?;
    let batch = 10_000;
    let started = Instant::now();
    let mut block_runs = 0;
    let mut index = 0;
    while index < total {
        let runs: Vec<HistoryRun> = (index..total.min(index + batch))
            .map(|i| generator.run(i))
            .collect();
        block_runs += runs.iter().map(|run| run.blocks.len()).sum::<usize>();
        loader.load(&runs).await?;
        index += runs.len();
        // Let an overlapping load have its turn between batches.
        tokio::task::yield_now().await;
    }
    drop(loader);
    let seconds = started.elapsed().as_secs_f64();
    let mut load = format!(
        "{total} runs, {block_runs} block runs in {seconds:.1} s ({:.0} runs/s)",
        total as f64 / seconds
    );
    if !note.is_empty() {
        load.push_str(&format!(", {note}"));
    }
    if database.url.is_some() {
        // What autovacuum does shortly after a load this size: statistics
        // for the planner, and the visibility map that lets counts read
        // the indexes alone.
        let mut connection = <sqlx::PgConnection as sqlx::Connection>::connect(&location).await?;
        sqlx::Executor::execute(&mut connection, "VACUUM ANALYZE pipeline_run").await?;
        sqlx::Executor::execute(&mut connection, "ANALYZE").await?;
    }
    Ok(Loaded { project, end, load })
}

async fn measure(
    options: &Options,
    database: &Database,
    loaded: Loaded,
    report: &mut Report,
) -> Result<()> {
    let name = database.name();
    eprintln!("history, {name}, timing the queries");
    let Loaded { project, end, load } = loaded;
    report.info("history", &format!("{name}: bulk load"), load);

    let server = Server::start(options, &project, database, &[], None).await?;
    let embedded = Database::sqlite();
    let http = server.http.clone();
    let day = SignedDuration::from_hours(24);
    let window = format!("after={}&before={}", end - day * 90, end - day * 30);
    let filtered = format!("status=completed&pipeline=orders_etl&{window}");
    let budget = Duration::from_secs(if options.quick { 2 } else { 8 });
    let samples = options.size(100, 5);
    let judged = |report: &mut Report, metric: &str, values: &[f64]| {
        let p99 = quantile(values, 0.99);
        report.judged(
            "history",
            &format!("{name}: {metric}"),
            millis_summary(values),
            "p99 < 50 ms",
            p99 < 0.050,
        );
    };

    let values = time_get(&http, "/api/pipeline_runs?limit=50", samples, budget).await?;
    judged(report, "first page", &values);
    let first = format!("/api/pipeline_runs?limit=50&{filtered}");
    let values = time_get(&http, &first, samples, budget).await?;
    judged(report, "first page, status + pipeline + window", &values);

    // Follow `next_cursor` deep into the filtered listing, then time that page.
    let depth = options.size(40, 2);
    let mut cursor = None;
    let mut pages = 0;
    for _ in 0..depth {
        let path = match &cursor {
            Some(cursor) => format!("{first}&next_cursor={cursor}"),
            None => first.clone(),
        };
        let page = http.get(&path).await?;
        match page["next_cursor"].as_str() {
            Some(next) => {
                cursor = Some(next.to_owned());
                pages += 1;
            }
            None => break,
        }
    }
    match &cursor {
        Some(cursor) => {
            let deep = format!("{first}&next_cursor={cursor}");
            let values = time_get(&http, &deep, samples, budget).await?;
            report.judged(
                "history",
                &format!("{name}: deep page, status + pipeline + window"),
                format!("{} at page {}", millis_summary(&values), pages + 1),
                "p99 < 50 ms",
                quantile(&values, 0.99) < 0.050,
            );
        }
        None => report.skipped(
            "history",
            &format!("{name}: deep page, status + pipeline + window"),
            "the filtered listing has one page",
        ),
    }

    let values = time_get(
        &http,
        "/api/pipeline_runs?limit=50&q=ERR-0042",
        samples,
        budget,
    )
    .await?;
    judged(report, "text search", &values);
    let values = time_get(
        &http,
        "/api/pipeline_runs?limit=50&q=ERR-0042&pipeline=orders_etl",
        samples,
        budget,
    )
    .await?;
    judged(report, "text search + pipeline", &values);

    // The dashboard: no aggregate endpoint exists, so its numbers come from
    // the listing's `summary` counts (success rate from the status counts,
    // runs per day from one count per day).
    let month = format!("after={}", end - day * 30);
    let counts = format!("/api/pipeline_runs?limit=1&summary=true&{month}");
    let values = time_get(&http, &counts, samples, budget).await?;
    let summary = http.get(&counts).await?["summary"].clone();
    let of = |status: &str| summary[status].as_u64().unwrap_or(0) as f64;
    let rate = of("completed") / (of("completed") + of("failed") + of("cancelled")).max(1.0);
    report.judged(
        "history",
        &format!("{name}: dashboard: status counts, 30 days"),
        format!(
            "{} (success rate {:.1}%)",
            millis_summary(&values),
            rate * 100.0
        ),
        "p99 < 50 ms",
        quantile(&values, 0.99) < 0.050,
    );
    let mut per_day = Vec::new();
    let deadline = Instant::now() + budget;
    while per_day.len() < options.size(20, 2) && (per_day.len() < 3 || Instant::now() < deadline) {
        let started = Instant::now();
        for days in 0..30 {
            let from = end - day * (days + 1);
            let to = end - day * days;
            http.get(&format!(
                "/api/pipeline_runs?limit=1&summary=true&after={from}&before={to}"
            ))
            .await?;
        }
        per_day.push(started.elapsed().as_secs_f64());
    }
    report.judged(
        "history",
        &format!("{name}: dashboard: runs per day, 30 days"),
        format!("{} for 30 `summary` calls", millis_summary(&per_day)),
        "p99 < 50 ms",
        quantile(&per_day, 0.99) < 0.050,
    );
    // The average duration the dashboard shows is taken over the latest
    // 100 finished runs of what its filters select: one listing.
    let finished = format!(
        "/api/pipeline_runs?limit=100&status=completed&status=failed&status=cancelled&{month}"
    );
    let values = time_get(&http, &finished, samples, budget).await?;
    let listed = http.get(&finished).await?;
    let durations: Vec<f64> = listed["pipeline_runs"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|run| {
            let started: jiff::Timestamp = run["started_at"].as_str()?.parse().ok()?;
            let finished: jiff::Timestamp = run["finished_at"].as_str()?.parse().ok()?;
            Some(finished.duration_since(started).as_secs_f64())
        })
        .collect();
    let average = durations.iter().sum::<f64>() / (durations.len().max(1) as f64);
    report.judged(
        "history",
        &format!("{name}: dashboard: average duration"),
        format!(
            "{} (latest {} finished runs, average {average:.0} s)",
            millis_summary(&values),
            durations.len()
        ),
        "p99 < 50 ms",
        quantile(&values, 0.99) < 0.050,
    );
    // The whole runs dashboard of the web UI (`/`): the first page, the
    // success rate, the average duration, runs per day for 14 days and
    // what is running now, rendered on the server.
    let values = time_get(&http, "/", samples, budget).await?;
    judged(report, "dashboard page (web UI)", &values);

    // `sluice runs list` as a user types it: a whole CLI process, newest
    // 50. On SQLite it opens the project's file itself (embedded mode); the
    // CLI opens no PostgreSQL database, so there it asks the server.
    let (list_args, list_database) = match &database.url {
        None => (vec!["runs", "list", "--limit", "50"], database),
        Some(_) => (
            vec![
                "runs",
                "list",
                "--limit",
                "50",
                "--server",
                server.base.as_str(),
            ],
            &embedded,
        ),
    };
    let mut walls = Vec::new();
    let deadline = Instant::now() + budget;
    while walls.len() < options.size(20, 2) && (walls.len() < 3 || Instant::now() < deadline) {
        let started = Instant::now();
        let output = project
            .command(&options.sluice, &list_args, list_database)
            .output()?;
        walls.push(started.elapsed().as_secs_f64());
        if !output.status.success() {
            bail!(
                "sluice runs list failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
    }
    judged(report, "sluice runs list", &walls);
    drop(server);
    Ok(())
}

/// Times `GET path` `samples` times (at least 3, fewer when `budget` runs
/// out), after one untimed request.
async fn time_get(http: &Http, path: &str, samples: usize, budget: Duration) -> Result<Vec<f64>> {
    http.get_text(path).await?;
    let deadline = Instant::now() + budget;
    let mut values = Vec::new();
    while values.len() < samples && (values.len() < 3 || Instant::now() < deadline) {
        let started = Instant::now();
        http.get_text(path).await?;
        values.push(started.elapsed().as_secs_f64());
    }
    Ok(values)
}
