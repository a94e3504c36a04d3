//! `sluice runs diff` and `sluice runs evidence` through the CLI, with
//! snapshots of their text output.

mod common;

use common::Project;
use serde_json::Value;

const PIPELINE: &str = r#"
variables:
  mode: good
  token: {default: "tok-5ecret-99", secret: true}
blocks:
  prepare:
    run: echo "rows=3" >> "$SLUICE_OUTPUT"
  check:
    needs: [prepare]
    run: |
      echo "checking in mode ${{ vars.mode }} with $SLUICE_VAR_TOKEN"
      if [ "${{ vars.mode }}" = bad ] && [ ! -e "$TEST_DIR/gate" ]; then
        echo "disk full on attempt $SLUICE_ATTEMPT" >&2
        exit 3
      fi
      echo "state=ok" >> "$SLUICE_OUTPUT"
"#;

/// Snapshot settings that hide what changes from one run to the next: ids,
/// digests, times, durations, users and paths.
fn redacted() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.add_filter(r"\b[0-9a-f]{64}\b", "[SHA256]");
    settings.add_filter(
        r"\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b",
        "[ID]",
    );
    settings.add_filter(r"\b[0-9a-f]{12}\b", "[VERSION]");
    settings.add_filter(
        r"\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})?",
        "[TIME]",
    );
    settings.add_filter(r"\b\d+(\.\d+)?(ms|s)\b|\b\d+m\d{2}s\b", "[DURATION]");
    settings.add_filter(r"\b[\w.-]+@[\w.-]+\b", "[ACTOR]");
    settings.add_filter(r"/tmp/\S+", "[PATH]");
    // Two runs' durations differ or not by chance: the marker goes too.
    settings.add_filter(
        r"(?m)^[* ] +duration_ms +\d+ +\d+ *$",
        "?  duration_ms  [MS]  [MS]",
    );
    // Redacted cells change column widths: keep the columns, not the
    // padding between cells.
    settings.add_filter(r"(\S) {2,}", "$1  ");
    settings.add_filter(r"(?m) +$", "");
    settings
}

fn stdout(project: &Project, args: &[&str]) -> String {
    let output = project.sluice(args);
    assert!(
        output.status.success(),
        "sluice {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

#[test]
fn a_diff_puts_the_differences_first() {
    let project = Project::new();
    project.pipeline("load", PIPELINE);
    let (code, bad) = project.run("load", &["-v", "mode=bad"]);
    assert_eq!(code, 1);
    let (code, good) = project.run("load", &[]);
    assert_eq!(code, 0);
    let (bad, good) = (
        bad["id"].as_str().expect("an id").to_owned(),
        good["id"].as_str().expect("an id").to_owned(),
    );

    let diff: Value = serde_json::from_str(&stdout(
        &project,
        &["runs", "diff", &good, &bad, "-o", "json"],
    ))
    .expect("JSON");
    let fields = diff["fields"].as_array().expect("fields");
    let differing: Vec<&str> = fields
        .iter()
        .take_while(|field| field["differs"] == true)
        .filter_map(|field| field["field"].as_str())
        .collect();
    assert!(differing.contains(&"status"), "{differing:?}");
    assert!(differing.contains(&"vars.mode"), "{differing:?}");
    assert!(!differing.contains(&"pipeline_version"), "{differing:?}");
    let token = fields
        .iter()
        .find(|field| field["field"] == "vars.token")
        .expect("the secret is compared");
    assert_eq!(token["a"], "***");
    assert_eq!(diff["blocks"][0]["block"], "check");
    assert_eq!(diff["blocks"][0]["differs"], true);
    assert_eq!(diff["blocks"][0]["a"]["status"], "completed");
    assert_eq!(diff["blocks"][0]["b"]["status"], "failed");
    assert_eq!(diff["blocks"][1]["block"], "prepare");
    assert_eq!(diff["blocks"][1]["differs"], false);

    let table = stdout(&project, &["runs", "diff", &good, &bad]);
    assert!(table.contains("vars.mode"), "{table}");
    assert!(!table.contains("tok-5ecret-99"), "{table}");
    redacted().bind(|| insta::assert_snapshot!("runs_diff", table));
}

#[test]
fn evidence_has_the_failing_log_and_what_resolved_it() {
    let project = Project::new();
    project.pipeline("load", PIPELINE);
    let (code, run) = project.run("load", &["-v", "mode=bad"]);
    assert_eq!(code, 1);
    let id = run["id"].as_str().expect("an id").to_owned();
    project.write("gate", "open");
    let retried = project.sluice(&["runs", "retry", &id]);
    assert_eq!(retried.status.code(), Some(0), "{retried:?}");

    let evidence: Value = serde_json::from_str(&stdout(
        &project,
        &["runs", "evidence", &id, "--format", "json"],
    ))
    .expect("JSON");
    assert_eq!(evidence["resolved_by"], "attempt 2");
    assert_eq!(evidence["attempts"].as_array().map(Vec::len), Some(2));
    let failure = &evidence["failures"][0];
    assert_eq!(failure["block"], "check");
    assert_eq!(failure["attempt"], 1);
    let tail: Vec<&str> = failure["log_tail"]
        .as_array()
        .expect("a log tail")
        .iter()
        .filter_map(|line| line["text"].as_str())
        .collect();
    assert!(tail.contains(&"disk full on attempt 1"), "{tail:?}");
    assert!(
        tail.iter().any(|line| line.contains("with ***")),
        "{tail:?}"
    );

    let markdown = stdout(&project, &["runs", "evidence", &id]);
    assert!(
        markdown.starts_with(&format!("# Run {id} of `load`")),
        "{markdown}"
    );
    assert!(
        markdown.contains("| resolved by | attempt 2 |"),
        "{markdown}"
    );
    assert!(markdown.contains("disk full on attempt 1"), "{markdown}");
    assert!(markdown.contains("| token | *** | default |"), "{markdown}");
    assert!(!markdown.contains("tok-5ecret-99"), "{markdown}");
    redacted().bind(|| insta::assert_snapshot!("runs_evidence", markdown));
}
