//! Read-side services: a run with everything recorded about it, a try's log,
//! a block run's outputs and data sample. Secrets are masked here, before
//! anything leaves the engine.

use std::collections::BTreeMap;

use serde::Serialize;
use sluice_core::ids::{BlockRunId, RunId, TryId};
use sluice_core::spec::ChannelSpec;
use sluice_store::{
    ArtifactRecord, AttemptRecord, BlockRunRecord, DeliveryRecord, LogChunk, RunPage, RunQuery,
    RunRecord, TryRecord,
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

/// One notification delivery of a run, with where it goes as it may be
/// shown.
#[derive(Clone, Debug, Serialize)]
pub struct DeliveryDetails {
    #[serde(flatten)]
    pub delivery: DeliveryRecord,
    /// The channel's destination with its secrets masked: a webhook's URL
    /// as [`crate::notify::masked_url`] shows it, or `smtp://host:port`;
    /// `None` when the channel is no longer in the run's pipeline.
    pub target: Option<String>,
}

/// Everything recorded about a run, secrets masked.
#[derive(Clone, Debug, Serialize)]
pub struct RunDetails {
    pub run: RunRecord,
    pub attempts: Vec<AttemptDetails>,
    pub artifacts: Vec<ArtifactRecord>,
    /// Its notification deliveries, oldest first.
    pub notifications: Vec<DeliveryDetails>,
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
        let notifications = self.notification_details(&run).await?;
        Ok(RunDetails {
            run,
            attempts,
            artifacts,
            notifications,
        })
    }

    /// A run's deliveries with their masked destinations.
    async fn notification_details(&self, run: &RunRecord) -> Result<Vec<DeliveryDetails>> {
        let deliveries = self.run_notifications(&run.id).await?;
        if deliveries.is_empty() {
            return Ok(Vec::new());
        }
        // A run whose pipeline version is gone still shows its deliveries,
        // without destinations.
        let notify = match self
            .pinned_pipeline(&run.pipeline, &run.pipeline_version)
            .await
        {
            Ok(spec) => Some(crate::notify::notify_spec(&spec, run)),
            Err(_) => None,
        };
        Ok(deliveries
            .into_iter()
            .map(|delivery| DeliveryDetails {
                target: notify
                    .as_ref()
                    .and_then(|notify| notify.channels.get(&delivery.channel))
                    .map(shown_target),
                delivery,
            })
            .collect())
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

/// Where a channel sends, as it may be shown.
fn shown_target(channel: &ChannelSpec) -> String {
    match channel {
        ChannelSpec::Webhook { url, .. } | ChannelSpec::Slack { url } => {
            crate::notify::masked_url(url)
        }
        ChannelSpec::Email { host, port, .. } => format!("smtp://{host}:{port}"),
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
