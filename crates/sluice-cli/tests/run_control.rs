//! Controlling runs: block and run timeouts, cancellation (from another
//! process and by Ctrl-C), the three retry modes, concurrency limits, the SLA
//! flag, and recovery after `sluice run` is killed.

mod common;

use std::time::Duration;

use common::{Project, block, process_with, sleep_marker, status_of, wait_until};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

const WAIT: Duration = Duration::from_secs(30);

fn signal(child: &std::process::Child, signal: Signal) {
    kill(Pid::from_raw(child.id() as i32), signal).expect("send signal");
}

/// The id of the newest run of a pipeline, once one exists.
fn newest_run(project: &Project, pipeline: &str) -> String {
    let mut id = String::new();
    wait_until("a run to exist", WAIT, || {
        let runs = project.list(&["--pipeline", pipeline]);
        match runs.first() {
            Some(run) => {
                id = run["id"].as_str().unwrap().to_owned();
                true
            }
            None => false,
        }
    });
    id
}

fn block_status(project: &Project, run_id: &str, name: &str) -> String {
    status_of(&project.show(run_id), name)
}

#[test]
fn a_block_timeout_kills_the_whole_process_group() {
    let project = Project::new();
    let marker = sleep_marker();
    project.pipeline(
        "slow",
        &format!(
            r#"
blocks:
  slow:
    timeout: 1s
    run: |
      sleep {marker} &
      sleep {marker}
"#
        ),
    );
    let (code, run) = project.run("slow", &[]);
    assert_eq!(code, 1, "{run:#}");
    let details = project.show(run["id"].as_str().unwrap());
    let slow = block(&details, None, "slow");
    assert_eq!(slow["status"], "failed");
    assert_eq!(slow["timed_out"], true);
    wait_until(
        "the block's processes to be gone",
        Duration::from_secs(5),
        || !process_with(&marker),
    );
}

#[test]
fn cancelling_from_another_process_kills_the_block_and_records_who() {
    let project = Project::new();
    let marker = sleep_marker();
    project.pipeline(
        "long",
        &format!(
            r#"
blocks:
  long:
    run: |
      sleep {marker} &
      sleep {marker}
  after:
    needs: [long]
    run: echo never
"#
        ),
    );
    let mut child = project.spawn(&["run", "long"]);
    let run_id = newest_run(&project, "long");
    wait_until("the block to run", WAIT, || {
        block_status(&project, &run_id, "long") == "running"
    });
    let cancel = project.sluice(&["runs", "cancel", &run_id]);
    assert!(
        cancel.status.success(),
        "{}",
        String::from_utf8_lossy(&cancel.stderr)
    );
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let details = project.show(&run_id);
    assert_eq!(details["run"]["status"], "cancelled");
    assert!(details["run"]["cancel_requested_at"].is_string());
    assert!(
        details["run"]["cancel_requested_by"]
            .as_str()
            .unwrap()
            .contains('@')
    );
    assert_eq!(status_of(&details, "long"), "cancelled");
    assert_eq!(status_of(&details, "after"), "cancelled");
    wait_until(
        "the block's processes to be gone",
        Duration::from_secs(15),
        || !process_with(&marker),
    );
}

#[test]
fn ctrl_c_cancels_the_run_cleanly() {
    let project = Project::new();
    let marker = sleep_marker();
    project.pipeline(
        "interrupted",
        &format!("blocks:\n  wait:\n    run: sleep {marker}\n"),
    );
    let mut child = project.spawn(&["run", "interrupted"]);
    let run_id = newest_run(&project, "interrupted");
    wait_until("the block to run", WAIT, || {
        block_status(&project, &run_id, "wait") == "running"
    });
    signal(&child, Signal::SIGINT);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(1));
    let details = project.show(&run_id);
    assert_eq!(details["run"]["status"], "cancelled");
    assert!(
        details["run"]["cancel_requested_by"]
            .as_str()
            .unwrap()
            .contains("ctrl-c")
    );
    assert!(!process_with(&marker));
}

#[test]
fn the_three_retry_modes_open_new_attempts_and_keep_the_old_ones() {
    let project = Project::new();
    // `b` fails until the file `fixed` exists in the test's directory.
    project.pipeline(
        "retryable",
        r#"
blocks:
  a:
    run: echo "a ran in attempt $SLUICE_ATTEMPT" && echo "value=from-a-$SLUICE_ATTEMPT" >> "$SLUICE_OUTPUT"
  b:
    needs: [a]
    run: test -f "$TEST_DIR/fixed" && echo "b ran with ${{ blocks.a.outputs.value }}"
  c:
    needs: [b]
    run: echo "c ran"
"#,
    );
    let (code, run) = project.run("retryable", &[]);
    assert_eq!(code, 1);
    let run_id = run["id"].as_str().unwrap().to_owned();

    // Retrying from `c` is refused: its upstream `b` never completed.
    let refused = project.sluice(&["runs", "retry", &run_id, "--from", "c"]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("`b` never completed"), "{stderr}");

    // Retry incomplete: `a` is reused, `b` and `c` run again.
    project.write("fixed", "");
    let retried = project.sluice(&["runs", "retry", &run_id, "--output", "json"]);
    assert_eq!(
        retried.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&retried.stderr)
    );
    let details = project.show(&run_id);
    assert_eq!(details["run"]["attempt"], 2);
    assert_eq!(details["run"]["status"], "completed");
    let a2 = block(&details, Some(2), "a");
    assert_eq!(a2["status"], "completed");
    assert_eq!(a2["reused_from_attempt"], 1);
    assert_eq!(a2["outputs"]["value"], "from-a-1");
    assert_eq!(block(&details, Some(2), "b")["status"], "completed");
    // Attempt 1 is untouched.
    assert_eq!(block(&details, Some(1), "b")["status"], "failed");
    assert_eq!(block(&details, Some(1), "c")["status"], "upstream_failed");
    assert_eq!(details["attempts"][0]["status"], "failed");

    // Retry from a block: `b` and `c` rerun, `a` reused.
    let from = project.sluice(&["runs", "retry", &run_id, "--from", "b"]);
    assert_eq!(
        from.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&from.stderr)
    );
    let details = project.show(&run_id);
    assert_eq!(details["run"]["attempt"], 3);
    assert_eq!(block(&details, Some(3), "a")["reused_from_attempt"], 1);
    assert!(block(&details, Some(3), "b")["reused_from_attempt"].is_null());
    assert_eq!(
        block(&details, Some(3), "b")["tries"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(details["attempts"][2]["mode"], "from_block");
    assert_eq!(details["attempts"][2]["from_block"], "b");

    // Rerun all: nothing reused.
    let all = project.sluice(&["runs", "retry", &run_id, "--all"]);
    assert_eq!(all.status.code(), Some(0));
    let details = project.show(&run_id);
    assert_eq!(details["run"]["attempt"], 4);
    for name in ["a", "b", "c"] {
        let block_run = block(&details, Some(4), name);
        assert_eq!(block_run["status"], "completed");
        assert!(block_run["reused_from_attempt"].is_null());
    }
    let log = project.logs(&run_id, &["--attempt", "4", "--block", "a"]);
    assert!(log.contains("a ran in attempt 4"), "{log}");
}

#[test]
fn retrying_a_running_run_is_refused() {
    let project = Project::new();
    let marker = sleep_marker();
    project.pipeline(
        "busy",
        &format!("blocks:\n  wait:\n    run: sleep {marker}\n"),
    );
    let mut child = project.spawn(&["run", "busy"]);
    let run_id = newest_run(&project, "busy");
    let refused = project.sluice(&["runs", "retry", &run_id]);
    assert_eq!(refused.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("only a finished run can be retried"),
        "{stderr}"
    );
    project.sluice(&["runs", "cancel", &run_id]);
    child.wait().unwrap();
}

#[test]
fn concurrency_wait_queues_the_second_run_until_the_first_ends() {
    let project = Project::new();
    project.pipeline(
        "single",
        r#"
concurrency: 1
on_limit: wait
blocks:
  hold:
    run: |
      while [ ! -f "$TEST_DIR/release" ]; do sleep 0.05; done
"#,
    );
    let mut first = project.spawn(&["run", "single"]);
    let first_id = newest_run(&project, "single");
    wait_until("the first run to be running", WAIT, || {
        project.show(&first_id)["run"]["status"] == "running"
    });
    let mut second = project.spawn(&["run", "single"]);
    let mut second_id = String::new();
    wait_until("the second run to exist", WAIT, || {
        let runs = project.list(&["--pipeline", "single"]);
        if runs.len() == 2 {
            second_id = runs[0]["id"].as_str().unwrap().to_owned();
            true
        } else {
            false
        }
    });
    assert_eq!(project.show(&second_id)["run"]["status"], "initial");
    project.write("release", "");
    assert_eq!(first.wait().unwrap().code(), Some(0));
    assert_eq!(second.wait().unwrap().code(), Some(0));
    let first = project.show(&first_id);
    let second = project.show(&second_id);
    let finished: jiff::Timestamp = first["run"]["finished_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let started: jiff::Timestamp = second["run"]["started_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        started >= finished,
        "the second run started before the first ended"
    );
}

#[test]
fn concurrency_skip_records_the_skipped_run_as_cancelled() {
    let project = Project::new();
    project.pipeline(
        "skipper",
        r#"
concurrency: 1
on_limit: skip
blocks:
  hold:
    run: |
      while [ ! -f "$TEST_DIR/release" ]; do sleep 0.05; done
"#,
    );
    let mut first = project.spawn(&["run", "skipper"]);
    let first_id = newest_run(&project, "skipper");
    wait_until("the first run to be running", WAIT, || {
        project.show(&first_id)["run"]["status"] == "running"
    });
    let (code, skipped) = project.run("skipper", &[]);
    assert_eq!(code, 1);
    assert_eq!(skipped["status"], "cancelled");
    assert_eq!(skipped["error"], "concurrency limit reached");
    project.write("release", "");
    assert_eq!(first.wait().unwrap().code(), Some(0));
}

fn timeout_pipeline(status: &str, marker: &str) -> String {
    format!(
        r#"
timeout: 1s
timeout_status: {status}
blocks:
  slow:
    run: sleep {marker}
"#
    )
}

#[test]
fn a_run_timeout_ends_the_run_with_its_timeout_status() {
    for (timeout_status, expected) in [("failed", "failed"), ("cancelled", "cancelled")] {
        let project = Project::new();
        let marker = sleep_marker();
        project.pipeline("timed", &timeout_pipeline(timeout_status, &marker));
        let (code, run) = project.run("timed", &[]);
        assert_eq!(code, 1);
        assert_eq!(run["status"], expected, "{run:#}");
        assert_eq!(run["timed_out"], true);
        assert!(
            run["error"].as_str().unwrap().contains("timed out"),
            "{run:#}"
        );
        let details = project.show(run["id"].as_str().unwrap());
        assert_eq!(status_of(&details, "slow"), "cancelled");
        wait_until(
            "the block's process to be gone",
            Duration::from_secs(15),
            || !process_with(&marker),
        );
    }
}

#[test]
fn a_run_timeout_with_warning_only_flags_the_run() {
    let project = Project::new();
    project.pipeline(
        "warned",
        r#"
timeout: 500ms
timeout_status: warning
blocks:
  slowish:
    run: sleep 1.5
"#,
    );
    let (code, run) = project.run("warned", &[]);
    assert_eq!(code, 0, "{run:#}");
    assert_eq!(run["status"], "completed");
    assert_eq!(run["timed_out"], true);
}

#[test]
fn the_sla_flag_is_set_while_the_run_is_still_running() {
    let project = Project::new();
    project.pipeline(
        "late",
        r#"
sla: 1s
blocks:
  slow:
    run: |
      while [ ! -f "$TEST_DIR/release" ]; do sleep 0.05; done
"#,
    );
    let mut child = project.spawn(&["run", "late"]);
    let run_id = newest_run(&project, "late");
    wait_until("the SLA flag while running", WAIT, || {
        let details = project.show(&run_id);
        details["run"]["sla_missed"] == true && details["run"]["status"] == "running"
    });
    project.write("release", "");
    assert_eq!(child.wait().unwrap().code(), Some(0));
    assert_eq!(project.show(&run_id)["run"]["sla_missed"], true);

    project.pipeline("quick", "sla: 1h\nblocks:\n  fast:\n    run: 'true'\n");
    let (_, run) = project.run("quick", &[]);
    assert_eq!(run["sla_missed"], false);
}

#[test]
fn a_killed_sluice_run_is_finished_by_the_next_command() {
    let project = Project::new();
    let marker = sleep_marker();
    project.pipeline(
        "doomed",
        &format!(
            "blocks:\n  wait:\n    run: test -f \"$TEST_DIR/release\" || sleep {marker}\n  after:\n    needs: [wait]\n    run: echo after\n"
        ),
    );
    let mut child = project.spawn(&["run", "doomed"]);
    let run_id = newest_run(&project, "doomed");
    wait_until("the block to run", WAIT, || {
        block_status(&project, &run_id, "wait") == "running"
    });
    signal(&child, Signal::SIGKILL);
    child.wait().unwrap();
    // The next command on the project finds the run whose executor is gone.
    let details = project.show(&run_id);
    assert_eq!(details["run"]["status"], "failed", "{details:#}");
    assert_eq!(details["run"]["error"], "executor lost");
    let wait_block = block(&details, None, "wait");
    assert_eq!(wait_block["status"], "failed");
    assert_eq!(wait_block["tries"][0]["status"], "lost");
    assert_eq!(status_of(&details, "after"), "cancelled");
    // The orphaned block process does not matter to the ledger; clean it up.
    let _ = std::process::Command::new("pkill")
        .args(["-f", &marker])
        .status();
    // And the run can be retried.
    project.write("release", "");
    let retried = project.sluice(&["runs", "retry", &run_id]);
    assert_eq!(
        retried.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&retried.stderr)
    );
}

#[test]
fn a_retry_runs_the_pinned_project_files_unless_asked_for_the_latest() {
    let project = Project::new();
    // `check` fails until the gate file (outside the working copy) exists;
    // `report` says which version of a project file it ran with.
    let gate = project.path().join("gate");
    project.pipeline(
        "pinned",
        &format!(
            r#"
blocks:
  check:
    run: test -f '{}'
  report:
    needs: [check]
    run: echo "says=$(cat message.txt)" >> "$SLUICE_OUTPUT"
"#,
            gate.display()
        ),
    );
    project.write("message.txt", "first");
    let (code, run) = project.run("pinned", &[]);
    assert_eq!(code, 1, "{run}");
    let run_id = run["id"].as_str().unwrap().to_owned();
    let first_version = run["project_version"].as_str().expect("pinned").to_owned();

    // The file changes; the retry still runs the version the run started with.
    project.write("message.txt", "second");
    project.write("gate", "");
    let retried = project.sluice(&["runs", "retry", &run_id]);
    assert_eq!(retried.status.code(), Some(0), "{retried:?}");
    let details = project.show(&run_id);
    assert_eq!(
        block(&details, Some(2), "report")["outputs"]["says"],
        "first"
    );
    assert_eq!(details["run"]["project_version"], first_version.as_str());

    // `--latest` runs the files as they are now and pins the run to them.
    let latest = project.sluice(&["runs", "retry", &run_id, "--all", "--latest"]);
    assert_eq!(latest.status.code(), Some(0), "{latest:?}");
    let details = project.show(&run_id);
    assert_eq!(
        block(&details, Some(3), "report")["outputs"]["says"],
        "second"
    );
    let now = details["run"]["project_version"].as_str().expect("pinned");
    assert_ne!(now, first_version);
    assert_eq!(
        details["attempts"][0]["project_version"],
        first_version.as_str()
    );
    assert_eq!(details["attempts"][2]["project_version"], now);

    // The text view names the files' version, and the earlier attempts'
    // when they differ.
    let shown = project.sluice(&["runs", "show", &run_id]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(
        text.contains(&format!("files        {}", &now[..12])),
        "{text}"
    );
    assert!(
        text.contains(&format!("files {}", &first_version[..12])),
        "{text}"
    );
}
