//! How every backend encodes the store's values: timestamps as integer
//! microseconds since the Unix epoch, statuses as their names, unsigned
//! counters as checked 64-bit integers, and the bound on listings. Keeping
//! one encoding lets the backends share these conversions and compare
//! timestamps as plain integers in their indexes.

use jiff::Timestamp;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sluice_core::status::{BlockRunStatus, RunStatus};
use sluice_core::vars::ResolvedVariables;

use crate::{Error, Resolution, Result, RunWindow, TryStatus};

/// The most rows a listing without its own limit returns; it bounds every
/// query even where the caller expects "all" (a run's block runs or tries).
pub(crate) const MAX_ROWS: i64 = 10_000;

/// Converts a caller's `limit` into a bounded SQL `LIMIT`.
pub(crate) fn bounded_limit(limit: u32) -> i64 {
    i64::from(limit).clamp(0, MAX_ROWS)
}

/// What the run listing's text search looks in, written once per run
/// (`pipeline_run.search_text`): the id, the pipeline and every non-secret
/// variable value (a string as itself, any other value as JSON), ASCII
/// lower-cased and separated by U+001F, which no search contains, without
/// NUL characters. Secret
/// values are left out: a match would tell a caller what a secret holds.
/// The run's error is searched in its own column, since it changes.
pub(crate) fn search_text(id: &str, pipeline: &str, variables: &ResolvedVariables) -> String {
    let mut text = format!("{id}\u{1f}{pipeline}");
    for variable in variables.0.values().filter(|variable| !variable.secret) {
        text.push('\u{1f}');
        match &variable.value {
            serde_json::Value::String(value) => text.push_str(value),
            other => text.push_str(&other.to_string()),
        }
    }
    // PostgreSQL's text holds no NUL, and no search contains one.
    text.retain(|character| character != '\0');
    text.make_ascii_lowercase();
    text
}

pub(crate) fn micros(at: Timestamp) -> i64 {
    at.as_microsecond()
}

pub(crate) fn opt_micros(at: Option<Timestamp>) -> Option<i64> {
    at.map(micros)
}

pub(crate) fn timestamp(micros: i64) -> Result<Timestamp> {
    Timestamp::from_microsecond(micros)
        .map_err(|_| Error::Corrupt(format!("timestamp {micros} is out of range")))
}

pub(crate) fn opt_timestamp(micros: Option<i64>) -> Result<Option<Timestamp>> {
    micros.map(timestamp).transpose()
}

/// A run's window from its three columns, which are written together: a run
/// with any of them missing has no window.
pub(crate) fn run_window(
    scheduled_for: Option<Timestamp>,
    window_start: Option<Timestamp>,
    window_end: Option<Timestamp>,
) -> Option<RunWindow> {
    Some(RunWindow {
        scheduled_for: scheduled_for?,
        window_start: window_start?,
        window_end: window_end?,
    })
}

/// What resolved a failed run; the three columns are set together.
pub(crate) fn resolution(
    at: Option<Timestamp>,
    run_id: Option<String>,
    attempt: Option<u32>,
) -> Option<Resolution> {
    Some(Resolution {
        at: at?,
        run_id: sluice_core::ids::RunId(run_id?),
        attempt: attempt?,
    })
}

pub(crate) fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String> {
    serde_json::to_string(value)
        .map_err(|error| Error::Corrupt(format!("cannot encode a value as JSON: {error}")))
}

pub(crate) fn from_json<T: DeserializeOwned>(text: &str, what: &str) -> Result<T> {
    serde_json::from_str(text)
        .map_err(|error| Error::Corrupt(format!("{what} is not valid JSON: {error}")))
}

/// A stored integer that must fit the record's narrower type.
pub(crate) fn narrow<T: TryFrom<i64>>(value: i64, column: &str) -> Result<T> {
    T::try_from(value).map_err(|_| Error::Corrupt(format!("`{column}` {value} is out of range")))
}

pub(crate) fn run_status(name: &str) -> Result<RunStatus> {
    name.parse()
        .map_err(|_| Error::Corrupt(format!("unknown run status `{name}`")))
}

pub(crate) fn block_run_status(name: &str) -> Result<BlockRunStatus> {
    name.parse()
        .map_err(|_| Error::Corrupt(format!("unknown block run status `{name}`")))
}

pub(crate) fn try_status(name: &str) -> Result<TryStatus> {
    TryStatus::parse(name).ok_or_else(|| Error::Corrupt(format!("unknown try status `{name}`")))
}
