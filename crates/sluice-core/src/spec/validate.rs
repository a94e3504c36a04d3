//! From the raw file to a [`Pipeline`]: checks the meaning of everything the
//! types alone cannot (names, durations, limits, expressions, templates, the
//! DAG, what each expression reads) and reports every problem of the file,
//! each at its position.

use std::collections::{BTreeMap, HashMap};
use std::num::NonZeroU32;

use crate::duration::Duration;
use crate::expr::{ExprError, Reference};
use crate::vars::is_valid_name;

use super::block::{Siblings, block_draft};
use super::graph::{topological_order, upstream_set};
use super::raw::{DurationText, RawBlock, RawMap, RawPipeline, RawRetries, RawVariable};
use super::span::{Position, Sp, locate};
use super::suggest::closest;
use super::{Block, Diagnostic, MAX_BLOCKS, Pipeline, RetryPolicy, VariableSpec, trigger};

/// The most diagnostics reported for one file; past this, more of them
/// help nobody and cost time on hostile input.
const MAX_DIAGNOSTICS: usize = 100;

/// Whether a duration may be zero, and what zero would mean.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Zero {
    Allowed,
    /// A limit: zero is refused, and omitting the key means no limit.
    Refused,
    /// An interval: zero is refused.
    RefusedInterval,
}

/// Collects the diagnostics of one file.
pub(super) struct Checker<'a> {
    file: &'a str,
    source: &'a str,
    diagnostics: Vec<Diagnostic>,
    /// Problems found past [`MAX_DIAGNOSTICS`], and where the first was.
    omitted: usize,
    first_omitted: Option<Position>,
}

impl<'a> Checker<'a> {
    pub(super) fn error(&mut self, at: Position, message: impl Into<String>, hint: Option<String>) {
        if self.is_full() {
            self.omitted += 1;
            self.first_omitted.get_or_insert(at);
            return;
        }
        self.diagnostics.push(Diagnostic {
            file: self.file.to_owned(),
            line: at.line.max(1),
            column: at.column.max(1),
            message: message.into(),
            hint,
        });
    }

    /// A duration; `what` names it in messages (``"`timeout` of block `load`"``).
    pub(super) fn duration(
        &mut self,
        raw: &Sp<DurationText>,
        what: &str,
        zero: Zero,
    ) -> Option<Duration> {
        let parsed = match &raw.value {
            DurationText::Seconds(seconds) => Ok(Duration::from_secs(*seconds)),
            DurationText::Text(text) => text.parse::<Duration>(),
            DurationText::Invalid(text) => Err(crate::duration::ParseError::Invalid(text.clone())),
        };
        match parsed {
            Ok(duration) if duration == Duration::ZERO && zero != Zero::Allowed => {
                let hint = (zero == Zero::Refused).then(|| "omit the key for no limit".to_owned());
                self.error(raw.pos, format!("{what} must be longer than 0s"), hint);
                None
            }
            Ok(duration) => Some(duration),
            Err(error) => {
                let hint = error.hint().to_owned();
                self.error(raw.pos, format!("{what}: {error}"), Some(hint));
                None
            }
        }
    }

    /// A limit that must be at least 1.
    pub(super) fn limit(&mut self, raw: &Sp<u32>, what: &str) -> Option<NonZeroU32> {
        let limit = NonZeroU32::new(raw.value);
        if limit.is_none() {
            self.error(
                raw.pos,
                format!("{what} must be at least 1"),
                Some(
                    "omit the key for no limit; a limit of 0 would leave runs waiting forever"
                        .to_owned(),
                ),
            );
        }
        limit
    }

    /// An RFC 3339 time with its offset.
    pub(super) fn timestamp(&mut self, raw: &Sp<String>, what: &str) -> Option<jiff::Timestamp> {
        match raw.value.trim().parse::<jiff::Timestamp>() {
            Ok(timestamp) => Some(timestamp),
            Err(_) => {
                self.error(
                    raw.pos,
                    format!("{what}: `{}` is not a time", raw.value),
                    Some(
                        "write an RFC 3339 time with its offset, such as 2026-12-01T09:00:00Z"
                            .to_owned(),
                    ),
                );
                None
            }
        }
    }

    pub(super) fn expr_error(&mut self, at: &Sp<String>, what: &str, error: ExprError) {
        let position = locate(self.source, at, error.offset);
        self.error(position, format!("{what}: {}", error.message), error.hint);
    }

    /// The position of `needle` inside the string value `at`, for pointing
    /// at one reference of an expression.
    fn position_of(&self, at: &Sp<String>, needle: &str) -> Position {
        match at.value.find(needle) {
            Some(offset) => locate(self.source, at, offset),
            None => at.pos,
        }
    }

    pub(super) fn retries(&mut self, raw: &Sp<RawRetries>, what: &str) -> Option<RetryPolicy> {
        let policy = match &raw.value {
            RawRetries::Count(count) => RetryPolicy {
                count: *count,
                delay: RetryPolicy::DEFAULT_DELAY,
                ..RetryPolicy::NONE
            },
            RawRetries::Policy(policy) => {
                let delay = match &policy.delay {
                    Some(delay) => {
                        self.duration(delay, &format!("`delay` in {what}"), Zero::Allowed)?
                    }
                    None => RetryPolicy::DEFAULT_DELAY,
                };
                let max_delay = match &policy.max_delay {
                    Some(max) => Some(self.duration(
                        max,
                        &format!("`max_delay` in {what}"),
                        Zero::Allowed,
                    )?),
                    None => None,
                };
                if let (Some(max), Some(raw_max)) = (max_delay, &policy.max_delay)
                    && max < delay
                {
                    self.error(
                        raw_max.pos,
                        format!(
                            "`max_delay` ({max}) in {what} is shorter than its `delay` ({delay})"
                        ),
                        Some("make `max_delay` at least `delay`, or omit it".to_owned()),
                    );
                }
                RetryPolicy {
                    count: policy.count.value,
                    delay,
                    backoff: policy.backoff.unwrap_or_default(),
                    max_delay,
                }
            }
        };
        if policy.count > RetryPolicy::MAX_COUNT {
            self.error(
                raw.pos,
                format!(
                    "{what} asks for {} retries; the limit is {}",
                    policy.count,
                    RetryPolicy::MAX_COUNT
                ),
                Some("a block that fails this often needs a fix, not more retries".to_owned()),
            );
            return None;
        }
        Some(policy)
    }

    /// Whether no more diagnostics will be kept.
    pub(super) fn is_full(&self) -> bool {
        self.diagnostics.len() >= MAX_DIAGNOSTICS
    }

    fn finish(mut self) -> Vec<Diagnostic> {
        if let Some(at) = self.first_omitted {
            self.diagnostics.push(Diagnostic {
                file: self.file.to_owned(),
                line: at.line.max(1),
                column: at.column.max(1),
                message: format!("{} more problems are not shown", self.omitted),
                hint: Some("fix the problems above and check the file again".to_owned()),
            });
        }
        self.diagnostics.sort();
        self.diagnostics.dedup();
        self.diagnostics
    }
}

/// Validates a raw pipeline. `raw` is `None` for an empty file.
pub(super) fn pipeline(
    name: &str,
    file: &str,
    source: &str,
    raw: Option<RawPipeline>,
) -> Result<Pipeline, Vec<Diagnostic>> {
    let mut checker = Checker {
        file,
        source,
        diagnostics: Vec::new(),
        omitted: 0,
        first_omitted: None,
    };
    if !is_valid_pipeline_name(name) {
        checker.error(
            Position::START,
            format!("`{name}` is not a valid pipeline name"),
            Some(
                "rename the file: a pipeline's name is its file name, made of letters, digits, \
                 `_`, `-` and `.`"
                    .to_owned(),
            ),
        );
    }
    let Some(raw) = raw else {
        checker.error(
            Position::START,
            "pipeline has no blocks",
            Some(no_blocks_hint()),
        );
        return Err(checker.finish());
    };
    let variables = variables(&mut checker, raw.variables);
    let concurrency = raw
        .concurrency
        .as_ref()
        .and_then(|raw| checker.limit(raw, "`concurrency`"));
    let block_concurrency = raw
        .block_concurrency
        .as_ref()
        .and_then(|raw| checker.limit(raw, "`block_concurrency`"));
    let timeout = raw
        .timeout
        .as_ref()
        .and_then(|raw| checker.duration(raw, "`timeout`", Zero::Refused));
    let sla = raw
        .sla
        .as_ref()
        .and_then(|raw| checker.duration(raw, "`sla`", Zero::Refused));
    let retries = raw
        .retries
        .as_ref()
        .and_then(|raw| checker.retries(raw, "`retries` of the pipeline"))
        .unwrap_or(RetryPolicy::NONE);
    let blocks = match raw.blocks {
        Some(blocks) if !blocks.value.0.is_empty() => {
            if blocks.value.0.len() > MAX_BLOCKS {
                checker.error(
                    blocks.pos,
                    format!(
                        "pipeline has {} blocks; the limit is {MAX_BLOCKS}",
                        blocks.value.0.len()
                    ),
                    Some("split the work into several pipelines".to_owned()),
                );
                return Err(checker.finish());
            }
            self::blocks(&mut checker, blocks.value, &variables, retries)
        }
        Some(blocks) => {
            checker.error(blocks.pos, "pipeline has no blocks", Some(no_blocks_hint()));
            Vec::new()
        }
        None => {
            checker.error(
                Position::START,
                "pipeline has no blocks",
                Some(no_blocks_hint()),
            );
            Vec::new()
        }
    };
    let notify = checker.notify(raw.notify.as_ref(), "`notify`", &[]);
    let channels: Vec<String> = notify.channels.keys().cloned().collect();
    let triggers = trigger::triggers(
        &mut checker,
        raw.triggers.unwrap_or_default(),
        &variables,
        &channels,
    );
    let drift = checker.drift(raw.drift.as_ref());
    let retention = checker.retention(raw.retention.as_ref());
    let diagnostics = checker.finish();
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    Ok(Pipeline {
        name: name.to_owned(),
        file: file.to_owned(),
        description: raw.description.map(|description| description.value),
        tags: raw
            .tags
            .unwrap_or_default()
            .into_iter()
            .map(|tag| tag.value)
            .collect(),
        variables,
        concurrency,
        on_limit: raw.on_limit.unwrap_or_default(),
        block_concurrency,
        timeout,
        timeout_status: raw.timeout_status.unwrap_or_default(),
        sla,
        priority: raw.priority.unwrap_or(0),
        retries,
        blocks,
        triggers,
        drift,
        retention,
        notify,
    })
}

/// A pipeline's name is also a path segment of the API and a CLI argument.
pub(super) fn is_valid_pipeline_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|first| first.is_ascii_alphanumeric() || first == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

fn no_blocks_hint() -> String {
    "add a `blocks:` mapping, such as `blocks: {hello: {run: echo hello}}`".to_owned()
}

fn variables(
    checker: &mut Checker<'_>,
    raw: Option<RawMap<RawVariable>>,
) -> BTreeMap<String, VariableSpec> {
    let mut variables = BTreeMap::new();
    for (name, raw) in raw.map(|map| map.0).unwrap_or_default() {
        if !is_valid_name(&name.value) {
            checker.error(
                name.pos,
                format!("`{}` is not a valid variable name", name.value),
                Some(
                    "use letters, digits and `_`, not starting with a digit (it becomes \
                     $SLUICE_VAR_<NAME>)"
                        .to_owned(),
                ),
            );
            continue;
        }
        let spec = match raw.value {
            RawVariable::Default(value) => VariableSpec {
                default: Some(value),
                ..VariableSpec::default()
            },
            RawVariable::Settings(settings) => VariableSpec {
                default: settings.default,
                secret: settings.secret,
                required: settings.required,
                description: settings.description,
            },
        };
        variables.insert(name.value, spec);
    }
    variables
}

fn blocks(
    checker: &mut Checker<'_>,
    raw: RawMap<RawBlock>,
    variables: &BTreeMap<String, VariableSpec>,
    pipeline_retries: RetryPolicy,
) -> Vec<Block> {
    let index: HashMap<&str, usize> = raw
        .0
        .iter()
        .enumerate()
        .map(|(index, (id, _))| (id.value.as_str(), index))
        .collect();
    let ids: Vec<&str> = raw.0.iter().map(|(id, _)| id.value.as_str()).collect();
    let siblings = Siblings {
        ids: &ids,
        index: &index,
        retries: pipeline_retries,
    };
    let mut drafts = Vec::with_capacity(raw.0.len());
    for (id, block) in &raw.0 {
        drafts.push(block_draft(checker, &siblings, id, block));
    }

    let needs: Vec<Vec<usize>> = drafts
        .iter()
        .map(|draft| draft.needs.iter().map(|(upstream, _)| *upstream).collect())
        .collect();
    let order = match topological_order(&needs) {
        Ok(order) => order,
        Err(cycles) => {
            for cycle in cycles {
                let names: Vec<&str> = cycle.iter().map(|&block| ids[block]).collect();
                let first = cycle[0];
                let second = cycle.get(1).copied().unwrap_or(first);
                let at = drafts[first]
                    .needs
                    .iter()
                    .find(|(upstream, _)| *upstream == second)
                    .map_or(raw.0[first].0.pos, |(_, pos)| *pos);
                checker.error(
                    at,
                    format!("dependency cycle: {} -> {}", names.join(" -> "), names[0]),
                    Some(
                        "blocks run after the blocks they need; remove one of these `needs`"
                            .to_owned(),
                    ),
                );
            }
            Vec::new()
        }
    };

    let references = ReferenceCheck {
        ids: &ids,
        index: &index,
        variables,
    };
    for (block, draft) in drafts.iter().enumerate() {
        let reads_blocks = draft
            .expressions
            .iter()
            .any(|(_, _, read)| read.iter().any(|reference| reference.block().is_some()));
        let upstream = if reads_blocks {
            upstream_set(&needs, block)
        } else {
            Vec::new()
        };
        for (at, what, read) in &draft.expressions {
            references.check(checker, (block, &upstream), at, what, read);
        }
    }

    let mut drafts: Vec<Option<Block>> = drafts.into_iter().map(|draft| draft.block).collect();
    order
        .into_iter()
        .filter_map(|block| drafts[block].take())
        .collect()
}

/// What the expressions of a block may read: declared variables, and
/// blocks upstream of it.
struct ReferenceCheck<'a> {
    ids: &'a [&'a str],
    index: &'a HashMap<&'a str, usize>,
    variables: &'a BTreeMap<String, VariableSpec>,
}

impl ReferenceCheck<'_> {
    fn check(
        &self,
        checker: &mut Checker<'_>,
        (block, upstream): (usize, &[bool]),
        at: &Sp<String>,
        what: &str,
        references: &[Reference],
    ) {
        let block_id = self.ids[block];
        for reference in references {
            // Finding the exact position costs a scan of the text: only do it
            // for a problem that will be shown.
            let position = |checker: &Checker<'_>| {
                if checker.is_full() {
                    at.pos
                } else {
                    checker.position_of(at, &reference.to_string())
                }
            };
            match reference {
                Reference::Var(name) if !self.variables.contains_key(name) => {
                    let hint = match closest(name, self.variables.keys().map(String::as_str)) {
                        Some(known) => format!("did you mean `vars.{known}`?"),
                        None => format!("declare it under `variables:`, such as `{name}: default`"),
                    };
                    checker.error(
                        position(checker),
                        format!("{what} reads `vars.{name}`, which the pipeline does not declare"),
                        Some(hint),
                    );
                }
                Reference::BlockOutput { block: other, .. }
                | Reference::BlockStatus { block: other } => match self.index.get(other.as_str()) {
                    None => {
                        let hint = closest(other, self.ids.iter().copied())
                            .map(|known| format!("did you mean `{known}`?"));
                        checker.error(
                            position(checker),
                            format!("{what} reads `{reference}`, but there is no block `{other}`"),
                            hint,
                        );
                    }
                    Some(&index) if index == block => checker.error(
                        position(checker),
                        format!("{what} reads `{reference}`, its own block"),
                        Some("a block can only read blocks that run before it".to_owned()),
                    ),
                    Some(&index) if !upstream.get(index).copied().unwrap_or(false) => checker
                        .error(
                            position(checker),
                            format!(
                                "{what} reads `{reference}`, but `{other}` is not upstream of \
                                 `{block_id}`"
                            ),
                            Some(format!("add `{other}` to the `needs` of `{block_id}`")),
                        ),
                    Some(_) => {}
                },
                Reference::Var(_) | Reference::Run(_) => {}
            }
        }
    }
}
