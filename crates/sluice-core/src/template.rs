//! Templates: text with `${{ expression }}` substitutions, used by `run:`
//! commands and by the variables a `pipeline:` block passes to its child.
//!
//! In a shell command every substituted value is quoted for the place it
//! lands in (outside quotes, inside `'…'`, inside `"…"`), so a variable is
//! always data and never code: a value such as `$(touch pwned); ' " \`
//! reaches the process byte for byte and runs nothing. Places where no plain
//! quoting is safe (inside backquotes, a here-document, `${ … }`, …) are
//! refused; [`Template::check_shell`] reports them when the pipeline loads.
//!
//! When rendered, `null` becomes the empty string, strings are used as they
//! are, and other values (numbers, booleans, lists, maps) as their JSON text.

mod shell;

use serde_json::Value;

use crate::expr::{EvalContext, EvalError, Expr, ExprError, Reference, to_text};

use self::shell::Context;

/// A parsed template.
#[derive(Clone, Debug, PartialEq)]
pub struct Template {
    source: String,
    segments: Vec<Segment>,
    /// The shell context of each substitution, in order, or the first one
    /// that cannot be quoted safely.
    shell: Result<Vec<Context>, ExprError>,
}

#[derive(Clone, Debug, PartialEq)]
enum Segment {
    Text(String),
    Substitution { expr: Expr, offset: usize },
}

impl Template {
    /// Parses text with `${{ }}` substitutions. An unterminated `${{` or an
    /// invalid expression is an error whose offset points into `src`.
    pub fn parse(src: &str) -> Result<Template, ExprError> {
        let mut segments = Vec::new();
        let mut rest_start = 0;
        while let Some(found) = src[rest_start..].find("${{") {
            let open = rest_start + found;
            if open > rest_start {
                segments.push(Segment::Text(src[rest_start..open].to_owned()));
            }
            let inner_start = open + 3;
            let Some(inner_len) = find_close(&src[inner_start..]) else {
                return Err(ExprError {
                    offset: open,
                    message: "unterminated `${{`".to_owned(),
                    hint: Some("close the expression with `}}`".to_owned()),
                });
            };
            let inner = &src[inner_start..inner_start + inner_len];
            let expr = Expr::parse_at(inner, inner_start)?;
            segments.push(Segment::Substitution { expr, offset: open });
            rest_start = inner_start + inner_len + 2;
        }
        if rest_start < src.len() {
            segments.push(Segment::Text(src[rest_start..].to_owned()));
        }
        let shell = shell_contexts(&segments);
        Ok(Template {
            source: src.to_owned(),
            segments,
            shell,
        })
    }

    /// The text the template was parsed from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Everything the template's substitutions read, in source order.
    pub fn references(&self) -> Vec<Reference> {
        self.expressions()
            .flat_map(|(expr, _)| expr.references())
            .collect()
    }

    /// Each substitution's expression with the byte offset of its `${{`.
    pub fn expressions(&self) -> impl Iterator<Item = (&Expr, usize)> {
        self.segments.iter().filter_map(|segment| match segment {
            Segment::Substitution { expr, offset } => Some((expr, *offset)),
            Segment::Text(_) => None,
        })
    }

    /// Whether every substitution sits where shell quoting keeps its value
    /// data. The error's offset points at the offending `${{`.
    pub fn check_shell(&self) -> Result<(), ExprError> {
        self.shell.as_ref().map(|_| ()).map_err(Clone::clone)
    }

    /// Renders a shell command: every value is quoted for its place.
    pub fn render_shell(&self, ctx: &EvalContext<'_>) -> Result<String, EvalError> {
        let contexts = self
            .shell
            .as_ref()
            .map_err(|error| EvalError::UnsafeShellContext {
                offset: error.offset,
                reason: error.message.clone(),
            })?;
        let mut contexts = contexts.iter();
        let mut out = String::with_capacity(self.source.len());
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Substitution { expr, .. } => {
                    let value = to_text(&expr.evaluate_value(ctx)?);
                    let context = contexts.next().copied().unwrap_or(Context::Unquoted);
                    out.push_str(&shell::quote_for(context, &value));
                }
            }
        }
        Ok(out)
    }

    /// Renders plain text: values are substituted as they are.
    pub fn render_plain(&self, ctx: &EvalContext<'_>) -> Result<String, EvalError> {
        let mut out = String::with_capacity(self.source.len());
        for segment in &self.segments {
            match segment {
                Segment::Text(text) => out.push_str(text),
                Segment::Substitution { expr, .. } => {
                    out.push_str(&to_text(&expr.evaluate_value(ctx)?));
                }
            }
        }
        Ok(out)
    }

    /// Renders to a value: a template that is exactly one `${{ }}` keeps the
    /// value's type (a number stays a number); anything else is a string.
    pub fn render_value(&self, ctx: &EvalContext<'_>) -> Result<Value, EvalError> {
        match self.segments.as_slice() {
            [Segment::Substitution { expr, .. }] => expr.evaluate_value(ctx),
            _ => self.render_plain(ctx).map(Value::String),
        }
    }
}

impl std::fmt::Display for Template {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.source)
    }
}

/// The length of the expression before its closing `}}`, skipping quoted
/// strings (which may contain `}}`).
fn find_close(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let mut quote: Option<u8> = None;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        match quote {
            Some(b'"') if byte == b'\\' => index += 1,
            Some(open) if byte == open => quote = None,
            Some(_) => {}
            None if byte == b'\'' || byte == b'"' => quote = Some(byte),
            None if byte == b'}' && bytes.get(index + 1) == Some(&b'}') => return Some(index),
            None => {}
        }
        index += 1;
    }
    None
}

fn shell_contexts(segments: &[Segment]) -> Result<Vec<Context>, ExprError> {
    let mut scanner = shell::Scanner::new();
    let mut contexts = Vec::new();
    for segment in segments {
        match segment {
            Segment::Text(text) => scanner.text(text),
            Segment::Substitution { offset, .. } => match scanner.substitution() {
                Ok(context) => contexts.push(context),
                Err(reason) => {
                    return Err(ExprError {
                        offset: *offset,
                        message: format!("`${{{{ }}}}` cannot be quoted safely here: {reason}"),
                        hint: Some(
                            "move it outside, or read the value from the environment \
                             (`$SLUICE_VAR_<NAME>`) or from `$SLUICE_INPUTS`"
                                .to_owned(),
                        ),
                    });
                }
            },
        }
    }
    Ok(contexts)
}

/// Quotes `s` as one POSIX shell word: `it's` becomes `'it'\''s'`.
pub fn shell_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        if c == '\'' {
            out.push_str(r"'\''");
        } else {
            out.push(c);
        }
    }
    out.push('\'');
    out
}
