//! Reading a pipeline file's YAML into the raw types, under resource limits,
//! and turning a YAML or structural error into one [`Diagnostic`] that says
//! where the problem is and in which block or trigger.
//!
//! The limits refuse hostile files quickly and with a clear message: more
//! than [`MAX_FILE_BYTES`], deep nesting (`[[[[…` or `{a: {a: …`), alias
//! bombs ("billion laughs") and oversized node counts.

use serde_saphyr::budget::BudgetBreach;
use serde_saphyr::{Error, MessageFormatter, UserMessageFormatter};

use super::place::Place;
use super::raw::RawPipeline;
use super::span::Position;
use super::suggest::closest;
use super::{Diagnostic, MAX_FILE_BYTES};

/// Nesting deeper than this is not a pipeline. The deepest real structure is
/// a variable's default value, a few levels down.
const MAX_DEPTH: usize = 48;

pub(super) fn options(duplicate_keys: serde_saphyr::DuplicateKeyPolicy) -> serde_saphyr::Options {
    let mut budget = serde_saphyr::Budget::default();
    budget.max_depth = MAX_DEPTH;
    budget.flow_nesting_limit = MAX_DEPTH;
    budget.max_documents = 1;
    budget.max_nodes = 200_000;
    budget.max_events = 500_000;
    budget.max_aliases = 2_000;
    budget.max_anchors = 2_000;
    budget.max_recorded_anchor_events = 100_000;
    budget.max_recorded_anchor_bytes = 8 * 1024 * 1024;
    budget.max_total_scalar_bytes = MAX_FILE_BYTES;
    budget.max_merge_keys = 2_000;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    options.alias_limits.max_total_replayed_events = 100_000;
    options.alias_limits.max_replay_stack_depth = 16;
    options.alias_limits.max_alias_expansions_per_anchor = 1_000;
    options.duplicate_keys = duplicate_keys;
    // YAML 1.2 booleans only: `country: no` stays the string "no".
    options.strict_booleans = true;
    options.with_snippet = false;
    options
}

/// Parses the text into the raw pipeline; `None` for an empty document.
pub(super) fn parse(file: &str, source: &str) -> Result<Option<RawPipeline>, Box<Diagnostic>> {
    if source.len() > MAX_FILE_BYTES {
        return Err(Box::new(Diagnostic {
            file: file.to_owned(),
            line: 1,
            column: 1,
            message: format!(
                "the file is too large for a pipeline ({} bytes; the limit is {MAX_FILE_BYTES})",
                source.len()
            ),
            hint: Some("split the work into several pipelines".to_owned()),
        }));
    }
    let options = options(serde_saphyr::DuplicateKeyPolicy::Error);
    serde_saphyr::from_str_with_options::<Option<RawPipeline>>(source, options)
        .map_err(|error| Box::new(diagnostic(file, source, &error)))
}

/// The error itself, without the wrappers that add source snippets or alias
/// locations.
fn original(error: &Error) -> &Error {
    match error {
        Error::WithSnippet { error, .. } | Error::AliasError { error, .. } => original(error),
        other => other,
    }
}

fn diagnostic(file: &str, source: &str, error: &Error) -> Diagnostic {
    let position = error
        .location()
        .and_then(|location| Position::from_location(&location))
        .unwrap_or(Position::START);
    let inner = original(error);
    let place = || Place::find(source, position);
    let (message, hint) = match inner {
        Error::SerdeUnknownField {
            field, expected, ..
        } => {
            let hint = match closest(field, expected.iter().copied()) {
                Some(known) => format!("did you mean `{known}`?"),
                None => format!("the keys here are: {}", expected.join(", ")),
            };
            (
                format!(
                    "unknown key `{field}` in {}",
                    place().describe(section_of(expected))
                ),
                Some(hint),
            )
        }
        Error::SerdeMissingField { field, .. } => (
            format!("missing key `{field}` in {}", place().describe(None)),
            None,
        ),
        Error::SerdeUnknownVariant {
            variant, expected, ..
        } => {
            let hint = match closest(variant, expected.iter().copied()) {
                Some(known) => format!("did you mean `{known}`?"),
                None => format!("use one of: {}", expected.join(", ")),
            };
            (
                format!(
                    "{}unknown value `{variant}`",
                    subject(source, position, &place())
                ),
                Some(hint),
            )
        }
        Error::DuplicateMappingKey { key, .. } => {
            let place = place();
            let key = key.as_deref().unwrap_or("?");
            if place.at_block_key {
                (
                    format!("duplicate block `{key}`"),
                    Some("block ids must be unique; rename one of them".to_owned()),
                )
            } else if place.at_variable_key {
                (
                    format!("duplicate variable `{key}`"),
                    Some("variable names must be unique; rename one of them".to_owned()),
                )
            } else {
                (
                    format!("duplicate key `{key}` in {}", place.describe(None)),
                    Some("a key may appear only once in a mapping; remove one".to_owned()),
                )
            }
        }
        Error::SerdeInvalidType {
            unexpected,
            expected,
            ..
        } => (
            format!(
                "{}expected {expected}, found {unexpected}",
                subject(source, position, &place())
            ),
            None,
        ),
        Error::InvalidScalar { ty, .. } => (
            format!(
                "{}expected {}",
                subject(source, position, &place()),
                describe_scalar_type(ty)
            ),
            None,
        ),
        Error::InvalidBooleanStrict { .. } => (
            format!(
                "{}expected `true` or `false`",
                subject(source, position, &place())
            ),
            None,
        ),
        Error::Unexpected { expected, .. } => {
            let place = place();
            let top_level = place.section.is_none() && key_at(source, position).is_none();
            let hint = (top_level && expected.contains("mapping")).then(|| {
                "a pipeline file is a mapping of settings, such as `blocks: {hello: {run: echo \
                 hello}}`"
                    .to_owned()
            });
            (
                format!(
                    "{}expected {}",
                    subject(source, position, &place),
                    describe_expected(expected)
                ),
                hint,
            )
        }
        Error::NullIntoString { .. } => (
            format!(
                "{}expected text, found nothing",
                subject(source, position, &place())
            ),
            Some("write a value after the `:`, or remove the key".to_owned()),
        ),
        Error::Budget {
            breach: BudgetBreach::Documents { .. },
            ..
        } => multiple_documents(),
        Error::Budget { breach, .. } => (
            format!(
                "the file is too large or too complex for a pipeline: {}",
                describe_breach(breach)
            ),
            Some(budget_hint()),
        ),
        Error::AliasReplayLimitExceeded { .. }
        | Error::AliasExpansionLimitExceeded { .. }
        | Error::AliasReplayStackDepthExceeded { .. }
        | Error::AliasReplayCounterOverflow { .. } => (
            "the file's aliases expand to too much content".to_owned(),
            Some("use fewer `*alias` references, or write the content out".to_owned()),
        ),
        Error::MultipleDocuments { .. } => multiple_documents(),
        Error::Message { msg, .. } => (
            format!("{}{msg}", subject(source, position, &place())),
            None,
        ),
        other => {
            let text = UserMessageFormatter.format_message(other);
            if text.contains("recursion limit") {
                (
                    "the file is too large or too complex for a pipeline: it is nested too \
                     deeply"
                        .to_owned(),
                    Some(budget_hint()),
                )
            } else {
                (format!("invalid YAML: {text}"), None)
            }
        }
    };
    Diagnostic {
        file: file.to_owned(),
        line: position.line,
        column: position.column,
        message,
        hint,
    }
}

fn budget_hint() -> String {
    "pipelines are small; look for runaway nesting, aliases or generated content".to_owned()
}

fn multiple_documents() -> (String, Option<String>) {
    (
        "a pipeline file holds one YAML document".to_owned(),
        Some("remove the `---` separator; each pipeline has its own file".to_owned()),
    )
}

/// Which kind of mapping a list of expected keys belongs to, when it is
/// nested inside a block or trigger.
fn section_of(expected: &[&str]) -> Option<&'static str> {
    let has = |key: &str| expected.contains(&key);
    if has("backoff") {
        Some("`retries`")
    } else if has("secret") && has("required") {
        Some("a variable")
    } else if has("token_env") {
        Some("`api`")
    } else if has("scheme") {
        Some("`webhook`")
    } else {
        None
    }
}

/// The key whose value is at `position`, when it is written `key: value` on
/// the same line.
fn key_at(source: &str, position: Position) -> Option<String> {
    let line = source.lines().nth(position.line.saturating_sub(1))?;
    let before: String = line
        .chars()
        .take(position.column.saturating_sub(1))
        .collect();
    let key = before.trim_end().strip_suffix(':')?;
    let key = key.trim_start().trim_start_matches("- ").trim();
    let is_key = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    is_key.then(|| key.to_owned())
}

/// What a message is about, ending in `: ` unless it is empty:
/// "`priority` of block `load`: ", "`timeout_status`: ", "block `load`: ".
fn subject(source: &str, position: Position, place: &Place) -> String {
    let key = key_at(source, position);
    let top_level = place.section.is_none()
        || (place.block.is_none() && place.trigger.is_none() && place.section == key);
    match key {
        Some(key) if top_level => format!("`{key}`: "),
        Some(key) => format!("`{key}` of {}: ", place.describe(None)),
        None if top_level => String::new(),
        None => format!("{}: ", place.describe(None)),
    }
}

fn describe_expected(expected: &str) -> &str {
    match expected {
        "mapping start" | "empty mapping start" => "a mapping",
        "sequence start" => "a list",
        "scalar" | "string scalar" => "a single value",
        "mapping end" | "empty mapping end" => "the end of the mapping",
        other => other,
    }
}

fn describe_scalar_type(ty: &str) -> &'static str {
    match ty {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => "a non-negative integer",
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => "an integer",
        "f32" | "f64" => "a number",
        "bool" => "`true` or `false`",
        "char" => "a single character",
        _ => "a different kind of value",
    }
}

fn describe_breach(breach: &BudgetBreach) -> String {
    match breach {
        BudgetBreach::Depth { .. } => format!("it is nested more than {MAX_DEPTH} levels deep"),
        BudgetBreach::Events { .. } | BudgetBreach::Nodes { .. } => {
            "it has too many values".to_owned()
        }
        BudgetBreach::Aliases { .. }
        | BudgetBreach::Anchors { .. }
        | BudgetBreach::AliasAnchorRatio { .. }
        | BudgetBreach::RecordedAnchorEvents { .. }
        | BudgetBreach::RecordedAnchorBytes { .. } => "it uses too many aliases".to_owned(),
        BudgetBreach::ScalarBytes { .. } | BudgetBreach::InputBytes { .. } => {
            "it has too much text".to_owned()
        }
        BudgetBreach::MergeKeys { .. } => "it uses too many merge keys (`<<`)".to_owned(),
        _ => "it exceeds a parser limit".to_owned(),
    }
}
