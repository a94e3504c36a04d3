//! Errors of the engine's application services.

use sluice_core::spec::Diagnostic;
use sluice_core::vars::VariablesError;

/// An error of an engine service. Variants map onto the API's error codes:
/// `NotFound` → 404, `Conflict` → 409, `Invalid` → 422, `Store` → 503/500.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    NotFound(String),
    /// The request does not fit the current state (retrying a running run).
    #[error("{message}")]
    Conflict {
        message: String,
        hint: Option<String>,
    },
    /// The request is well-formed but invalid (missing variables, unknown block).
    #[error("{message}")]
    Invalid {
        message: String,
        hint: Option<String>,
    },
    #[error(transparent)]
    Variables(#[from] VariablesError),
    #[error("the pipeline file is invalid")]
    Pipeline(Vec<Diagnostic>),
    #[error("storage failed")]
    Store(#[from] sluice_store::Error),
    #[error("blob storage failed")]
    Blob(#[from] sluice_store::blobs::Error),
    #[error("{context}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    pub fn conflict(message: impl Into<String>, hint: impl Into<Option<String>>) -> Self {
        Error::Conflict {
            message: message.into(),
            hint: hint.into(),
        }
    }

    pub fn invalid(message: impl Into<String>, hint: impl Into<Option<String>>) -> Self {
        Error::Invalid {
            message: message.into(),
            hint: hint.into(),
        }
    }

    /// A remedy to show under the message, when there is one.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Conflict { hint, .. } | Error::Invalid { hint, .. } => hint.as_deref(),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;
