//! Events the engine publishes when it changes something: a run or block run
//! changed status, or a try wrote log lines. The CLI's live progress (and,
//! later, the server's Server-Sent Events) subscribe to them. Events are hints
//! to look again, never the source of truth: the store is.

use sluice_core::ids::{BlockRunId, RunId, TryId};
use sluice_core::status::{BlockRunStatus, RunStatus};

/// A change the engine made.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Run {
        run_id: RunId,
        status: RunStatus,
    },
    BlockRun {
        run_id: RunId,
        block_run_id: BlockRunId,
        block: String,
        attempt: u32,
        status: BlockRunStatus,
    },
    TryStarted {
        run_id: RunId,
        block_run_id: BlockRunId,
        block: String,
        try_id: TryId,
        try_number: u32,
    },
    Log {
        run_id: RunId,
        try_id: TryId,
        seq: u64,
    },
}
