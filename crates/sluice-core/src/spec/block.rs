//! Checking one block: its id, `needs`, `if`, what it does (`run`,
//! `script` or `pipeline`), retries, timeout, environment, labels and
//! artifacts. References between blocks are checked later, in
//! `validate.rs`, once every block is known.

use std::collections::{BTreeMap, HashMap, HashSet};

use crate::expr::{Expr, Reference};
use crate::template::Template;
use crate::vars::is_valid_name;

use super::raw::{RawBlock, RawMap, RawNeeds};
use super::span::{Position, Sp};
use super::suggest::{closest, short_list};
use super::validate::{Checker, Zero, is_valid_pipeline_name};
use super::{Block, BlockKind, RetryPolicy};

fn is_valid_block_id(id: &str) -> bool {
    let mut chars = id.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A relative path that stays inside the project directory.
fn is_project_path(path: &str) -> bool {
    !path.trim().is_empty()
        && !path.starts_with('/')
        && !path.split(['/', '\\']).any(|part| part == "..")
}

/// A block being checked: what it will become, and what is needed to check
/// the references of its expressions once every block is known.
pub(super) struct Draft {
    pub(super) block: Option<Block>,
    pub(super) needs: Vec<(usize, Position)>,
    /// Text values holding expressions, with what each is called in
    /// messages, and their references.
    pub(super) expressions: Vec<(Sp<String>, String, Vec<Reference>)>,
}

/// What checking one block needs to know about the others.
pub(super) struct Siblings<'a> {
    /// Every block id, in file order.
    pub(super) ids: &'a [&'a str],
    /// The file index of every block id.
    pub(super) index: &'a HashMap<&'a str, usize>,
    /// The pipeline's `retries`, for blocks without their own.
    pub(super) retries: RetryPolicy,
}

pub(super) fn block_draft(
    checker: &mut Checker<'_>,
    siblings: &Siblings<'_>,
    id: &Sp<String>,
    raw: &Sp<RawBlock>,
) -> Draft {
    let Siblings {
        ids,
        index,
        retries: pipeline_retries,
    } = *siblings;
    let name = &id.value;
    let this = format!("block `{name}`");
    let raw_block = &raw.value;
    if !is_valid_block_id(name) {
        checker.error(
            id.pos,
            format!("`{name}` is not a valid block id"),
            Some("use letters, digits, `_` and `-`, starting with a letter or `_`".to_owned()),
        );
    }
    let mut draft = Draft {
        block: None,
        needs: Vec::new(),
        expressions: Vec::new(),
    };

    // needs
    let raw_needs: Vec<Sp<String>> = match &raw_block.needs {
        None => Vec::new(),
        Some(needs) => match &needs.value {
            RawNeeds::One(one) => vec![Sp {
                value: one.clone(),
                pos: needs.pos,
                byte: needs.byte,
            }],
            RawNeeds::Many(many) => many.clone(),
        },
    };
    let mut need_names = Vec::new();
    let mut seen = HashSet::new();
    for need in &raw_needs {
        if need.value == *name {
            checker.error(
                need.pos,
                format!("{this} needs itself"),
                Some("remove it from `needs`".to_owned()),
            );
            continue;
        }
        match index.get(need.value.as_str()) {
            Some(&upstream) => {
                if seen.insert(upstream) {
                    draft.needs.push((upstream, need.pos));
                    need_names.push(need.value.clone());
                }
            }
            None => {
                let hint = match closest(&need.value, ids.iter().copied()) {
                    Some(known) => Some(format!("did you mean `{known}`?")),
                    None => short_list(ids.iter().copied())
                        .map(|blocks| format!("the blocks are: {blocks}")),
                };
                checker.error(
                    need.pos,
                    format!("{this} needs unknown block `{}`", need.value),
                    hint,
                );
            }
        }
    }

    // if
    let condition = raw_block.condition.as_ref().and_then(|raw| {
        let what = format!("`if` of {this}");
        match Expr::parse(&raw.value) {
            Ok(expr) => {
                draft
                    .expressions
                    .push((raw.clone(), what, expr.references()));
                Some(expr)
            }
            Err(error) => {
                checker.expr_error(raw, &what, error);
                None
            }
        }
    });

    let kind = block_kind(checker, id, raw, &mut draft);

    let retries = match &raw_block.retries {
        Some(raw) => checker
            .retries(raw, &format!("`retries` of {this}"))
            .unwrap_or(pipeline_retries),
        None => pipeline_retries,
    };
    let timeout = raw_block
        .timeout
        .as_ref()
        .and_then(|raw| checker.duration(raw, &format!("`timeout` of {this}"), Zero::Refused));
    let env = env(checker, raw_block.env.as_ref(), &this);
    let mut labels = BTreeMap::new();
    for (key, value) in raw_block.labels.iter().flat_map(|map| &map.0) {
        if key.value.trim().is_empty() {
            checker.error(key.pos, format!("empty label name in {this}"), None);
        }
        labels.insert(key.value.clone(), value.value.clone());
    }
    let mut artifacts = Vec::new();
    for glob in raw_block.artifacts.iter().flatten() {
        if !is_project_path(&glob.value) {
            checker.error(
                glob.pos,
                format!(
                    "artifact glob `{}` of {this} leaves the project directory",
                    glob.value
                ),
                Some(
                    "write a glob relative to the project directory, such as `out/*.csv`"
                        .to_owned(),
                ),
            );
        }
        artifacts.push(glob.value.clone());
    }

    if let Some((kind, kind_position)) = kind {
        draft.block = Some(Block {
            id: name.clone(),
            kind,
            needs: need_names,
            condition,
            retries,
            timeout,
            env,
            labels,
            artifacts,
            priority: raw_block.priority,
            position: id.pos,
            kind_position,
        });
    }
    draft
}

fn env(
    checker: &mut Checker<'_>,
    raw: Option<&RawMap<String>>,
    this: &str,
) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for (key, value) in raw.iter().flat_map(|map| &map.0) {
        if !is_valid_name(&key.value) {
            checker.error(
                key.pos,
                format!("`{}` is not a valid environment variable name", key.value),
                Some("use letters, digits and `_`, not starting with a digit".to_owned()),
            );
        } else if key.value.starts_with("SLUICE_") {
            checker.error(
                key.pos,
                format!("`{}` in `env` of {this} is reserved for sluice", key.value),
                Some("choose a name that does not start with `SLUICE_`".to_owned()),
            );
        }
        if value.value.contains("${{") {
            checker.error(
                value.pos,
                format!("`${{{{ }}}}` is not substituted in `env` of {this}"),
                Some(
                    "variables already reach the block as `$SLUICE_VAR_<NAME>`; upstream \
                     outputs are in `$SLUICE_INPUTS`"
                        .to_owned(),
                ),
            );
        }
        env.insert(key.value.clone(), value.value.clone());
    }
    env
}

/// The block's `run`, `script` or `pipeline`, and where it is written.
fn block_kind(
    checker: &mut Checker<'_>,
    id: &Sp<String>,
    raw: &Sp<RawBlock>,
    draft: &mut Draft,
) -> Option<(BlockKind, Position)> {
    let this = format!("block `{}`", id.value);
    let block = &raw.value;
    let given: Vec<(&str, &Sp<String>)> = [
        ("run", &block.run),
        ("script", &block.script),
        ("pipeline", &block.pipeline),
    ]
    .into_iter()
    .filter_map(|(key, value)| value.as_ref().map(|value| (key, value)))
    .collect();
    if let Some(variables) = &block.variables
        && block.pipeline.is_none()
    {
        checker.error(
            variables.pos,
            format!("`variables` of {this} only applies to `pipeline:` blocks"),
            Some(
                "a command reads variables as `${{ vars.NAME }}` or `$SLUICE_VAR_<NAME>`"
                    .to_owned(),
            ),
        );
    }
    let (key, value) = match given.as_slice() {
        [] => {
            checker.error(
                id.pos,
                format!("{this} has nothing to do"),
                Some("give it one of `run`, `script` or `pipeline`".to_owned()),
            );
            return None;
        }
        [one] => *one,
        [first, second] => {
            checker.error(
                second.1.pos,
                format!("{this} has both `{}` and `{}`", first.0, second.0),
                Some(several_kinds_hint()),
            );
            return None;
        }
        [_, _, third, ..] => {
            checker.error(
                third.1.pos,
                format!("{this} has `run`, `script` and `pipeline`"),
                Some(several_kinds_hint()),
            );
            return None;
        }
    };
    let kind = match key {
        "run" => {
            let what = format!("`run` of {this}");
            if value.value.trim().is_empty() {
                checker.error(
                    value.pos,
                    format!("{what} is empty"),
                    Some("write the command to run".to_owned()),
                );
                return None;
            }
            let parsed = Template::parse(&value.value)
                .and_then(|template| template.check_shell().map(|()| template));
            match parsed {
                Ok(command) => {
                    draft
                        .expressions
                        .push((value.clone(), what, command.references()));
                    BlockKind::Run { command }
                }
                Err(error) => {
                    checker.expr_error(value, &what, error);
                    return None;
                }
            }
        }
        "script" => {
            if !is_project_path(&value.value) {
                checker.error(
                    value.pos,
                    format!("`script` of {this} must be a path inside the project"),
                    Some(
                        "write it relative to the project directory, such as `scripts/load.py`"
                            .to_owned(),
                    ),
                );
            }
            BlockKind::Script {
                path: value.value.trim().to_owned(),
            }
        }
        _ => {
            let name = value.value.trim();
            if !is_valid_pipeline_name(name) || name.ends_with(".yaml") {
                checker.error(
                    value.pos,
                    format!("`pipeline` of {this} must be a pipeline's name"),
                    Some(format!(
                        "write the file name without `.yaml`, such as `{}`",
                        name.rsplit(['/', '\\'])
                            .next()
                            .unwrap_or(name)
                            .trim_end_matches(".yaml")
                    )),
                );
            }
            let mut variables = BTreeMap::new();
            for (key, template) in block.variables.iter().flat_map(|map| &map.value.0) {
                if !is_valid_name(&key.value) {
                    checker.error(
                        key.pos,
                        format!("`{}` is not a valid variable name", key.value),
                        None,
                    );
                    continue;
                }
                let what = format!("variable `{}` of {this}", key.value);
                match Template::parse(&template.value) {
                    Ok(parsed) => {
                        draft
                            .expressions
                            .push((template.clone(), what, parsed.references()));
                        variables.insert(key.value.clone(), parsed);
                    }
                    Err(error) => checker.expr_error(template, &what, error),
                }
            }
            BlockKind::Pipeline {
                name: name.to_owned(),
                variables,
            }
        }
    };
    Some((kind, value.pos))
}

fn several_kinds_hint() -> String {
    "a block does one thing: keep one, or split it into several blocks".to_owned()
}
