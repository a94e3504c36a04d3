//! Positions in a pipeline file: the [`Sp`] wrapper that gives a raw value
//! its line and column, and [`locate`], which turns an offset inside a
//! scalar's text (say, the bad character of an expression) into a position
//! in the file when the scalar is written plainly, quoted on one line, or as
//! a `|` block.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};

/// A 1-based line and column in a pipeline file.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Position {
    pub line: usize,
    pub column: usize,
}

impl Position {
    /// The start of the file, for problems that have no better place.
    pub const START: Position = Position { line: 1, column: 1 };

    pub(crate) fn from_location(location: &serde_saphyr::Location) -> Option<Position> {
        let line = usize::try_from(location.line()).ok()?;
        let column = usize::try_from(location.column()).ok()?;
        (line >= 1 && column >= 1).then_some(Position { line, column })
    }
}

/// A raw value with the position of its text. Positions are those of the
/// place the value is used: an alias (`*defaults`) reports where the alias
/// is, not where its anchor was defined.
#[derive(Clone, Debug)]
pub(crate) struct Sp<T> {
    pub(crate) value: T,
    pub(crate) pos: Position,
    /// Byte offset of the value's own text, when it is written at `pos`
    /// (not reached through an alias).
    pub(crate) byte: Option<usize>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Sp<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let spanned = serde_saphyr::Spanned::<T>::deserialize(deserializer)?;
        let pos = Position::from_location(&spanned.referenced)
            .or_else(|| Position::from_location(&spanned.defined))
            .unwrap_or(Position::START);
        let byte = (spanned.referenced == spanned.defined)
            .then(|| spanned.referenced.span().byte_offset())
            .flatten()
            .and_then(|offset| usize::try_from(offset).ok());
        Ok(Sp {
            value: spanned.value,
            pos,
            byte,
        })
    }
}

impl<T: schemars::JsonSchema> schemars::JsonSchema for Sp<T> {
    fn inline_schema() -> bool {
        T::inline_schema()
    }

    fn schema_name() -> Cow<'static, str> {
        T::schema_name()
    }

    fn schema_id() -> Cow<'static, str> {
        T::schema_id()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        T::json_schema(generator)
    }
}

/// The file position of byte `offset` within the text of the string scalar
/// `value` written at `at`. Falls back to the scalar's own position when its
/// spelling in the file (escapes, folding) does not map one to one.
pub(crate) fn locate(source: &str, at: &Sp<String>, offset: usize) -> Position {
    let value = at.value.as_str();
    let Some(start) = at.byte else {
        return at.pos;
    };
    let Some(written) = source.get(start..) else {
        return at.pos;
    };
    let offset = offset.min(value.len());
    let Some(before) = value.get(..offset) else {
        return at.pos;
    };
    let single_line = !value.contains('\n');
    if single_line && written.starts_with(value) {
        return Position {
            line: at.pos.line,
            column: at.pos.column + before.chars().count(),
        };
    }
    if single_line
        && (written.starts_with('\'') || written.starts_with('"'))
        && written[1..].starts_with(value)
        && !value.contains(['\'', '"', '\\'])
    {
        return Position {
            line: at.pos.line,
            column: at.pos.column + 1 + before.chars().count(),
        };
    }
    // A `|` block: the position is that of the indicator or of the first
    // line of content, depending on the parser.
    let first_line = if written.starts_with('|') {
        at.pos.line + 1
    } else {
        at.pos.line
    };
    locate_in_literal_block(source, first_line, value, before).unwrap_or(at.pos)
}

/// A `|` block scalar: its lines are the value's lines, indented, from
/// `first_line` on. The position is checked against the file's text before
/// it is trusted.
fn locate_in_literal_block(
    source: &str,
    first_line: usize,
    value: &str,
    before: &str,
) -> Option<Position> {
    let value_line = before.matches('\n').count();
    let column_in_line = before
        .rsplit_once('\n')
        .map_or(before, |(_, last)| last)
        .chars()
        .count();
    let expected = value.lines().nth(value_line)?;
    let file_line_number = first_line + value_line;
    let file_line = source.lines().nth(file_line_number - 1)?;
    let indent = file_line.len() - file_line.trim_start_matches(' ').len();
    if file_line.get(indent..)? != expected {
        return None;
    }
    Some(Position {
        line: file_line_number,
        column: indent + column_in_line + 1,
    })
}
