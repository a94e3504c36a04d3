//! Errors of the executor itself, as opposed to a block that fails.
//!
//! A block that exits non-zero, times out, is cancelled, or cannot be started
//! is a [`crate::TryOutcome`], not an error. An [`Error`] means the executor
//! could not do its part: the project or scratch directory is unusable, a
//! declared glob is invalid, or the files the block left cannot be read.

use std::io;
use std::path::PathBuf;

/// Why [`crate::run_try`] could not run or finish a try.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the project directory {}", path.display())]
    ProjectDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the project directory {} is not valid UTF-8, so artifact globs cannot be matched under it",
        path.display()
    )]
    ProjectDirEncoding { path: PathBuf },
    #[error("cannot prepare the scratch file {}", path.display())]
    Scratch {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("artifact glob `{pattern}` is invalid")]
    InvalidGlob {
        pattern: String,
        #[source]
        source: glob::PatternError,
    },
    #[error(
        "artifact glob `{pattern}` leaves the project directory; write it relative to the project, without `..`"
    )]
    GlobOutsideProject { pattern: String },
    #[error("cannot wait for the block's process")]
    Wait {
        #[source]
        source: io::Error,
    },
    #[error("cannot read {} after the block exited", path.display())]
    Collect {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("the task collecting the block's files did not finish")]
    CollectTask {
        #[source]
        source: tokio::task::JoinError,
    },
}
