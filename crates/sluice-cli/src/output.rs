//! Printing: aligned tables, JSON, status colours (only on a terminal and
//! never when `NO_COLOR` is set), UTC timestamps and durations.

use std::io::IsTerminal;

use jiff::Timestamp;
use serde::Serialize;

use crate::Failure;

fn colour_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none_or(|value| value.is_empty())
}

pub fn colour_enabled_for_stdout() -> bool {
    colour_allowed() && std::io::stdout().is_terminal()
}

pub fn colour_enabled_for_stderr() -> bool {
    colour_allowed() && std::io::stderr().is_terminal()
}

/// A status name, coloured when `colour` is on.
pub fn status(name: &str, colour: bool) -> String {
    if !colour {
        return name.to_owned();
    }
    let code = match name {
        "completed" => "32",
        "failed" | "upstream_failed" => "31",
        "cancelled" => "33",
        "running" => "36",
        "queued" => "34",
        _ => "2",
    };
    format!("\x1b[{code}m{name}\x1b[0m")
}

/// Visible width of a cell, ignoring ANSI colour sequences.
fn width(text: &str) -> usize {
    let mut count = 0;
    let mut in_escape = false;
    for character in text.chars() {
        if in_escape {
            if character == 'm' {
                in_escape = false;
            }
        } else if character == '\x1b' {
            in_escape = true;
        } else {
            count += 1;
        }
    }
    count
}

/// Renders rows under a header as aligned columns.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|title| title.len()).collect();
    for row in rows {
        for (index, cell) in row.iter().enumerate() {
            if let Some(current) = widths.get_mut(index) {
                *current = (*current).max(width(cell));
            }
        }
    }
    let mut out = String::new();
    let mut push_row = |cells: Vec<&str>| {
        let last = cells.len().saturating_sub(1);
        for (index, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if index < last {
                let pad = widths[index].saturating_sub(width(cell)) + 2;
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push('\n');
    };
    push_row(header.to_vec());
    for row in rows {
        push_row(row.iter().map(String::as_str).collect());
    }
    out
}

/// Prints a value as pretty JSON on stdout.
pub fn print_json<T: Serialize>(value: &T) -> Result<(), Failure> {
    let text = serde_json::to_string_pretty(value).map_err(|error| Failure {
        code: 1,
        message: format!("cannot encode JSON: {error}"),
        hint: None,
    })?;
    println!("{text}");
    Ok(())
}

/// A timestamp in UTC, to the second, saying its zone.
pub fn time(at: Option<Timestamp>) -> String {
    match at {
        Some(at) => at.strftime("%Y-%m-%d %H:%M:%SZ").to_string(),
        None => "-".to_owned(),
    }
}

/// A short human duration: `850ms`, `12.3s`, `4m05s`, `2h10m`.
pub fn duration(from: Option<Timestamp>, to: Option<Timestamp>) -> String {
    match (from, to) {
        (Some(from), Some(to)) => human(to.duration_since(from).as_secs_f64()),
        _ => "-".to_owned(),
    }
}

pub fn human(seconds: f64) -> String {
    let seconds = seconds.max(0.0);
    if seconds < 1.0 {
        format!("{}ms", (seconds * 1000.0).round() as u64)
    } else if seconds < 60.0 {
        format!("{seconds:.1}s")
    } else if seconds < 3600.0 {
        let whole = seconds as u64;
        format!("{}m{:02}s", whole / 60, whole % 60)
    } else {
        let whole = seconds as u64;
        format!("{}h{:02}m", whole / 3600, (whole % 3600) / 60)
    }
}
