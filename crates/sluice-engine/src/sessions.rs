//! Web UI sessions: stateless cookies signed with a key that every server
//! of a database shares, and CSRF tokens bound to them.
//!
//! A session cookie is `v1.SUBJECT.EXPIRES.NONCE.MAC`: the subject is the
//! SHA-256 of the API token the user signed in with (never the token
//! itself) or `anonymous` when the server runs without auth; `EXPIRES` is a
//! Unix time in seconds; `MAC` is HMAC-SHA256 of the rest under the session
//! key. The key is made by the first server that needs it and kept in the
//! store (`server_secret`), so a cookie signed by one server is valid on
//! every server of the same database. Nothing is stored per session:
//! revoking the token ends its sessions, because each check looks the token
//! up again and takes its current role.
//!
//! The CSRF token of a session is HMAC-SHA256 of the cookie under the same
//! key with a distinct prefix: a page can embed it, a cross-site attacker
//! cannot compute it, and it is worthless without the cookie.

use std::fmt::Write as _;

use hmac::{Hmac, KeyInit, Mac};
use jiff::{SignedDuration, Timestamp};
use sha2::Sha256;

use crate::project::sha256_hex;
use crate::tokens::{Role, TokenOwner, UnknownRole};
use crate::{Engine, Error, Result};

type HmacSha256 = Hmac<Sha256>;

/// The name of the session key in the store's server secrets.
const KEY_NAME: &str = "web-session-key";
/// The subject of a session made without auth.
const ANONYMOUS: &str = "anonymous";
/// How long a session lasts after signing in.
pub const SESSION_LIFETIME: SignedDuration = SignedDuration::from_hours(12);

/// A new session: the cookie value and when it expires.
#[derive(Clone, Debug)]
pub struct NewSession {
    pub cookie: String,
    pub expires_at: Timestamp,
}

/// Who a valid session cookie speaks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SessionSubject {
    /// Signed in with an API token that is still valid.
    Token(TokenOwner),
    /// Made by a server without auth; worth nothing on a server with auth.
    Anonymous,
}

impl SessionSubject {
    /// The role a page may offer actions for: an anonymous session on a
    /// server without auth may do everything, as the API allows.
    pub fn role(&self) -> Role {
        match self {
            SessionSubject::Token(owner) => owner.role,
            SessionSubject::Anonymous => Role::Admin,
        }
    }

    /// The name recorded as the actor of what the session does.
    pub fn name(&self) -> &str {
        match self {
            SessionSubject::Token(owner) => &owner.name,
            SessionSubject::Anonymous => ANONYMOUS,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

fn random_hex(len: usize) -> Result<String> {
    let mut bytes = vec![0u8; len];
    getrandom::fill(&mut bytes).map_err(|error| Error::Io {
        context: "the operating system has no secure random source".to_owned(),
        source: std::io::Error::other(error.to_string()),
    })?;
    Ok(hex(&bytes))
}

fn decode_hex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|at| u8::from_str_radix(text.get(at..at + 2)?, 16).ok())
        .collect()
}

impl Engine {
    /// The session key, made and stored by the first server that needs it.
    async fn session_key(&self) -> Result<&[u8]> {
        self.inner
            .session_key
            .get_or_try_init(|| async {
                let candidate = random_hex(32)?;
                let stored = self
                    .store()
                    .reserve_server_secret(KEY_NAME, &candidate, self.clock().now())
                    .await?;
                decode_hex(&stored)
                    .filter(|key| key.len() >= 16)
                    .ok_or_else(|| {
                        Error::Store(sluice_store::Error::Corrupt(
                            "the stored web session key is not hex".to_owned(),
                        ))
                    })
            })
            .await
            .map(Vec::as_slice)
    }

    async fn mac(&self, message: &str) -> Result<HmacSha256> {
        let key = self.session_key().await?;
        let mut mac = <HmacSha256 as KeyInit>::new_from_slice(key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(message.as_bytes());
        Ok(mac)
    }

    async fn new_session(&self, subject: &str) -> Result<NewSession> {
        let expires_at = self
            .clock()
            .now()
            .checked_add(SESSION_LIFETIME)
            .unwrap_or(Timestamp::MAX);
        let unsigned = format!(
            "v1.{subject}.{}.{}",
            expires_at.as_second(),
            random_hex(16)?
        );
        let mac = self.mac(&unsigned).await?;
        Ok(NewSession {
            cookie: format!("{unsigned}.{}", hex(&mac.finalize().into_bytes())),
            expires_at,
        })
    }

    /// Signs in with an API token: a session for its owner, or `None` when
    /// the token is unknown or revoked.
    pub async fn sign_in(&self, secret: &str) -> Result<Option<(TokenOwner, NewSession)>> {
        let Some(owner) = self.authenticate(secret).await? else {
            return Ok(None);
        };
        let session = self.new_session(&sha256_hex(secret.as_bytes())).await?;
        Ok(Some((owner, session)))
    }

    /// A session for a server without auth.
    pub async fn anonymous_session(&self) -> Result<NewSession> {
        self.new_session(ANONYMOUS).await
    }

    /// Who a session cookie speaks for, or `None` when it is malformed,
    /// forged, expired, or its token was revoked.
    pub async fn session(&self, cookie: &str) -> Result<Option<SessionSubject>> {
        let Some((unsigned, signature)) = cookie.rsplit_once('.') else {
            return Ok(None);
        };
        let mut parts = unsigned.split('.');
        let (Some("v1"), Some(subject), Some(expires), Some(_nonce), None) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Ok(None);
        };
        let Some(signature) = decode_hex(signature) else {
            return Ok(None);
        };
        if self.mac(unsigned).await?.verify_slice(&signature).is_err() {
            return Ok(None);
        }
        let Ok(expires) = expires.parse::<i64>() else {
            return Ok(None);
        };
        if self.clock().now().as_second() >= expires {
            return Ok(None);
        }
        if subject == ANONYMOUS {
            return Ok(Some(SessionSubject::Anonymous));
        }
        let Some(record) = self.store().find_api_token(subject).await? else {
            return Ok(None);
        };
        if record.revoked_at.is_some() {
            return Ok(None);
        }
        let role = record.role.parse().map_err(|error: UnknownRole| {
            Error::Store(sluice_store::Error::Corrupt(error.to_string()))
        })?;
        Ok(Some(SessionSubject::Token(TokenOwner {
            name: record.name,
            role,
        })))
    }

    /// The CSRF token of a session cookie.
    pub async fn csrf_token(&self, cookie: &str) -> Result<String> {
        let mac = self.mac(&format!("csrf.{cookie}")).await?;
        Ok(hex(&mac.finalize().into_bytes()))
    }

    /// Whether `presented` is the CSRF token of the session `cookie`
    /// (compared in constant time).
    pub async fn check_csrf(&self, cookie: &str, presented: &str) -> Result<bool> {
        let Some(presented) = decode_hex(presented) else {
            return Ok(false);
        };
        let mac = self.mac(&format!("csrf.{cookie}")).await?;
        Ok(mac.verify_slice(&presented).is_ok())
    }
}

/// The name of the session cookie.
pub const COOKIE_NAME: &str = "sluice_session";
/// The request header that carries the CSRF token of `fetch` calls.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// The form field that carries the CSRF token of form posts.
pub const CSRF_FIELD: &str = "csrf_token";

/// The session cookie's value in a `Cookie` request header, if any.
pub fn cookie_in_header(header: &str) -> Option<&str> {
    header.split(';').find_map(|pair| {
        let (name, value) = pair.trim().split_once('=')?;
        (name == COOKIE_NAME && !value.is_empty()).then_some(value)
    })
}
