//! Finds the POSIX shell quoting context of every `${{ }}` in a `run:`
//! command, so a value can be quoted for the place it lands in.
//!
//! `echo ${{ vars.x }}`, `echo '${{ vars.x }}'` and `echo "${{ vars.x }}"`
//! are all common, and each needs different quoting for the value to stay
//! data. The scanner follows single and double quotes, `$( … )`, comments and
//! here-documents. Places where a value cannot be quoted safely with plain
//! text (inside backquotes, `${ … }`, `$(( … ))`, `(( … ))`, `$' … '`, a
//! here-document, or right after `$` or a backslash) are refused: the caller
//! reports them when the pipeline is loaded, with the remedy of reading the
//! variable from the environment instead.
//!
//! A value is still only data to the shell: a script that passes it to
//! `eval`, `sh -c` or bash arithmetic (`let`, `[[ $x -eq 1 ]]`) chooses to
//! run it, exactly as it would with `$SLUICE_VAR_<NAME>`.

/// Where a substitution lands, which decides how its value is quoted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Context {
    /// Outside quotes: the value becomes one single-quoted word.
    Unquoted,
    /// Inside `'…'`: only `'` needs escaping (as `'\''`).
    SingleQuoted,
    /// Inside `"…"`: `\`, `$`, `` ` `` and `"` are escaped with a backslash.
    DoubleQuoted,
    /// Inside a `#` comment: the value must not contain a line break, which
    /// would end the comment.
    Comment,
}

type Rest<'a> = std::iter::Peekable<std::str::Chars<'a>>;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Frame {
    /// Top level or inside `$( … )`, with the count of open `(`.
    Command {
        parens: usize,
        nested: bool,
    },
    Single,
    Double,
    Backquote,
    /// `${ … }`, or bash's old arithmetic `$[ … ]`, closed by `close`.
    Brace {
        close: char,
    },
    Arithmetic {
        parens: usize,
    },
    AnsiC,
}

#[derive(Clone, Debug)]
struct Heredoc {
    delimiter: String,
    strip_tabs: bool,
}

/// What the scanner is doing besides following frames.
#[derive(Clone, Debug)]
enum Mode {
    Normal,
    Comment,
    /// After `<<` (and an optional `-`), reading the delimiter word.
    HeredocWord {
        strip_tabs: bool,
        word: String,
        started: bool,
    },
    HeredocBody {
        heredoc: Heredoc,
        line: String,
    },
}

pub(super) struct Scanner {
    stack: Vec<Frame>,
    mode: Mode,
    pending: Vec<Heredoc>,
    escape_next: bool,
    after_dollar: bool,
    word_start: bool,
}

impl Scanner {
    pub(super) fn new() -> Scanner {
        Scanner {
            stack: vec![Frame::Command {
                parens: 0,
                nested: false,
            }],
            mode: Mode::Normal,
            pending: Vec::new(),
            escape_next: false,
            after_dollar: false,
            word_start: true,
        }
    }

    fn top(&self) -> Frame {
        self.stack.last().copied().unwrap_or(Frame::Command {
            parens: 0,
            nested: false,
        })
    }

    /// The context of a substitution at the current position, or why there
    /// is none that is safe.
    pub(super) fn substitution(&mut self) -> Result<Context, String> {
        let context = self.context();
        // The substitution is part of a word.
        self.word_start = false;
        self.after_dollar = false;
        if let Mode::HeredocBody { line, .. } = &mut self.mode {
            line.push('\u{0}');
        }
        context
    }

    fn context(&self) -> Result<Context, String> {
        match &self.mode {
            Mode::Comment => return Ok(Context::Comment),
            Mode::HeredocWord { .. } => {
                return Err("it is part of a here-document delimiter".to_owned());
            }
            Mode::HeredocBody { .. } => {
                return Err("it is inside a here-document".to_owned());
            }
            Mode::Normal => {}
        }
        if self.escape_next {
            return Err("it directly follows a backslash".to_owned());
        }
        if self.after_dollar {
            return Err("it directly follows `$`".to_owned());
        }
        for frame in &self.stack {
            let place = match frame {
                Frame::Command { .. } | Frame::Single | Frame::Double => continue,
                Frame::Backquote => "inside backquotes",
                Frame::Brace { close: '}' } => "inside `${ … }`",
                Frame::Brace { .. } => "inside `$[ … ]`",
                Frame::Arithmetic { .. } => "inside `$(( … ))`",
                Frame::AnsiC => "inside `$' … '`",
            };
            return Err(format!("it is {place}"));
        }
        Ok(match self.top() {
            Frame::Single => Context::SingleQuoted,
            Frame::Double => Context::DoubleQuoted,
            _ => Context::Unquoted,
        })
    }

    /// Follows a piece of literal command text.
    pub(super) fn text(&mut self, text: &str) {
        let mut chars = text.chars().peekable();
        while let Some(c) = chars.next() {
            let next = chars.peek().copied();
            self.char(c, next, &mut chars);
        }
    }

    fn char(&mut self, c: char, next: Option<char>, rest: &mut Rest<'_>) {
        match &mut self.mode {
            Mode::Comment => {
                if c == '\n' {
                    self.mode = Mode::Normal;
                    self.newline();
                }
                return;
            }
            Mode::HeredocBody { heredoc, line } => {
                if c == '\n' {
                    let candidate = if heredoc.strip_tabs {
                        line.trim_start_matches('\t')
                    } else {
                        line.as_str()
                    };
                    if candidate == heredoc.delimiter {
                        self.mode = Mode::Normal;
                        self.word_start = true;
                        self.start_heredoc_body();
                    } else {
                        line.clear();
                    }
                } else {
                    line.push(c);
                }
                return;
            }
            Mode::HeredocWord {
                strip_tabs,
                word,
                started,
            } => {
                if !*started && word.is_empty() && c == '-' && !*strip_tabs {
                    *strip_tabs = true;
                    return;
                }
                if !*started && (c == ' ' || c == '\t') {
                    return;
                }
                let ends_word = c.is_whitespace() || ";&|()<>".contains(c);
                if !ends_word {
                    *started = true;
                    if !matches!(c, '\'' | '"' | '\\') {
                        word.push(c);
                    }
                    return;
                }
                let heredoc = Heredoc {
                    delimiter: std::mem::take(word),
                    strip_tabs: *strip_tabs,
                };
                if !heredoc.delimiter.is_empty() {
                    self.pending.push(heredoc);
                }
                self.mode = Mode::Normal;
                // The character that ended the word is ordinary text.
            }
            Mode::Normal => {}
        }

        if self.escape_next {
            self.escape_next = false;
            self.word_start = false;
            return;
        }
        self.after_dollar = false;
        match self.top() {
            Frame::Single => {
                if c == '\'' {
                    self.stack.pop();
                }
            }
            Frame::AnsiC => match c {
                '\\' => self.escape_next = true,
                '\'' => {
                    self.stack.pop();
                }
                _ => {}
            },
            Frame::Double => self.double_char(c, next, rest),
            Frame::Backquote => match c {
                '\\' => self.escape_next = true,
                '`' => {
                    self.stack.pop();
                }
                _ => {}
            },
            Frame::Brace { close } => match c {
                _ if c == close => {
                    self.stack.pop();
                }
                _ => {
                    self.common_char(c, next, rest);
                }
            },
            Frame::Arithmetic { parens } => match c {
                '(' => self.replace_top(Frame::Arithmetic { parens: parens + 1 }),
                ')' if parens == 0 && next == Some(')') => {
                    rest.next();
                    self.stack.pop();
                }
                ')' => self.replace_top(Frame::Arithmetic {
                    parens: parens.saturating_sub(1),
                }),
                _ => {
                    self.common_char(c, next, rest);
                }
            },
            Frame::Command { parens, nested } => {
                self.command_char(c, next, rest, parens, nested);
            }
        }
    }

    fn replace_top(&mut self, frame: Frame) {
        if let Some(top) = self.stack.last_mut() {
            *top = frame;
        }
    }

    /// Quotes and expansions, which start the same way in most frames.
    /// Returns whether `c` was one of them.
    fn common_char(&mut self, c: char, next: Option<char>, rest: &mut Rest<'_>) -> bool {
        match c {
            '\\' => self.escape_next = true,
            '\'' => self.stack.push(Frame::Single),
            '"' => self.stack.push(Frame::Double),
            '`' => self.stack.push(Frame::Backquote),
            '$' => self.dollar(next, rest, true),
            _ => return false,
        }
        true
    }

    fn dollar(&mut self, next: Option<char>, rest: &mut Rest<'_>, ansi_c: bool) {
        match next {
            Some('(') => {
                rest.next();
                if rest.peek() == Some(&'(') {
                    rest.next();
                    self.stack.push(Frame::Arithmetic { parens: 0 });
                } else {
                    self.stack.push(Frame::Command {
                        parens: 0,
                        nested: true,
                    });
                    self.word_start = true;
                }
            }
            Some('{') => {
                rest.next();
                self.stack.push(Frame::Brace { close: '}' });
            }
            Some('[') => {
                rest.next();
                self.stack.push(Frame::Brace { close: ']' });
            }
            Some('\'') if ansi_c => {
                rest.next();
                self.stack.push(Frame::AnsiC);
            }
            // `$` at the end of a piece of text: it prefixes whatever comes
            // next, which may be a substitution.
            None => self.after_dollar = true,
            Some(_) => {}
        }
    }

    fn double_char(&mut self, c: char, next: Option<char>, rest: &mut Rest<'_>) {
        match c {
            '"' => {
                self.stack.pop();
            }
            '\\' => self.escape_next = true,
            '`' => self.stack.push(Frame::Backquote),
            '$' => self.dollar(next, rest, false),
            _ => {}
        }
    }

    fn command_char(
        &mut self,
        c: char,
        next: Option<char>,
        rest: &mut Rest<'_>,
        parens: usize,
        nested: bool,
    ) {
        if c == '#' && self.word_start {
            self.mode = Mode::Comment;
            return;
        }
        if c == '<' && next == Some('<') {
            rest.next();
            if rest.peek() == Some(&'<') {
                // `<<<` is a here-string, an ordinary word follows.
                rest.next();
            } else {
                self.mode = Mode::HeredocWord {
                    strip_tabs: false,
                    word: String::new(),
                    started: false,
                };
            }
            self.word_start = true;
            return;
        }
        if c == '(' && next == Some('(') && self.word_start {
            // `(( … ))` and `for (( … ))`: arithmetic, where quotes do not
            // protect anything.
            rest.next();
            self.stack.push(Frame::Arithmetic { parens: 0 });
            return;
        }
        if self.common_char(c, next, rest) {
            self.word_start = false;
            return;
        }
        match c {
            '(' if nested => self.replace_top(Frame::Command {
                parens: parens + 1,
                nested,
            }),
            ')' if nested && parens == 0 => {
                self.stack.pop();
            }
            ')' if nested => self.replace_top(Frame::Command {
                parens: parens - 1,
                nested,
            }),
            '\n' => self.newline(),
            _ => {}
        }
        self.word_start = c.is_whitespace() || ";&|()<>".contains(c);
    }

    /// A line break in command context starts any pending here-document.
    fn newline(&mut self) {
        self.word_start = true;
        if matches!(self.top(), Frame::Command { .. }) {
            self.start_heredoc_body();
        }
    }

    fn start_heredoc_body(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let heredoc = self.pending.remove(0);
        self.mode = Mode::HeredocBody {
            heredoc,
            line: String::new(),
        };
    }
}

/// Quotes `value` for `context`.
pub(super) fn quote_for(context: Context, value: &str) -> String {
    match context {
        Context::Unquoted => super::shell_quote(value),
        Context::SingleQuoted => value.replace('\'', r"'\''"),
        Context::DoubleQuoted => {
            let mut out = String::with_capacity(value.len());
            for c in value.chars() {
                if matches!(c, '\\' | '$' | '`' | '"') {
                    out.push('\\');
                }
                out.push(c);
            }
            out
        }
        Context::Comment => super::shell_quote(&value.replace(['\n', '\r'], " ")),
    }
}
