//! How a try ends: timeout, cancellation, and processes a block leaves
//! behind; in every case nothing of the block may keep running.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Project, eventually, marker, processes_with, run, run_with, shell, start_and_wait};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use sluice_exec::{Stream, TryResult};
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn timeout_stops_the_block_and_its_background_processes() {
    let project = Project::new();
    let marker = marker();
    let script = format!(
        "{}sleep 30\n",
        start_and_wait(&format!("sleep {marker} &"), &marker)
    );
    let mut request = project.request(shell(&script));
    request.timeout = Some(Duration::from_secs(3));

    let finished = run(request).await;

    assert_eq!(finished.texts(Stream::Stdout), ["started"]);
    assert_eq!(finished.outcome.result, TryResult::TimedOut);
    assert_eq!(
        finished.outcome.error.as_deref(),
        Some("timed out after 3s")
    );
    assert!(eventually(|| processes_with(&marker).is_empty()).await);
}

#[tokio::test]
async fn timeout_escalates_to_sigkill_when_sigterm_is_ignored() {
    let project = Project::new();
    let marker = marker();
    // An ignored signal stays ignored across exec, so neither the shell nor
    // either sleep reacts to SIGTERM.
    let script = format!(
        "trap '' TERM\n{}sleep 30\n",
        start_and_wait(&format!("sleep {marker} &"), &marker)
    );
    let mut request = project.request(shell(&script));
    request.timeout = Some(Duration::from_secs(3));
    request.kill_grace = Duration::from_millis(300);

    let finished = run(request).await;

    assert_eq!(finished.texts(Stream::Stdout), ["started"]);
    assert_eq!(finished.outcome.result, TryResult::TimedOut);
    assert_eq!(finished.outcome.signal, Some(Signal::SIGKILL as i32));
    assert!(eventually(|| processes_with(&marker).is_empty()).await);
}

#[tokio::test]
async fn cancellation_stops_the_block_and_its_grandchildren() {
    let project = Project::new();
    let marker = marker();
    // `; true` keeps the subshell from exec-ing, so the sleep is a
    // grandchild of the block's shell.
    let script = format!(
        "{}sleep 30\n",
        start_and_wait(&format!("( sleep {marker}; true ) &"), &marker)
    );
    let cancel = CancellationToken::new();
    let on_started = cancel.clone();

    let finished = run_with(project.request(shell(&script)), cancel, move |line| {
        if line.text == "started" {
            on_started.cancel();
        }
    })
    .await;

    assert_eq!(finished.texts(Stream::Stdout), ["started"]);
    assert_eq!(finished.outcome.result, TryResult::Cancelled);
    assert_eq!(finished.outcome.error.as_deref(), Some("cancelled"));
    assert!(eventually(|| processes_with(&marker).is_empty()).await);
}

#[tokio::test]
async fn a_token_cancelled_before_the_start_runs_nothing() {
    let project = Project::new();
    let cancel = CancellationToken::new();
    cancel.cancel();

    let finished = run_with(project.request(shell("touch ran")), cancel, |_| {}).await;

    assert_eq!(finished.outcome.result, TryResult::Cancelled);
    assert!(!project.file("ran").exists());
}

#[tokio::test]
async fn a_block_that_leaves_a_background_process_completes_and_leaves_nothing() {
    let project = Project::new();
    let marker = marker();
    // The background sleep inherits stdout: reading the pipe to its end
    // would wait for it forever if it were not stopped.
    let script = format!(
        "{}echo done >&2\nexit 0\n",
        start_and_wait(&format!("sleep {marker} &"), &marker)
    );

    let finished = run(project.request(shell(&script))).await;

    assert_eq!(finished.outcome.result, TryResult::Completed);
    assert_eq!(finished.outcome.exit_code, Some(0));
    assert_eq!(finished.texts(Stream::Stdout), ["started"]);
    assert_eq!(finished.texts(Stream::Stderr), ["done"]);
    assert!(eventually(|| processes_with(&marker).is_empty()).await);
}

#[tokio::test]
async fn a_process_that_escaped_the_group_cannot_hang_the_try() {
    let project = Project::new();
    let marker = marker();
    // `setsid` moves the sleep out of the block's process group, beyond the
    // executor's reach, while it keeps stdout open.
    let script = start_and_wait(&format!("setsid sleep {marker} &"), &marker);
    let escaped = Arc::new(AtomicBool::new(false));
    let seen = escaped.clone();
    let marker_for_check = marker.clone();

    let finished = run_with(
        project.request(shell(&script)),
        CancellationToken::new(),
        move |line| {
            if line.text == "started" && !processes_with(&marker_for_check).is_empty() {
                seen.store(true, Ordering::SeqCst);
            }
        },
    )
    .await;

    let survivors = processes_with(&marker);
    for pid in &survivors {
        let _ = kill(Pid::from_raw(*pid), Signal::SIGKILL);
    }
    assert!(escaped.load(Ordering::SeqCst));
    assert_eq!(finished.outcome.result, TryResult::Completed);
    assert_eq!(finished.texts(Stream::Stdout), ["started"]);
    assert!(!survivors.is_empty(), "the escaped process is out of reach");
    assert!(eventually(|| processes_with(&marker).is_empty()).await);
}
