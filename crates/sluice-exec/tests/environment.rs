//! What a block sees (DESIGN §6) and what the executor reads back: the
//! `SLUICE_*` variables and files, outputs, the data file and artifacts.

mod common;

use std::collections::BTreeMap;

use common::{Project, run, shell};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use sluice_exec::{DataFormat, Error, TryResult};

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

fn read_json(project: &Project, relative: &str) -> Value {
    serde_json::from_slice(&project.read(relative)).expect("valid JSON")
}

#[tokio::test]
async fn every_sluice_variable_and_file_is_present() {
    let project = Project::new();
    let script = r#"
python3 -c 'import json, os; json.dump(dict(os.environ), open("env.json", "w"))'
cp "$SLUICE_VARIABLES" variables.json
cp "$SLUICE_INPUTS" inputs.json
pwd -P > cwd.txt
if [ -f "$SLUICE_OUTPUT" ] && [ ! -s "$SLUICE_OUTPUT" ]; then echo "output_file=empty" >> "$SLUICE_OUTPUT"; fi
if [ -f "$SLUICE_DATA" ] && [ ! -s "$SLUICE_DATA" ]; then echo "data_file=empty" >> "$SLUICE_OUTPUT"; fi
if [ -d "$SLUICE_ARTIFACTS" ]; then echo "artifacts=directory" >> "$SLUICE_OUTPUT"; fi
"#;
    let mut request = project.request(shell(script));
    request.variables = BTreeMap::from([
        ("window_start".to_owned(), json!("2024-01-01")),
        ("limit".to_owned(), json!(42)),
        ("dry_run".to_owned(), json!(false)),
        ("tables".to_owned(), json!({"a": [1, 2]})),
    ]);
    request.inputs = json!({"extract": {"rows": "10"}});
    request.env = BTreeMap::from([("GREETING".to_owned(), "hello".to_owned())]);

    let finished = run(request.clone()).await;

    assert_eq!(
        finished.outcome.result,
        TryResult::Completed,
        "{finished:?}"
    );
    let env = read_json(&project, "env.json");
    let expected = [
        ("SLUICE_RUN_ID", "run-0001"),
        ("SLUICE_PIPELINE", "etl"),
        ("SLUICE_BLOCK", "load"),
        ("SLUICE_ATTEMPT", "2"),
        ("SLUICE_TRY", "3"),
        ("SLUICE_IDEMPOTENCY_KEY", "run-0001:load"),
        ("SLUICE_VAR_WINDOW_START", "2024-01-01"),
        ("SLUICE_VAR_LIMIT", "42"),
        ("SLUICE_VAR_DRY_RUN", "false"),
        ("SLUICE_VAR_TABLES", r#"{"a":[1,2]}"#),
        ("GREETING", "hello"),
    ];
    for (name, value) in expected {
        assert_eq!(env[name], value, "{name}");
    }
    let home = std::env::var("HOME").expect("HOME is set");
    assert_eq!(
        env["HOME"],
        home.as_str(),
        "the parent environment is inherited"
    );

    let scratch = request
        .scratch_dir
        .canonicalize()
        .expect("scratch directory exists");
    for name in [
        "SLUICE_VARIABLES",
        "SLUICE_INPUTS",
        "SLUICE_OUTPUT",
        "SLUICE_DATA",
        "SLUICE_ARTIFACTS",
    ] {
        let value = env[name].as_str().expect("a path");
        assert!(
            std::path::Path::new(value).starts_with(&scratch),
            "{name}={value} is in the scratch directory"
        );
    }
    assert_eq!(
        read_json(&project, "variables.json"),
        serde_json::to_value(&request.variables).expect("variables")
    );
    assert_eq!(read_json(&project, "inputs.json"), request.inputs);
    let cwd = String::from_utf8(project.read("cwd.txt")).expect("utf-8");
    assert_eq!(
        cwd.trim_end(),
        project
            .path()
            .canonicalize()
            .expect("project")
            .to_str()
            .expect("utf-8")
    );
    assert_eq!(
        finished.outcome.outputs,
        BTreeMap::from([
            ("artifacts".to_owned(), "directory".to_owned()),
            ("data_file".to_owned(), "empty".to_owned()),
            ("output_file".to_owned(), "empty".to_owned()),
        ])
    );
    assert_eq!(finished.outcome.data, None);
    assert_eq!(finished.outcome.artifacts, []);
}

#[tokio::test]
async fn a_hostile_variable_is_passed_byte_exact_and_never_run() {
    let project = Project::new();
    let hostile = "$(touch pwned); ' \" \\ `touch pwned2` ${HOME}\nnext line";
    let mut request = project.request(shell(
        r#"printf '%s' "$SLUICE_VAR_EVIL" > evil.txt
cp "$SLUICE_VARIABLES" variables.json"#,
    ));
    request.variables = BTreeMap::from([("evil".to_owned(), json!(hostile))]);

    let finished = run(request).await;

    assert_eq!(
        finished.outcome.result,
        TryResult::Completed,
        "{finished:?}"
    );
    assert_eq!(project.read("evil.txt"), hostile.as_bytes());
    assert_eq!(
        read_json(&project, "variables.json"),
        json!({ "evil": hostile })
    );
    assert!(!project.file("pwned").exists());
    assert!(!project.file("pwned2").exists());
}

#[tokio::test]
async fn outputs_are_parsed_last_value_wins() {
    let project = Project::new();
    let script = r#"
{
  echo "rows=10"
  echo ""
  echo "a line without an equals sign"
  echo "url=https://example.com/?a=b"
  echo "rows=12"
  echo "  spaced  = kept as written "
} >> "$SLUICE_OUTPUT"
"#;

    let finished = run(project.request(shell(script))).await;

    assert_eq!(
        finished.outcome.outputs,
        BTreeMap::from([
            ("rows".to_owned(), "12".to_owned()),
            ("spaced".to_owned(), " kept as written ".to_owned()),
            ("url".to_owned(), "https://example.com/?a=b".to_owned()),
        ])
    );
}

#[tokio::test]
async fn a_csv_data_file_is_detected() {
    let project = Project::new();
    let finished =
        run(project.request(shell(r#"printf 'id,name\n1,ada\n' > "$SLUICE_DATA""#))).await;

    let data = finished.outcome.data.expect("data");
    assert_eq!(data.format, DataFormat::Csv);
    assert_eq!(data.size, 14);
    assert_eq!(
        std::fs::read(&data.path).expect("data file"),
        b"id,name\n1,ada\n"
    );
}

#[tokio::test]
async fn a_json_lines_data_file_is_detected() {
    let project = Project::new();
    let script = r#"printf '\n  {"id": 1}\n{"id": 2}\n' > "$SLUICE_DATA""#;

    let finished = run(project.request(shell(script))).await;

    let data = finished.outcome.data.expect("data");
    assert_eq!(data.format, DataFormat::JsonLines);
    assert_eq!(data.size, 23);
    assert_eq!(serde_json::to_value(data.format).expect("json"), "jsonl");
}

#[tokio::test]
async fn a_blank_data_file_is_no_data() {
    let project = Project::new();
    let finished = run(project.request(shell(r#"printf '\n  \n' > "$SLUICE_DATA""#))).await;

    assert_eq!(finished.outcome.data, None);
}

#[tokio::test]
async fn artifacts_come_from_the_directory_and_from_globs() {
    let project = Project::new();
    project.write("out/old.txt", "not matched");
    let script = r#"
mkdir -p "$SLUICE_ARTIFACTS/nested/deep" out
printf 'hello report' > "$SLUICE_ARTIFACTS/report.txt"
printf '\000\001\002\377' > "$SLUICE_ARTIFACTS/nested/deep/blob.bin"
ln -s /etc/hostname "$SLUICE_ARTIFACTS/link"
printf 'a,b\n1,2\n' > out/summary.csv
"#;
    let mut request = project.request(shell(script));
    request.artifact_globs = vec!["out/*.csv".to_owned(), "missing/**/*.json".to_owned()];

    let finished = run(request).await;

    assert_eq!(
        finished.outcome.result,
        TryResult::Completed,
        "{finished:?}"
    );
    let expected: [(&str, &[u8]); 3] = [
        ("nested/deep/blob.bin", b"\x00\x01\x02\xff"),
        ("out/summary.csv", b"a,b\n1,2\n"),
        ("report.txt", b"hello report"),
    ];
    let artifacts = &finished.outcome.artifacts;
    assert_eq!(
        artifacts
            .iter()
            .map(|a| a.name.as_str())
            .collect::<Vec<_>>(),
        expected.map(|(name, _)| name)
    );
    for (artifact, (_, content)) in artifacts.iter().zip(expected) {
        assert_eq!(artifact.size, content.len() as u64, "{}", artifact.name);
        assert_eq!(artifact.sha256, sha256_hex(content), "{}", artifact.name);
        assert_eq!(std::fs::read(&artifact.path).expect("artifact"), content);
    }
}

#[tokio::test]
async fn artifacts_are_collected_from_a_failed_try_too() {
    let project = Project::new();
    let script = r#"printf 'partial' > "$SLUICE_ARTIFACTS/partial.log"; exit 4"#;

    let finished = run(project.request(shell(script))).await;

    assert_eq!(finished.outcome.result, TryResult::Failed);
    assert_eq!(finished.outcome.artifacts.len(), 1);
    assert_eq!(finished.outcome.artifacts[0].sha256, sha256_hex(b"partial"));
}

#[tokio::test]
async fn a_glob_leaving_the_project_is_refused_before_running() {
    let project = Project::new();
    for glob in ["../*.txt", "/etc/*"] {
        let mut request = project.request(shell("touch ran"));
        request.artifact_globs = vec![glob.to_owned()];
        let (sender, _receiver) = tokio::sync::mpsc::channel(1);

        let error = sluice_exec::run_try(request, sender, Default::default())
            .await
            .expect_err("refused");

        assert!(matches!(error, Error::GlobOutsideProject { .. }), "{error}");
        assert!(!project.file("ran").exists());
    }
}

#[tokio::test]
async fn an_invalid_glob_is_refused() {
    let project = Project::new();
    let mut request = project.request(shell("true"));
    request.artifact_globs = vec!["out/[".to_owned()];
    let (sender, _receiver) = tokio::sync::mpsc::channel(1);

    let error = sluice_exec::run_try(request, sender, Default::default())
        .await
        .expect_err("refused");

    assert_eq!(error.to_string(), "artifact glob `out/[` is invalid");
}
