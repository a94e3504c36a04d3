//! `sluice up` as a real process on a free port, driven over plain HTTP:
//! trigger with variables, follow logs over SSE, list with a window and a
//! status filter, cancel, retry from a block, batch dry run then batch
//! cancel, sample a block's output, download an artifact and check its
//! SHA-256, export JSON lines; auth refusing anonymous callers; a graceful
//! shutdown whose interrupted try runs again after a restart; and artifacts
//! and data outputs kept where `--blobs` says.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Project, wait_until};
use serde_json::{Value, json};

const TIMEOUT: Duration = Duration::from_secs(60);

/// A running `sluice up`, killed when dropped.
struct Server {
    child: Child,
    base: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    fn start(project: &Project, extra: &[&str]) -> Server {
        Server::start_with_env(project, extra, &[])
    }

    fn start_with_env(project: &Project, extra: &[&str], env: &[(&str, &str)]) -> Server {
        let mut args = vec!["up", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut command = project.command(&args);
        command
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().expect("spawn sluice up");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = BufReader::new(child.stderr.take().expect("stderr"));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while pipe.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                sink.lock().expect("lock").push_str(&line);
                line.clear();
            }
        });
        let mut base = String::new();
        wait_until("the server to say where it listens", TIMEOUT, || {
            let text = stderr.lock().expect("lock").clone();
            if let Some(start) = text.find("http://") {
                let rest = &text[start..];
                base = rest
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                true
            } else {
                false
            }
        });
        Server {
            child,
            base,
            stderr,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn log(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).expect("SIGTERM");
        let mut status = None;
        wait_until("the server to exit after SIGTERM", TIMEOUT, || {
            status = self.child.try_wait().expect("wait");
            status.is_some()
        });
        status.expect("an exit status")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .expect("an HTTP client")
}

fn get(server: &Server, path: &str) -> Value {
    let response = client().get(server.url(path)).send().expect("GET");
    let status = response.status();
    let body = response.text().expect("a body");
    assert!(status.is_success(), "GET {path}: {status} {body}");
    serde_json::from_str(&body).expect("JSON")
}

fn post(server: &Server, path: &str, body: Value) -> (u16, Value) {
    let response = client()
        .post(server.url(path))
        .json(&body)
        .send()
        .expect("POST");
    let status = response.status().as_u16();
    (status, response.json().expect("JSON"))
}

fn run_status(server: &Server, id: &str) -> String {
    get(server, &format!("/api/pipeline_runs/{id}"))["pipeline_run"]["status"]
        .as_str()
        .expect("a status")
        .to_owned()
}

fn wait_for_status(server: &Server, id: &str, wanted: &str) {
    wait_until(&format!("run {id} to be {wanted}"), TIMEOUT, || {
        run_status(server, id) == wanted
    });
}

fn block_run_id(details: &Value, attempt: usize, block: &str) -> String {
    details["attempts"][attempt]["block_runs"]
        .as_array()
        .expect("block runs")
        .iter()
        .find(|block_run| block_run["block"] == block)
        .and_then(|block_run| block_run["id"].as_str())
        .expect("the block run")
        .to_owned()
}

const ETL: &str = r#"
variables:
  region: emea
  token: {default: "hush-token-4711", secret: true}
blocks:
  extract:
    run: |
      echo "extracting ${{ vars.region }}"
      echo "rows=3" >> "$SLUICE_OUTPUT"
      printf 'id,name\n1,a\n2,b\n3,c\n' > "$SLUICE_DATA"
      echo "summary of ${{ vars.region }}" > "$SLUICE_ARTIFACTS/summary.txt"
  broken:
    needs: [extract]
    run: |
      echo "broken sees $SLUICE_VAR_REGION"
      test "$SLUICE_ATTEMPT" -ge 2
  load:
    needs: [broken]
    run: echo "loaded"
"#;

#[test]
fn the_server_runs_the_ledger_over_http() {
    let project = Project::new();
    project.pipeline("etl", ETL);
    let marker = common::sleep_marker();
    project.pipeline(
        "slow",
        &format!("blocks:\n  wait:\n    run: sleep {marker}\n"),
    );
    let server = Server::start(&project, &[]);
    let started = jiff::Timestamp::now();

    // Trigger with variables.
    let (status, created) = post(
        &server,
        "/api/pipelines/etl/runs",
        json!({"variables": {"region": "apac"}}),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["pipeline_run"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();

    // Follow the first block's log over SSE until its end event.
    let mut extract = String::new();
    wait_until("the run's block runs to exist", TIMEOUT, || {
        let details = get(&server, &format!("/api/pipeline_runs/{id}"));
        if details["attempts"][0]["block_runs"]
            .as_array()
            .is_some_and(|runs| !runs.is_empty())
        {
            extract = block_run_id(&details, 0, "extract");
            true
        } else {
            false
        }
    });
    let mut stream = client()
        .get(server.url(&format!("/api/block_runs/{extract}/logs/stream")))
        .send()
        .expect("the log stream");
    assert_eq!(
        stream.headers()["content-type"].to_str().expect("ASCII"),
        "text/event-stream"
    );
    let mut events = String::new();
    stream.read_to_string(&mut events).expect("the stream ends");
    assert!(events.contains("event: line"), "{events}");
    assert!(events.contains("extracting apac"), "{events}");
    assert!(events.contains("event: end"), "{events}");

    wait_for_status(&server, &id, "failed");
    let details = get(&server, &format!("/api/pipeline_runs/{id}"));
    assert_eq!(
        details["pipeline_run"]["variables"]["region"]["value"],
        "apac"
    );
    assert_eq!(
        details["pipeline_run"]["variables"]["token"]["value"],
        "***"
    );

    // List with a time window and a status filter.
    let after = started - jiff::SignedDuration::from_secs(5);
    let before = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(5);
    let listed = get(
        &server,
        &format!("/api/pipeline_runs?status=failed&after={after}&before={before}"),
    );
    let ids: Vec<&str> = listed["pipeline_runs"]
        .as_array()
        .expect("runs")
        .iter()
        .filter_map(|run| run["id"].as_str())
        .collect();
    assert_eq!(ids, vec![id.as_str()]);
    let earlier = get(
        &server,
        &format!("/api/pipeline_runs?status=failed&before={after}"),
    );
    assert_eq!(earlier["pipeline_runs"].as_array().map(Vec::len), Some(0));

    // Sample the block's output and download its artifact.
    let outputs = get(
        &server,
        &format!("/api/block_runs/{extract}/outputs?sample_count=2"),
    );
    assert_eq!(outputs["outputs"]["rows"], "3");
    assert_eq!(outputs["data"]["rows"], json!([["1", "a"], ["2", "b"]]));
    let artifacts = get(&server, &format!("/api/artifacts?run={id}"));
    let artifact = &artifacts["artifacts"][0];
    let download = client()
        .get(server.url(artifact["download_url"].as_str().expect("a url")))
        .send()
        .expect("a download");
    let bytes = download.bytes().expect("the file");
    assert_eq!(&bytes[..], b"summary of apac\n");
    assert_eq!(
        artifact["sha256"],
        sluice_sha256(&bytes),
        "the recorded SHA-256 is the content's"
    );

    // Retry from the failed block: `extract` is reused, `broken` passes on
    // attempt 2.
    let (status, retried) = post(
        &server,
        &format!("/api/pipeline_runs/{id}/retry"),
        json!({"mode": "from_block", "block": "broken"}),
    );
    assert_eq!(status, 200, "{retried}");
    wait_for_status(&server, &id, "completed");
    let details = get(&server, &format!("/api/pipeline_runs/{id}"));
    let second = &details["attempts"][1]["block_runs"];
    let reused = second
        .as_array()
        .expect("block runs")
        .iter()
        .find(|block_run| block_run["block"] == "extract")
        .expect("extract");
    assert_eq!(reused["reused_from_attempt"], 1);

    // The same ledger through the CLI.
    let queried = cli(
        &project,
        &server,
        &[
            "runs",
            "query",
            "--after",
            &after.to_string(),
            "--before",
            &(jiff::Timestamp::now() + jiff::SignedDuration::from_secs(5)).to_string(),
            "--status",
            "completed",
            "-o",
            "json",
        ],
    );
    let queried: Value = serde_json::from_str(&queried).expect("JSON");
    assert_eq!(queried[0]["id"], id.as_str(), "{queried}");
    let logs = cli(
        &project,
        &server,
        &["runs", "logs", &id, "--block", "extract", "--attempt", "1"],
    );
    assert!(logs.contains("extracting apac"), "{logs}");
    let sample = cli(
        &project,
        &server,
        &["blocks", "output", &extract, "--sample", "2"],
    );
    assert!(sample.starts_with("id,name\n1,a\n2,b"), "{sample}");

    // Cancel one run, then batch: dry run first, then for real.
    // The CLI as a client: trigger detached, then cancel.
    let detached = cli(&project, &server, &["run", "slow", "--detach"]);
    let one = detached.trim().to_owned();
    assert!(!run_status(&server, &one).is_empty(), "{detached}");
    let (_, two) = post(&server, "/api/pipelines/slow/runs", json!({}));
    let two = two["pipeline_run"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    wait_until("a slow block to start", TIMEOUT, || {
        common::process_with(&marker)
    });
    cli(&project, &server, &["runs", "cancel", &one]);
    wait_for_status(&server, &one, "cancelled");
    let filter = json!({"pipeline": ["slow"], "status": ["initial", "running"]});
    let (status, dry) = post(
        &server,
        "/api/pipeline_runs/batch",
        json!({"action": "cancel", "filter": filter, "dry_run": true}),
    );
    assert_eq!(status, 200, "{dry}");
    assert_eq!(dry["runs"].as_array().map(Vec::len), Some(1), "{dry}");
    assert_eq!(dry["runs"][0]["id"], two.as_str());
    assert_eq!(dry["runs"][0]["outcome"], "would_cancel");
    assert_ne!(run_status(&server, &two), "cancelled");
    let (_, done) = post(
        &server,
        "/api/pipeline_runs/batch",
        json!({"action": "cancel", "filter": filter}),
    );
    assert_eq!(done["runs"][0]["outcome"], "cancelled", "{done}");
    wait_for_status(&server, &two, "cancelled");
    wait_until("no slow block process to remain", TIMEOUT, || {
        !common::process_with(&marker)
    });

    // Export JSON lines: one line per run, secrets masked.
    let export = client()
        .get(server.url("/api/pipeline_runs/export?format=jsonl"))
        .send()
        .expect("an export")
        .text()
        .expect("text");
    let lines: Vec<Value> = export
        .lines()
        .map(|line| serde_json::from_str(line).expect("a JSON line"))
        .collect();
    assert_eq!(lines.len(), 3, "{export}");
    assert!(lines.iter().any(|run| run["id"] == id.as_str()));
    assert!(
        !export.contains("hush-token-4711"),
        "the secret default leaked: {export}"
    );
    let exported = cli(&project, &server, &["runs", "export", "--format", "jsonl"]);
    assert_eq!(exported, export, "the CLI exports what the API does");
}

/// `sluice ARGS --server URL` against the running server: its stdout, after
/// checking that it succeeded.
fn cli(project: &Project, server: &Server, args: &[&str]) -> String {
    let mut args = args.to_vec();
    args.extend_from_slice(&["--server", &server.base]);
    let output = project.sluice(&args);
    assert!(
        output.status.success(),
        "sluice {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

fn sluice_sha256(bytes: &[u8]) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[test]
fn with_auth_every_request_needs_a_token() {
    let project = Project::new();
    project.pipeline("one", "blocks:\n  only:\n    run: 'true'\n");
    let created = project.sluice(&["token", "create", "--name", "ops", "--role", "operator"]);
    assert!(created.status.success(), "{created:?}");
    let token = String::from_utf8(created.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned();
    let server = Server::start(&project, &["--auth"]);

    let anonymous = client()
        .get(server.url("/api/pipeline_runs"))
        .send()
        .expect("GET");
    assert_eq!(anonymous.status().as_u16(), 401);
    let health = client().get(server.url("/healthz")).send().expect("GET");
    assert_eq!(health.status().as_u16(), 200);
    let ready = client().get(server.url("/readyz")).send().expect("GET");
    assert_eq!(ready.status().as_u16(), 200);

    let triggered = client()
        .post(server.url("/api/pipelines/one/runs"))
        .bearer_auth(&token)
        .json(&json!({}))
        .send()
        .expect("POST");
    assert_eq!(triggered.status().as_u16(), 201);
    let audit = client()
        .get(server.url("/api/audit"))
        .bearer_auth(&token)
        .send()
        .expect("GET");
    assert_eq!(
        audit.status().as_u16(),
        403,
        "operators cannot read the audit log"
    );
}

#[test]
fn a_non_loopback_address_without_auth_is_refused() {
    let project = Project::new();
    project.pipeline("one", "blocks:\n  only:\n    run: 'true'\n");
    let output = project.sluice(&["up", "--listen", "0.0.0.0:0"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("without auth"), "{stderr}");
    assert!(stderr.contains("hint: pass --auth"), "{stderr}");
}

#[test]
fn a_shutdown_interrupts_running_tries_and_a_restart_runs_them_again() {
    let project = Project::new();
    // The block waits for a file the test writes after the restart, so the
    // first server is sure to be stopped while the block runs.
    let gate = project.path().join("gate");
    project.pipeline(
        "gated",
        &format!(
            "blocks:\n  gated:\n    run: |\n      echo \"try $SLUICE_TRY\"\n      while [ ! -e '{}' ]; do sleep 0.05; done\n",
            gate.display()
        ),
    );
    let mut first = Server::start(&project, &["--drain-grace", "200ms"]);
    let (_, created) = post(&first, "/api/pipelines/gated/runs", json!({}));
    let id = created["pipeline_run"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    wait_for_status(&first, &id, "running");
    wait_until("the try to start", TIMEOUT, || {
        let details = get(&first, &format!("/api/pipeline_runs/{id}"));
        details["attempts"][0]["block_runs"][0]["tries"]
            .as_array()
            .is_some_and(|tries| !tries.is_empty())
    });
    let exit = first.terminate();
    assert!(exit.success(), "the server exits cleanly: {exit:?}");
    let log = first.log();
    assert!(
        log.contains("interrupt"),
        "the shutdown says what it did: {log}"
    );
    drop(first);

    let second = Server::start(&project, &[]);
    std::fs::write(&gate, "open").expect("open the gate");
    wait_for_status(&second, &id, "completed");
    let details = get(&second, &format!("/api/pipeline_runs/{id}"));
    let tries = details["attempts"][0]["block_runs"][0]["tries"]
        .as_array()
        .expect("tries")
        .clone();
    assert_eq!(tries.len(), 2, "{tries:?}");
    assert_eq!(tries[0]["status"], "lost");
    assert!(
        tries[0]["error"]
            .as_str()
            .is_some_and(|error| error.contains("interrupted")),
        "{tries:?}"
    );
    assert_eq!(tries[1]["status"], "completed");
}

/// The PostgreSQL test database, or `None` (with a line saying so) when it
/// is not configured; CI sets `SLUICE_REQUIRE_POSTGRES=1` to make its
/// absence a failure.
fn postgres_url(test: &str) -> Option<String> {
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

fn psql(url: &str, sql: &str) {
    let output = std::process::Command::new("psql")
        .args([url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .expect("psql runs");
    assert!(
        output.status.success(),
        "psql {sql}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A schema of the test database, dropped when the test ends.
struct Schema {
    url: String,
    name: String,
}

impl Drop for Schema {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args([
                self.url.as_str(),
                "-q",
                "-c",
                &format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name),
            ])
            .output();
    }
}

#[test]
fn the_server_keeps_its_ledger_in_postgresql() {
    let Some(url) = postgres_url("the_server_keeps_its_ledger_in_postgresql") else {
        return;
    };
    let name = format!(
        "sluice_cli_{}_{}",
        std::process::id(),
        jiff::Timestamp::now().as_nanosecond() % 1_000_000_000
    );
    psql(&url, &format!("CREATE SCHEMA {name}"));
    let schema = Schema {
        url: url.clone(),
        name: name.clone(),
    };
    let separator = if url.contains('?') { '&' } else { '?' };
    let database = format!("{url}{separator}options=-c%20search_path%3D{name}");

    let project = Project::new();
    project.pipeline("etl", ETL);
    let created = project.sluice(&[
        "token",
        "create",
        "--name",
        "ops",
        "--role",
        "operator",
        "--database",
        &database,
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let token = String::from_utf8(created.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned();
    let server = Server::start(&project, &["--auth", "--database", &database]);
    let response = client()
        .post(server.url("/api/pipelines/etl/runs"))
        .bearer_auth(&token)
        .json(&json!({"variables": {"region": "apac"}}))
        .send()
        .expect("POST");
    assert_eq!(response.status().as_u16(), 201);
    let created: Value = response.json().expect("JSON");
    let id = created["pipeline_run"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let status = || {
        client()
            .get(server.url(&format!("/api/pipeline_runs/{id}")))
            .bearer_auth(&token)
            .send()
            .and_then(reqwest::blocking::Response::json::<Value>)
            .map(|run| {
                run["pipeline_run"]["status"]
                    .as_str()
                    .unwrap_or("")
                    .to_owned()
            })
            .unwrap_or_default()
    };
    wait_until("the run to fail at `broken`", TIMEOUT, || {
        status() == "failed"
    });
    // The ledger is in the schema, not in the project's SQLite file.
    assert!(!project.path().join(".sluice/sluice.db").exists());
    let counted = std::process::Command::new("psql")
        .args([
            url.as_str(),
            "-At",
            "-c",
            &format!("SELECT count(*) FROM {name}.pipeline_run"),
        ])
        .output()
        .expect("psql");
    assert_eq!(String::from_utf8_lossy(&counted.stdout).trim(), "1");
    drop(server);
    drop(schema);
}

#[test]
fn an_api_trigger_takes_its_own_token_from_the_server_environment() {
    let project = Project::new();
    project.pipeline(
        "refreshed",
        "variables:\n  day: {default: none}\ntriggers:\n  - name: refresh\n    api: {token_env: REFRESH_TOKEN}\nblocks:\n  only:\n    run: echo \"${{ vars.day }}\"\n",
    );
    let server = Server::start_with_env(
        &project,
        &["--auth"],
        &[("REFRESH_TOKEN", "trigger-token-0123456789abcdef")],
    );
    let call = |token: &str| {
        client()
            .post(server.url("/api/triggers/refreshed/refresh"))
            .bearer_auth(token)
            .header("idempotency-key", "day-2026-11-23")
            .json(&json!({"day": "2026-11-23"}))
            .send()
            .expect("POST")
    };
    assert_eq!(call("not-the-token").status().as_u16(), 401);
    let created = call("trigger-token-0123456789abcdef");
    assert_eq!(created.status().as_u16(), 201);
    let run: Value = created.json().expect("JSON");
    assert_eq!(run["pipeline_run"]["invoked_by"]["kind"], "api");
    assert_eq!(
        run["pipeline_run"]["variables"]["day"]["value"],
        "2026-11-23"
    );
    let again: Value = call("trigger-token-0123456789abcdef").json().expect("JSON");
    assert_eq!(again["pipeline_run"]["id"], run["pipeline_run"]["id"]);
}

/// With `--blobs DIR`, a run's artifact and data output are kept in that
/// directory (content-addressed), not in the project's `.sluice/blobs`, and
/// the API serves them back. (An S3-compatible store behind `--blobs
/// s3://...` is tested in process: crates/sluice-api/tests/blobs.rs.)
#[test]
fn artifacts_and_data_outputs_live_where_blobs_says() {
    let project = Project::new();
    project.pipeline("etl", ETL);
    let elsewhere = tempfile::tempdir().expect("a directory");
    let location = elsewhere.path().join("blobs");
    let location = location.to_str().expect("a UTF-8 path");
    let server = Server::start(&project, &["--blobs", location]);

    let (status, created) = post(
        &server,
        "/api/pipelines/etl/runs",
        json!({"variables": {"region": "apac"}}),
    );
    assert_eq!(status, 201, "{created}");
    let id = created["pipeline_run"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    wait_for_status(&server, &id, "failed");

    let artifacts = get(&server, &format!("/api/artifacts?run={id}"));
    let artifact = &artifacts["artifacts"][0];
    let sha256 = artifact["sha256"].as_str().expect("a digest").to_owned();
    let download = client()
        .get(server.url(artifact["download_url"].as_str().expect("a url")))
        .send()
        .expect("a download");
    assert!(download.status().is_success(), "{download:?}");
    assert_eq!(
        &download.bytes().expect("the file")[..],
        b"summary of apac\n"
    );
    let stored = elsewhere
        .path()
        .join("blobs")
        .join(&sha256[..2])
        .join(&sha256[2..]);
    assert_eq!(
        std::fs::read(&stored).expect("the artifact's blob"),
        b"summary of apac\n"
    );
    let details = get(&server, &format!("/api/pipeline_runs/{id}"));
    let extract = block_run_id(&details, 0, "extract");
    let outputs = get(
        &server,
        &format!("/api/block_runs/{extract}/outputs?sample_count=2"),
    );
    assert_eq!(outputs["data"]["rows"], json!([["1", "a"], ["2", "b"]]));
    assert!(
        !project.path().join(".sluice/blobs").exists(),
        "nothing was written to the project's blob directory"
    );
}

/// An `s3://` location the server cannot use stops it at startup with what
/// to fix: the bucket it cannot reach, or, in a build without the `s3`
/// feature, how to build one with it.
#[test]
fn an_unusable_s3_blob_store_is_refused_at_startup() {
    let project = Project::new();
    project.pipeline("etl", ETL);
    let output = project
        .command(&["up", "--listen", "127.0.0.1:0"])
        .env("SLUICE_BLOBS", "s3://no-such-bucket/x")
        // A closed loopback port: nothing answers, nothing leaves the host.
        .env("SLUICE_BLOBS_ENDPOINT", "http://127.0.0.1:9")
        .env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .output()
        .expect("run sluice up");
    assert!(!output.status.success(), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot use the blob store s3://no-such-bucket/x")
            || (stderr.contains("built without S3 support") && stderr.contains("--features s3")),
        "{stderr}"
    );
}
