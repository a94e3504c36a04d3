//! Remote agents as real processes on loopback, on SQLite and on
//! PostgreSQL: a `sluice up` with a short lease TTL and `sluice agent`
//! processes talking to it over HTTP. A block that requires labels runs on
//! the agent offering them, never on the server's built-in agent; a write
//! with a stale lease epoch is refused with 409; a cancellation reaches the
//! agent through its heartbeat and kills the block's whole process group;
//! an agent that cannot renew its lease kills its try before the lease
//! ends; a killed agent's try runs again elsewhere, never twice at once; an
//! agent stopped (SIGSTOP) past its lease kills its block when it wakes,
//! its late writes are refused, and the retry's result stands.

mod common;
#[macro_use]
mod fleet;

use std::time::Duration;

use common::{block, process_with, sleep_marker, wait_until};
use fleet::{Backend, TIMEOUT, World};
use serde_json::{Value, json};

on_both_backends!(
    a_block_with_labels_runs_on_the_agent_that_offers_them,
    a_write_with_a_stale_epoch_is_refused,
    a_cancellation_reaches_the_agent_and_kills_the_whole_group,
    an_agent_that_cannot_renew_its_lease_kills_its_try_before_the_lease_ends,
    a_killed_agent_s_try_is_lost_and_runs_again_elsewhere_never_twice_at_once,
    an_upload_whose_sha256_does_not_match_fails_the_try,
    a_child_pipeline_block_claimed_by_an_agent_runs_in_the_server,
    a_stopped_agent_kills_its_block_when_it_wakes_and_the_retry_s_result_stands,
    the_late_writes_of_an_agent_whose_lease_expired_are_refused,
    an_agent_without_a_checkout_runs_the_pinned_files_and_a_retry_keeps_them,
);

const LABELLED: &str = r#"
blocks:
  plain:
    run: echo plain
  gpu:
    labels: {gpu: "true"}
    run: |
      echo "training on $SLUICE_BLOCK"
      echo "loss=0.25" >> "$SLUICE_OUTPUT"
      printf 'weights' > "$SLUICE_ARTIFACTS/model.bin"
"#;

fn a_block_with_labels_runs_on_the_agent_that_offers_them(backend: Backend) {
    let Some(world) = World::start(backend, &[("train", LABELLED)]) else {
        return;
    };
    let run = world.trigger("train");
    wait_until("the unlabelled block to complete", TIMEOUT, || {
        world.block_run(&run, "plain")["status"] == "completed"
    });
    // The server's built-in agent offers no labels, so the labelled block
    // waits for an agent that offers `gpu=true`.
    assert_eq!(world.block_run(&run, "gpu")["status"], "queued");

    let mut agent = world.agent("gpu-box", "gpu=true");
    world.wait_for_run(&run, "completed");
    let gpu = world.block_run(&run, "gpu");
    let executor = gpu["tries"][0]["executor"].as_str().expect("an executor");
    assert!(executor.starts_with("agent-gpu-box-"), "{gpu}");
    assert_eq!(gpu["outputs"]["loss"], "0.25");
    let id = gpu["id"].as_str().expect("an id");
    let logs = world.get(&format!("/api/block_runs/{id}/logs"));
    let text: Vec<&str> = logs["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter_map(|line| line["text"].as_str())
        .collect();
    assert!(text.contains(&"training on gpu"), "{logs}");
    let artifacts = world.get(&format!("/api/artifacts?run={run}"));
    let artifact = &artifacts["artifacts"][0];
    assert_eq!(artifact["name"], "model.bin", "{artifacts}");
    assert_eq!(artifact["size"], 7);
    let digest: String = <sha2::Sha256 as sha2::Digest>::digest(b"weights")
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    assert_eq!(artifact["sha256"], digest.as_str());

    let listed = world.project.sluice(&[
        "agents",
        "list",
        "--server",
        &world.base,
        "--token",
        &world.operator,
        "--output",
        "json",
    ]);
    assert!(listed.status.success(), "{listed:?}");
    let agents: Value = serde_json::from_slice(&listed.stdout).expect("JSON");
    assert_eq!(agents[0]["name"], "gpu-box", "{agents}");
    assert_eq!(agents[0]["labels"], json!({"gpu": "true"}));
    assert_eq!(agents[0]["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        ["online", "busy"].contains(&agents[0]["status"].as_str().unwrap_or_default()),
        "{agents}"
    );

    agent.signal(nix::sys::signal::Signal::SIGTERM);
    let exit = agent.wait_exit();
    assert!(
        exit.success(),
        "the agent drains and exits: {exit:?} {}",
        agent.log()
    );
    drop(world.server);
}

fn a_write_with_a_stale_epoch_is_refused(backend: Backend) {
    let Some(world) = World::start(
        backend,
        &[(
            "one",
            "blocks:\n  only:\n    labels: {pool: manual}\n    run: 'true'\n",
        )],
    ) else {
        return;
    };
    let run = world.trigger("one");
    let post =
        |path: &str, body: Value| world.call(reqwest::Method::POST, path, &world.agent, Some(body));
    let by_hand = HandAgent::claim(&world, "by-hand", "manual");
    let (agent_id, epoch) = (by_hand.agent_id.as_str(), by_hand.epoch);
    let try_id = by_hand.try_id.as_str();
    assert_eq!(by_hand.claimed["run_id"], run.as_str());
    assert_eq!(by_hand.claimed["command"]["script"], "true");

    let line = json!([{"at": "2026-01-01T00:00:00Z", "stream": "stdout", "text": "hello"}]);
    let logs = format!("/api/agent/tries/{try_id}/logs");
    let (status, refused) = post(&logs, json!({"epoch": epoch + 1, "seq": 0, "lines": line}));
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "conflict");
    let (status, _) = post(&logs, json!({"epoch": epoch, "seq": 0, "lines": line}));
    assert_eq!(status, 204);
    let (status, _) = post(&logs, json!({"epoch": epoch, "seq": 0, "lines": line}));
    assert_eq!(status, 204, "sending a chunk again changes nothing");

    let complete = format!("/api/agent/tries/{try_id}/complete");
    let ending = |epoch: i64| json!({"agent_id": agent_id, "epoch": epoch, "result": "completed", "exit_code": 0});
    let (status, refused) = post(&complete, ending(epoch + 1));
    assert_eq!(status, 409, "{refused}");
    let (status, completed) = post(&complete, ending(epoch));
    assert_eq!(status, 200, "{completed}");
    assert_eq!(completed["block_run_status"], "completed");
    let (status, _) = post(&logs, json!({"epoch": epoch, "seq": 1, "lines": line}));
    assert_eq!(status, 409, "a new chunk after the end is refused");
    world.wait_for_run(&run, "completed");

    let (status, refused) = world.call(
        reqwest::Method::GET,
        "/api/pipeline_runs",
        &world.agent,
        None,
    );
    assert_eq!(status, 403, "an agent token reads nothing: {refused}");
}

fn a_cancellation_reaches_the_agent_and_kills_the_whole_group(backend: Backend) {
    let marker = sleep_marker();
    let pipeline = format!(
        "blocks:\n  long:\n    labels: {{pool: remote}}\n    run: |\n      sleep {marker} &\n      sleep {marker}\n"
    );
    let Some(world) = World::start(backend, &[("long", pipeline.as_str())]) else {
        return;
    };
    let _agent = world.agent("remote-1", "pool=remote");
    let run = world.trigger("long");
    wait_until("the block's processes to start", TIMEOUT, || {
        process_with(&marker)
    });
    let (status, body) = world.call(
        reqwest::Method::POST,
        &format!("/api/pipeline_runs/{run}/cancel"),
        &world.operator,
        None,
    );
    assert_eq!(status, 200, "{body}");
    // The heartbeat (every TTL/3 = 1 s) carries the cancellation; the kill
    // grace is the server's default, but `sleep` ends at SIGTERM.
    wait_until(
        "no process of the block to remain",
        Duration::from_secs(12),
        || !process_with(&marker),
    );
    world.wait_for_run(&run, "cancelled");
    assert_eq!(world.block_run(&run, "long")["status"], "cancelled");
}

/// A block run's two tries: the first `lost` (on the agent named `lost_on`,
/// when given), the second `completed` (on `completed_on`, when given).
fn assert_lost_then_completed(tries: &[Value], lost_on: Option<&str>, completed_on: Option<&str>) {
    assert_eq!(tries.len(), 2, "{tries:?}");
    for (attempt_try, status, agent) in [
        (&tries[0], "lost", lost_on),
        (&tries[1], "completed", completed_on),
    ] {
        assert_eq!(attempt_try["status"], status, "{tries:?}");
        if let Some(agent) = agent {
            let prefix = format!("agent-{agent}-");
            assert!(
                attempt_try["executor"]
                    .as_str()
                    .is_some_and(|executor| executor.starts_with(&prefix)),
                "{tries:?}"
            );
        }
    }
}

/// An agent driven by hand over the agent API: registered with
/// `pool=POOL`, holding the try it claimed.
struct HandAgent {
    agent_id: String,
    try_id: String,
    epoch: i64,
    /// The claimed try as the server sent it.
    claimed: Value,
}

impl HandAgent {
    fn claim(world: &World, name: &str, pool: &str) -> HandAgent {
        let post = |path: &str, body: Value| {
            world.call(reqwest::Method::POST, path, &world.agent, Some(body))
        };
        let (status, registered) = post(
            "/api/agent/register",
            json!({"name": name, "labels": {"pool": pool}, "version": "test", "host": "here", "pid": 1}),
        );
        assert_eq!(status, 200, "{registered}");
        let agent_id = registered["agent_id"].as_str().expect("an agent id");
        let (status, claimed) = post(
            "/api/agent/claim",
            json!({"agent_id": agent_id, "wait_ms": 10000}),
        );
        assert_eq!(status, 200, "{claimed}");
        let claimed = claimed["try"].clone();
        HandAgent {
            agent_id: agent_id.to_owned(),
            try_id: claimed["try_id"].as_str().expect("a try id").to_owned(),
            epoch: claimed["epoch"].as_i64().expect("an epoch"),
            claimed,
        }
    }
}

fn an_agent_that_cannot_renew_its_lease_kills_its_try_before_the_lease_ends(backend: Backend) {
    let marker = sleep_marker();
    // The first try sleeps until killed; the second ends at once.
    let pipeline = format!(
        "blocks:\n  long:\n    labels: {{pool: remote}}\n    run: |\n      if [ \"$SLUICE_TRY\" = 1 ]; then sleep {marker}; fi\n      echo done\n"
    );
    let Some(world) = World::start(backend, &[("long", pipeline.as_str())]) else {
        return;
    };
    let _agent = world.agent("remote-1", "pool=remote");
    let run = world.trigger("long");
    wait_until("the block's process to start", TIMEOUT, || {
        process_with(&marker)
    });
    // A stopped server answers nothing: the agent's heartbeats time out, and
    // it must kill the try before the 3 s lease could be given to another
    // agent (at the latest 2.25 s after the last renewal).
    world.server.signal(nix::sys::signal::Signal::SIGSTOP);
    let stopped_at = std::time::Instant::now();
    wait_until(
        "the agent to kill its unrenewed try",
        Duration::from_secs(5),
        || !process_with(&marker),
    );
    let killed_after = stopped_at.elapsed();
    world.server.signal(nix::sys::signal::Signal::SIGCONT);
    assert!(
        killed_after < Duration::from_secs(3),
        "killed {killed_after:?} after the server stopped answering"
    );

    world.wait_for_run(&run, "completed");
    let tries = world.block_run(&run, "long")["tries"]
        .as_array()
        .expect("tries")
        .clone();
    assert_lost_then_completed(&tries, None, None);
}

fn a_killed_agent_s_try_is_lost_and_runs_again_elsewhere_never_twice_at_once(backend: Backend) {
    let marker = sleep_marker();
    let events = "events.log";
    // Each try takes a lock for its whole life and records its start and
    // end; a try that finds the lock taken records an overlap. The first
    // try would sleep forever.
    // Tries run in copies of the project, so the lock and the record are
    // in the test's directory, `$TEST_DIR`.
    let pipeline = format!(
        "blocks:\n  exclusive:\n    labels: {{pool: remote}}\n    retries: 2\n    run: |\n      exec 9>> \"$TEST_DIR/block.lock\"\n      flock -n 9 || {{ echo \"overlap $SLUICE_TRY\" >> \"$TEST_DIR/{events}\"; exit 3; }}\n      echo \"start $SLUICE_TRY\" >> \"$TEST_DIR/{events}\"\n      if [ \"$SLUICE_TRY\" = 1 ]; then sleep {marker} & wait; fi\n      echo \"end $SLUICE_TRY\" >> \"$TEST_DIR/{events}\"\n"
    );
    let Some(world) = World::start(backend, &[("exclusive", pipeline.as_str())]) else {
        return;
    };
    let first = world.agent("first", "pool=remote");
    let run = world.trigger("exclusive");
    wait_until("the first try to run", TIMEOUT, || process_with(&marker));
    let _second = world.agent("second", "pool=remote");

    first.signal(nix::sys::signal::Signal::SIGKILL);
    // Nothing of the killed agent's try may outlive it; the server learns
    // of the loss only when the 3 s lease expires.
    wait_until(
        "the killed agent's block to be gone",
        Duration::from_secs(5),
        || !process_with(&marker),
    );
    wait_until(
        "the run to complete elsewhere",
        Duration::from_secs(20),
        || world.details(&run)["pipeline_run"]["status"] == "completed",
    );
    let tries = world.block_run(&run, "exclusive")["tries"]
        .as_array()
        .expect("tries")
        .clone();
    assert_lost_then_completed(&tries, Some("first"), Some("second"));
    let recorded = std::fs::read_to_string(world.project.path().join(events)).expect("events");
    assert_eq!(recorded, "start 1\nstart 2\nend 2\n", "no overlap");
}

fn an_upload_whose_sha256_does_not_match_fails_the_try(backend: Backend) {
    let Some(world) = World::start(
        backend,
        &[(
            "one",
            "blocks:\n  only:\n    labels: {pool: manual}\n    run: 'true'\n",
        )],
    ) else {
        return;
    };
    let run = world.trigger("one");
    let post =
        |path: &str, body: Value| world.call(reqwest::Method::POST, path, &world.agent, Some(body));
    let (_, registered) = post(
        "/api/agent/register",
        json!({"name": "by-hand", "labels": {"pool": "manual"}, "version": "test", "host": "here", "pid": 1}),
    );
    let agent_id = registered["agent_id"].as_str().expect("an agent id");
    let (_, claimed) = post(
        "/api/agent/claim",
        json!({"agent_id": agent_id, "wait_ms": 10000}),
    );
    let try_id = claimed["try"]["try_id"].as_str().expect("a try id");
    let epoch = claimed["try"]["epoch"].as_i64().expect("an epoch");

    let announced: String = <sha2::Sha256 as sha2::Digest>::digest(b"what was sent")
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    let client = reqwest::blocking::Client::new();
    let response = client
        .put(format!(
            "{}/api/agent/tries/{try_id}/files?epoch={epoch}&sha256={announced}",
            world.base
        ))
        .bearer_auth(&world.agent)
        .body("what arrived")
        .send()
        .expect("PUT");
    assert_eq!(response.status().as_u16(), 422);
    let refused: Value = response.json().expect("JSON");
    let message = refused["error"]["message"].as_str().expect("a message");
    assert!(message.contains("damaged"), "{refused}");

    world.wait_for_run(&run, "failed");
    let block_run = world.block_run(&run, "only");
    assert_eq!(block_run["status"], "failed");
    assert!(
        block_run["tries"][0]["error"]
            .as_str()
            .is_some_and(|error| error.contains("damaged")),
        "{block_run}"
    );
}

fn a_child_pipeline_block_claimed_by_an_agent_runs_in_the_server(backend: Backend) {
    let Some(world) = World::start(
        backend,
        &[
            (
                "load",
                "blocks:\n  only:\n    run: echo \"rows=3\" >> \"$SLUICE_OUTPUT\"\n",
            ),
            (
                "parent",
                "blocks:\n  child:\n    labels: {pool: remote}\n    pipeline: load\n",
            ),
        ],
    ) else {
        return;
    };
    // Only the agent offers `pool=remote`, so it claims the child-pipeline
    // block; it has no process to run, and the server's built-in agent
    // starts and watches the child run under the agent's lease.
    let _agent = world.agent("remote-1", "pool=remote");
    let run = world.trigger("parent");
    world.wait_for_run(&run, "completed");
    let child = world.block_run(&run, "child");
    assert_eq!(child["outputs"]["rows"], "3", "{child}");
    assert!(
        child["tries"][0]["executor"]
            .as_str()
            .is_some_and(|executor| executor.starts_with("agent-remote-1-")),
        "{child}"
    );
}

fn a_stopped_agent_kills_its_block_when_it_wakes_and_the_retry_s_result_stands(backend: Backend) {
    let marker = sleep_marker();
    let events = "events.log";
    // The first try would sleep forever; every try records its start and
    // end and leaves its number as an output.
    let pipeline = format!(
        "blocks:\n  work:\n    labels: {{pool: remote}}\n    retries: 2\n    run: |\n      echo \"start $SLUICE_TRY\" >> \"$TEST_DIR/{events}\"\n      if [ \"$SLUICE_TRY\" = 1 ]; then sleep {marker} & wait; fi\n      echo \"result=try$SLUICE_TRY\" >> \"$SLUICE_OUTPUT\"\n      echo \"end $SLUICE_TRY\" >> \"$TEST_DIR/{events}\"\n"
    );
    let Some(world) = World::start(backend, &[("work", pipeline.as_str())]) else {
        return;
    };
    let stopped = world.agent("stopped", "pool=remote");
    let run = world.trigger("work");
    wait_until("the first try to run", TIMEOUT, || process_with(&marker));

    // Frozen, the agent neither renews its lease nor kills anything: the
    // server reaps the lease after the 3 s TTL and the retry runs on the
    // other agent.
    stopped.signal(nix::sys::signal::Signal::SIGSTOP);
    let _other = world.agent("other", "pool=remote");
    wait_until(
        "the run to complete on the other agent",
        Duration::from_secs(20),
        || world.details(&run)["pipeline_run"]["status"] == "completed",
    );

    // Woken, it finds its lease gone and kills its block.
    stopped.signal(nix::sys::signal::Signal::SIGCONT);
    wait_until(
        "the woken agent to kill its block",
        Duration::from_secs(5),
        || !process_with(&marker),
    );
    wait_until(
        "the woken agent to say why it stopped its try",
        TIMEOUT,
        || {
            let log = stopped.log();
            log.contains("could not be renewed in time")
                || log.contains("no longer this agent's")
                || log.contains("lease was lost")
        },
    );

    let block_run = world.block_run(&run, "work");
    let tries = block_run["tries"].as_array().expect("tries").clone();
    assert_lost_then_completed(&tries, Some("stopped"), None);
    assert_eq!(block_run["status"], "completed", "{block_run:#}");
    assert_eq!(block_run["outputs"]["result"], "try2", "{block_run:#}");
    assert_eq!(
        world.details(&run)["pipeline_run"]["status"],
        "completed",
        "the woken agent changed nothing"
    );
    let recorded = std::fs::read_to_string(world.project.path().join(events)).expect("events");
    assert_eq!(
        recorded, "start 1\nstart 2\nend 2\n",
        "the first try never ended on its own"
    );
}

fn the_late_writes_of_an_agent_whose_lease_expired_are_refused(backend: Backend) {
    let Some(world) = World::start(
        backend,
        &[(
            "late",
            "blocks:\n  only:\n    labels: {pool: remote}\n    retries: 1\n    run: echo \"result=try$SLUICE_TRY\" >> \"$SLUICE_OUTPUT\"\n",
        )],
    ) else {
        return;
    };
    let run = world.trigger("late");
    let post =
        |path: &str, body: Value| world.call(reqwest::Method::POST, path, &world.agent, Some(body));
    // An agent driven by hand claims the first try, then goes silent, as a
    // stopped process would.
    let silent = HandAgent::claim(&world, "silent", "remote");
    let (agent_id, epoch) = (silent.agent_id.as_str(), silent.epoch);
    let try_id = silent.try_id.as_str();

    // Its lease expires; the retry runs on a real agent.
    let _real = world.agent("real", "pool=remote");
    wait_until(
        "the retry to complete the run",
        Duration::from_secs(20),
        || world.details(&run)["pipeline_run"]["status"] == "completed",
    );

    // The silent agent wakes up and writes with the epoch it holds.
    let (status, heartbeat) = post(
        "/api/agent/heartbeat",
        json!({"agent_id": agent_id, "tries": [{"try_id": try_id, "epoch": epoch}], "draining": false}),
    );
    assert_eq!(status, 200, "{heartbeat}");
    assert_eq!(
        heartbeat["lost"],
        json!([try_id]),
        "the heartbeat reply tells the agent its lease is gone: {heartbeat}"
    );
    let line = json!([{"at": "2026-01-01T00:00:00Z", "stream": "stdout", "text": "too late"}]);
    let (status, refused) = post(
        &format!("/api/agent/tries/{try_id}/logs"),
        json!({"epoch": epoch, "seq": 0, "lines": line}),
    );
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "conflict");
    let (status, refused) = post(
        &format!("/api/agent/tries/{try_id}/complete"),
        json!({"agent_id": agent_id, "epoch": epoch, "result": "completed", "exit_code": 0, "outputs": {"result": "late"}}),
    );
    assert_eq!(status, 409, "{refused}");

    let block_run = world.block_run(&run, "only");
    let tries = block_run["tries"].as_array().expect("tries").clone();
    assert_lost_then_completed(&tries, None, None);
    assert_eq!(block_run["outputs"]["result"], "try2", "{block_run:#}");
    assert!(
        world
            .log_lines(block_run["id"].as_str().expect("an id"), 1)
            .is_empty(),
        "no late log line was kept"
    );
    assert_eq!(world.details(&run)["pipeline_run"]["status"], "completed");
}

const PINNED: &str = r#"
blocks:
  step:
    labels: {remote: "true"}
    script: scripts/step.sh
"#;

/// The script of [`PINNED`]: its marker comes from another project file,
/// it runs an executable of the project, and it leaves a file in its
/// working directory that no later try may see.
const STEP: &str = r#"#!/bin/sh
. ./lib/marker.sh
echo "marker=$MARKER" >> "$SLUICE_OUTPUT"
echo "tool=$(./bin/tool)" >> "$SLUICE_OUTPUT"
echo "cwd=$(pwd)" >> "$SLUICE_OUTPUT"
echo "leftover=$(cat leftover.txt 2>/dev/null || echo none)" >> "$SLUICE_OUTPUT"
echo "written by an earlier try" > leftover.txt
"#;

fn an_agent_without_a_checkout_runs_the_pinned_files_and_a_retry_keeps_them(backend: Backend) {
    let Some(world) = World::start(backend, &[("pinned", PINNED)]) else {
        return;
    };
    world.project.write("scripts/step.sh", STEP);
    world.project.write("lib/marker.sh", "MARKER=one\n");
    let tool = world.project.write("bin/tool", "#!/bin/sh\necho works\n");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    // Not part of any version: ignored, and hidden.
    world.project.write(".sluiceignore", "data/\n");
    world.project.write("data/big.csv", "a,b\n");

    let home = tempfile::tempdir().expect("a directory for the agent");
    let mut agent = world.agent_without_project("bare", "remote=true", home.path());
    let (status, body) = world.call(
        reqwest::Method::POST,
        "/api/pipelines/pinned/runs",
        &world.operator,
        Some(json!({})),
    );
    assert_eq!(status, 201, "{body}");
    let run = body["pipeline_run"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let first_version = body["pipeline_run"]["project_version"]
        .as_str()
        .expect("a pinned project version")
        .to_owned();
    world.wait_for_run(&run, "completed");

    let details = world.details(&run);
    let first = block(&details, Some(1), "step");
    assert_eq!(first["outputs"]["marker"], "one", "{first}");
    assert_eq!(first["outputs"]["tool"], "works", "{first}");
    assert_eq!(first["outputs"]["leftover"], "none", "{first}");
    let cwd = first["outputs"]["cwd"].as_str().expect("cwd");
    let work = home.path().join("work").canonicalize().expect("work dir");
    assert!(
        cwd.starts_with(work.to_str().expect("UTF-8")),
        "the try ran in a copy under the agent's work directory: {cwd}"
    );

    // The version lists exactly the project's pinned files.
    let listed = world.get(&format!("/api/projects/{first_version}"));
    let paths: Vec<&str> = listed["files"]
        .as_array()
        .expect("files")
        .iter()
        .filter_map(|file| file["path"].as_str())
        .collect();
    assert_eq!(
        paths,
        [
            "bin/tool",
            "lib/marker.sh",
            "pipelines/pinned.yaml",
            "scripts/step.sh"
        ],
        "{listed}"
    );
    assert_eq!(listed["files"][0]["executable"], true, "{listed}");

    // The project changes on disk; a retry still runs the pinned files.
    world.project.write("lib/marker.sh", "MARKER=two\n");
    let retry = |body: Value| {
        let (status, answer) = world.call(
            reqwest::Method::POST,
            &format!("/api/pipeline_runs/{run}/retry"),
            &world.operator,
            Some(body),
        );
        assert_eq!(status, 200, "{answer}");
    };
    retry(json!({"mode": "all"}));
    wait_until("attempt 2 to complete", TIMEOUT, || {
        let details = world.details(&run);
        details["pipeline_run"]["attempt"] == 2 && details["pipeline_run"]["status"] == "completed"
    });
    let details = world.details(&run);
    let second = block(&details, Some(2), "step");
    assert_eq!(second["outputs"]["marker"], "one", "{second}");
    assert_eq!(
        second["outputs"]["leftover"], "none",
        "each try gets a fresh copy: {second}"
    );
    assert_eq!(
        details["pipeline_run"]["project_version"],
        first_version.as_str()
    );

    // Asked for the latest files, the retry runs them and the run is pinned
    // to them from then on; the earlier attempts keep theirs.
    retry(json!({"mode": "all", "latest": true}));
    wait_until("attempt 3 to complete", TIMEOUT, || {
        let details = world.details(&run);
        details["pipeline_run"]["attempt"] == 3 && details["pipeline_run"]["status"] == "completed"
    });
    let details = world.details(&run);
    let third = block(&details, Some(3), "step");
    assert_eq!(third["outputs"]["marker"], "two", "{third}");
    let latest = details["pipeline_run"]["project_version"]
        .as_str()
        .expect("a version")
        .to_owned();
    assert_ne!(latest, first_version);
    let attempt_versions: Vec<&Value> = details["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|attempt| &attempt["project_version"])
        .collect();
    assert!(
        attempt_versions.contains(&&json!(first_version)),
        "{details}"
    );
    assert!(attempt_versions.contains(&&json!(latest)), "{details}");

    // `runs show` names the pinned files' version.
    let shown = world.project.sluice(&[
        "runs",
        "show",
        &run,
        "--server",
        &world.base,
        "--token",
        &world.operator,
    ]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(shown.status.success(), "{shown:?}");
    assert!(
        text.contains(&format!("files        {}", &latest[..12])),
        "{text}"
    );

    // The agent fetched each version once into its cache.
    let mut cached: Vec<String> = std::fs::read_dir(home.path().join("work").join("projects"))
        .expect("the agent's cache")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .collect();
    cached.sort();
    let mut expected = vec![first_version.clone(), latest.clone()];
    expected.sort();
    assert_eq!(cached, expected);
    agent.kill();
}
