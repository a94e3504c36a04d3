//! The CLI as an API client: every run command with `--server` against a
//! real `sluice up` process prints exactly what it prints in embedded mode
//! on the same database; `run --server` waits and exits with the outcome or
//! detaches; `runs query` takes an explicit window; `runs export` writes the
//! same bytes in both modes; `backfill --server` leaves the backfill to the
//! server; an unreachable server and a missing token are clear errors with
//! a hint.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Child, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Project, block, wait_until};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);

/// A running `sluice up` on a free port, killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(project: &Project, extra: &[&str]) -> Server {
        let mut args = vec!["up", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut child = project.spawn(&args);
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
            let Some(line) = text
                .lines()
                .find(|line| line.starts_with("sluice is serving"))
            else {
                return false;
            };
            let start = line.find("http://").expect("an address");
            base = line[start..]
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_owned();
            true
        });
        Server { child, base }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sluice ARGS --server URL --project DIR`.
fn remote(project: &Project, server: &Server, args: &[&str]) -> Output {
    project
        .command(args)
        .arg("--server")
        .arg(&server.base)
        .output()
        .expect("run sluice")
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Stdout of a command that must succeed.
fn ok(output: Output) -> String {
    assert_eq!(
        output.status.code(),
        Some(0),
        "stdout: {}\nstderr: {}",
        text(&output),
        stderr(&output)
    );
    text(&output)
}

/// The same command in embedded mode and against the server: both succeed
/// and print the same; returns the output.
fn same_in_both_modes(project: &Project, server: &Server, args: &[&str]) -> String {
    let embedded = ok(project.sluice(args));
    let served = ok(remote(project, server, args));
    assert_eq!(
        embedded,
        served,
        "`sluice {}` prints differently with --server",
        args.join(" ")
    );
    embedded
}

/// Snapshot settings that hide what changes from one run to the next.
fn redacted() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\b[0-9a-f]{64}\b", "[SHA256]");
    settings.add_filter(
        r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
        "[ID]",
    );
    settings.add_filter(r"\b[0-9a-f]{12}\b", "[VERSION]");
    settings.add_filter(r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?Z", "[TIME]");
    settings.add_filter(r"\b\d+(\.\d+)?(ms|s)\b|\b\d+m\d{2}s\b", "[DURATION]");
    settings.add_filter(r"by \S+@\S+", "by [ACTOR]");
    settings.add_filter(r"127\.0\.0\.1:\d+", "[ADDR]");
    settings.add_filter(r"/tmp/\S+", "[PATH]");
    // Redacted cells change column widths: keep the columns and the
    // indentation, not the padding between cells.
    settings.add_filter(r"(\S) {2,}", "$1  ");
    settings.add_filter(r"(?m) +$", "");
    settings
}

const COMPARE: &str = r#"
description: Compare the modes.
tags: [compare]
variables:
  region: emea
  token:
    default: hunter2
    secret: true
blocks:
  extract:
    run: |
      echo "extracting ${{ vars.region }}"
      echo "rows=3" >> "$SLUICE_OUTPUT"
      printf 'id,name\n1,one\n2,"two, too"\n3,three\n' > "$SLUICE_DATA"
      echo "a report" > "$SLUICE_ARTIFACTS/report.txt"
  check:
    needs: [extract]
    retries: {count: 1, delay: 10ms}
    run: |
      echo "try $SLUICE_TRY"
      test "$SLUICE_TRY" -ge 2
  only_us:
    needs: [check]
    if: vars.region == 'us'
    run: echo never
"#;

#[test]
fn list_show_and_block_output_print_the_same_in_both_modes() {
    let project = Project::new();
    project.pipeline("compare", COMPARE);
    let (code, run) = project.run("compare", &[]);
    assert_eq!(code, 0, "{run:#}");
    let server = Server::start(&project, &[]);
    // A second run, triggered through the server, so the listing holds both
    // kinds of trigger.
    let triggered = remote(&project, &server, &["run", "compare", "-v", "region=us"]);
    assert_eq!(triggered.status.code(), Some(0), "{}", stderr(&triggered));

    let run_id = run["id"].as_str().unwrap();
    let details = project.show(run_id);
    let extract = block(&details, None, "extract")["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let list = same_in_both_modes(&project, &server, &["runs", "list"]);
    same_in_both_modes(&project, &server, &["runs", "list", "-o", "json"]);
    same_in_both_modes(
        &project,
        &server,
        &[
            "runs",
            "list",
            "--status",
            "completed",
            "--pipeline",
            "compare",
            "--limit",
            "1",
        ],
    );
    let show = same_in_both_modes(&project, &server, &["runs", "show", run_id]);
    same_in_both_modes(&project, &server, &["runs", "show", run_id, "-o", "json"]);
    let csv = same_in_both_modes(&project, &server, &["blocks", "output", &extract]);
    same_in_both_modes(
        &project,
        &server,
        &["blocks", "output", &extract, "--sample", "2"],
    );
    let json = same_in_both_modes(
        &project,
        &server,
        &["blocks", "output", &extract, "--format", "json"],
    );
    same_in_both_modes(&project, &server, &["runs", "logs", run_id]);

    redacted().bind(|| {
        insta::assert_snapshot!("runs_list", list);
        insta::assert_snapshot!("runs_show", show);
        insta::assert_snapshot!("blocks_output_csv", csv);
        insta::assert_snapshot!("blocks_output_json", json);
    });
}

#[test]
fn run_on_a_server_exits_with_the_outcome() {
    let project = Project::new();
    project.pipeline("good", "blocks:\n  hello:\n    run: echo hello\n");
    project.pipeline("bad", "blocks:\n  broken:\n    run: exit 3\n");
    let server = Server::start(&project, &[]);

    let good = remote(&project, &server, &["run", "good"]);
    assert_eq!(good.status.code(), Some(0), "{}", stderr(&good));
    let line = text(&good);
    assert!(
        line.starts_with("run ") && line.contains(" completed in "),
        "{line}"
    );

    let bad = remote(&project, &server, &["run", "bad", "-o", "json"]);
    assert_eq!(bad.status.code(), Some(1), "{}", stderr(&bad));
    let run: Value = serde_json::from_slice(&bad.stdout).expect("the run as JSON");
    assert_eq!(run["status"], "failed");
    assert_eq!(run["invoked_by"]["kind"], "api");

    let unknown = remote(&project, &server, &["run", "nosuch"]);
    assert_eq!(unknown.status.code(), Some(2));
    let message = stderr(&unknown);
    assert!(
        message.contains("error: no pipeline named `nosuch`"),
        "{message}"
    );
    assert!(
        message.contains("hint: the pipelines are: bad, good"),
        "{message}"
    );
}

/// A pipeline whose block waits for the file `go` in the test's directory.
const GATED: &str = r#"
blocks:
  wait:
    run: |
      echo "waiting"
      for i in $(seq 1 600); do test -f "$TEST_DIR/go" && break; sleep 0.1; done
      test -f "$TEST_DIR/go"
      echo "released"
"#;

#[test]
fn detach_returns_at_once_and_logs_follow_and_cancel_go_through_the_server() {
    let project = Project::new();
    project.pipeline("gated", GATED);
    let server = Server::start(&project, &[]);

    let detached = remote(&project, &server, &["run", "gated", "--detach"]);
    assert_eq!(detached.status.code(), Some(0), "{}", stderr(&detached));
    let run_id = text(&detached).trim().to_owned();
    let status = |project: &Project| -> String {
        let details: Value = serde_json::from_str(&ok(remote(
            project,
            &server,
            &["runs", "show", &run_id, "-o", "json"],
        )))
        .unwrap();
        details["run"]["status"].as_str().unwrap().to_owned()
    };
    // The run goes on without the command that started it.
    wait_until("the detached run to start", TIMEOUT, || {
        status(&project) == "running"
    });

    // Follow its log over the live stream: the first line arrives while the
    // block still waits, the second after it is released, then the command
    // ends with the run.
    let mut follower = project
        .command(&[
            "runs",
            "logs",
            &run_id,
            "--follow",
            "--server",
            &server.base,
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn logs --follow");
    let followed = Arc::new(Mutex::new(String::new()));
    let mut pipe = BufReader::new(follower.stdout.take().expect("stdout"));
    let sink = followed.clone();
    let reader = std::thread::spawn(move || {
        let mut line = String::new();
        while pipe.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
            sink.lock().expect("lock").push_str(&line);
            line.clear();
        }
    });
    wait_until("the follower to print the first line", TIMEOUT, || {
        followed.lock().expect("lock").contains("waiting")
    });
    assert_eq!(
        follower.try_wait().expect("try_wait"),
        None,
        "it ended early"
    );
    project.write("go", "");
    let mut exit = None;
    wait_until("logs --follow to end with the run", TIMEOUT, || {
        exit = follower.try_wait().expect("try_wait");
        exit.is_some()
    });
    reader.join().expect("the reader thread");
    assert_eq!(exit.and_then(|status| status.code()), Some(0));
    assert_eq!(
        followed.lock().expect("lock").as_str(),
        "wait#1 | waiting\nwait#1 | released\n"
    );
    wait_until("the run to complete", TIMEOUT, || {
        status(&project) == "completed"
    });

    // Cancel a second detached run through the server.
    std::fs::remove_file(project.path().join("go")).unwrap();
    let second = ok(remote(&project, &server, &["run", "gated", "--detach"]));
    let second = second.trim();
    let cancelled = ok(remote(&project, &server, &["runs", "cancel", second]));
    assert!(
        cancelled.starts_with(&format!("run {second} cancel requested")),
        "{cancelled}"
    );
    wait_until("the second run to be cancelled", TIMEOUT, || {
        let details: Value = serde_json::from_str(&ok(remote(
            &project,
            &server,
            &["runs", "show", second, "-o", "json"],
        )))
        .unwrap();
        details["run"]["status"] == "cancelled"
    });

    // Embedded mode cannot detach: nothing would execute the run.
    let refused = project.sluice(&["run", "gated", "--detach"]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(
        stderr(&refused).contains("hint: pass --server URL"),
        "{}",
        stderr(&refused)
    );
}

#[test]
fn retry_on_a_server_returns_once_the_attempt_exists() {
    let project = Project::new();
    project.pipeline(
        "picky",
        "blocks:\n  need_file:\n    run: test -f \"$TEST_DIR/ready\"\n",
    );
    let server = Server::start(&project, &[]);
    let failed = remote(&project, &server, &["run", "picky", "-o", "json"]);
    assert_eq!(failed.status.code(), Some(1));
    let run: Value = serde_json::from_slice(&failed.stdout).unwrap();
    let run_id = run["id"].as_str().unwrap();

    project.write("ready", "");
    let retried = remote(&project, &server, &["runs", "retry", run_id, "-o", "json"]);
    assert_eq!(retried.status.code(), Some(0), "{}", stderr(&retried));
    let runs: Value = serde_json::from_slice(&retried.stdout).unwrap();
    assert_eq!(runs[0]["id"], run_id);
    assert_eq!(runs[0]["attempt"], 2);
    wait_until("the server to finish the retry", TIMEOUT, || {
        project.show(run_id)["run"]["status"] == "completed"
    });
}

/// Runs created in `[after, before)` by `runs query`, as ids.
fn query_ids(output: Output) -> Vec<String> {
    let runs: Vec<Value> = serde_json::from_str(&ok(output)).expect("query JSON");
    runs.iter()
        .map(|run| run["id"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn runs_query_takes_an_explicit_window_in_both_modes() {
    let project = Project::new();
    project.pipeline("good", "blocks:\n  hello:\n    run: echo hello\n");
    project.pipeline("bad", "blocks:\n  broken:\n    run: exit 3\n");
    let (_, first) = project.run("good", &[]);
    let (_, second) = project.run("bad", &[]);
    let (_, third) = project.run("good", &[]);
    let id = |run: &Value| run["id"].as_str().unwrap().to_owned();
    let created = |run: &Value| run["created_at"].as_str().unwrap().to_owned();
    let server = Server::start(&project, &[]);

    // `after` is inclusive, `before` exclusive.
    let window = [
        "runs",
        "query",
        "--after",
        &created(&first),
        "--before",
        &created(&third),
        "-o",
        "json",
    ];
    let embedded = query_ids(project.sluice(&window));
    assert_eq!(embedded, vec![id(&second), id(&first)]);
    assert_eq!(query_ids(remote(&project, &server, &window)), embedded);

    let wide_after = "2000-01-01T00:00:00Z";
    let wide_before = "2100-01-01T00:00:00+01:00";
    let failed = [
        "runs",
        "query",
        "--after",
        wide_after,
        "--before",
        wide_before,
        "--status",
        "failed",
        "-o",
        "json",
    ];
    assert_eq!(query_ids(project.sluice(&failed)), vec![id(&second)]);
    assert_eq!(
        query_ids(remote(&project, &server, &failed)),
        vec![id(&second)]
    );
    let table = [
        "runs",
        "query",
        "--after",
        wide_after,
        "--before",
        wide_before,
        "--pipeline",
        "good",
    ];
    let printed = same_in_both_modes(&project, &server, &table);
    assert_eq!(printed.lines().count(), 3, "{printed}");

    // Both bounds are required, and the window must not be empty.
    let missing = project.sluice(&["runs", "query", "--after", wide_after]);
    assert_eq!(missing.status.code(), Some(2));
    let empty = remote(
        &project,
        &server,
        &[
            "runs",
            "query",
            "--after",
            wide_before,
            "--before",
            wide_after,
        ],
    );
    assert_eq!(empty.status.code(), Some(2));
    assert!(stderr(&empty).contains("hint: "), "{}", stderr(&empty));
    let garbled = project.sluice(&[
        "runs",
        "query",
        "--after",
        "yesterday",
        "--before",
        wide_before,
    ]);
    assert_eq!(garbled.status.code(), Some(2));
    assert!(
        stderr(&garbled).contains("not an RFC 3339 time"),
        "{}",
        stderr(&garbled)
    );
}

#[test]
fn runs_export_writes_the_same_json_lines_and_csv_in_both_modes() {
    let project = Project::new();
    project.pipeline("compare", COMPARE);
    project.pipeline("bad", "blocks:\n  broken:\n    run: exit 3\n");
    let mut ids = Vec::new();
    for pipeline in ["compare", "bad", "compare"] {
        let (_, run) = project.run(pipeline, &[]);
        ids.push(run["id"].as_str().unwrap().to_owned());
    }
    let server = Server::start(&project, &[]);

    let lines = same_in_both_modes(&project, &server, &["runs", "export"]);
    let exported: Vec<Value> = lines
        .lines()
        .map(|line| serde_json::from_str(line).expect("one JSON run per line"))
        .collect();
    let exported_ids: Vec<&str> = exported
        .iter()
        .map(|run| run["id"].as_str().unwrap())
        .collect();
    let newest_first: Vec<&str> = ids.iter().rev().map(String::as_str).collect();
    assert_eq!(exported_ids, newest_first);
    assert!(
        exported
            .iter()
            .filter(|run| run["pipeline"] == "compare")
            .all(|run| run["variables"]["token"]["value"] == "***"),
        "{lines}"
    );

    let failed = same_in_both_modes(&project, &server, &["runs", "export", "--status", "failed"]);
    assert_eq!(failed.lines().count(), 1);
    let csv = same_in_both_modes(&project, &server, &["runs", "export", "--format", "csv"]);
    assert!(csv.starts_with("id,pipeline,status,"), "{csv}");
    assert_eq!(csv.lines().count(), 4);
}

#[test]
fn an_unreachable_server_is_named_with_a_hint() {
    let project = Project::new();
    // Bind a port and free it: nothing listens there afterwards.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let address = format!("http://127.0.0.1:{port}");
    let output = project.sluice(&["runs", "list", "--server", &address]);
    assert_eq!(output.status.code(), Some(1));
    assert!(output.stdout.is_empty());
    let message = stderr(&output);
    assert!(
        message.contains(&format!(
            "error: cannot reach the sluice server at {address}/api/pipeline_runs"
        )),
        "{message}"
    );
    assert!(
        message.contains("hint: check that `sluice up` is running there"),
        "{message}"
    );

    let bad = project.sluice(&["runs", "list", "--server", "https://127.0.0.1:1"]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(stderr(&bad).contains("hint: "), "{}", stderr(&bad));
}

#[test]
fn a_server_with_auth_wants_a_token_and_says_how_to_pass_one() {
    let project = Project::new();
    project.pipeline("good", "blocks:\n  hello:\n    run: echo hello\n");
    let created = project.sluice(&["token", "create", "--role", "operator", "--name", "t"]);
    let token = ok(created).trim().to_owned();
    let server = Server::start(&project, &["--auth"]);

    let refused = remote(&project, &server, &["runs", "list"]);
    assert_eq!(refused.status.code(), Some(2));
    let message = stderr(&refused);
    assert!(
        message.contains("error: this server needs an API token"),
        "{message}"
    );
    assert!(
        message.contains("hint: pass a valid API token with --token"),
        "{message}"
    );

    let wrong = remote(
        &project,
        &server,
        &["runs", "list", "--token", "not-a-token"],
    );
    assert_eq!(wrong.status.code(), Some(2));
    assert!(
        stderr(&wrong).contains("unknown or revoked"),
        "{}",
        stderr(&wrong)
    );

    let with_flag = remote(&project, &server, &["run", "good", "--token", &token]);
    assert_eq!(with_flag.status.code(), Some(0), "{}", stderr(&with_flag));
    let with_env = project
        .command(&["runs", "list", "-o", "json"])
        .env("SLUICE_SERVER", &server.base)
        .env("SLUICE_TOKEN", &token)
        .output()
        .unwrap();
    let runs: Vec<Value> = serde_json::from_str(&ok(with_env)).unwrap();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0]["invoked_by"]["actor"], "t");
}

#[test]
fn interrupting_run_on_a_server_cancels_the_run() {
    let project = Project::new();
    project.pipeline("gated", GATED);
    let server = Server::start(&project, &[]);
    let mut waiting = project
        .command(&["run", "gated", "--server", &server.base])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn run --server");
    wait_until("the run to start on the server", TIMEOUT, || {
        let runs: Vec<Value> = serde_json::from_str(&ok(remote(
            &project,
            &server,
            &["runs", "list", "--status", "running", "-o", "json"],
        )))
        .unwrap();
        !runs.is_empty()
    });
    let pid = nix::unistd::Pid::from_raw(waiting.id() as i32);
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGINT).expect("SIGINT");
    let mut exit = None;
    wait_until("run --server to end after Ctrl-C", TIMEOUT, || {
        exit = waiting.try_wait().expect("try_wait");
        exit.is_some()
    });
    let output = waiting.wait_with_output().expect("output");
    assert_eq!(exit.and_then(|status| status.code()), Some(1));
    assert!(
        stderr(&output).contains("interrupted: cancelling run"),
        "{}",
        stderr(&output)
    );
    let line = text(&output);
    assert!(line.contains(" cancelled in "), "{line}");
}

#[test]
fn backfill_on_a_server_returns_its_id_and_the_server_runs_it() {
    let project = Project::new();
    project.pipeline(
        "etl",
        "blocks:\n  only:\n    run: 'true'\ntriggers:\n  - {name: hourly, every: 1h}\n",
    );
    let server = Server::start(&project, &[]);
    let range = [
        "--from",
        "2026-01-01T01:00:00Z",
        "--to",
        "2026-01-01T03:00:00Z",
    ];

    let mut args = vec!["backfill", "etl", "--dry-run", "-o", "json"];
    args.extend_from_slice(&range);
    let plan: Value = serde_json::from_str(&ok(remote(&project, &server, &args))).unwrap();
    assert!(plan["backfill"].is_null());
    assert_eq!(plan["windows"].as_array().unwrap().len(), 3);

    let mut args = vec!["backfill", "etl", "--max-concurrent", "2"];
    args.extend_from_slice(&range);
    let id = ok(remote(&project, &server, &args)).trim().to_owned();
    assert!(!id.is_empty());
    wait_until("the server to complete the backfill", TIMEOUT, || {
        let shown = remote(&project, &server, &["backfills", "show", &id, "-o", "json"]);
        let detail: Value = serde_json::from_slice(&shown.stdout).unwrap_or_default();
        detail["backfill"]["status"] == "completed"
    });
    let listed = ok(remote(&project, &server, &["backfills", "list"]));
    assert!(
        listed.contains(&id) && listed.contains("completed"),
        "{listed}"
    );
    let cancel = remote(&project, &server, &["backfills", "cancel", &id]);
    assert_eq!(cancel.status.code(), Some(2), "{}", stderr(&cancel));
}
