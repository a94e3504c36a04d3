//! Standard Webhooks signatures (HMAC-SHA256 of `ID.TIMESTAMP.BODY`, sent
//! as `v1,BASE64`), and GitHub's (`sha256=HEX` of the body): made here for
//! the webhooks sluice sends (notifications), checked by the API for the
//! webhook triggers it receives. One implementation serves both sides.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

/// HMAC with SHA-256.
pub type HmacSha256 = Hmac<Sha256>;

/// An HMAC-SHA256 keyed with `secret`.
pub fn mac(secret: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length, so this cannot fail.
    <HmacSha256 as KeyInit>::new_from_slice(secret).unwrap_or_else(|_| unreachable!())
}

/// The secrets in a secret source's text: one per white-space-separated
/// word. A secret written `whsec_BASE64` is the decoded bytes; any other is
/// its own bytes.
pub fn parse_secrets(text: &str) -> Vec<Vec<u8>> {
    text.split_whitespace()
        .map(|secret| match secret.strip_prefix("whsec_") {
            Some(encoded) => STANDARD
                .decode(encoded)
                .unwrap_or_else(|_| secret.as_bytes().to_vec()),
            None => secret.as_bytes().to_vec(),
        })
        .collect()
}

/// Signs a delivery the way a Standard Webhooks sender does: the value of a
/// `webhook-signature` header.
pub fn sign_standard(secret: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Signs a delivery the way GitHub does: the value of `X-Hub-Signature-256`.
pub fn sign_github(secret: &[u8], body: &[u8]) -> String {
    let mut mac = mac(secret);
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let hex: String = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    format!("sha256={hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_standard_signature_is_the_hmac_of_id_timestamp_and_body() {
        // The example of the Standard Webhooks specification.
        let secret = parse_secrets("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = br#"{"test": 2432232314}"#;
        assert_eq!(
            sign_standard(&secret[0], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }
}
