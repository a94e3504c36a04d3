//! How values read on a page: timestamps in UTC with their zone (the
//! script switches them to local time), durations, sizes, and escaping for
//! the markup built outside templates (SVG).

use jiff::{SignedDuration, Timestamp};

/// Escapes text for HTML and SVG content and attribute values.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

/// `<time datetime="RFC 3339">2026-11-23 14:05:03 UTC</time>`.
pub fn time(at: Timestamp) -> String {
    let at = at.round(jiff::Unit::Second).unwrap_or(at);
    format!(
        "<time datetime=\"{}\">{}</time>",
        at,
        at.strftime("%Y-%m-%d %H:%M:%S UTC")
    )
}

/// [`time`], or a dash.
pub fn maybe_time(at: Option<Timestamp>) -> String {
    at.map_or_else(|| "–".to_owned(), time)
}

/// A duration as people read it: `850ms`, `42s`, `3m 05s`, `2h 10m`.
pub fn duration(span: SignedDuration) -> String {
    let millis = span.as_millis().max(0);
    let seconds = millis / 1000;
    if millis < 1000 {
        format!("{millis}ms")
    } else if seconds < 60 {
        format!("{}.{}s", seconds, (millis % 1000) / 100)
    } else if seconds < 3600 {
        format!("{}m {:02}s", seconds / 60, seconds % 60)
    } else {
        format!("{}h {:02}m", seconds / 3600, (seconds % 3600) / 60)
    }
}

/// How long something ran: until it finished, or until now.
pub fn elapsed(started: Option<Timestamp>, finished: Option<Timestamp>, now: Timestamp) -> String {
    match started {
        Some(started) => duration(finished.unwrap_or(now).duration_since(started)),
        None => "–".to_owned(),
    }
}

/// A byte count: `812 B`, `4.1 KiB`, `12.0 MiB`.
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if bytes < 1024 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// A value of a variable or output as text: strings as they are, other
/// JSON as JSON.
pub fn value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// A filter's point in time: `2026-11-23`, `2026-11-23T14:05[:03]` (UTC)
/// or RFC 3339 with an offset.
pub fn parse_instant(text: &str) -> Option<Timestamp> {
    let text = text.trim();
    if let Ok(at) = text.parse::<Timestamp>() {
        return Some(at);
    }
    if let Ok(at) = text.parse::<jiff::civil::DateTime>() {
        return at
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|at| at.timestamp());
    }
    if let Ok(date) = text.parse::<jiff::civil::Date>() {
        return date
            .to_zoned(jiff::tz::TimeZone::UTC)
            .ok()
            .map(|at| at.timestamp());
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_say_their_zone() {
        let at: Timestamp = "2026-11-23T14:05:03.4Z".parse().unwrap();
        assert_eq!(
            time(at),
            "<time datetime=\"2026-11-23T14:05:03Z\">2026-11-23 14:05:03 UTC</time>"
        );
    }

    #[test]
    fn filter_instants() {
        let day = parse_instant("2026-11-23").unwrap();
        assert_eq!(day.to_string(), "2026-11-23T00:00:00Z");
        let local = parse_instant("2026-11-23T14:05").unwrap();
        assert_eq!(local.to_string(), "2026-11-23T14:05:00Z");
        let offset = parse_instant("2026-11-23T14:05:00+01:00").unwrap();
        assert_eq!(offset.to_string(), "2026-11-23T13:05:00Z");
        assert!(parse_instant("yesterday").is_none());
    }

    #[test]
    fn durations_and_sizes() {
        assert_eq!(duration(SignedDuration::from_millis(850)), "850ms");
        assert_eq!(duration(SignedDuration::from_secs(185)), "3m 05s");
        assert_eq!(size(812), "812 B");
        assert_eq!(size(4200), "4.1 KiB");
        assert_eq!(escape("<a href=\"x\">"), "&lt;a href=&quot;x&quot;&gt;");
    }
}
