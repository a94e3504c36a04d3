//! `sluice runs diff` and `sluice runs evidence`.

use sluice_proto as proto;

use crate::args::{EvidenceFormat, OutputFormat, ProjectArgs, ServerArgs};
use crate::backend::Backend;
use crate::{CommandResult, output};

fn value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::Null => "-".to_owned(),
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

fn side(side: Option<&proto::BlockSide>) -> (String, String, String) {
    match side {
        None => ("-".to_owned(), "-".to_owned(), "-".to_owned()),
        Some(side) => (
            side.status.clone(),
            side.duration_ms
                .map(|ms| output::human(ms as f64 / 1000.0))
                .unwrap_or_else(|| "-".to_owned()),
            side.outputs
                .iter()
                .map(|(key, value)| format!("{key}={value}"))
                .collect::<Vec<_>>()
                .join(" "),
        ),
    }
}

/// The diff as two tables: run fields, then blocks; `*` marks a difference.
pub fn render_diff(diff: &proto::RunDiff) -> String {
    let mut text = format!("A: {}\nB: {}\n\n", diff.a.id, diff.b.id);
    let fields: Vec<Vec<String>> = diff
        .fields
        .iter()
        .map(|field| {
            vec![
                if field.differs { "*" } else { "" }.to_owned(),
                field.field.clone(),
                value(&field.a),
                value(&field.b),
            ]
        })
        .collect();
    text.push_str(&output::table(&["", "FIELD", "A", "B"], &fields));
    text.push('\n');
    let blocks: Vec<Vec<String>> = diff
        .blocks
        .iter()
        .map(|block| {
            let (a_status, a_duration, a_outputs) = side(block.a.as_ref());
            let (b_status, b_duration, b_outputs) = side(block.b.as_ref());
            vec![
                if block.differs { "*" } else { "" }.to_owned(),
                block.block.clone(),
                a_status,
                b_status,
                a_duration,
                b_duration,
                a_outputs,
                b_outputs,
            ]
        })
        .collect();
    text.push_str(&output::table(
        &[
            "",
            "BLOCK",
            "A",
            "B",
            "A TIME",
            "B TIME",
            "A OUTPUTS",
            "B OUTPUTS",
        ],
        &blocks,
    ));
    text
}

pub async fn diff(
    a: &str,
    b: &str,
    format: OutputFormat,
    server: &ServerArgs,
    project: &ProjectArgs,
) -> CommandResult {
    let backend = Backend::open(server, project).await?;
    let diff = backend.diff_runs(a, b).await?;
    match format {
        OutputFormat::Json => output::print_json(&diff)?,
        OutputFormat::Table => print!("{}", render_diff(&diff)),
    }
    Ok(0)
}

pub async fn evidence(
    run: &str,
    format: EvidenceFormat,
    server: &ServerArgs,
    project: &ProjectArgs,
) -> CommandResult {
    let backend = Backend::open(server, project).await?;
    let evidence = backend.run_evidence(run).await?;
    match format {
        EvidenceFormat::Json => output::print_json(&evidence)?,
        EvidenceFormat::Md => print!("{}", sluice_api::diagnose::evidence_markdown(&evidence)),
    }
    Ok(0)
}
