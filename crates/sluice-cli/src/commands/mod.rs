//! The commands of `sluice`, one function each.

pub mod agent;
pub mod backfill;
pub mod diagnose;
pub mod gc;
pub mod logs;
pub mod queue;
pub mod remote;
pub mod run;
pub mod runs;
pub mod server;
pub mod triggers;

use std::path::PathBuf;

use sluice_core::spec;

use crate::args::{DataFormatArg, ProjectArgs, ServerArgs};
use crate::backend::Backend;
use crate::{CommandResult, Failure, context, output, render};

/// The files `sluice init` writes, taken from the example project.
const INIT_FILES: &[(&str, &str)] = &[
    (
        "pipelines/etl.yaml",
        include_str!("../../../../examples/demo/pipelines/etl.yaml"),
    ),
    (
        "scripts/load.py",
        include_str!("../../../../examples/demo/scripts/load.py"),
    ),
    (".gitignore", ".sluice/\n"),
];

pub fn init(dir: Option<PathBuf>) -> CommandResult {
    let dir = dir.unwrap_or_else(|| PathBuf::from("."));
    let existing: Vec<&str> = INIT_FILES
        .iter()
        .map(|(path, _)| *path)
        .filter(|path| dir.join(path).exists())
        .collect();
    if !existing.is_empty() {
        return Err(Failure::bad_input(
            format!(
                "{} already holds {}; nothing was written",
                dir.display(),
                existing.join(", ")
            ),
            Some("pick an empty directory: sluice init NEW_DIR".to_owned()),
        ));
    }
    for (path, contents) in INIT_FILES {
        let target = dir.join(path);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent).map_err(|error| Failure {
                code: 1,
                message: format!("cannot create {}: {error}", parent.display()),
                hint: None,
            })?;
        }
        std::fs::write(&target, contents).map_err(|error| Failure {
            code: 1,
            message: format!("cannot write {}: {error}", target.display()),
            hint: None,
        })?;
    }
    eprintln!("created a sluice project in {}", dir.display());
    eprintln!(
        "next: cd {} && sluice run etl && sluice runs list",
        dir.display()
    );
    Ok(0)
}

pub fn validate(project: &ProjectArgs) -> CommandResult {
    // Invalid pipeline files make `validate` exit 1 (the check failed), not
    // 2 (the command was misused).
    let loaded =
        context::load_project(&project.dir()).map_err(|failure| Failure { code: 1, ..failure })?;
    eprintln!(
        "{} pipeline(s) valid: {}",
        loaded.pipelines.len(),
        loaded
            .pipelines
            .keys()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(0)
}

pub fn schema() -> CommandResult {
    output::print_json(&spec::json_schema())?;
    Ok(0)
}

pub async fn blocks_output(
    block_run: &str,
    sample: Option<usize>,
    format: DataFormatArg,
    server: &ServerArgs,
    project: &ProjectArgs,
) -> CommandResult {
    let backend = Backend::open(server, project).await?;
    let result = backend.block_outputs(block_run, sample).await?;
    match format {
        DataFormatArg::Json => output::print_json(&result)?,
        DataFormatArg::Csv => match &result.data {
            Some(table) => print!("{}", render::table_csv(table)?),
            None => {
                for (key, value) in &result.outputs {
                    eprintln!("{key}={value}");
                }
                return Err(Failure::bad_input(
                    format!("block run {block_run} wrote no data output"),
                    Some(
                        "its outputs are printed above; pass --format json to get them as JSON"
                            .to_owned(),
                    ),
                ));
            }
        },
    }
    Ok(0)
}
