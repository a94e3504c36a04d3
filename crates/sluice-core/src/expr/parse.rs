//! Lexer and recursive-descent parser for `if:` expressions and the inside of
//! `${{ }}`. Nesting is bounded by [`MAX_DEPTH`] so hostile input such as
//! `((((((…` is refused with an error instead of overflowing the stack;
//! chains of `&&` and `||` are kept flat, so long conditions do not count as
//! nesting.

use serde_json::Value;

use super::{BinaryOp, ExprError, Function, Node, RunField};

/// The deepest nesting of parentheses, `!` and comparisons an expression may
/// have.
pub(super) const MAX_DEPTH: usize = 64;

#[derive(Clone, Debug, PartialEq)]
enum Token {
    Ident(String),
    Str(String),
    Number(f64),
    Dot,
    Comma,
    LParen,
    RParen,
    Not,
    And,
    Or,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Token {
    fn describe(&self) -> String {
        match self {
            Token::Ident(name) => format!("`{name}`"),
            Token::Str(_) => "a string".to_owned(),
            Token::Number(_) => "a number".to_owned(),
            Token::Dot => "`.`".to_owned(),
            Token::Comma => "`,`".to_owned(),
            Token::LParen => "`(`".to_owned(),
            Token::RParen => "`)`".to_owned(),
            Token::Not => "`!`".to_owned(),
            Token::And => "`&&`".to_owned(),
            Token::Or => "`||`".to_owned(),
            Token::Eq => "`==`".to_owned(),
            Token::Ne => "`!=`".to_owned(),
            Token::Lt => "`<`".to_owned(),
            Token::Le => "`<=`".to_owned(),
            Token::Gt => "`>`".to_owned(),
            Token::Ge => "`>=`".to_owned(),
        }
    }
}

fn error(offset: usize, message: impl Into<String>) -> ExprError {
    ExprError {
        offset,
        message: message.into(),
        hint: None,
    }
}

fn is_ident_start(c: char) -> bool {
    c.is_ascii_alphabetic() || c == '_'
}

fn is_ident_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

/// Splits `src` into tokens with their byte offsets (relative to `base`).
fn lex(src: &str, base: usize) -> Result<Vec<(Token, usize)>, ExprError> {
    let mut tokens = Vec::new();
    let mut chars = src.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        let offset = base + start;
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let two = src.get(start..start + 2);
        let token = match (c, two) {
            (_, Some("==")) => Some((Token::Eq, 2)),
            (_, Some("!=")) => Some((Token::Ne, 2)),
            (_, Some("<=")) => Some((Token::Le, 2)),
            (_, Some(">=")) => Some((Token::Ge, 2)),
            (_, Some("&&")) => Some((Token::And, 2)),
            (_, Some("||")) => Some((Token::Or, 2)),
            ('<', _) => Some((Token::Lt, 1)),
            ('>', _) => Some((Token::Gt, 1)),
            ('!', _) => Some((Token::Not, 1)),
            ('.', _) => Some((Token::Dot, 1)),
            (',', _) => Some((Token::Comma, 1)),
            ('(', _) => Some((Token::LParen, 1)),
            (')', _) => Some((Token::RParen, 1)),
            _ => None,
        };
        if let Some((token, len)) = token {
            for _ in 0..len {
                chars.next();
            }
            tokens.push((token, offset));
            continue;
        }
        if c == '\'' || c == '"' {
            chars.next();
            let mut text = String::new();
            let mut closed = false;
            while let Some((_, next)) = chars.next() {
                if next == c {
                    // Inside single quotes, `''` is an escaped quote (as in
                    // GitHub Actions); double quotes use a backslash.
                    if c == '\'' && chars.peek().is_some_and(|&(_, after)| after == '\'') {
                        chars.next();
                        text.push('\'');
                        continue;
                    }
                    closed = true;
                    break;
                }
                if c == '"' && next == '\\' {
                    match chars.next() {
                        Some((_, escaped)) => text.push(escaped),
                        None => break,
                    }
                    continue;
                }
                text.push(next);
            }
            if !closed {
                return Err(error(offset, "unterminated string"));
            }
            tokens.push((Token::Str(text), offset));
            continue;
        }
        let starts_number = c.is_ascii_digit()
            || (c == '-'
                && src[start + 1..]
                    .chars()
                    .next()
                    .is_some_and(|next| next.is_ascii_digit()));
        if starts_number {
            let mut end = start + c.len_utf8();
            chars.next();
            while let Some(&(index, next)) = chars.peek() {
                if next.is_ascii_alphanumeric() || next == '.' {
                    end = index + next.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            let text = &src[start..end];
            let number = parse_number(text)
                .ok_or_else(|| error(offset, format!("`{text}` is not a number")))?;
            tokens.push((Token::Number(number), offset));
            continue;
        }
        if is_ident_start(c) {
            let mut end = start;
            while let Some(&(index, next)) = chars.peek() {
                if is_ident_char(next) {
                    end = index + next.len_utf8();
                    chars.next();
                } else {
                    break;
                }
            }
            tokens.push((Token::Ident(src[start..end].to_owned()), offset));
            continue;
        }
        let hint = match c {
            '=' | '&' | '|' => Some(format!("did you mean `{c}{c}`?")),
            '$' => Some("`${{ }}` may only wrap the whole condition".to_owned()),
            _ => None,
        };
        return Err(ExprError {
            offset,
            message: format!("unexpected character `{c}`"),
            hint,
        });
    }
    Ok(tokens)
}

fn parse_number(text: &str) -> Option<f64> {
    if let Some(hex) = text.strip_prefix("0x") {
        return i64::from_str_radix(hex, 16).ok().map(|n| n as f64);
    }
    text.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Parses `src` (the expression without any `${{ }}` wrapper); offsets in
/// errors are `base` plus the byte offset within `src`.
pub(super) fn parse(src: &str, base: usize) -> Result<Node, ExprError> {
    let tokens = lex(src, base)?;
    let mut parser = Parser {
        tokens,
        position: 0,
        end: base + src.len(),
    };
    if parser.tokens.is_empty() {
        return Err(error(base, "empty expression"));
    }
    let node = parser.or(0)?;
    if let Some((token, offset)) = parser.tokens.get(parser.position) {
        return Err(error(
            *offset,
            format!(
                "unexpected {} after the end of the expression",
                token.describe()
            ),
        ));
    }
    Ok(node)
}

struct Parser {
    tokens: Vec<(Token, usize)>,
    position: usize,
    end: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.position).map(|(token, _)| token)
    }

    fn offset(&self) -> usize {
        self.tokens
            .get(self.position)
            .map_or(self.end, |(_, offset)| *offset)
    }

    fn next(&mut self) -> Option<(Token, usize)> {
        let token = self.tokens.get(self.position).cloned();
        if token.is_some() {
            self.position += 1;
        }
        token
    }

    fn eat(&mut self, token: &Token) -> bool {
        if self.peek() == Some(token) {
            self.position += 1;
            true
        } else {
            false
        }
    }

    fn check_depth(&self, depth: usize) -> Result<(), ExprError> {
        if depth > MAX_DEPTH {
            return Err(ExprError {
                offset: self.offset(),
                message: format!("expression is nested more than {MAX_DEPTH} levels deep"),
                hint: Some("split the condition or remove redundant parentheses".to_owned()),
            });
        }
        Ok(())
    }

    fn or(&mut self, depth: usize) -> Result<Node, ExprError> {
        self.check_depth(depth)?;
        let first = self.and(depth)?;
        let mut operands = vec![first];
        while self.eat(&Token::Or) {
            operands.push(self.and(depth)?);
        }
        Ok(if operands.len() == 1 {
            operands.remove(0)
        } else {
            Node::Or(operands)
        })
    }

    fn and(&mut self, depth: usize) -> Result<Node, ExprError> {
        let first = self.comparison(depth)?;
        let mut operands = vec![first];
        while self.eat(&Token::And) {
            operands.push(self.comparison(depth)?);
        }
        Ok(if operands.len() == 1 {
            operands.remove(0)
        } else {
            Node::And(operands)
        })
    }

    fn comparison(&mut self, depth: usize) -> Result<Node, ExprError> {
        let mut left = self.unary(depth)?;
        let mut nesting = depth;
        loop {
            let op = match self.peek() {
                Some(Token::Eq) => BinaryOp::Eq,
                Some(Token::Ne) => BinaryOp::Ne,
                Some(Token::Lt) => BinaryOp::Lt,
                Some(Token::Le) => BinaryOp::Le,
                Some(Token::Gt) => BinaryOp::Gt,
                Some(Token::Ge) => BinaryOp::Ge,
                _ => return Ok(left),
            };
            self.position += 1;
            nesting += 1;
            self.check_depth(nesting)?;
            let right = self.unary(depth)?;
            left = Node::Binary(op, Box::new(left), Box::new(right));
        }
    }

    fn unary(&mut self, depth: usize) -> Result<Node, ExprError> {
        self.check_depth(depth)?;
        if self.eat(&Token::Not) {
            let operand = self.unary(depth + 1)?;
            return Ok(Node::Not(Box::new(operand)));
        }
        self.primary(depth)
    }

    fn primary(&mut self, depth: usize) -> Result<Node, ExprError> {
        let offset = self.offset();
        let Some((token, _)) = self.next() else {
            return Err(error(offset, "the expression ends too early"));
        };
        match token {
            Token::LParen => {
                let inner = self.or(depth + 1)?;
                if !self.eat(&Token::RParen) {
                    return Err(error(self.offset(), "expected `)`"));
                }
                Ok(inner)
            }
            Token::Str(text) => Ok(Node::Literal(Value::String(text))),
            Token::Number(number) => Ok(Node::Literal(number_value(number))),
            Token::Ident(name) => self.ident(name, offset, depth),
            other => Err(error(
                offset,
                format!("expected a value, found {}", other.describe()),
            )),
        }
    }

    fn ident(&mut self, name: String, offset: usize, depth: usize) -> Result<Node, ExprError> {
        match name.as_str() {
            "true" => return Ok(Node::Literal(Value::Bool(true))),
            "false" => return Ok(Node::Literal(Value::Bool(false))),
            "null" => return Ok(Node::Literal(Value::Null)),
            _ => {}
        }
        if self.peek() == Some(&Token::LParen) {
            self.position += 1;
            return self.call(&name, offset, depth);
        }
        match name.as_str() {
            "vars" => {
                let variable = self.segment("a variable name after `vars.`")?;
                Ok(Node::Var(variable))
            }
            "run" => {
                let (field, field_offset) =
                    self.segment_at("`id`, `pipeline` or `attempt` after `run.`")?;
                let field = match field.as_str() {
                    "id" => RunField::Id,
                    "pipeline" => RunField::Pipeline,
                    "attempt" => RunField::Attempt,
                    _ => {
                        return Err(ExprError {
                            offset: field_offset,
                            message: format!("unknown field `run.{field}`"),
                            hint: Some("use run.id, run.pipeline or run.attempt".to_owned()),
                        });
                    }
                };
                Ok(Node::Run(field))
            }
            "blocks" => {
                let block = self.segment("a block id after `blocks.`")?;
                let (field, field_offset) =
                    self.segment_at("`outputs` or `status` after the block id")?;
                match field.as_str() {
                    "status" => Ok(Node::Status(block)),
                    "outputs" => {
                        let key = self.segment("an output key after `outputs.`")?;
                        Ok(Node::Output(block, key))
                    }
                    _ => Err(ExprError {
                        offset: field_offset,
                        message: format!("unknown field `blocks.{block}.{field}`"),
                        hint: Some(format!(
                            "use blocks.{block}.outputs.KEY or blocks.{block}.status"
                        )),
                    }),
                }
            }
            _ => Err(ExprError {
                offset,
                message: format!("unknown name `{name}`"),
                hint: Some(
                    "references start with `vars.`, `blocks.` or `run.`; quote text as 'text'"
                        .to_owned(),
                ),
            }),
        }
    }

    /// Reads `.NAME`; returns the name and its offset.
    fn segment_at(&mut self, expected: &str) -> Result<(String, usize), ExprError> {
        if !self.eat(&Token::Dot) {
            return Err(error(self.offset(), format!("expected {expected}")));
        }
        let offset = self.offset();
        match self.next() {
            Some((Token::Ident(name), _)) => Ok((name, offset)),
            _ => Err(error(offset, format!("expected {expected}"))),
        }
    }

    fn segment(&mut self, expected: &str) -> Result<String, ExprError> {
        self.segment_at(expected).map(|(name, _)| name)
    }

    fn call(&mut self, name: &str, offset: usize, depth: usize) -> Result<Node, ExprError> {
        let Some(function) = Function::from_name(name) else {
            return Err(ExprError {
                offset,
                message: format!("unknown function `{name}()`"),
                hint: Some(
                    "the functions are success(), failure(), always(), contains(a, b) and \
                     startsWith(a, b)"
                        .to_owned(),
                ),
            });
        };
        let mut arguments = Vec::new();
        if !self.eat(&Token::RParen) {
            loop {
                arguments.push(self.or(depth + 1)?);
                if self.eat(&Token::Comma) {
                    continue;
                }
                if self.eat(&Token::RParen) {
                    break;
                }
                return Err(error(self.offset(), "expected `,` or `)`"));
            }
        }
        let arity = function.arity();
        if arguments.len() != arity {
            return Err(error(
                offset,
                format!(
                    "`{name}()` takes {arity} argument{}, found {}",
                    if arity == 1 { "" } else { "s" },
                    arguments.len()
                ),
            ));
        }
        Ok(Node::Call(function, arguments))
    }
}

/// Integers stay integers, so `${{ 3 }}` renders as `3`, not `3.0`.
pub(super) fn number_value(number: f64) -> Value {
    if number.fract() == 0.0 && number.abs() < 9.0e15 {
        Value::from(number as i64)
    } else {
        serde_json::Number::from_f64(number).map_or(Value::Null, Value::Number)
    }
}
