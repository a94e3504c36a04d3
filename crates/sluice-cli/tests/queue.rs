//! `sluice queue list|move|cancel` against a real `sluice up` on loopback,
//! through its API (`--server`) and on the project's database: a block that
//! needs labels no agent offers waits in the queue and says so there and in
//! `sluice runs show`, and a bulk cancel by label ends its run.

mod common;

use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{Project, wait_until};
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(60);

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

fn stdout(project: &Project, args: &[&str]) -> String {
    let output = project.sluice(args);
    assert!(output.status.success(), "sluice {args:?}: {output:?}");
    String::from_utf8(output.stdout).expect("UTF-8")
}

fn queue_json(project: &Project, extra: &[&str]) -> Value {
    let mut args = vec!["queue", "list", "-o", "json"];
    args.extend_from_slice(extra);
    serde_json::from_str(&stdout(project, &args)).expect("JSON")
}

#[test]
fn a_block_waiting_for_labels_says_so_and_is_cancelled_in_bulk() {
    let project = Project::new();
    project.pipeline(
        "gpu",
        "blocks:\n  train:\n    labels: {gpu: 'true'}\n    run: 'true'\n",
    );
    let server = Server::start(&project);
    let remote = ["--server", server.base.as_str()];
    let run = stdout(
        &project,
        &["run", "gpu", "--server", &server.base, "--detach"],
    );
    let run = run.trim().to_owned();
    assert!(!run.is_empty());

    let mut queue = Value::Null;
    wait_until("the block run to be queued", TIMEOUT, || {
        queue = queue_json(&project, &remote);
        queue["block_runs"]
            .as_array()
            .is_some_and(|runs| !runs.is_empty())
    });
    let entry = &queue["block_runs"][0];
    assert_eq!(entry["pipeline"], "gpu");
    assert_eq!(entry["reason"]["kind"], "labels");
    let block_run = entry["block_run_id"].as_str().unwrap().to_owned();

    // The project's database says the same without the server.
    let embedded = queue_json(&project, &[]);
    assert_eq!(embedded["block_runs"][0]["reason"], entry["reason"]);
    let table = stdout(&project, &["queue", "list", "--server", &server.base]);
    assert!(
        table.contains("no online agent offers labels gpu=true"),
        "{table}"
    );
    let shown = stdout(&project, &["runs", "show", &run]);
    assert!(
        shown.contains("waiting: no online agent offers labels gpu=true"),
        "{shown}"
    );

    // A move of the only queued block run keeps it first.
    let moved = project.sluice(&[
        "queue",
        "move",
        &block_run,
        "--to",
        "1",
        "--server",
        &server.base,
    ]);
    assert!(moved.status.success(), "{moved:?}");
    let neither = project.sluice(&["queue", "move", &block_run]);
    assert_eq!(neither.status.code(), Some(2), "{neither:?}");

    // Bulk cancel wants a filter, then shows what it would do first.
    let unfiltered = project.sluice(&["queue", "cancel", "--server", &server.base]);
    assert_eq!(unfiltered.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unfiltered.stderr).contains("hint:"));
    let dry = stdout(
        &project,
        &[
            "queue",
            "cancel",
            "--label",
            "gpu=true",
            "--dry-run",
            "--server",
            &server.base,
        ],
    );
    assert_eq!(dry.trim(), run);
    assert!(queue_json(&project, &remote)["block_runs"][0].is_object());
    let done = stdout(
        &project,
        &[
            "queue",
            "cancel",
            "--label",
            "gpu=true",
            "--server",
            &server.base,
        ],
    );
    assert_eq!(done.trim(), run);
    wait_until("the run to be cancelled", TIMEOUT, || {
        project.show(&run)["run"]["status"] == "cancelled"
    });
    assert!(
        queue_json(&project, &remote)["block_runs"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}
