//! Read-side services: a run with everything recorded about it, a try's log,
//! a block run's outputs and data sample. Secrets are masked here, before
//! anything leaves the engine.

use std::collections::BTreeMap;

use serde::Serialize;
use sluice_core::ids::{BlockRunId, RunId, TryId};
use sluice_store::{
    ArtifactRecord, AttemptRecord, BlockRunRecord, LogChunk, RunPage, RunQuery, RunRecord,
    TryRecord,
};

use crate::{Engine, Error, Result};

/// A block run with its tries.
#[derive(Clone, Debug, Serialize)]
pub struct BlockRunDetails {
    #[serde(flatten)]
    pub block_run: BlockRunRecord,
    pub tries: Vec<TryRecord>,
    /// Why a queued block run is not running yet.
    pub queue_reason: Option<crate::queue::WaitReason>,
}

/// One attempt with its block runs.
#[derive(Clone, Debug, Serialize)]
pub struct AttemptDetails {
    #[serde(flatten)]
    pub attempt: AttemptRecord,
    pub block_runs: Vec<BlockRunDetails>,
}

/// Everything recorded about a run, secrets masked.
#[derive(Clone, Debug, Serialize)]
pub struct RunDetails {
    pub run: RunRecord,
    pub attempts: Vec<AttemptDetails>,
    pub artifacts: Vec<ArtifactRecord>,
}

impl Engine {
    /// A run with its attempts, block runs, tries and artifacts. Variables
    /// marked secret are replaced by `***`.
    pub async fn run_details(&self, run_id: &RunId) -> Result<RunDetails> {
        let mut run = self.get_run(run_id).await?;
        mask_run(&mut run);
        let store = self.store();
        let mut tries_by_block_run: BTreeMap<BlockRunId, Vec<TryRecord>> = BTreeMap::new();
        for attempt_try in store.list_run_tries(run_id).await? {
            tries_by_block_run
                .entry(attempt_try.block_run_id.clone())
                .or_default()
                .push(attempt_try);
        }
        // The queue is read only when the run waits in it.
        let mut reasons = if run.status == sluice_core::status::RunStatus::Running {
            self.queue_reasons(run_id).await?
        } else {
            BTreeMap::new()
        };
        let mut attempts = Vec::new();
        for attempt in store.list_attempts(run_id).await? {
            let block_runs = store
                .list_block_runs(run_id, Some(attempt.attempt))
                .await?
                .into_iter()
                .map(|block_run| BlockRunDetails {
                    tries: tries_by_block_run.remove(&block_run.id).unwrap_or_default(),
                    queue_reason: reasons.remove(&block_run.id),
                    block_run,
                })
                .collect();
            attempts.push(AttemptDetails {
                attempt,
                block_runs,
            });
        }
        let artifacts = store.list_artifacts(run_id).await?;
        Ok(RunDetails {
            run,
            attempts,
            artifacts,
        })
    }

    /// A page of runs, secrets masked.
    pub async fn list_runs(&self, query: &RunQuery) -> Result<RunPage> {
        let mut page = self.store().list_runs(query).await?;
        for run in &mut page.runs {
            mask_run(run);
        }
        Ok(page)
    }

    /// Log chunks of a try after `after_seq`.
    pub async fn read_log(
        &self,
        try_id: &TryId,
        after_seq: Option<u64>,
        limit: u32,
    ) -> Result<Vec<LogChunk>> {
        Ok(self.store().read_log(try_id, after_seq, limit).await?)
    }

    /// A block run by id, or `NotFound`.
    pub async fn get_block_run(&self, id: &BlockRunId) -> Result<BlockRunRecord> {
        self.store()
            .get_block_run(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no block run with id `{id}`")))
    }
}

/// Replaces secret variable values by `***`.
pub fn mask_run(run: &mut RunRecord) {
    for variable in run.variables.0.values_mut() {
        if variable.secret {
            variable.value = serde_json::Value::String("***".to_owned());
        }
    }
}
