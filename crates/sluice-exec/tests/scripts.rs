//! Commands and their results: shell blocks, scripts picked by extension,
//! scripts refused before they start, exit codes and signals.

mod common;

use common::{Project, run, script, shell};
use sluice_exec::{Stream, TryResult};

#[tokio::test]
async fn a_python_script_runs_with_python3() {
    let project = Project::new();
    project.write(
        "scripts/hello.py",
        "import os, sys\n\
         print('hello from', os.environ['SLUICE_BLOCK'])\n\
         open(os.environ['SLUICE_OUTPUT'], 'a').write(f'python={sys.version_info.major}\\n')\n",
    );

    let finished = run(project.request(script("scripts/hello.py"))).await;

    assert_eq!(
        finished.outcome.result,
        TryResult::Completed,
        "{finished:?}"
    );
    assert_eq!(finished.texts(Stream::Stdout), ["hello from load"]);
    assert_eq!(finished.outcome.outputs["python"], "3");
}

#[tokio::test]
async fn a_shell_script_runs_with_bash() {
    let project = Project::new();
    // Not executable, and bash-only syntax: it must be run by bash.
    project.write(
        "scripts/hello.sh",
        "words=(hello from \"$SLUICE_PIPELINE\")\necho \"${words[@]}\"\n",
    );

    let finished = run(project.request(script("scripts/hello.sh"))).await;

    assert_eq!(
        finished.outcome.result,
        TryResult::Completed,
        "{finished:?}"
    );
    assert_eq!(finished.texts(Stream::Stdout), ["hello from etl"]);
}

#[tokio::test]
async fn a_javascript_script_runs_with_node() {
    let project = Project::new();
    project.write(
        "scripts/hello.js",
        "const fs = require('fs');\n\
         console.error('node says hi');\n\
         fs.appendFileSync(process.env.SLUICE_OUTPUT, `try=${process.env.SLUICE_TRY}\\n`);\n",
    );

    let finished = run(project.request(script("scripts/hello.js"))).await;

    assert_eq!(
        finished.outcome.result,
        TryResult::Completed,
        "{finished:?}"
    );
    assert_eq!(finished.texts(Stream::Stderr), ["node says hi"]);
    assert_eq!(finished.outcome.outputs["try"], "3");
}

#[tokio::test]
async fn an_executable_without_a_known_extension_runs_directly() {
    let project = Project::new();
    project.write_executable("bin/tool", "#!/bin/sh\necho \"tool in $(pwd -P)\"\n");
    let cwd = project.path().canonicalize().expect("project");

    let finished = run(project.request(script("bin/tool"))).await;

    assert_eq!(
        finished.outcome.result,
        TryResult::Completed,
        "{finished:?}"
    );
    assert_eq!(
        finished.texts(Stream::Stdout),
        [format!("tool in {}", cwd.display())]
    );
}

#[tokio::test]
async fn a_missing_script_fails_before_starting() {
    let project = Project::new();

    let finished = run(project.request(script("scripts/missing.py"))).await;

    assert_eq!(finished.outcome.result, TryResult::Failed);
    assert_eq!(
        finished.outcome.error.as_deref(),
        Some("script not found: scripts/missing.py")
    );
    assert_eq!(finished.outcome.exit_code, None);
    assert!(finished.chunks.is_empty());
}

#[tokio::test]
async fn a_script_that_is_not_executable_fails_before_starting() {
    let project = Project::new();
    project.write("bin/tool", "#!/bin/sh\ntouch ran\n");

    let finished = run(project.request(script("bin/tool"))).await;

    assert_eq!(finished.outcome.result, TryResult::Failed);
    let error = finished.outcome.error.expect("error");
    assert!(
        error.starts_with("script is not executable: bin/tool"),
        "{error}"
    );
    assert!(!project.file("ran").exists());
}

#[tokio::test]
async fn exit_zero_completes() {
    let project = Project::new();

    let finished = run(project.request(shell("true"))).await;

    assert_eq!(finished.outcome.result, TryResult::Completed);
    assert_eq!(finished.outcome.exit_code, Some(0));
    assert_eq!(finished.outcome.signal, None);
    assert_eq!(finished.outcome.error, None);
}

#[tokio::test]
async fn a_non_zero_exit_fails_with_its_code() {
    let project = Project::new();

    let finished = run(project.request(shell("echo before; exit 3"))).await;

    assert_eq!(finished.outcome.result, TryResult::Failed);
    assert_eq!(finished.outcome.exit_code, Some(3));
    assert_eq!(finished.outcome.error.as_deref(), Some("exit code 3"));
    assert_eq!(finished.texts(Stream::Stdout), ["before"]);
}

#[tokio::test]
async fn shell_blocks_stop_at_the_first_failure_including_in_pipes() {
    let project = Project::new();

    let finished = run(project.request(shell("false | true\ntouch ran"))).await;

    assert_eq!(finished.outcome.result, TryResult::Failed);
    assert_eq!(finished.outcome.exit_code, Some(1));
    assert!(!project.file("ran").exists());
}

#[tokio::test]
async fn death_by_a_signal_fails_with_the_signal() {
    let project = Project::new();

    let finished = run(project.request(shell("kill -KILL $$"))).await;

    assert_eq!(finished.outcome.result, TryResult::Failed);
    assert_eq!(finished.outcome.exit_code, None);
    assert_eq!(finished.outcome.signal, Some(9));
    assert_eq!(
        finished.outcome.error.as_deref(),
        Some("killed by signal 9 (SIGKILL)")
    );
}

#[tokio::test]
async fn a_missing_interpreter_fails_with_a_clear_error() {
    let project = Project::new();
    project.write("hello.py", "print('hi')\n");
    let mut request = project.request(script("hello.py"));
    request.env.insert("PATH".into(), "/nonexistent".into());

    let finished = run(request).await;

    assert_eq!(finished.outcome.result, TryResult::Failed);
    let error = finished.outcome.error.expect("error");
    assert!(error.starts_with("cannot start python3: "), "{error}");
}
