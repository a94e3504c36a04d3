//! Runs one try of a block as a process: the environment contract of
//! `shared/DESIGN.md` §6, a process group of its own, timeout and
//! cancellation with a SIGTERM → grace → SIGKILL sequence, log capture with
//! secret masking, and the block's outputs, data file and artifacts.
//!
//! There is no database and no HTTP here: [`run_try`] takes a [`TryRequest`],
//! streams [`LogChunk`]s into a bounded channel and returns a [`TryOutcome`].
//! The built-in local agent and the remote agent both call it.
//!
//! ```text
//!  TryRequest ──> prepare scratch files ──> spawn (own process group)
//!                                             │            │
//!                      stdout/stderr ── log pump ──> LogChunk channel
//!                                             │
//!      exit | timeout | cancel ──> stop the group (TERM, grace, KILL)
//!                                             │
//!                 collect outputs, data, artifacts ──> TryOutcome
//! ```

mod collect;
mod error;
mod group;
pub mod guardian;
mod logs;
mod mask;
mod prepare;
mod project;
mod run;
mod types;

pub use error::Error;
pub use logs::{LogChunk, LogLine, Stream};
pub use mask::{MASK, Masker};
pub use project::{PinnedFile, ProjectCache, ProjectError, file_sha256, working_copy};
pub use run::run_try;
pub use types::{
    ArtifactFile, BlockContext, Command, DataFile, DataFormat, TryOutcome, TryRequest, TryResult,
};
