//! Verifying webhook deliveries, by either scheme a `webhook:` trigger names.
//!
//! - `standard` (Standard Webhooks): `webhook-id`, `webhook-timestamp` (Unix
//!   seconds) and `webhook-signature` (space-separated `v1,BASE64` entries)
//!   headers; the signature is an HMAC-SHA256 of `ID.TIMESTAMP.BODY`, and the
//!   timestamp must be within five minutes of the server's clock. A secret
//!   written `whsec_BASE64` is the decoded bytes; any other is its own bytes.
//! - `github`: `X-Hub-Signature-256: sha256=HEX`, an HMAC-SHA256 of the body
//!   with the secret; the delivery id is `X-GitHub-Delivery`.
//!
//! A trigger may hold several secrets (separated by white space) so that a
//! secret can be rotated without refusing deliveries signed with the old
//! one. Every comparison is constant-time (`Mac::verify_slice`).

use axum::http::HeaderMap;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::Mac;
use sluice_core::spec::WebhookScheme;
use sluice_engine::signature::{HmacSha256, mac};
pub use sluice_engine::signature::{parse_secrets, sign_github, sign_standard};

/// How far a Standard Webhooks timestamp may be from the server's clock.
pub const TOLERANCE_SECONDS: i64 = 5 * 60;

/// The longest delivery id accepted.
const MAX_DELIVERY_ID_LEN: usize = 200;

/// Why a delivery was refused. Each is answered 401 (or 400 for a missing
/// header), and nothing is created.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the delivery has no `{0}` header")]
    MissingHeader(&'static str),
    #[error("the `{0}` header is malformed")]
    BadHeader(&'static str),
    #[error(
        "the delivery's timestamp is more than {TOLERANCE_SECONDS} seconds from the server's clock"
    )]
    Stale,
    #[error("no signature of the delivery matches a secret of the trigger")]
    BadSignature,
}

/// A verified delivery: its id, used to deduplicate repeats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub id: String,
}

fn header<'a>(headers: &'a HeaderMap, name: &'static str) -> Result<&'a str, Refusal> {
    headers
        .get(name)
        .ok_or(Refusal::MissingHeader(name))?
        .to_str()
        .map_err(|_| Refusal::BadHeader(name))
}

fn delivery_id(value: &str, name: &'static str) -> Result<String, Refusal> {
    let value = value.trim();
    if value.is_empty()
        || value.len() > MAX_DELIVERY_ID_LEN
        || !value.chars().all(|c| c.is_ascii_graphic())
    {
        return Err(Refusal::BadHeader(name));
    }
    Ok(value.to_owned())
}

/// Checks a delivery against the trigger's secrets at `now` (Unix seconds).
pub fn verify(
    scheme: WebhookScheme,
    secrets: &[Vec<u8>],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<Delivery, Refusal> {
    match scheme {
        WebhookScheme::Standard => verify_standard(secrets, headers, body, now),
        WebhookScheme::Github => verify_github(secrets, headers, body),
    }
}

fn verify_standard(
    secrets: &[Vec<u8>],
    headers: &HeaderMap,
    body: &[u8],
    now: i64,
) -> Result<Delivery, Refusal> {
    let id = delivery_id(header(headers, "webhook-id")?, "webhook-id")?;
    let timestamp_text = header(headers, "webhook-timestamp")?.trim();
    let timestamp: i64 = timestamp_text
        .parse()
        .map_err(|_| Refusal::BadHeader("webhook-timestamp"))?;
    let signatures: Vec<Vec<u8>> = header(headers, "webhook-signature")?
        .split_whitespace()
        .filter_map(|entry| entry.strip_prefix("v1,"))
        .filter_map(|encoded| STANDARD.decode(encoded).ok())
        .collect();
    if signatures.is_empty() {
        return Err(Refusal::BadHeader("webhook-signature"));
    }
    // Verify first, so a forged delivery learns nothing from the clock check.
    let signed = signed_any(secrets, &signatures, |mac| {
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp_text.as_bytes());
        mac.update(b".");
        mac.update(body);
    });
    if !signed {
        return Err(Refusal::BadSignature);
    }
    if (now - timestamp).abs() > TOLERANCE_SECONDS {
        return Err(Refusal::Stale);
    }
    Ok(Delivery { id })
}

fn verify_github(
    secrets: &[Vec<u8>],
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Delivery, Refusal> {
    let id = delivery_id(header(headers, "x-github-delivery")?, "X-GitHub-Delivery")?;
    let signature = header(headers, "x-hub-signature-256")?
        .trim()
        .strip_prefix("sha256=")
        .and_then(decode_hex)
        .ok_or(Refusal::BadHeader("X-Hub-Signature-256"))?;
    if signed_any(secrets, &[signature], |mac| mac.update(body)) {
        Ok(Delivery { id })
    } else {
        Err(Refusal::BadSignature)
    }
}

/// Whether one of `signatures` is the HMAC of the message with one of
/// `secrets`.
fn signed_any(
    secrets: &[Vec<u8>],
    signatures: &[Vec<u8>],
    message: impl Fn(&mut HmacSha256),
) -> bool {
    secrets.iter().any(|secret| {
        signatures.iter().any(|signature| {
            let mut mac = mac(secret);
            message(&mut mac);
            mac.verify_slice(signature).is_ok()
        })
    })
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|index| u8::from_str_radix(text.get(index..index + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, value.parse().expect("a header value"));
        }
        map
    }

    #[test]
    fn a_standard_signature_verifies_with_any_of_the_secrets() {
        let secrets = parse_secrets("whsec_b2xk old-raw-secret  whsec_bmV3");
        assert_eq!(
            secrets,
            vec![b"old".to_vec(), b"old-raw-secret".to_vec(), b"new".to_vec()]
        );
        let body = br#"{"ref":"main"}"#;
        let signature = sign_standard(b"new", "msg_1", 1_000, body);
        let delivery = headers(&[
            ("webhook-id", "msg_1".to_owned()),
            ("webhook-timestamp", "1000".to_owned()),
            ("webhook-signature", format!("v1,AAAA {signature}")),
        ]);
        assert_eq!(
            verify(WebhookScheme::Standard, &secrets, &delivery, body, 1_100),
            Ok(Delivery {
                id: "msg_1".to_owned()
            })
        );
        assert_eq!(
            verify(WebhookScheme::Standard, &secrets, &delivery, b"{}", 1_100),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            verify(
                WebhookScheme::Standard,
                &secrets,
                &delivery,
                body,
                1_000 + 301
            ),
            Err(Refusal::Stale)
        );
        assert_eq!(
            verify(
                WebhookScheme::Standard,
                &parse_secrets("other"),
                &delivery,
                body,
                1_000
            ),
            Err(Refusal::BadSignature)
        );
    }

    #[test]
    fn a_github_signature_verifies_the_body() {
        let body = b"payload";
        let delivery = headers(&[
            ("x-github-delivery", "72d3162e".to_owned()),
            (
                "x-hub-signature-256",
                sign_github(b"It's a Secret to Everybody", body),
            ),
        ]);
        let secrets = parse_secrets("It's a Secret to Everybody");
        // Secrets with spaces cannot be told apart from several secrets.
        assert_eq!(secrets.len(), 5);
        let secrets = vec![b"It's a Secret to Everybody".to_vec()];
        assert!(verify(WebhookScheme::Github, &secrets, &delivery, body, 0).is_ok());
        assert_eq!(
            verify(WebhookScheme::Github, &secrets, &delivery, b"other", 0),
            Err(Refusal::BadSignature)
        );
        let missing = headers(&[("x-github-delivery", "1".to_owned())]);
        assert_eq!(
            verify(WebhookScheme::Github, &secrets, &missing, body, 0),
            Err(Refusal::MissingHeader("x-hub-signature-256"))
        );
    }
}
