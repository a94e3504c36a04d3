//! Expressions: the condition of a block (`if:`) and the inside of `${{ }}` in
//! templates.
//!
//! The language is a small subset of GitHub Actions expressions: literals
//! (`'text'`, `"text"`, numbers, `true`, `false`, `null`), references
//! (`vars.NAME`, `blocks.ID.outputs.KEY`, `blocks.ID.status`, `run.id`,
//! `run.pipeline`, `run.attempt`), the operators `== != < <= > >= && || !`,
//! parentheses, and the functions `success()`, `failure()`, `always()`,
//! `contains(a, b)` and `startsWith(a, b)`.
//!
//! Comparison is loose like GitHub's: when the two sides have different
//! types, both are compared as numbers (`'10' > 9` is true), and a side that
//! is not a number makes every comparison but `!=` false. Strings compare
//! case-sensitively. `&&` and `||` return one of their operands, so
//! `${{ vars.region || 'eu' }}` picks a fallback. `false`, `null`, `0`, and
//! `''` are false; everything else is true. A missing output or block is
//! `null`, not an error; a variable the run does not have is an error
//! (validation already makes sure every variable read is declared).

mod parse;

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::status::BlockRunStatus;

/// A parsed expression, with the text it was parsed from.
#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    source: String,
    root: Node,
}

/// Something an expression reads from the run.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reference {
    /// `vars.NAME`
    Var(String),
    /// `blocks.ID.outputs.KEY`
    BlockOutput { block: String, key: String },
    /// `blocks.ID.status`
    BlockStatus { block: String },
    /// `run.id`, `run.pipeline` or `run.attempt` (the field name).
    Run(String),
}

impl Reference {
    /// The block this reference reads from, if any.
    pub fn block(&self) -> Option<&str> {
        match self {
            Reference::BlockOutput { block, .. } | Reference::BlockStatus { block } => Some(block),
            Reference::Var(_) | Reference::Run(_) => None,
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reference::Var(name) => write!(f, "vars.{name}"),
            Reference::BlockOutput { block, key } => write!(f, "blocks.{block}.outputs.{key}"),
            Reference::BlockStatus { block } => write!(f, "blocks.{block}.status"),
            Reference::Run(field) => write!(f, "run.{field}"),
        }
    }
}

/// An expression or template that could not be parsed. `offset` is the byte
/// offset of the problem within the parsed text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct ExprError {
    pub offset: usize,
    pub message: String,
    pub hint: Option<String>,
}

/// An expression that could not be evaluated.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvalError {
    #[error("variable `{0}` has no value in this run")]
    UnknownVariable(String),
    #[error("`${{{{ }}}}` at byte {offset} cannot be substituted into the shell command: {reason}")]
    UnsafeShellContext { offset: usize, reason: String },
}

/// What an expression can see while a run is in progress.
#[derive(Clone, Copy, Debug)]
pub struct EvalContext<'a> {
    /// The run's resolved variables.
    pub vars: &'a BTreeMap<String, Value>,
    /// Every block of the attempt that has a block run.
    pub blocks: &'a BTreeMap<String, BlockFacts>,
    /// Statuses of the block's direct `needs`, for `success()` and `failure()`.
    pub upstreams: &'a [BlockRunStatus],
    pub run: &'a RunFacts,
}

/// What is known about one block run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlockFacts {
    pub status: BlockRunStatus,
    pub outputs: BTreeMap<String, String>,
}

/// What is known about the run itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunFacts {
    pub id: String,
    pub pipeline: String,
    pub attempt: u32,
}

#[derive(Clone, Debug, PartialEq)]
enum Node {
    Literal(Value),
    Var(String),
    Output(String, String),
    Status(String),
    Run(RunField),
    Not(Box<Node>),
    And(Vec<Node>),
    Or(Vec<Node>),
    Binary(BinaryOp, Box<Node>, Box<Node>),
    Call(Function, Vec<Node>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RunField {
    Id,
    Pipeline,
    Attempt,
}

impl RunField {
    fn name(self) -> &'static str {
        match self {
            RunField::Id => "id",
            RunField::Pipeline => "pipeline",
            RunField::Attempt => "attempt",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BinaryOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Function {
    Success,
    Failure,
    Always,
    Contains,
    StartsWith,
}

impl Function {
    fn from_name(name: &str) -> Option<Function> {
        Some(match name {
            "success" => Function::Success,
            "failure" => Function::Failure,
            "always" => Function::Always,
            "contains" => Function::Contains,
            "startsWith" => Function::StartsWith,
            _ => return None,
        })
    }

    fn arity(self) -> usize {
        match self {
            Function::Success | Function::Failure | Function::Always => 0,
            Function::Contains | Function::StartsWith => 2,
        }
    }

    fn is_status(self) -> bool {
        matches!(
            self,
            Function::Success | Function::Failure | Function::Always
        )
    }
}

impl Expr {
    /// Parses an expression, with or without a `${{ … }}` wrapper around the
    /// whole text.
    pub fn parse(src: &str) -> Result<Expr, ExprError> {
        let (inner, base) = unwrap_braces(src);
        let root = parse::parse(inner, base)?;
        Ok(Expr {
            source: src.to_owned(),
            root,
        })
    }

    /// Parses the inside of one `${{ }}` of a template; `base` is its byte
    /// offset in the template, so errors point into the template.
    pub(crate) fn parse_at(inner: &str, base: usize) -> Result<Expr, ExprError> {
        let root = parse::parse(inner, base)?;
        Ok(Expr {
            source: inner.trim().to_owned(),
            root,
        })
    }

    /// The text the expression was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Everything the expression reads, in source order.
    pub fn references(&self) -> Vec<Reference> {
        let mut references = Vec::new();
        collect_references(&self.root, &mut references);
        references
    }

    /// Whether the expression calls `success()`, `failure()` or `always()`.
    /// A condition that does decides for itself what an upstream failure
    /// means; one that does not only runs when every upstream completed.
    pub fn uses_status_functions(&self) -> bool {
        uses_status_functions(&self.root)
    }

    /// Evaluates the expression to a boolean by its truthiness.
    pub fn evaluate(&self, ctx: &EvalContext<'_>) -> Result<bool, EvalError> {
        Ok(truthy(&self.evaluate_value(ctx)?))
    }

    /// Evaluates the expression to a value.
    pub fn evaluate_value(&self, ctx: &EvalContext<'_>) -> Result<Value, EvalError> {
        evaluate(&self.root, ctx)
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

/// Strips an optional `${{ … }}` around the whole text; returns the inside
/// and its byte offset.
fn unwrap_braces(src: &str) -> (&str, usize) {
    let start = src.len() - src.trim_start().len();
    let trimmed = src.trim();
    match trimmed
        .strip_prefix("${{")
        .and_then(|rest| rest.strip_suffix("}}"))
    {
        Some(inner) if !inner.contains("${{") => (inner, start + 3),
        _ => (src, 0),
    }
}

fn collect_references(node: &Node, out: &mut Vec<Reference>) {
    match node {
        Node::Literal(_) => {}
        Node::Var(name) => out.push(Reference::Var(name.clone())),
        Node::Output(block, key) => out.push(Reference::BlockOutput {
            block: block.clone(),
            key: key.clone(),
        }),
        Node::Status(block) => out.push(Reference::BlockStatus {
            block: block.clone(),
        }),
        Node::Run(field) => out.push(Reference::Run(field.name().to_owned())),
        Node::Not(inner) => collect_references(inner, out),
        Node::And(nodes) | Node::Or(nodes) | Node::Call(_, nodes) => {
            for node in nodes {
                collect_references(node, out);
            }
        }
        Node::Binary(_, left, right) => {
            collect_references(left, out);
            collect_references(right, out);
        }
    }
}

fn uses_status_functions(node: &Node) -> bool {
    match node {
        Node::Literal(_) | Node::Var(_) | Node::Output(..) | Node::Status(_) | Node::Run(_) => {
            false
        }
        Node::Not(inner) => uses_status_functions(inner),
        Node::And(nodes) | Node::Or(nodes) => nodes.iter().any(uses_status_functions),
        Node::Call(function, nodes) => {
            function.is_status() || nodes.iter().any(uses_status_functions)
        }
        Node::Binary(_, left, right) => uses_status_functions(left) || uses_status_functions(right),
    }
}

fn evaluate(node: &Node, ctx: &EvalContext<'_>) -> Result<Value, EvalError> {
    Ok(match node {
        Node::Literal(value) => value.clone(),
        Node::Var(name) => ctx
            .vars
            .get(name)
            .cloned()
            .ok_or_else(|| EvalError::UnknownVariable(name.clone()))?,
        Node::Output(block, key) => ctx
            .blocks
            .get(block)
            .and_then(|facts| facts.outputs.get(key))
            .map_or(Value::Null, |value| Value::String(value.clone())),
        Node::Status(block) => ctx.blocks.get(block).map_or(Value::Null, |facts| {
            Value::String(facts.status.as_str().to_owned())
        }),
        Node::Run(RunField::Id) => Value::String(ctx.run.id.clone()),
        Node::Run(RunField::Pipeline) => Value::String(ctx.run.pipeline.clone()),
        Node::Run(RunField::Attempt) => Value::from(ctx.run.attempt),
        Node::Not(inner) => Value::Bool(!truthy(&evaluate(inner, ctx)?)),
        Node::And(nodes) => {
            let mut last = Value::Bool(true);
            for node in nodes {
                last = evaluate(node, ctx)?;
                if !truthy(&last) {
                    break;
                }
            }
            last
        }
        Node::Or(nodes) => {
            let mut last = Value::Bool(false);
            for node in nodes {
                last = evaluate(node, ctx)?;
                if truthy(&last) {
                    break;
                }
            }
            last
        }
        Node::Binary(op, left, right) => {
            let left = evaluate(left, ctx)?;
            let right = evaluate(right, ctx)?;
            Value::Bool(compare(*op, &left, &right))
        }
        Node::Call(function, arguments) => {
            let mut values = Vec::with_capacity(arguments.len());
            for argument in arguments {
                values.push(evaluate(argument, ctx)?);
            }
            Value::Bool(call(*function, &values, ctx))
        }
    })
}

fn call(function: Function, arguments: &[Value], ctx: &EvalContext<'_>) -> bool {
    match function {
        Function::Success => ctx
            .upstreams
            .iter()
            .all(|status| *status == BlockRunStatus::Completed),
        Function::Failure => ctx.upstreams.iter().any(|status| {
            matches!(
                status,
                BlockRunStatus::Failed | BlockRunStatus::UpstreamFailed
            )
        }),
        Function::Always => true,
        Function::Contains => match (&arguments[0], &arguments[1]) {
            (Value::Array(items), needle) => {
                items.iter().any(|item| compare(BinaryOp::Eq, item, needle))
            }
            (haystack, needle) => to_text(haystack).contains(&to_text(needle)),
        },
        Function::StartsWith => to_text(&arguments[0]).starts_with(&to_text(&arguments[1])),
    }
}

/// `false`, `null`, `0`, `""` (and NaN) are false; everything else is true.
pub fn truthy(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::Bool(flag) => *flag,
        Value::Number(number) => number.as_f64().is_some_and(|n| n != 0.0 && !n.is_nan()),
        Value::String(text) => !text.is_empty(),
        Value::Array(_) | Value::Object(_) => true,
    }
}

/// The text form of a value: strings as they are, `null` as nothing, and
/// everything else as JSON.
pub fn to_text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A value as a number for loose comparison; `None` when it is not one.
fn to_number(value: &Value) -> Option<f64> {
    match value {
        Value::Null => Some(0.0),
        Value::Bool(flag) => Some(if *flag { 1.0 } else { 0.0 }),
        Value::Number(number) => number.as_f64(),
        Value::String(text) => {
            let trimmed = text.trim();
            if trimmed.is_empty() {
                Some(0.0)
            } else {
                trimmed.parse::<f64>().ok().filter(|n| !n.is_nan())
            }
        }
        Value::Array(_) | Value::Object(_) => None,
    }
}

fn compare(op: BinaryOp, left: &Value, right: &Value) -> bool {
    use std::cmp::Ordering;

    let ordering: Option<Ordering> = match (left, right) {
        (Value::String(a), Value::String(b)) => Some(a.cmp(b)),
        (Value::Null, Value::Null) => Some(Ordering::Equal),
        (Value::Bool(a), Value::Bool(b)) => Some(a.cmp(b)),
        (Value::Array(_), _)
        | (_, Value::Array(_))
        | (Value::Object(_), _)
        | (_, Value::Object(_)) => {
            // Containers are only ever equal to an identical container.
            if left == right {
                Some(Ordering::Equal)
            } else {
                return op == BinaryOp::Ne;
            }
        }
        _ => match (to_number(left), to_number(right)) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => None,
        },
    };
    match ordering {
        None => op == BinaryOp::Ne,
        Some(ordering) => match op {
            BinaryOp::Eq => ordering == Ordering::Equal,
            BinaryOp::Ne => ordering != Ordering::Equal,
            BinaryOp::Lt => ordering == Ordering::Less,
            BinaryOp::Le => ordering != Ordering::Greater,
            BinaryOp::Gt => ordering == Ordering::Greater,
            BinaryOp::Ge => ordering != Ordering::Less,
        },
    }
}
