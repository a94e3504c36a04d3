//! `sluice-bench all --quick` at tiny sizes runs every benchmark against a
//! real `sluice` and writes a table with every row. Nothing here looks at a
//! time: benchmarks measure, tests do not assert speed.
//!
//! With `SLUICE_TEST_DATABASE_URL` the PostgreSQL variants run too;
//! `SLUICE_REQUIRE_POSTGRES=1` makes their absence a failure.

use std::process::Command;

const SQLITE_AND_POSTGRES: &[&str] = &["SQLite", "PostgreSQL"];

fn expected_rows() -> Vec<(String, String)> {
    let mut rows = Vec::new();
    let mut add = |benchmark: &str, metric: String| rows.push((benchmark.to_owned(), metric));
    add("overhead", "spawn floor (`bash -c true`)".to_owned());
    for case in ["chain", "fan", "shell"] {
        add("overhead", format!("{case} wall"));
        add("overhead", format!("{case} per block over the spawn"));
        add("overhead", format!("{case} peak RSS"));
    }
    for mode in ["built-in agent", "remote agent"] {
        add("latency", format!("{mode}: trigger to first block start"));
        add("latency", format!("{mode}: completion to successor start"));
    }
    for database in SQLITE_AND_POSTGRES {
        for mode in ["built-in agent", "4 remote agents"] {
            add("throughput", format!("{database}, {mode}: block runs/s"));
        }
        for metric in ["enqueue", "claim rate", "server RSS"] {
            add("throughput", format!("{database}, 10,000 queued: {metric}"));
        }
        for metric in [
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
        ] {
            add("history", format!("{database}: {metric}"));
        }
    }
    add("logs", "the command alone, to /dev/null".to_owned());
    for mode in ["built-in agent", "remote agent"] {
        add("logs", format!("{mode}: log block, trigger to end"));
        add("logs", format!("{mode}: server peak RSS"));
    }
    add("logs", "remote agent: agent peak RSS".to_owned());
    add(
        "logs",
        "live-follow lag (printed to read from SSE)".to_owned(),
    );
    add("footprint", "binary size".to_owned());
    add("footprint", "start to ready (/readyz)".to_owned());
    add("footprint", "idle server RSS".to_owned());
    rows
}

#[test]
fn all_quick_writes_every_row() {
    let postgres = std::env::var("SLUICE_TEST_DATABASE_URL")
        .ok()
        .filter(|url| !url.is_empty());
    let required = std::env::var("SLUICE_REQUIRE_POSTGRES").as_deref() == Ok("1");
    assert!(
        postgres.is_some() || !required,
        "SLUICE_REQUIRE_POSTGRES=1 but SLUICE_TEST_DATABASE_URL is not set"
    );
    let dir = tempfile::tempdir().unwrap();
    let markdown = dir.path().join("results.md");
    let mut command = Command::new(env!("CARGO_BIN_EXE_sluice-bench"));
    command
        .args([
            "all",
            "--quick",
            "--repeat",
            "1",
            "--runs",
            "4000",
            "--markdown",
        ])
        .arg(&markdown)
        .env_remove("SLUICE_BENCH_SLUICE");
    match &postgres {
        Some(url) => command.args(["--postgres", url]),
        None => command.env_remove("SLUICE_TEST_DATABASE_URL"),
    };
    let output = command.output().expect("run sluice-bench");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "sluice-bench failed:\n{stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.starts_with("benchmark"),
        "no table on stdout:\n{stdout}"
    );

    let text = std::fs::read_to_string(&markdown).expect("the markdown table");
    let rows: Vec<Vec<&str>> = text
        .lines()
        .filter(|line| line.starts_with("| ") && !line.starts_with("| benchmark"))
        .map(|line| line.trim_matches('|').split(" | ").map(str::trim).collect())
        .collect();
    for (benchmark, metric) in expected_rows() {
        let row = rows
            .iter()
            .find(|row| row[0] == benchmark && row[1] == metric)
            .unwrap_or_else(|| panic!("no row {benchmark} / {metric} in\n{text}"));
        assert!(!row[2].is_empty(), "an empty value in {row:?}");
        let skipped = row[2].starts_with("skipped");
        if postgres.is_some() || !metric.starts_with("PostgreSQL") {
            assert!(!skipped, "a row was skipped: {row:?}");
        }
    }
    assert_eq!(
        rows.len(),
        expected_rows().len(),
        "unexpected rows in\n{text}"
    );
}
