//! Human-written durations: `90s`, `10m`, `2h`, `1d`, `500ms`, `1h30m`.
//!
//! Pipeline files, the CLI (`--since 6h`) and the API all spell durations the
//! same way. A YAML integer is read as a number of seconds. `Display` writes
//! the canonical spelling (largest units first, zero parts left out), which
//! parses back to the same value.

use std::fmt;
use std::str::FromStr;

/// A non-negative span of time, written like `1h30m`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Duration(pub std::time::Duration);

/// A duration that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("empty duration")]
    Empty,
    #[error("duration `{0}` has no unit")]
    MissingUnit(String),
    #[error("duration `{text}` has an unknown unit `{unit}`")]
    UnknownUnit { text: String, unit: String },
    #[error("`{0}` is not a duration")]
    Invalid(String),
    #[error("duration `{0}` is too long")]
    Overflow(String),
}

impl ParseError {
    /// How to write a duration; the same remedy fits every variant.
    pub fn hint(&self) -> &'static str {
        "write a duration like 90s, 10m, 2h, 1d, 500ms or 1h30m"
    }
}

const UNITS: [(&str, u128); 5] = [
    ("d", 86_400_000),
    ("h", 3_600_000),
    ("m", 60_000),
    ("s", 1_000),
    ("ms", 1),
];

impl Duration {
    pub const ZERO: Duration = Duration(std::time::Duration::ZERO);

    pub fn from_secs(seconds: u64) -> Duration {
        Duration(std::time::Duration::from_secs(seconds))
    }

    pub fn from_millis(millis: u64) -> Duration {
        Duration(std::time::Duration::from_millis(millis))
    }

    pub fn as_std(self) -> std::time::Duration {
        self.0
    }
}

impl From<std::time::Duration> for Duration {
    fn from(duration: std::time::Duration) -> Self {
        Duration(duration)
    }
}

impl From<Duration> for std::time::Duration {
    fn from(duration: Duration) -> Self {
        duration.0
    }
}

impl FromStr for Duration {
    type Err = ParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(ParseError::Empty);
        }
        let mut rest = trimmed;
        let mut total_millis: u128 = 0;
        while !rest.is_empty() {
            let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
            if digits == 0 {
                return Err(ParseError::Invalid(trimmed.to_owned()));
            }
            let (number, after) = rest.split_at(digits);
            let unit_len = after.bytes().take_while(u8::is_ascii_alphabetic).count();
            let (unit, after) = after.split_at(unit_len);
            if unit.is_empty() {
                return Err(if after.is_empty() {
                    ParseError::MissingUnit(trimmed.to_owned())
                } else {
                    ParseError::Invalid(trimmed.to_owned())
                });
            }
            let Some(&(_, factor)) = UNITS.iter().find(|(name, _)| *name == unit) else {
                return Err(ParseError::UnknownUnit {
                    text: trimmed.to_owned(),
                    unit: unit.to_owned(),
                });
            };
            let number: u128 = number
                .parse()
                .map_err(|_| ParseError::Overflow(trimmed.to_owned()))?;
            total_millis = number
                .checked_mul(factor)
                .and_then(|part| total_millis.checked_add(part))
                .filter(|total| *total <= u128::from(u64::MAX))
                .ok_or_else(|| ParseError::Overflow(trimmed.to_owned()))?;
            rest = after;
        }
        let millis =
            u64::try_from(total_millis).map_err(|_| ParseError::Overflow(trimmed.to_owned()))?;
        Ok(Duration::from_millis(millis))
    }
}

impl fmt::Display for Duration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut millis = self.0.as_millis();
        if millis == 0 {
            return f.write_str("0s");
        }
        for (unit, factor) in UNITS {
            let count = millis / factor;
            if count > 0 {
                write!(f, "{count}{unit}")?;
                millis %= factor;
            }
        }
        Ok(())
    }
}

impl serde::Serialize for Duration {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Duration {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;

        impl serde::de::Visitor<'_> for Visitor {
            type Value = Duration;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration like 90s, 10m or 1h30m, or a number of seconds")
            }

            fn visit_u64<E: serde::de::Error>(self, seconds: u64) -> Result<Duration, E> {
                Ok(Duration::from_secs(seconds))
            }

            fn visit_i64<E: serde::de::Error>(self, seconds: i64) -> Result<Duration, E> {
                u64::try_from(seconds)
                    .map(Duration::from_secs)
                    .map_err(|_| E::custom("a duration cannot be negative"))
            }

            fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<Duration, E> {
                text.parse().map_err(E::custom)
            }
        }

        deserializer.deserialize_any(Visitor)
    }
}

impl schemars::JsonSchema for Duration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "A duration such as `90s`, `10m`, `2h`, `1d`, `500ms` or `1h30m`; an integer is a number of seconds.",
            "oneOf": [
                { "type": "string", "pattern": "^([0-9]+(ms|s|m|h|d))+$" },
                { "type": "integer", "minimum": 0 }
            ]
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_canonical_and_parses_back() {
        for millis in [0, 1, 250, 1_000, 90_000, 5_400_000, 86_400_000, 90_061_001] {
            let duration = Duration::from_millis(millis);
            assert_eq!(duration.to_string().parse::<Duration>(), Ok(duration));
        }
    }
}
