//! Everything done before the block starts: the scratch files, the
//! environment, the program to execute and the checks that refuse a try
//! before spawning it.

use std::ffi::OsString;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use crate::error::Error;
use crate::types::{Command, TryRequest};

/// The files and directory of one try, all absolute.
#[derive(Debug, Clone)]
pub(crate) struct ScratchFiles {
    pub dir: PathBuf,
    pub variables: PathBuf,
    pub inputs: PathBuf,
    pub output: PathBuf,
    pub data: PathBuf,
    pub artifacts: PathBuf,
}

/// Makes the project directory absolute, so that the block's paths do not
/// depend on the executor's working directory.
pub(crate) async fn project_dir(path: &Path) -> Result<PathBuf, Error> {
    tokio::fs::canonicalize(path)
        .await
        .map_err(|source| Error::ProjectDir {
            path: path.to_owned(),
            source,
        })
}

/// Creates the scratch directory and the files the block is pointed at.
pub(crate) async fn scratch_files(request: &TryRequest) -> Result<ScratchFiles, Error> {
    let scratch_error = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Scratch { path, source }
    };
    tokio::fs::create_dir_all(&request.scratch_dir)
        .await
        .map_err(scratch_error(&request.scratch_dir))?;
    let dir = tokio::fs::canonicalize(&request.scratch_dir)
        .await
        .map_err(scratch_error(&request.scratch_dir))?;
    let files = ScratchFiles {
        variables: dir.join("variables.json"),
        inputs: dir.join("inputs.json"),
        output: dir.join("output"),
        data: dir.join("data"),
        artifacts: dir.join("artifacts"),
        dir,
    };
    let variables = to_json(&request.variables);
    let inputs = to_json(&request.inputs);
    for (path, content) in [
        (&files.variables, variables.as_slice()),
        (&files.inputs, inputs.as_slice()),
        (&files.output, &[]),
        (&files.data, &[]),
    ] {
        tokio::fs::write(path, content)
            .await
            .map_err(scratch_error(path))?;
    }
    tokio::fs::create_dir_all(&files.artifacts)
        .await
        .map_err(scratch_error(&files.artifacts))?;
    Ok(files)
}

fn to_json(value: &impl serde::Serialize) -> Vec<u8> {
    // Maps with string keys and JSON values always serialize.
    let mut json = serde_json::to_vec_pretty(value).unwrap_or_default();
    json.push(b'\n');
    json
}

/// The environment added to the inherited one, in the order it is applied:
/// the `SLUICE_*` contract first, the block's own `env:` last.
pub(crate) fn environment(request: &TryRequest, files: &ScratchFiles) -> Vec<(String, OsString)> {
    let context = &request.context;
    let mut env: Vec<(String, OsString)> = vec![
        ("SLUICE_RUN_ID".into(), context.run_id.clone().into()),
        ("SLUICE_PIPELINE".into(), context.pipeline.clone().into()),
        ("SLUICE_BLOCK".into(), context.block.clone().into()),
        ("SLUICE_ATTEMPT".into(), context.attempt.to_string().into()),
        ("SLUICE_TRY".into(), context.try_number.to_string().into()),
        (
            "SLUICE_IDEMPOTENCY_KEY".into(),
            context.idempotency_key.clone().into(),
        ),
        ("SLUICE_VARIABLES".into(), files.variables.clone().into()),
        ("SLUICE_INPUTS".into(), files.inputs.clone().into()),
        ("SLUICE_OUTPUT".into(), files.output.clone().into()),
        ("SLUICE_DATA".into(), files.data.clone().into()),
        ("SLUICE_ARTIFACTS".into(), files.artifacts.clone().into()),
    ];
    for (name, value) in &request.variables {
        let value = match value {
            serde_json::Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        env.push((variable_env_name(name), value.into()));
    }
    for (name, value) in &request.env {
        env.push((name.clone(), value.clone().into()));
    }
    env
}

/// `SLUICE_VAR_<NAME>`: uppercased, and any character a shell could not
/// name (`-`, `.`, `=`, …) becomes `_`.
fn variable_env_name(name: &str) -> String {
    let name: String = name
        .to_uppercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    format!("SLUICE_VAR_{name}")
}

/// The program to execute and its arguments.
#[derive(Debug)]
pub(crate) struct Program {
    pub program: OsString,
    pub args: Vec<OsString>,
}

impl Program {
    /// How the program is named in messages.
    pub(crate) fn name(&self) -> String {
        self.program.to_string_lossy().into_owned()
    }
}

/// Picks the program for a command; `Err` is the message of a try refused
/// before it starts.
pub(crate) fn program(command: &Command, project_dir: &Path) -> Result<Program, String> {
    match command {
        Command::Shell { script } => Ok(Program {
            program: "bash".into(),
            args: ["--noprofile", "--norc", "-eo", "pipefail", "-c"]
                .into_iter()
                .map(OsString::from)
                .chain([OsString::from(script)])
                .collect(),
        }),
        Command::Script { path } => script_program(path, project_dir),
    }
}

fn script_program(path: &Path, project_dir: &Path) -> Result<Program, String> {
    let shown = path.display();
    let full = project_dir.join(path);
    let metadata = match std::fs::metadata(&full) {
        Ok(metadata) if metadata.is_file() => metadata,
        Ok(_) => return Err(format!("script is not a file: {shown}")),
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            return Err(format!("script not found: {shown}"));
        }
        Err(error) => return Err(format!("cannot read script {shown}: {error}")),
    };
    let interpreter = match path
        .extension()
        .and_then(|extension| extension.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("py") => Some("python3"),
        Some("sh") => Some("bash"),
        Some("js") => Some("node"),
        _ => None,
    };
    match interpreter {
        Some(interpreter) => Ok(Program {
            program: interpreter.into(),
            args: vec![full.into()],
        }),
        None if metadata.permissions().mode() & 0o111 == 0 => Err(format!(
            "script is not executable: {shown} (make it executable with `chmod +x {shown}`, \
             or give it a .py, .sh or .js extension)"
        )),
        None => Ok(Program {
            program: full.into(),
            args: Vec::new(),
        }),
    }
}

/// Checks the declared globs before anything runs, so a bad declaration
/// fails fast instead of after a long block.
pub(crate) fn check_globs(globs: &[String]) -> Result<(), Error> {
    for pattern in globs {
        glob::Pattern::new(pattern).map_err(|source| Error::InvalidGlob {
            pattern: pattern.clone(),
            source,
        })?;
        let path = Path::new(pattern);
        if path.is_absolute() || path.components().any(|c| c == Component::ParentDir) {
            return Err(Error::GlobOutsideProject {
                pattern: pattern.clone(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn env_map(env: &[(String, OsString)]) -> BTreeMap<&str, &OsString> {
        env.iter()
            .map(|(name, value)| (name.as_str(), value))
            .collect()
    }

    #[test]
    fn variable_names_become_shell_names() {
        assert_eq!(variable_env_name("window_start"), "SLUICE_VAR_WINDOW_START");
        assert_eq!(variable_env_name("my-var.x"), "SLUICE_VAR_MY_VAR_X");
    }

    #[test]
    fn block_env_comes_after_the_contract() {
        let files = ScratchFiles {
            dir: "/s".into(),
            variables: "/s/v".into(),
            inputs: "/s/i".into(),
            output: "/s/o".into(),
            data: "/s/d".into(),
            artifacts: "/s/a".into(),
        };
        let request = TryRequest {
            command: Command::Shell {
                script: String::new(),
            },
            project_dir: "/p".into(),
            scratch_dir: "/s".into(),
            context: crate::types::BlockContext {
                run_id: "r".into(),
                pipeline: "p".into(),
                block: "b".into(),
                attempt: 1,
                try_number: 2,
                idempotency_key: "k".into(),
            },
            variables: BTreeMap::from([("n".to_owned(), serde_json::json!(3))]),
            inputs: serde_json::Value::Null,
            env: BTreeMap::from([("SLUICE_BLOCK".to_owned(), "mine".to_owned())]),
            secrets: Vec::new(),
            artifact_globs: Vec::new(),
            timeout: None,
            kill_grace: std::time::Duration::ZERO,
        };
        let env = environment(&request, &files);
        assert_eq!(
            env.last().map(|(name, _)| name.as_str()),
            Some("SLUICE_BLOCK")
        );
        assert_eq!(env_map(&env)["SLUICE_VAR_N"], "3");
    }
}
