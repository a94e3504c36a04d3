//! Variables and their layers.
//!
//! A run's variables resolve in layers, lowest first: the pipeline's defaults
//! < the trigger's values < a backfill window < values given for this run
//! (CLI `-v`, API, webhook). The run records each resolved value with the
//! layer it came from. Secret variables are masked as `***` wherever they
//! could leave the server.
//!
//! Resolution refuses a value for a variable the pipeline does not declare
//! (a typo would otherwise be silently ignored) and names every required
//! variable that has no value, in one error. A declared variable with no
//! default that nobody sets resolves to `null`. A default satisfies
//! `required: true`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::expr::to_text;
use crate::spec::VariableSpec;

/// Where a variable's value came from, lowest precedence first.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VariableLayer {
    Default,
    Trigger,
    Backfill,
    Run,
}

impl VariableLayer {
    pub fn as_str(self) -> &'static str {
        match self {
            VariableLayer::Default => "default",
            VariableLayer::Trigger => "trigger",
            VariableLayer::Backfill => "backfill",
            VariableLayer::Run => "run",
        }
    }
}

/// One variable's value in a run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResolvedVariable {
    pub value: Value,
    pub layer: VariableLayer,
    #[serde(default)]
    pub secret: bool,
}

/// A run's variables, stored as JSON with the run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ResolvedVariables(pub BTreeMap<String, ResolvedVariable>);

/// The text that replaces a secret value.
pub const MASK: &str = "***";

impl ResolvedVariables {
    /// Every value, secrets included: only for the block's own process.
    pub fn values(&self) -> BTreeMap<String, Value> {
        self.0
            .iter()
            .map(|(name, variable)| (name.clone(), variable.value.clone()))
            .collect()
    }

    /// Every value with secrets replaced by `***`: safe to show.
    pub fn masked(&self) -> BTreeMap<String, Value> {
        self.0
            .iter()
            .map(|(name, variable)| {
                let value = if variable.secret {
                    Value::String(MASK.to_owned())
                } else {
                    variable.value.clone()
                };
                (name.clone(), value)
            })
            .collect()
    }

    /// The text of every non-empty secret value, for masking logs and
    /// outputs.
    pub fn secret_values(&self) -> Vec<String> {
        let mut values: Vec<String> = self
            .0
            .values()
            .filter(|variable| variable.secret)
            .map(|variable| to_text(&variable.value))
            .filter(|text| !text.is_empty())
            .collect();
        values.sort();
        values.dedup();
        values
    }
}

/// Variables that could not be resolved or parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VariablesError {
    #[error("missing required variable{} {}", plural(names.len()), list(names))]
    Missing { names: Vec<String> },
    #[error(
        "unknown variable{} {}; {} declares: {}",
        plural(names.len()),
        list(names),
        pipeline.as_ref().map_or_else(|| "the pipeline".to_owned(), |name| format!("pipeline `{name}`")),
        if declared.is_empty() { "none".to_owned() } else { declared.join(", ") }
    )]
    Unknown {
        names: Vec<String>,
        pipeline: Option<String>,
        declared: Vec<String>,
    },
    #[error("`{0}` is not a variable assignment")]
    InvalidAssignment(String),
    #[error("`{0}` is not a valid variable name")]
    InvalidName(String),
}

fn plural(count: usize) -> &'static str {
    if count == 1 { "" } else { "s" }
}

fn list(names: &[String]) -> String {
    names
        .iter()
        .map(|name| format!("`{name}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl VariablesError {
    /// A remedy to show under the error.
    pub fn hint(&self) -> Option<String> {
        match self {
            VariablesError::Missing { names } => Some(format!(
                "pass a value for each, e.g. -v {}=VALUE",
                names.first().map_or("NAME", String::as_str)
            )),
            VariablesError::Unknown {
                names, declared, ..
            } => {
                let suggestion = names.iter().find_map(|name| {
                    crate::spec::closest(name, declared.iter().map(String::as_str))
                        .map(|closest| format!("did you mean `{closest}` instead of `{name}`?"))
                });
                Some(suggestion.unwrap_or_else(|| {
                    "declare the variable under `variables:` in the pipeline".to_owned()
                }))
            }
            VariablesError::InvalidAssignment(_) => Some("write NAME=VALUE".to_owned()),
            VariablesError::InvalidName(_) => Some(
                "a variable name is letters, digits and `_`, not starting with a digit".to_owned(),
            ),
        }
    }

    /// Names the pipeline in an [`VariablesError::Unknown`] message.
    pub fn for_pipeline(self, name: &str) -> VariablesError {
        match self {
            VariablesError::Unknown {
                names, declared, ..
            } => VariablesError::Unknown {
                names,
                pipeline: Some(name.to_owned()),
                declared,
            },
            other => other,
        }
    }
}

/// Whether `name` is a valid variable name: `[A-Za-z_][A-Za-z0-9_]*`.
pub fn is_valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphabetic() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Resolves a run's variables from the pipeline's declarations and the
/// layers of values, given lowest precedence first.
pub fn resolve_variables(
    spec: &BTreeMap<String, VariableSpec>,
    layers: &[(VariableLayer, &BTreeMap<String, Value>)],
) -> Result<ResolvedVariables, VariablesError> {
    let mut unknown: Vec<String> = layers
        .iter()
        .flat_map(|(_, values)| values.keys())
        .filter(|name| !spec.contains_key(*name))
        .cloned()
        .collect();
    if !unknown.is_empty() {
        unknown.sort();
        unknown.dedup();
        return Err(VariablesError::Unknown {
            names: unknown,
            pipeline: None,
            declared: spec.keys().cloned().collect(),
        });
    }
    let mut resolved = BTreeMap::new();
    let mut missing = Vec::new();
    for (name, declaration) in spec {
        let given = layers
            .iter()
            .filter_map(|(layer, values)| values.get(name).map(|value| (*layer, value)))
            .max_by_key(|(layer, _)| *layer);
        let (value, layer) = match (given, &declaration.default) {
            (Some((layer, value)), _) => (value.clone(), layer),
            (None, Some(default)) => (default.clone(), VariableLayer::Default),
            (None, None) if declaration.required => {
                missing.push(name.clone());
                continue;
            }
            (None, None) => (Value::Null, VariableLayer::Default),
        };
        resolved.insert(
            name.clone(),
            ResolvedVariable {
                value,
                layer,
                secret: declaration.secret,
            },
        );
    }
    if !missing.is_empty() {
        return Err(VariablesError::Missing { names: missing });
    }
    Ok(ResolvedVariables(resolved))
}

/// Parses a CLI assignment `NAME=VALUE`; the value is kept as a string.
pub fn parse_assignment(s: &str) -> Result<(String, Value), VariablesError> {
    let Some((name, value)) = s.split_once('=') else {
        return Err(VariablesError::InvalidAssignment(s.to_owned()));
    };
    let name = name.trim();
    if !is_valid_name(name) {
        return Err(VariablesError::InvalidName(name.to_owned()));
    }
    Ok((name.to_owned(), Value::String(value.to_owned())))
}
