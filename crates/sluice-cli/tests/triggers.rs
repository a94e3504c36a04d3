//! `sluice triggers list|upcoming|pause|resume` on the project's database,
//! and a real `sluice up` that fires a schedule: the run records its window,
//! the block sees it in its environment, and the commands work with
//! `--server` too.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Project, block, wait_until};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);

const ETL: &str = r#"
blocks:
  only:
    run: 'true'
triggers:
  - name: hourly
    every: 1h
  - name: launch
    once: 2099-01-01T00:00:00Z
  - name: refresh
    api: true
"#;

fn json(project: &Project, args: &[&str]) -> Value {
    let output = project.sluice(args);
    assert!(
        output.status.success(),
        "sluice {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).expect("JSON on stdout")
}

fn trigger<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["triggers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|trigger| trigger["trigger"] == name)
        .unwrap_or_else(|| panic!("no trigger `{name}` in {list:#}"))
}

#[test]
fn triggers_are_listed_paused_and_resumed_on_the_project_database() {
    let project = Project::new();
    project.pipeline("etl", ETL);

    let list = json(&project, &["triggers", "list", "-o", "json", "--next", "2"]);
    let hourly = trigger(&list, "hourly");
    assert_eq!(hourly["kind"], "every");
    assert_eq!(hourly["enabled"], true);
    assert_eq!(hourly["paused"], false);
    assert_eq!(hourly["next_fires"].as_array().unwrap().len(), 2);
    assert_eq!(
        trigger(&list, "launch")["next_fires"][0]["scheduled_for"],
        "2099-01-01T00:00:00Z"
    );
    assert!(
        trigger(&list, "refresh")["next_fires"]
            .as_array()
            .unwrap()
            .is_empty()
    );

    let upcoming = json(
        &project,
        &["triggers", "upcoming", "--next", "3", "-o", "json"],
    );
    let upcoming = upcoming["upcoming"].as_array().unwrap();
    assert_eq!(upcoming.len(), 3);
    assert!(upcoming.iter().all(|fire| fire["trigger"] == "hourly"));

    let paused = project.sluice(&["triggers", "pause", "etl", "hourly"]);
    assert!(paused.status.success());
    let message = String::from_utf8_lossy(&paused.stderr);
    assert!(message.contains("is paused by"), "{message}");

    let table = project.sluice(&["triggers", "list"]);
    let table = String::from_utf8_lossy(&table.stdout);
    assert!(table.contains("PIPELINE"), "{table}");
    assert!(table.contains("paused by"), "{table}");
    let upcoming = json(&project, &["triggers", "upcoming", "-o", "json"]);
    assert!(
        upcoming["upcoming"]
            .as_array()
            .unwrap()
            .iter()
            .all(|fire| fire["trigger"] == "launch"),
        "a paused trigger has no upcoming runs: {upcoming:#}"
    );

    let resumed = json(
        &project,
        &["triggers", "resume", "etl", "hourly", "-o", "json"],
    );
    assert_eq!(resumed["trigger"]["paused"], false);

    let unknown = project.sluice(&["triggers", "pause", "etl", "nightly"]);
    assert!(!unknown.status.success());
    let message = String::from_utf8_lossy(&unknown.stderr);
    assert!(message.contains("no trigger named `nightly`"), "{message}");
}

/// A running `sluice up`, killed when dropped.
struct Server {
    child: Child,
    base: String,
}

impl Server {
    fn start(project: &Project) -> Server {
        let mut child = project.spawn(&["up", "--listen", "127.0.0.1:0"]);
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
            match text.find("http://") {
                Some(start) => {
                    base = text[start..]
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    true
                }
                None => false,
            }
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

#[test]
fn a_server_fires_a_schedule_and_the_block_sees_its_window() {
    let project = Project::new();
    project.pipeline(
        "tick",
        r#"
blocks:
  window:
    run: |
      echo "scheduled_for=$SLUICE_SCHEDULED_FOR" >> "$SLUICE_OUTPUT"
      echo "window_start=$SLUICE_WINDOW_START" >> "$SLUICE_OUTPUT"
      echo "window_end=$SLUICE_WINDOW_END" >> "$SLUICE_OUTPUT"
triggers:
  - name: often
    every: 2s
"#,
    );
    let server = Server::start(&project);

    let mut run = Value::Null;
    wait_until("a scheduled run to complete", TIMEOUT, || {
        let runs = project.list(&["--pipeline", "tick", "--status", "completed"]);
        match runs.first() {
            Some(found) => {
                run = found.clone();
                true
            }
            None => false,
        }
    });
    assert_eq!(run["invoked_by"]["kind"], "schedule");
    assert_eq!(run["invoked_by"]["name"], "often");
    let scheduled_for = run["scheduled_for"].as_str().expect("scheduled_for");
    let window_start: jiff::Timestamp = run["window_start"].as_str().unwrap().parse().unwrap();
    let window_end: jiff::Timestamp = run["window_end"].as_str().unwrap().parse().unwrap();
    assert_eq!(run["window_end"], scheduled_for);
    assert_eq!(window_end.duration_since(window_start).as_secs(), 2);

    let details = project.show(run["id"].as_str().unwrap());
    let outputs = &block(&details, None, "window")["outputs"];
    let as_time = |key: &str| -> jiff::Timestamp {
        outputs[key]
            .as_str()
            .unwrap_or_else(|| panic!("no output `{key}` in {outputs:#}"))
            .parse()
            .expect("an RFC 3339 time")
    };
    assert_eq!(as_time("scheduled_for"), scheduled_for.parse().unwrap());
    assert_eq!(as_time("window_start"), window_start);
    assert_eq!(as_time("window_end"), window_end);

    let shown = project.sluice(&["runs", "show", run["id"].as_str().unwrap()]);
    let shown = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.contains("window"), "{shown}");

    // The same commands through the server's API.
    let list = json(
        &project,
        &["triggers", "list", "-o", "json", "--server", &server.base],
    );
    assert!(trigger(&list, "often")["last_fired_at"].is_string());
    let paused = json(
        &project,
        &[
            "triggers",
            "pause",
            "tick",
            "often",
            "-o",
            "json",
            "--server",
            &server.base,
        ],
    );
    assert_eq!(paused["trigger"]["paused"], true);
    assert_eq!(paused["trigger"]["paused_by"], "anonymous");
    let upcoming = json(
        &project,
        &[
            "triggers",
            "upcoming",
            "-o",
            "json",
            "--server",
            &server.base,
        ],
    );
    assert!(upcoming["upcoming"].as_array().unwrap().is_empty());
}
