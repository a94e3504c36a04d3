//! The handlers, one module per resource.

pub mod admin;
pub mod agent;
pub mod artifacts;
pub mod backfills;
pub mod batch;
pub mod blocks;
pub mod diagnose;
pub mod export;
pub mod hooks;
pub mod live;
pub mod meta;
pub mod metrics;
pub mod pipelines;
pub mod queue;
pub mod runs;
pub mod triggers;
