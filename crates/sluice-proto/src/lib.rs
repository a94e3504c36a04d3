//! The wire types of sluice's REST API: what the server sends and accepts as
//! JSON, with their OpenAPI schemas. They are plain data with no behaviour
//! and no dependency on sluice's other crates; the API crate converts the
//! engine's records into them explicitly, so a change of a record never
//! changes the wire format by accident.
//!
//! Conventions: field names are `snake_case`; timestamps are RFC 3339 in
//! UTC; ids are strings; secret variable values are always `***`.

pub mod admin;
pub mod agent;
pub mod backfills;
pub mod blocks;
pub mod diagnose;
pub mod pipelines;
pub mod queue;
pub mod runs;
pub mod triggers;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

pub use admin::*;
pub use agent::*;
pub use backfills::*;
pub use blocks::*;
pub use diagnose::*;
pub use pipelines::*;
pub use queue::*;
pub use runs::*;
pub use triggers::*;

/// The one shape of every error response.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, as a machine-readable code and a sentence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorDetail {
    /// One of `bad_request`, `unauthorized`, `forbidden`, `not_found`,
    /// `method_not_allowed`, `conflict`, `payload_too_large`, `invalid`,
    /// `unavailable`, `internal`.
    pub code: String,
    pub message: String,
    /// A remedy, when there is one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
}

/// The answer of `/healthz` and `/readyz`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// `ok`.
    pub status: String,
}
