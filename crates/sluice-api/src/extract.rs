//! Input validation: JSON bodies, query strings and path ids. Every bad
//! input becomes a 400 (malformed) or 422 (well-formed but invalid), never a
//! 500; a body over the limit is a 413.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::{ApiError, Code};

/// The largest request body accepted.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// The longest id accepted in a path or a query.
const MAX_ID_LEN: usize = 200;

/// A JSON body. An empty body reads as `{}`, so optional bodies may be left
/// out. Syntax errors are 400; a body that does not fit the schema is 422.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(
                        Code::PayloadTooLarge,
                        format!("the request body is larger than {MAX_BODY_BYTES} bytes"),
                    )
                } else {
                    ApiError::bad_request(format!("cannot read the request body: {rejection}"))
                }
            })?;
        parse_json(&bytes).map(ApiJson)
    }
}

/// Parses a JSON body; see [`ApiJson`].
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let text: &[u8] = if bytes.iter().all(u8::is_ascii_whitespace) {
        b"{}"
    } else {
        bytes
    };
    serde_json::from_slice(text).map_err(|error| {
        use serde_json::error::Category;
        match error.classify() {
            Category::Data => ApiError::invalid(format!("the request body does not fit: {error}"))
                .with_hint("see the request schema in /api/openapi.json"),
            Category::Syntax | Category::Eof | Category::Io => {
                ApiError::bad_request(format!("the request body is not valid JSON: {error}"))
            }
        }
    })
}

/// A query string's parameters, read strictly: an unknown parameter or a
/// repeated single-valued one is a 400.
#[derive(Debug, Default)]
pub struct QueryParams {
    pairs: Vec<(String, String)>,
    known: Vec<&'static str>,
}

impl QueryParams {
    pub fn parse(raw: Option<&str>) -> Result<QueryParams, ApiError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|error| {
                ApiError::bad_request(format!("the query string is malformed: {error}"))
            })?;
        Ok(QueryParams {
            pairs,
            known: Vec::new(),
        })
    }

    /// Every value of a repeatable parameter; `a=x,y&a=z` gives x, y, z.
    pub fn all(&mut self, name: &'static str) -> Vec<String> {
        self.known.push(name);
        self.pairs
            .iter()
            .filter(|(key, _)| key == name)
            .flat_map(|(_, value)| value.split(','))
            .map(str::trim)
            .filter(|value| !value.is_empty())
            .map(str::to_owned)
            .collect()
    }

    /// The value of a single-valued parameter.
    pub fn one(&mut self, name: &'static str) -> Result<Option<String>, ApiError> {
        self.known.push(name);
        let mut values = self.pairs.iter().filter(|(key, _)| key == name);
        let first = values.next().map(|(_, value)| value.clone());
        if values.next().is_some() {
            return Err(ApiError::bad_request(format!(
                "the query parameter `{name}` is given more than once"
            )));
        }
        Ok(first)
    }

    /// A single-valued parameter parsed with `FromStr`.
    pub fn parsed<T: std::str::FromStr>(
        &mut self,
        name: &'static str,
        expected: &str,
    ) -> Result<Option<T>, ApiError> {
        self.one(name)?
            .map(|value| {
                value.parse().map_err(|_| {
                    ApiError::bad_request(format!(
                        "the query parameter `{name}` is `{value}`, not {expected}"
                    ))
                })
            })
            .transpose()
    }

    /// A time parameter in RFC 3339.
    pub fn timestamp(&mut self, name: &'static str) -> Result<Option<jiff::Timestamp>, ApiError> {
        self.one(name)?
            .map(|value| {
                value.parse().map_err(|error| {
                    ApiError::bad_request(format!(
                        "the query parameter `{name}` `{value}` is not an RFC 3339 time: {error}"
                    ))
                    .with_hint("write it like 2026-11-23T08:00:00Z")
                })
            })
            .transpose()
    }

    /// A boolean parameter: `true` or `false`.
    pub fn flag(&mut self, name: &'static str) -> Result<bool, ApiError> {
        Ok(self.parsed(name, "true or false")?.unwrap_or(false))
    }

    /// A limit between 1 and `max`, `default` when absent.
    pub fn limit(&mut self, name: &'static str, default: u32, max: u32) -> Result<u32, ApiError> {
        let limit = self
            .parsed::<u32>(name, "a whole number")?
            .unwrap_or(default);
        if limit == 0 || limit > max {
            return Err(ApiError::bad_request(format!(
                "`{name}` is {limit}; it must be from 1 to {max}"
            )));
        }
        Ok(limit)
    }

    /// Refuses parameters nobody asked for (a typo would otherwise be
    /// ignored silently).
    pub fn finish(self) -> Result<(), ApiError> {
        if let Some((unknown, _)) = self
            .pairs
            .iter()
            .find(|(key, _)| !self.known.contains(&key.as_str()))
        {
            let mut known = self.known.clone();
            known.sort_unstable();
            known.dedup();
            return Err(
                ApiError::bad_request(format!("unknown query parameter `{unknown}`"))
                    .with_hint(format!("this endpoint takes: {}", known.join(", "))),
            );
        }
        Ok(())
    }
}

/// Checks an id from a path or a query: non-empty, not too long, printable.
pub fn check_id(what: &str, id: &str) -> Result<(), ApiError> {
    if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(char::is_control) {
        return Err(ApiError::bad_request(format!(
            "`{id}` is not a valid {what}"
        )));
    }
    Ok(())
}
