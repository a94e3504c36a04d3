//! `sluice run` end to end on the embedded SQLite: the success path, failure
//! propagation, conditions, cleanup blocks, retries with backoff, outputs
//! passed downstream, data outputs, artifacts, secrets and quoting.

mod common;

use common::{Project, block, status_of};
use sha2::{Digest, Sha256};

#[test]
fn the_example_project_runs_to_completion() {
    let project = Project::new();
    let init = std::process::Command::new(common::BIN)
        .args(["init"])
        .arg(project.path().join("demo"))
        .output()
        .unwrap();
    assert!(
        init.status.success(),
        "{}",
        String::from_utf8_lossy(&init.stderr)
    );
    // Run the example where `init` put it.
    let output = std::process::Command::new(common::BIN)
        .args(["run", "etl", "--output", "json", "--project"])
        .arg(project.path().join("demo"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "stderr: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let run: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(run["status"], "completed");
}

#[test]
fn success_path_records_every_block_and_passes_outputs_downstream() {
    let project = Project::new();
    project.pipeline(
        "chain",
        r#"
variables:
  name: world
blocks:
  first:
    run: echo "greeting=hello ${{ vars.name }}" >> "$SLUICE_OUTPUT"
  second:
    needs: [first]
    run: |
      echo "got ${{ blocks.first.outputs.greeting }}"
      python3 -c 'import json,os; print("inputs", json.load(open(os.environ["SLUICE_INPUTS"])))'
      echo "length=${#SLUICE_RUN_ID}" >> "$SLUICE_OUTPUT"
"#,
    );
    let (code, run) = project.run("chain", &[]);
    assert_eq!(code, 0);
    assert_eq!(run["status"], "completed");
    let run_id = run["id"].as_str().unwrap();
    let details = project.show(run_id);
    assert_eq!(status_of(&details, "first"), "completed");
    assert_eq!(status_of(&details, "second"), "completed");
    assert_eq!(
        block(&details, None, "first")["outputs"]["greeting"],
        "hello world"
    );
    assert!(details["run"]["started_at"].is_string());
    assert!(details["run"]["finished_at"].is_string());
    assert_eq!(details["run"]["invoked_by"]["kind"], "manual");
    let logs = project.logs(run_id, &["--block", "second"]);
    assert!(logs.contains("got hello world"), "{logs}");
    assert!(
        logs.contains("inputs {'first': {'greeting': 'hello world'}}"),
        "{logs}"
    );
    // The human view names every block.
    let shown = project.sluice(&["runs", "show", run_id]);
    let text = String::from_utf8_lossy(&shown.stdout);
    assert!(text.contains("first") && text.contains("second") && text.contains("completed"));
}

#[test]
fn a_failure_gives_upstream_failed_downstream_and_runs_the_cleanup_block() {
    let project = Project::new();
    project.pipeline(
        "broken",
        r#"
blocks:
  extract:
    run: echo "boom" >&2; exit 3
  transform:
    needs: [extract]
    run: echo never
  load:
    needs: [transform]
    run: echo never
  cleanup:
    needs: [load]
    if: failure()
    run: echo "cleaning up"
  notify_success:
    needs: [load]
    if: success()
    run: echo "all good"
"#,
    );
    let (code, run) = project.run("broken", &[]);
    assert_eq!(code, 1);
    assert_eq!(run["status"], "failed");
    assert!(
        run["error"].as_str().unwrap().contains("extract"),
        "{run:#}"
    );
    let details = project.show(run["id"].as_str().unwrap());
    let extract = block(&details, None, "extract");
    assert_eq!(extract["status"], "failed");
    assert_eq!(extract["exit_code"], 3);
    assert_eq!(status_of(&details, "transform"), "upstream_failed");
    assert_eq!(status_of(&details, "load"), "upstream_failed");
    assert_eq!(status_of(&details, "cleanup"), "completed");
    assert_eq!(status_of(&details, "notify_success"), "condition_failed");
    let logs = project.logs(run["id"].as_str().unwrap(), &["--block", "cleanup"]);
    assert!(logs.contains("cleaning up"));
}

#[test]
fn a_false_condition_gives_condition_failed() {
    let project = Project::new();
    project.pipeline(
        "cond",
        r#"
variables:
  env: dev
blocks:
  deploy:
    if: vars.env == 'prod'
    run: echo deploying
  after_deploy:
    needs: [deploy]
    run: echo after
  always_runs:
    run: echo "env is ${{ vars.env }}"
"#,
    );
    let (code, run) = project.run("cond", &[]);
    assert_eq!(code, 0, "{run:#}");
    let details = project.show(run["id"].as_str().unwrap());
    assert_eq!(status_of(&details, "deploy"), "condition_failed");
    assert_eq!(status_of(&details, "after_deploy"), "condition_failed");
    assert_eq!(status_of(&details, "always_runs"), "completed");

    let (code, run) = project.run("cond", &["-v", "env=prod"]);
    assert_eq!(code, 0);
    let details = project.show(run["id"].as_str().unwrap());
    assert_eq!(status_of(&details, "deploy"), "completed");
    assert_eq!(status_of(&details, "after_deploy"), "completed");
    assert_eq!(details["run"]["variables"]["env"]["layer"], "run");
}

#[test]
fn retries_with_backoff_keep_every_try_and_its_log() {
    let project = Project::new();
    project.pipeline(
        "flaky",
        r#"
blocks:
  flaky:
    retries: {count: 3, delay: 200ms, backoff: exponential}
    run: |
      echo "this is try $SLUICE_TRY"
      test "$SLUICE_TRY" -ge 3
"#,
    );
    let (code, run) = project.run("flaky", &[]);
    assert_eq!(code, 0, "{run:#}");
    let run_id = run["id"].as_str().unwrap();
    let details = project.show(run_id);
    let flaky = block(&details, None, "flaky");
    assert_eq!(flaky["status"], "completed");
    let tries = flaky["tries"].as_array().unwrap();
    assert_eq!(tries.len(), 3);
    assert_eq!(tries[0]["status"], "failed");
    assert_eq!(tries[1]["status"], "failed");
    assert_eq!(tries[2]["status"], "completed");
    // Backoff: try 2 waits 200ms after try 1, try 3 waits 400ms after try 2.
    let at = |index: usize, field: &str| -> jiff::Timestamp {
        tries[index][field].as_str().unwrap().parse().unwrap()
    };
    let first_gap = at(1, "started_at").duration_since(at(0, "finished_at"));
    let second_gap = at(2, "started_at").duration_since(at(1, "finished_at"));
    assert!(first_gap.as_millis() >= 200, "{first_gap:?}");
    assert!(second_gap.as_millis() >= 400, "{second_gap:?}");
    for number in 1..=3 {
        let log = project.logs(run_id, &["--block", "flaky", "--try", &number.to_string()]);
        assert_eq!(log.trim(), format!("this is try {number}"));
    }
}

#[test]
fn a_secret_is_masked_in_logs_outputs_and_run_details() {
    let project = Project::new();
    project.pipeline(
        "secretive",
        r#"
variables:
  token:
    default: hunter2-canary-value
    secret: true
  plain: visible
blocks:
  leak:
    run: |
      echo "raw $SLUICE_VAR_TOKEN"
      echo "base64 $(printf %s "$SLUICE_VAR_TOKEN" | base64)"
      echo "quoted ${{ vars.token }}"
      echo "echo=$SLUICE_VAR_TOKEN" >> "$SLUICE_OUTPUT"
      echo "plain ${{ vars.plain }}"
"#,
    );
    let (code, run) = project.run("secretive", &[]);
    assert_eq!(code, 0, "{run:#}");
    let run_id = run["id"].as_str().unwrap();
    let logs = project.logs(run_id, &[]);
    assert!(logs.contains("raw ***"), "{logs}");
    assert!(logs.contains("base64 ***"), "{logs}");
    assert!(logs.contains("plain visible"), "{logs}");
    let shown = project.sluice(&["runs", "show", run_id]);
    let shown_json = project.sluice(&["runs", "show", run_id, "--output", "json"]);
    let listed = project.sluice(&["runs", "list", "--output", "json"]);
    for text in [
        logs.clone(),
        String::from_utf8_lossy(&shown.stdout).into_owned(),
        String::from_utf8_lossy(&shown_json.stdout).into_owned(),
        String::from_utf8_lossy(&listed.stdout).into_owned(),
        serde_json::to_string(&run).unwrap(),
    ] {
        assert!(
            !text.contains("hunter2-canary-value"),
            "secret leaked: {text}"
        );
        assert!(
            !text.contains("aHVudGVyMi1jYW5hcnktdmFsdWU"),
            "base64 leaked: {text}"
        );
    }
    let details = project.show(run_id);
    assert_eq!(details["run"]["variables"]["token"]["value"], "***");
    assert_eq!(block(&details, None, "leak")["outputs"]["echo"], "***");
}

#[test]
fn a_hostile_variable_reaches_the_block_byte_exact_and_executes_nothing() {
    let project = Project::new();
    project.pipeline(
        "quoting",
        r#"
variables:
  evil: safe
blocks:
  show:
    run: |
      cd "$TEST_DIR"
      printf '%s' ${{ vars.evil }} > via_template.txt
      printf '%s' "$SLUICE_VAR_EVIL" > via_env.txt
"#,
    );
    let evil = r#"$(touch pwned); ' " \"#;
    let (code, run) = project.run("quoting", &["-v", &format!("evil={evil}")]);
    assert_eq!(code, 0, "{run:#}");
    assert!(
        !project.path().join("pwned").exists(),
        "the variable ran as code"
    );
    let via_template = std::fs::read_to_string(project.path().join("via_template.txt")).unwrap();
    let via_env = std::fs::read_to_string(project.path().join("via_env.txt")).unwrap();
    assert_eq!(via_template, evil);
    assert_eq!(via_env, evil);
}

#[test]
fn data_output_is_sampled_and_exported_and_artifacts_carry_their_sha256() {
    let project = Project::new();
    project.write(
        "scripts/produce.py",
        r#"
import os
with open(os.environ["SLUICE_DATA"], "w") as f:
    f.write("id,name\n")
    for i in range(10):
        f.write(f"{i},row {i}\n")
with open(os.path.join(os.environ["SLUICE_ARTIFACTS"], "report.txt"), "w") as f:
    f.write("a report\n")
os.makedirs("out", exist_ok=True)
with open("out/extra.bin", "wb") as f:
    f.write(bytes(range(256)) * 10)
"#,
    );
    project.pipeline(
        "data",
        r#"
blocks:
  produce:
    script: scripts/produce.py
    artifacts: ["out/*.bin"]
"#,
    );
    let (code, run) = project.run("data", &[]);
    assert_eq!(code, 0, "{run:#}");
    let details = project.show(run["id"].as_str().unwrap());
    let produce = block(&details, None, "produce");
    let block_run_id = produce["id"].as_str().unwrap();

    let sample = project.sluice(&["blocks", "output", block_run_id, "--sample", "3"]);
    assert!(
        sample.status.success(),
        "{}",
        String::from_utf8_lossy(&sample.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&sample.stdout),
        "id,name\n0,row 0\n1,row 1\n2,row 2\n"
    );
    let all = project.sluice(&["blocks", "output", block_run_id, "--format", "json"]);
    let all: serde_json::Value = serde_json::from_slice(&all.stdout).unwrap();
    assert_eq!(all["data"]["rows"].as_array().unwrap().len(), 10);
    assert_eq!(all["data"]["columns"], serde_json::json!(["id", "name"]));

    let artifacts = details["artifacts"].as_array().unwrap();
    let expected = |bytes: &[u8]| {
        Sha256::digest(bytes)
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect::<String>()
    };
    let report = artifacts
        .iter()
        .find(|a| a["name"] == "report.txt")
        .unwrap();
    assert_eq!(report["sha256"], expected(b"a report\n"));
    assert_eq!(report["size"], 9);
    let extra_bytes: Vec<u8> = (0..10).flat_map(|_| 0u8..=255).collect();
    let extra = artifacts
        .iter()
        .find(|a| a["name"].as_str().unwrap().ends_with("extra.bin"))
        .unwrap_or_else(|| panic!("no extra.bin in {artifacts:#?}"));
    assert_eq!(extra["sha256"], expected(&extra_bytes));
}

#[test]
fn a_missing_required_variable_refuses_the_run_naming_every_one() {
    let project = Project::new();
    project.pipeline(
        "needs_vars",
        r#"
variables:
  day: {required: true}
  region: {required: true}
  optional: x
blocks:
  a:
    run: echo ${{ vars.day }} ${{ vars.region }}
"#,
    );
    let output = project.sluice(&["run", "needs_vars"]);
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("day") && stderr.contains("region"),
        "{stderr}"
    );
    assert!(project.list(&[]).is_empty(), "no run may be created");
}
