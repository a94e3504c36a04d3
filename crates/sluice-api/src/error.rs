//! The API's one error table: each [`Code`] has one HTTP status, and every
//! failure, whether the engine's, the store's or a bad request's, becomes
//! `{"error": {"code", "message", "hint"?}}`. An internal error is logged
//! with the request id by the request-id middleware and never sent.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use sluice_engine::sluice_store;
use sluice_proto::{ErrorBody, ErrorDetail};

/// A machine-readable error code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    BadRequest,
    Unauthorized,
    Forbidden,
    NotFound,
    MethodNotAllowed,
    Conflict,
    PayloadTooLarge,
    Invalid,
    Unavailable,
    Internal,
}

/// The error table: code, its name on the wire, its HTTP status.
pub const TABLE: &[(Code, &str, StatusCode)] = &[
    (Code::BadRequest, "bad_request", StatusCode::BAD_REQUEST),
    (Code::Unauthorized, "unauthorized", StatusCode::UNAUTHORIZED),
    (Code::Forbidden, "forbidden", StatusCode::FORBIDDEN),
    (Code::NotFound, "not_found", StatusCode::NOT_FOUND),
    (
        Code::MethodNotAllowed,
        "method_not_allowed",
        StatusCode::METHOD_NOT_ALLOWED,
    ),
    (Code::Conflict, "conflict", StatusCode::CONFLICT),
    (
        Code::PayloadTooLarge,
        "payload_too_large",
        StatusCode::PAYLOAD_TOO_LARGE,
    ),
    (Code::Invalid, "invalid", StatusCode::UNPROCESSABLE_ENTITY),
    (
        Code::Unavailable,
        "unavailable",
        StatusCode::SERVICE_UNAVAILABLE,
    ),
    (
        Code::Internal,
        "internal",
        StatusCode::INTERNAL_SERVER_ERROR,
    ),
];

impl Code {
    fn entry(self) -> (&'static str, StatusCode) {
        TABLE
            .iter()
            .find(|(code, _, _)| *code == self)
            .map(|(_, name, status)| (*name, *status))
            .unwrap_or(("internal", StatusCode::INTERNAL_SERVER_ERROR))
    }

    pub fn as_str(self) -> &'static str {
        self.entry().0
    }

    pub fn status(self) -> StatusCode {
        self.entry().1
    }
}

/// The message sent for an internal error; the details stay in the log.
pub const INTERNAL_MESSAGE: &str = "an internal error occurred";

/// A failed request.
#[derive(Debug)]
pub struct ApiError {
    pub code: Code,
    pub message: String,
    pub hint: Option<String>,
    /// For `Internal`: what to log, never to send.
    pub internal: Option<String>,
}

/// Marks a response as an internal error with details to log.
#[derive(Clone, Debug)]
pub struct InternalDetail(pub String);

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            code,
            message: message.into(),
            hint: None,
            internal: None,
        }
    }

    pub fn with_hint(mut self, hint: impl Into<String>) -> ApiError {
        self.hint = Some(hint.into());
        self
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::BadRequest, message)
    }

    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::Invalid, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(Code::NotFound, message)
    }

    /// A bug or a broken environment: logged with the request id, sent as
    /// a generic message.
    pub fn internal(detail: impl Into<String>) -> ApiError {
        ApiError {
            code: Code::Internal,
            message: INTERNAL_MESSAGE.to_owned(),
            hint: None,
            internal: Some(detail.into()),
        }
    }

    pub fn detail(&self) -> ErrorDetail {
        ErrorDetail {
            code: self.code.as_str().to_owned(),
            message: self.message.clone(),
            hint: self.hint.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = ErrorBody {
            error: self.detail(),
        };
        let mut response = (self.code.status(), Json(body)).into_response();
        if let Some(internal) = self.internal {
            response.extensions_mut().insert(InternalDetail(internal));
        }
        response
    }
}

/// An error with its whole source chain.
fn chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

impl From<sluice_store::Error> for ApiError {
    fn from(error: sluice_store::Error) -> ApiError {
        use sluice_store::Error;
        match error {
            Error::Unavailable(_) => {
                ApiError::new(Code::Unavailable, "the database is unavailable")
                    .with_hint("try again in a moment")
            }
            Error::NotFound(what) => ApiError::not_found(format!("not found: {what}")),
            Error::Conflict(message) => ApiError::new(Code::Conflict, message),
            Error::StaleLease(_) | Error::Transition(_) => {
                ApiError::new(Code::Conflict, error.to_string())
                    .with_hint("read the current state and try again")
            }
            Error::Database(_) | Error::Corrupt(_) => ApiError::internal(chain(&error)),
        }
    }
}

impl From<sluice_engine::Error> for ApiError {
    fn from(error: sluice_engine::Error) -> ApiError {
        use sluice_engine::Error;
        let hint = error.hint().map(str::to_owned);
        let api = match error {
            Error::NotFound(message) => ApiError::not_found(message),
            Error::Conflict { message, .. } => ApiError::new(Code::Conflict, message),
            Error::Invalid { message, .. } => ApiError::invalid(message),
            Error::Variables(variables) => {
                let hint = variables.hint();
                let mut api = ApiError::invalid(variables.to_string());
                api.hint = hint;
                return api;
            }
            Error::Pipeline(diagnostics) => ApiError::new(
                Code::Conflict,
                format!(
                    "the run's pipeline file is invalid: {}",
                    diagnostics
                        .iter()
                        .map(|diagnostic| format!(
                            "{}:{}:{}: {}",
                            diagnostic.file, diagnostic.line, diagnostic.column, diagnostic.message
                        ))
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            ),
            Error::Store(store) => return store.into(),
            Error::Blob(sluice_store::blobs::Error::NotFound(sha256)) => {
                ApiError::not_found(format!("the stored content {sha256} is missing"))
            }
            other @ (Error::Blob(_) | Error::Io { .. }) => ApiError::internal(chain(&other)),
        };
        match hint {
            Some(hint) => api.with_hint(hint),
            None => api,
        }
    }
}
