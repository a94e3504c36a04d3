//! Checks across the pipelines of a project: a `pipeline:` block names a
//! pipeline that exists, passes only variables the child declares and every
//! variable it requires, and no pipelines run each other in a cycle.

use std::collections::{BTreeMap, HashMap};

use super::graph::topological_order;
use super::suggest::{closest, short_list};
use super::{Block, BlockKind, Diagnostic, Pipeline, Position};

fn diagnostic(
    pipeline: &Pipeline,
    at: Position,
    message: String,
    hint: Option<String>,
) -> Diagnostic {
    Diagnostic {
        file: pipeline.file.clone(),
        line: at.line.max(1),
        column: at.column.max(1),
        message,
        hint,
    }
}

/// The `pipeline:` blocks of a pipeline with the child's name.
fn calls(
    pipeline: &Pipeline,
) -> impl Iterator<Item = (&Block, &str, &BTreeMap<String, crate::template::Template>)> {
    pipeline
        .blocks
        .iter()
        .filter_map(|block| match &block.kind {
            BlockKind::Pipeline { name, variables } => Some((block, name.as_str(), variables)),
            BlockKind::Run { .. } | BlockKind::Script { .. } => None,
        })
}

pub(super) fn validate(pipelines: &[Pipeline]) -> Vec<Diagnostic> {
    let mut order: Vec<&Pipeline> = pipelines.iter().collect();
    order.sort_by(|a, b| a.name.cmp(&b.name));
    let index: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(index, pipeline)| (pipeline.name.as_str(), index))
        .collect();
    let names: Vec<&str> = order
        .iter()
        .map(|pipeline| pipeline.name.as_str())
        .collect();
    let mut diagnostics = Vec::new();
    let mut edges: Vec<Vec<usize>> = vec![Vec::new(); order.len()];

    for (parent_index, parent) in order.iter().enumerate() {
        for (block, child_name, passed) in calls(parent) {
            let this = format!("block `{}`", block.id);
            let Some(&child_index) = index.get(child_name) else {
                let hint = match closest(child_name, names.iter().copied()) {
                    Some(known) => format!("did you mean `{known}`?"),
                    None => match short_list(names.iter().copied()) {
                        Some(names) => format!(
                            "the project's pipelines are: {names} (a pipeline whose file has \
                             errors is not among them)"
                        ),
                        None => "a pipeline's name is its file name under `pipelines/`, without \
                                 `.yaml`"
                            .to_owned(),
                    },
                };
                diagnostics.push(diagnostic(
                    parent,
                    block.kind_position,
                    format!("{this} runs unknown pipeline `{child_name}`"),
                    Some(hint),
                ));
                continue;
            };
            let child = order[child_index];
            if child_index == parent_index {
                diagnostics.push(diagnostic(
                    parent,
                    block.kind_position,
                    format!("{this} runs its own pipeline `{child_name}`"),
                    Some("a pipeline cannot run itself".to_owned()),
                ));
                continue;
            }
            if !edges[parent_index].contains(&child_index) {
                edges[parent_index].push(child_index);
            }
            for name in passed.keys() {
                if !child.variables.contains_key(name) {
                    let hint = match closest(name, child.variables.keys().map(String::as_str)) {
                        Some(known) => format!("did you mean `{known}`?"),
                        None => {
                            format!("declare `{name}` in pipeline `{child_name}`, or remove it")
                        }
                    };
                    diagnostics.push(diagnostic(
                        parent,
                        block.kind_position,
                        format!(
                            "{this} passes `{name}`, which pipeline `{child_name}` does not declare"
                        ),
                        Some(hint),
                    ));
                }
            }
            for (name, spec) in &child.variables {
                if spec.required && spec.default.is_none() && !passed.contains_key(name) {
                    diagnostics.push(diagnostic(
                        parent,
                        block.kind_position,
                        format!(
                            "{this} does not pass `{name}`, which pipeline `{child_name}` requires"
                        ),
                        Some(format!("add `{name}` under the `variables:` of {this}")),
                    ));
                }
            }
        }
    }

    if let Err(cycles) = topological_order(&edges) {
        for cycle in cycles {
            let first = order[cycle[0]];
            let second = cycle
                .get(1)
                .map_or(first.name.as_str(), |&next| names[next]);
            let at = calls(first)
                .find(|(_, child, _)| *child == second)
                .map_or(Position::START, |(block, _, _)| block.kind_position);
            let path: Vec<&str> = cycle.iter().map(|&pipeline| names[pipeline]).collect();
            diagnostics.push(diagnostic(
                first,
                at,
                format!(
                    "pipelines run each other in a cycle: {} -> {}",
                    path.join(" -> "),
                    path[0]
                ),
                Some("remove one of these `pipeline:` blocks".to_owned()),
            ));
        }
    }

    diagnostics.sort();
    diagnostics.dedup();
    diagnostics
}
