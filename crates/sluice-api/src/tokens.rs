//! Making API tokens: 32 bytes from the operating system's secure random
//! source, as hex behind a `sluice_` prefix (so a leaked token is easy to
//! recognise in logs and by secret scanners).

use sluice_engine::Engine;
use sluice_engine::sluice_store::ApiTokenRecord;
use sluice_engine::tokens::Role;

use crate::error::ApiError;

/// The prefix of every token sluice makes.
pub const PREFIX: &str = "sluice_";

/// A new random token.
pub fn generate() -> Result<String, ApiError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|error| ApiError::internal(format!("no secure random source: {error}")))?;
    let mut token = String::with_capacity(PREFIX.len() + 64);
    token.push_str(PREFIX);
    for byte in bytes {
        use std::fmt::Write;
        let _ = write!(token, "{byte:02x}");
    }
    Ok(token)
}

/// Creates a token named `name`; returns its record and the token itself,
/// which is never stored and must be shown to its owner now.
pub async fn create(
    engine: &Engine,
    name: &str,
    role: Role,
    by: &str,
) -> Result<(ApiTokenRecord, String), ApiError> {
    let secret = generate()?;
    let record = engine.create_token(name, role, &secret, by).await?;
    Ok((record, secret))
}
