//! Test support: a throwaway project directory per test, the `sluice` binary
//! run against it, and bounded waiting for conditions.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

pub const BIN: &str = env!("CARGO_BIN_EXE_sluice");

/// A project directory owned by one test.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Project {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
        Project { dir }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn write(&self, relative: &str, contents: &str) -> PathBuf {
        let path = self.path().join(relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, contents).unwrap();
        path
    }

    pub fn pipeline(&self, name: &str, yaml: &str) {
        self.write(&format!("pipelines/{name}.yaml"), yaml);
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .args(args)
            .arg("--project")
            .arg(self.path())
            // Blocks run in copies of the project's pinned files, so state a
            // test shares with its blocks lives in `$TEST_DIR` (the project
            // directory itself), which every block inherits.
            .env("TEST_DIR", self.path())
            .env("NO_COLOR", "1")
            .env_remove("SLUICE_PROJECT")
            .env_remove("SLUICE_SERVER")
            .env_remove("SLUICE_TOKEN")
            .stdin(Stdio::null());
        command
    }

    /// Runs `sluice ARGS --project DIR` to its end.
    pub fn sluice(&self, args: &[&str]) -> Output {
        self.command(args).output().expect("run sluice")
    }

    /// Starts `sluice ARGS --project DIR` in the background.
    pub fn spawn(&self, args: &[&str]) -> Child {
        self.command(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn sluice")
    }

    /// `sluice run PIPELINE ARGS --output json`: the exit code and the run.
    pub fn run(&self, pipeline: &str, extra: &[&str]) -> (i32, Value) {
        let mut args = vec!["run", pipeline, "--output", "json"];
        args.extend_from_slice(extra);
        let output = self.sluice(&args);
        let code = output.status.code().unwrap_or(-1);
        let run = serde_json::from_slice(&output.stdout).unwrap_or_else(|error| {
            panic!(
                "sluice run printed no JSON ({error}); exit {code}\nstdout: {}\nstderr: {}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )
        });
        (code, run)
    }

    /// `sluice runs show RUN --output json`.
    pub fn show(&self, run_id: &str) -> Value {
        let output = self.sluice(&["runs", "show", run_id, "--output", "json"]);
        assert!(
            output.status.success(),
            "runs show failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("runs show JSON")
    }

    /// `sluice runs list --output json` with extra filters.
    pub fn list(&self, extra: &[&str]) -> Vec<Value> {
        let mut args = vec!["runs", "list", "--output", "json"];
        args.extend_from_slice(extra);
        let output = self.sluice(&args);
        assert!(
            output.status.success(),
            "runs list failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout).expect("runs list JSON")
    }

    /// `sluice runs logs RUN ARGS` as text.
    pub fn logs(&self, run_id: &str, extra: &[&str]) -> String {
        let mut args = vec!["runs", "logs", run_id];
        args.extend_from_slice(extra);
        let output = self.sluice(&args);
        assert!(
            output.status.success(),
            "runs logs failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }
}

/// The block runs of an attempt (the latest when `None`) from `runs show` JSON.
pub fn block_runs(details: &Value, attempt: Option<u64>) -> Vec<Value> {
    let attempts = details["attempts"].as_array().unwrap();
    let chosen = match attempt {
        Some(number) => attempts
            .iter()
            .find(|a| a["attempt"].as_u64() == Some(number))
            .unwrap(),
        None => attempts.last().unwrap(),
    };
    chosen["block_runs"].as_array().unwrap().clone()
}

/// The block run of `block` in an attempt.
pub fn block(details: &Value, attempt: Option<u64>, name: &str) -> Value {
    block_runs(details, attempt)
        .into_iter()
        .find(|b| b["block"] == name)
        .unwrap_or_else(|| panic!("no block {name} in {details:#}"))
}

pub fn status_of(details: &Value, name: &str) -> String {
    block(details, None, name)["status"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Polls `condition` until it holds, or panics after `timeout`.
pub fn wait_until(what: &str, timeout: Duration, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if condition() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}

/// Whether any process's command line contains `marker`.
pub fn process_with(marker: &str) -> bool {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return false;
    };
    entries.flatten().any(|entry| {
        std::fs::read(entry.path().join("cmdline"))
            .map(|bytes| {
                let text = String::from_utf8_lossy(&bytes).replace('\0', " ");
                text.contains(marker)
            })
            .unwrap_or(false)
    })
}

/// A unique marker for `sleep` commands, so a test finds exactly its own
/// processes.
pub fn sleep_marker() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!("1000.{:09}", nanos.max(1))
}

/// The PostgreSQL test database (`SLUICE_TEST_DATABASE_URL`), or `None`
/// with a line saying so when it is not configured; CI sets
/// `SLUICE_REQUIRE_POSTGRES=1` to make its absence a failure.
pub fn postgres_url(test: &str) -> Option<String> {
    match std::env::var("SLUICE_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("SLUICE_REQUIRE_POSTGRES").as_deref() == Ok("1") => {
            panic!("{test}: SLUICE_REQUIRE_POSTGRES=1 but SLUICE_TEST_DATABASE_URL is not set")
        }
        _ => {
            eprintln!("skipped {test}: SLUICE_TEST_DATABASE_URL is not set");
            None
        }
    }
}

/// Runs one statement with `psql`, failing the test if it fails.
pub fn psql(url: &str, sql: &str) -> String {
    let output = Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-At", "-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        output.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

/// A schema of its own in the PostgreSQL test database, dropped when the
/// test ends. `database` is the URL a server or command opens: the test
/// database with the schema as its search path.
pub struct PgSchema {
    pub url: String,
    pub name: String,
    pub database: String,
}

impl PgSchema {
    /// A fresh schema, or `None` when PostgreSQL is not configured (see
    /// [`postgres_url`]).
    pub fn create(test: &str) -> Option<PgSchema> {
        let url = postgres_url(test)?;
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos();
        let name = format!(
            "sluice_t_{}_{}",
            std::process::id(),
            nanos % 1_000_000_000_000
        );
        psql(&url, &format!("CREATE SCHEMA {name}"));
        let separator = if url.contains('?') { '&' } else { '?' };
        let database = format!("{url}{separator}options=-c%20search_path%3D{name}");
        Some(PgSchema {
            url,
            name,
            database,
        })
    }

    /// The result of `sql` (one value per line) in this schema.
    pub fn query(&self, sql: &str) -> String {
        psql(&self.database, sql)
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let _ = Command::new("psql")
            .args([
                self.url.as_str(),
                "-q",
                "-c",
                &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
            ])
            .output();
    }
}
