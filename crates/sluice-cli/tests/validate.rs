//! `sluice validate` and `sluice schema` through the CLI: every error of
//! every file with `file:line:col` and a hint, exit code 1.

mod common;

use common::Project;

#[test]
fn validate_reports_every_error_of_every_file_with_positions() {
    let project = Project::new();
    project.pipeline(
        "cyclic",
        "blocks:\n  a:\n    needs: [b]\n    run: echo a\n  b:\n    needs: [a]\n    run: echo b\n",
    );
    project.pipeline("typo", "blocks:\n  a:\n    run: echo a\n    neds: [b]\n");
    project.pipeline(
        "limits",
        "concurrency: 0\ntimeout: ten minutes\nblocks:\n  a:\n    run: echo ${{ vars.missing }}\n  b:\n    needs: [nope]\n    run: echo b\n",
    );
    project.pipeline("good", "blocks:\n  a:\n    run: echo a\n");
    let output = project.sluice(&["validate"]);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for expected in [
        "pipelines/cyclic.yaml:",
        "a -> b -> a",
        "pipelines/typo.yaml:4:5",
        "neds",
        "pipelines/limits.yaml:1:",
        "pipelines/limits.yaml:2:",
        "missing",
        "nope",
        "hint:",
    ] {
        assert!(
            stderr.contains(expected),
            "missing `{expected}` in:\n{stderr}"
        );
    }
    // Every error line carries file:line:col.
    for line in stderr.lines().filter(|line| line.starts_with("pipelines/")) {
        let mut parts = line.splitn(4, ':');
        let _file = parts.next().unwrap();
        let line_number: usize = parts.next().unwrap().parse().expect("line number");
        let column: usize = parts.next().unwrap().parse().expect("column");
        assert!(line_number >= 1 && column >= 1, "{line}");
    }
}

#[test]
fn validate_accepts_the_example_project() {
    let project = Project::new();
    project.write(
        "pipelines/etl.yaml",
        include_str!("../../../examples/demo/pipelines/etl.yaml"),
    );
    let output = project.sluice(&["validate"]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn schema_is_json_describing_blocks() {
    let output = std::process::Command::new(common::BIN)
        .arg("schema")
        .output()
        .unwrap();
    assert!(output.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert!(schema["properties"]["blocks"].is_object(), "{schema:#}");
}
