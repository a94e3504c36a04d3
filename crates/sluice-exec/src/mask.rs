//! Secret masking: every known spelling of a secret value becomes `***`.
//!
//! A block rarely prints a secret verbatim by accident; it prints it inside a
//! URL, an `Authorization: Basic` header or a JSON dump. So besides the raw
//! value the masker looks for its base64 forms (standard and URL-safe, with
//! and without padding) and its percent-encoded forms as the common encoders
//! write them. Each line of a multi-line secret (a PEM key) is also a pattern,
//! because logs are split into lines before they are masked.

use std::borrow::Cow;
use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

/// What a secret is replaced with.
pub const MASK: &str = "***";

/// Lines of a multi-line secret shorter than this are not patterns of their
/// own: a short base64 tail such as `==` would mask harmless text everywhere.
const MIN_LINE_FRAGMENT: usize = 4;

/// Replaces secret values in text. Cheap to clone; build it once per try.
#[derive(Clone, Default)]
pub struct Masker {
    /// Distinct non-empty patterns, longest first.
    patterns: Vec<String>,
}

impl fmt::Debug for Masker {
    /// Never shows the patterns: they are the secrets.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Masker")
            .field("patterns", &self.patterns.len())
            .finish()
    }
}

impl Masker {
    /// Builds a masker for these secret values; empty values are ignored.
    pub fn new(secrets: &[String]) -> Self {
        let mut patterns = Vec::new();
        for secret in secrets.iter().filter(|secret| !secret.is_empty()) {
            push_spellings(&mut patterns, secret);
            if secret.contains('\n') {
                for line in secret.lines() {
                    let line = line.trim_end_matches('\r');
                    if line.len() >= MIN_LINE_FRAGMENT {
                        patterns.push(line.to_owned());
                    }
                }
            }
        }
        patterns.retain(|pattern| !pattern.is_empty());
        patterns.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        patterns.dedup();
        Self { patterns }
    }

    /// Whether there is nothing to mask.
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Returns `text` with every occurrence of every pattern replaced by
    /// `***`; borrows when there is nothing to replace.
    ///
    /// Occurrences are collected first and overlapping ones merged, so two
    /// secrets sharing characters are hidden together rather than one
    /// replacement breaking up the other and leaving part of it visible.
    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut spans = Vec::new();
        for pattern in &self.patterns {
            let mut from = 0;
            while let Some(offset) = text[from..].find(pattern.as_str()) {
                let start = from + offset;
                spans.push((start, start + pattern.len()));
                // Step one character, not one match, so that overlapping
                // occurrences (`aa` in `aaa`) are all found.
                from = start + text[start..].chars().next().map_or(1, char::len_utf8);
            }
        }
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        spans.sort_unstable();
        let mut masked = String::with_capacity(text.len());
        let mut copied = 0;
        let mut spans = spans.into_iter();
        let Some((mut start, mut end)) = spans.next() else {
            return Cow::Borrowed(text);
        };
        for (next_start, next_end) in spans {
            if next_start < end {
                end = end.max(next_end);
                continue;
            }
            masked.push_str(&text[copied..start]);
            masked.push_str(MASK);
            copied = end;
            (start, end) = (next_start, next_end);
        }
        masked.push_str(&text[copied..start]);
        masked.push_str(MASK);
        masked.push_str(&text[end..]);
        Cow::Owned(masked)
    }
}

/// Pushes the raw value, its base64 forms and its percent-encoded forms.
fn push_spellings(patterns: &mut Vec<String>, secret: &str) {
    patterns.push(secret.to_owned());
    for engine in [&STANDARD, &STANDARD_NO_PAD, &URL_SAFE, &URL_SAFE_NO_PAD] {
        patterns.push(engine.encode(secret));
    }
    for style in PERCENT_STYLES {
        patterns.push(percent_encode(secret, style));
    }
}

/// How one common encoder writes a value into a URL.
struct PercentStyle {
    /// Characters left as they are besides the RFC 3986 unreserved ones.
    keep: &'static str,
    /// `application/x-www-form-urlencoded` writes a space as `+`.
    space_as_plus: bool,
    upper_hex: bool,
}

const PERCENT_STYLES: &[PercentStyle] = &[
    // RFC 3986 strict, e.g. Python's `quote(s, safe="")`.
    PercentStyle {
        keep: "",
        space_as_plus: false,
        upper_hex: true,
    },
    PercentStyle {
        keep: "",
        space_as_plus: false,
        upper_hex: false,
    },
    // HTML forms and Python's `quote_plus`.
    PercentStyle {
        keep: "",
        space_as_plus: true,
        upper_hex: true,
    },
    // Python's `quote(s)` keeps `/` by default.
    PercentStyle {
        keep: "/",
        space_as_plus: false,
        upper_hex: true,
    },
    // JavaScript's `encodeURIComponent`.
    PercentStyle {
        keep: "!'()*",
        space_as_plus: false,
        upper_hex: true,
    },
];

fn percent_encode(value: &str, style: &PercentStyle) -> String {
    let mut encoded = String::with_capacity(value.len() * 3);
    for byte in value.bytes() {
        let kept = byte.is_ascii_alphanumeric()
            || b"-_.~".contains(&byte)
            || style.keep.as_bytes().contains(&byte);
        if kept {
            encoded.push(char::from(byte));
        } else if byte == b' ' && style.space_as_plus {
            encoded.push('+');
        } else if style.upper_hex {
            encoded.push_str(&format!("%{byte:02X}"));
        } else {
            encoded.push_str(&format!("%{byte:02x}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masker(secrets: &[&str]) -> Masker {
        Masker::new(&secrets.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
    }

    #[test]
    fn overlapping_secrets_are_masked_together() {
        let masker = masker(&["abcd", "cdef"]);
        assert_eq!(masker.mask("x abcdef y"), "x *** y");
    }

    #[test]
    fn overlapping_occurrences_of_one_secret_are_all_masked() {
        let masker = masker(&["aa"]);
        assert_eq!(masker.mask("aaa b aa"), "*** b ***");
    }

    #[test]
    fn adjacent_occurrences_stay_distinct() {
        let masker = masker(&["ab"]);
        assert_eq!(masker.mask("abab"), "******");
    }

    #[test]
    fn text_without_secrets_is_borrowed() {
        let masker = masker(&["secret"]);
        assert!(matches!(masker.mask("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn percent_styles_differ_where_encoders_differ() {
        let strict = percent_encode("a b/c!", &PERCENT_STYLES[0]);
        assert_eq!(strict, "a%20b%2Fc%21");
        assert_eq!(percent_encode("a b/c!", &PERCENT_STYLES[2]), "a+b%2Fc%21");
        assert_eq!(percent_encode("a b/c!", &PERCENT_STYLES[3]), "a%20b/c%21");
        assert_eq!(percent_encode("a b/c!", &PERCENT_STYLES[4]), "a%20b%2Fc!");
        assert_eq!(percent_encode("é", &PERCENT_STYLES[1]), "%c3%a9");
    }

    #[test]
    fn debug_does_not_show_secrets() {
        let masker = masker(&["hunter2"]);
        assert!(!format!("{masker:?}").contains("hunter2"));
    }
}
