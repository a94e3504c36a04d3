//! `sluice gc`: one retention pass on the project's database (see
//! `sluice_engine::operations`), printed as a table or JSON.

use sluice_engine::operations::{RETENTION_ACTOR, RetentionParams};

use crate::args::{GcArgs, OutputFormat};
use crate::commands::server::parse_duration;
use crate::{CommandResult, Failure, context, output};

/// `--retention-days` of `gc` and `up`: zero would delete every run.
pub(crate) fn check_retention_days(days: Option<u32>) -> Result<(), Failure> {
    if days == Some(0) {
        return Err(Failure::bad_input(
            "--retention-days must be at least 1",
            Some("omit it to keep every run of pipelines without `retention:`".to_owned()),
        ));
    }
    Ok(())
}

pub async fn gc(args: GcArgs) -> CommandResult {
    check_retention_days(args.retention_days)?;
    let blob_grace = if args.blob_grace.trim() == "0s" || args.blob_grace.trim() == "0" {
        std::time::Duration::ZERO
    } else {
        parse_duration("--blob-grace", &args.blob_grace)?
    };
    let project = context::load_project(&args.project.dir())?;
    let engine = context::open_on(project, args.database.database.as_deref(), &args.blobs).await?;
    let report = engine
        .apply_retention(&RetentionParams {
            default_days: args.retention_days,
            dry_run: args.dry_run,
            blob_grace,
            actor: RETENTION_ACTOR.to_owned(),
        })
        .await?;
    match args.output {
        OutputFormat::Json => output::print_json(&report)?,
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = report
                .runs
                .iter()
                .map(|run| {
                    vec![
                        run.id.to_string(),
                        run.pipeline.clone(),
                        run.status.to_string(),
                        output::time(Some(run.created_at)),
                    ]
                })
                .collect();
            if !rows.is_empty() {
                print!(
                    "{}",
                    output::table(&["RUN", "PIPELINE", "STATUS", "CREATED"], &rows)
                );
            }
            let verb = if report.dry_run {
                "would delete"
            } else {
                "deleted"
            };
            eprintln!(
                "{verb} {} runs and {} blobs",
                report.runs.len(),
                report.blobs.len()
            );
        }
    }
    Ok(0)
}
