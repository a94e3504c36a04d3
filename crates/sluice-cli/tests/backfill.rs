//! `sluice backfill` on the project's database: a dry run prints the
//! windows and creates nothing; a real one runs each window once in this
//! process, and the same range again skips every window;
//! `sluice backfills list|show` report it.

mod common;

use common::Project;
use serde_json::Value;

const ETL: &str = r#"
blocks:
  only:
    run: 'test -n "$SLUICE_WINDOW_END"'
triggers:
  - name: daily
    schedule: "0 2 * * *"
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

fn states(detail: &Value) -> Vec<String> {
    detail["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|window| {
            let state = window["state"].as_str().unwrap();
            match window["run_status"].as_str() {
                Some(status) => format!("{state}:{status}"),
                None => state.to_owned(),
            }
        })
        .collect()
}

#[test]
fn a_backfill_is_planned_run_and_not_repeated() {
    let project = Project::new();
    project.pipeline("etl", ETL);
    let range = ["--from", "2026-03-01", "--to", "2026-03-03T02:00:00Z"];
    let with = |extra: &[&'static str]| -> Vec<&str> {
        let mut args = vec!["backfill", "etl"];
        args.extend_from_slice(&range);
        args.extend_from_slice(extra);
        args
    };

    let plan = json(&project, &with(&["--dry-run", "-o", "json"]));
    assert!(plan["backfill"].is_null());
    assert_eq!(states(&plan), ["pending", "pending", "pending"]);
    assert_eq!(plan["windows"][0]["window_end"], "2026-03-01T02:00:00Z");
    let table = project.sluice(&with(&["--dry-run"]));
    assert!(table.status.success());
    assert_eq!(
        String::from_utf8_lossy(&table.stdout)
            .matches("would run")
            .count(),
        3
    );
    let listed = json(&project, &["backfills", "list", "-o", "json"]);
    assert_eq!(listed["backfills"], Value::Array(Vec::new()));

    let done = json(&project, &with(&["--max-concurrent", "2", "-o", "json"]));
    assert_eq!(done["backfill"]["status"], "completed");
    assert_eq!(
        states(&done),
        ["run:completed", "run:completed", "run:completed"]
    );

    let again = project.sluice(&with(&[]));
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    let lines = String::from_utf8_lossy(&again.stdout).into_owned();
    assert_eq!(lines.matches("skipped").count(), 3, "{lines}");

    let listed = json(&project, &["backfills", "list", "-o", "json"]);
    let backfills = listed["backfills"].as_array().unwrap();
    assert_eq!(backfills.len(), 2);
    let id = backfills[1]["id"].as_str().unwrap();
    let shown = json(&project, &["backfills", "show", id, "-o", "json"]);
    assert_eq!(states(&shown).len(), 3);
    let runs = project.list(&["--trigger", "backfill"]);
    assert_eq!(runs.len(), 3);
}
