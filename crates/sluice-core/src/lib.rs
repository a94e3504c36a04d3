//! Pure domain of sluice: the pipeline format and its validation, the DAG,
//! statuses and their transitions, variables and their layers, expressions,
//! schedules and durations. No I/O and no async runtime live here.

pub mod duration;
pub mod expr;
pub mod ids;
pub mod schedule;
pub mod spec;
pub mod status;
pub mod template;
pub mod vars;
