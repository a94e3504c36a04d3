//! Child pipeline blocks through the CLI: a parent's `pipeline:` block starts
//! a child run invoked by the parent, waits for it, takes its status and
//! passes its outputs downstream; cancelling the parent cancels the child.

mod common;

use std::time::Duration;

use common::{Project, sleep_marker, status_of, wait_until};

const WAIT: Duration = Duration::from_secs(60);

const CHILD: &str = r#"
variables:
  region: {required: true}
blocks:
  load:
    run: |
      echo "loading ${{ vars.region }}"
      echo "loaded=42" >> "$SLUICE_OUTPUT"
      echo "region=${{ vars.region }}" >> "$SLUICE_OUTPUT"
"#;

const PARENT: &str = r#"
variables:
  region: emea
blocks:
  prepare:
    run: echo "day=2026-11-23" >> "$SLUICE_OUTPUT"
  child:
    needs: [prepare]
    pipeline: load
    variables:
      region: "${{ vars.region }}-${{ blocks.prepare.outputs.day }}"
  report:
    needs: [child]
    run: echo "child loaded ${{ blocks.child.outputs.loaded }} for ${{ blocks.child.outputs.region }}"
"#;

#[test]
fn a_parent_runs_its_child_and_uses_its_outputs() {
    let project = Project::new();
    project.pipeline("load", CHILD);
    project.pipeline("parent", PARENT);
    let (code, run) = project.run("parent", &["-v", "region=apac"]);
    assert_eq!(code, 0, "{run:#}");
    let parent_id = run["id"].as_str().expect("an id").to_owned();
    let details = project.show(&parent_id);
    assert_eq!(status_of(&details, "child"), "completed");
    let child_block = common::block(&details, None, "child");
    let child_id = child_block["outputs"]["run_id"]
        .as_str()
        .expect("the child run's id")
        .to_owned();
    let logs = project.logs(&parent_id, &["--block", "report"]);
    assert!(
        logs.contains("child loaded 42 for apac-2026-11-23"),
        "{logs}"
    );

    let child = project.show(&child_id);
    assert_eq!(child["run"]["status"], "completed");
    assert_eq!(child["run"]["invoked_by"]["kind"], "parent");
    assert_eq!(child["run"]["invoked_by"]["name"], "child");
    assert_eq!(
        child["run"]["invoked_by"]["parent_run_id"],
        parent_id.as_str()
    );
    assert_eq!(
        child["run"]["variables"]["region"]["value"],
        "apac-2026-11-23"
    );
    let listed = project.list(&["--pipeline", "load"]);
    assert_eq!(listed.len(), 1, "one child run: {listed:#?}");
}

#[test]
fn a_failed_child_fails_the_parent_block() {
    let project = Project::new();
    project.pipeline("broken", "blocks:\n  fail:\n    run: exit 4\n");
    project.pipeline(
        "parent",
        "blocks:\n  child:\n    pipeline: broken\n  after:\n    needs: [child]\n    run: 'true'\n",
    );
    let (code, run) = project.run("parent", &[]);
    assert_eq!(code, 1, "{run:#}");
    let details = project.show(run["id"].as_str().expect("an id"));
    assert_eq!(status_of(&details, "child"), "failed");
    assert_eq!(status_of(&details, "after"), "upstream_failed");
    let error = common::block(&details, None, "child")["error"]
        .as_str()
        .expect("an error")
        .to_owned();
    assert!(error.contains("pipeline `broken` ended failed"), "{error}");
}

#[test]
fn cancelling_the_parent_cancels_the_child() {
    let project = Project::new();
    let marker = sleep_marker();
    project.pipeline(
        "slow",
        &format!("blocks:\n  wait:\n    run: sleep {marker}\n"),
    );
    project.pipeline("parent", "blocks:\n  child:\n    pipeline: slow\n");
    let mut running = project.spawn(&["run", "parent"]);
    let mut child_id = String::new();
    wait_until("the child run's block to start", WAIT, || {
        let children = project.list(&["--pipeline", "slow"]);
        match children.first() {
            Some(child) if common::process_with(&marker) => {
                child_id = child["id"].as_str().expect("an id").to_owned();
                true
            }
            _ => false,
        }
    });
    let parents = project.list(&["--pipeline", "parent"]);
    let parent_id = parents[0]["id"].as_str().expect("an id").to_owned();
    let cancelled = project.sluice(&["runs", "cancel", &parent_id]);
    assert!(
        cancelled.status.success(),
        "{}",
        String::from_utf8_lossy(&cancelled.stderr)
    );
    let status = running.wait().expect("sluice run ends");
    assert_eq!(status.code(), Some(1));
    assert_eq!(project.show(&parent_id)["run"]["status"], "cancelled");
    let child = project.show(&child_id);
    assert_eq!(child["run"]["status"], "cancelled");
    assert!(
        child["run"]["cancel_requested_by"]
            .as_str()
            .is_some_and(|by| by.contains(&parent_id)),
        "{child:#}"
    );
    wait_until("the child's process to be gone", WAIT, || {
        !common::process_with(&marker)
    });
}
