//! API tokens and roles. A token is shown once, when it is created; only its
//! SHA-256 is stored, so a stolen database does not hand out credentials.
//! Roles are ordered: a `viewer` reads, an `operator` also triggers, cancels
//! and retries runs, an `admin` may do everything. The `agent` role stands
//! apart from that order: it may only speak the agent protocol
//! (`/api/agent/...`), so a token handed to a remote agent's host cannot read
//! or change the run ledger.

use std::fmt;
use std::str::FromStr;

use sluice_store::{ApiTokenRecord, NewApiToken};

use crate::project::sha256_hex;
use crate::{Engine, Error, Result};

/// What a token may do; a higher role may do everything a lower one may.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    Viewer,
    Operator,
    Admin,
    /// A remote agent: the agent protocol and nothing else.
    Agent,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Operator, Role::Admin, Role::Agent];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::Agent => "agent",
        }
    }

    /// Whether this role may do what needs `needed`.
    pub fn allows(self, needed: Role) -> bool {
        match (self, needed) {
            (Role::Admin, _) | (Role::Agent, Role::Agent) => true,
            // Agents are outside the viewer < operator < admin order: an
            // agent token reads nothing, and no reader speaks for an agent.
            (Role::Agent, _) | (_, Role::Agent) => false,
            _ => self >= needed,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An unknown role name.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}`; roles are viewer, operator, admin and agent")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|role| role.as_str() == s)
            .ok_or_else(|| UnknownRole(s.to_owned()))
    }
}

/// Who a valid, unrevoked token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenOwner {
    pub name: String,
    pub role: Role,
}

/// The shortest token accepted when one is created: 128 bits as hex.
pub const MIN_SECRET_LEN: usize = 32;

/// Whether `name` is a valid token name: 1 to 64 letters, digits, `_`, `-`
/// or `.`.
pub fn is_valid_token_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

impl Engine {
    /// Records a token under `name`. `secret` is the token itself, made by
    /// the caller from a secure random source; it is hashed here and never
    /// stored.
    pub async fn create_token(
        &self,
        name: &str,
        role: Role,
        secret: &str,
        by: &str,
    ) -> Result<ApiTokenRecord> {
        if !is_valid_token_name(name) {
            return Err(Error::invalid(
                format!("`{name}` is not a valid token name"),
                Some("use 1 to 64 letters, digits, `_`, `-` or `.`".to_owned()),
            ));
        }
        if secret.len() < MIN_SECRET_LEN {
            return Err(Error::invalid(
                "the token is too short to be safe",
                Some(format!("use at least {MIN_SECRET_LEN} random characters")),
            ));
        }
        let token = NewApiToken {
            name: name.to_owned(),
            role: role.as_str().to_owned(),
            sha256: sha256_hex(secret.as_bytes()),
            created_at: self.clock().now(),
            created_by: Some(by.to_owned()),
        };
        self.store()
            .create_api_token(&token)
            .await
            .map_err(|error| match error {
                sluice_store::Error::Conflict(message) => Error::conflict(
                    message,
                    Some("pick another name, or revoke the old token first".to_owned()),
                ),
                other => Error::Store(other),
            })?;
        self.audit(
            by,
            "token.create",
            name,
            serde_json::json!({ "role": role.as_str() }),
        )
        .await?;
        Ok(ApiTokenRecord {
            name: token.name,
            role: token.role,
            sha256: token.sha256,
            created_at: token.created_at,
            created_by: token.created_by,
            revoked_at: None,
        })
    }

    /// The owner of a presented token, or `None` when it is unknown or
    /// revoked.
    pub async fn authenticate(&self, secret: &str) -> Result<Option<TokenOwner>> {
        let Some(record) = self
            .store()
            .find_api_token(&sha256_hex(secret.as_bytes()))
            .await?
        else {
            return Ok(None);
        };
        if record.revoked_at.is_some() {
            return Ok(None);
        }
        let role = record.role.parse().map_err(|error: UnknownRole| {
            Error::Store(sluice_store::Error::Corrupt(error.to_string()))
        })?;
        Ok(Some(TokenOwner {
            name: record.name,
            role,
        }))
    }

    /// Every token, by name (at most 1,000).
    pub async fn list_tokens(&self) -> Result<Vec<ApiTokenRecord>> {
        Ok(self.store().list_api_tokens(1_000).await?)
    }

    /// Revokes a token; revoking it again changes nothing.
    pub async fn revoke_token(&self, name: &str, by: &str) -> Result<()> {
        let now = self.clock().now();
        let revoked =
            self.store()
                .revoke_api_token(name, now)
                .await
                .map_err(|error| match error {
                    sluice_store::Error::NotFound(_) => {
                        Error::NotFound(format!("no token named `{name}`"))
                    }
                    other => Error::Store(other),
                })?;
        if revoked {
            self.audit(by, "token.revoke", name, serde_json::json!({}))
                .await?;
        }
        Ok(())
    }
}
