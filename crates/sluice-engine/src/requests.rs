//! What API requests need beyond the core services: idempotency keys bound
//! to the request that first used them, audit records of requests, run
//! counts, artifact search and verified download, the audit log, the
//! database's readiness, and how many tries this process still executes
//! (for a graceful shutdown).

use sluice_core::ids::{BlockRunId, RunId};
use sluice_core::status::{BlockRunStatus, RunStatus};
use sluice_store::{
    ArtifactQuery, ArtifactRecord, AuditEvent, BlockRunRecord, NewAuditEvent, RunQuery,
};

use crate::queries::BlockRunDetails;

use crate::{Engine, Error, Result};

/// An audit record of a request, written by the adapter that served it.
#[derive(Clone, Debug)]
pub struct RequestAudit {
    /// Who: a token name, or `anonymous` when auth is off.
    pub actor: String,
    /// What, such as `POST /api/pipeline_runs/{id}/cancel`.
    pub action: String,
    /// The path that was requested.
    pub target: String,
    /// Where from, the outcome and the request id.
    pub details: serde_json::Value,
}

impl Engine {
    /// Binds an API `Idempotency-Key` of `pipeline` to the hash of the
    /// request that first used it. A later request with the same key and
    /// another body is refused, so it cannot be mistaken for a replay.
    pub async fn reserve_idempotency_key(
        &self,
        pipeline: &str,
        key: &str,
        request_hash: &str,
    ) -> Result<()> {
        let on_record = self
            .store()
            .reserve_idempotency_key(pipeline, key, request_hash, self.clock().now())
            .await?;
        if on_record == request_hash {
            Ok(())
        } else {
            Err(Error::invalid(
                format!(
                    "the Idempotency-Key `{key}` was already used for pipeline `{pipeline}` with a different request"
                ),
                Some("send the same body again to get the same run, or use a new key".to_owned()),
            ))
        }
    }

    /// Appends a request's audit record.
    pub async fn record_request(&self, record: RequestAudit) -> Result<()> {
        self.store()
            .append_audit(&NewAuditEvent {
                at: self.clock().now(),
                actor: record.actor,
                action: record.action,
                target: record.target,
                details: record.details,
            })
            .await?;
        Ok(())
    }

    /// The audit log, newest first.
    pub async fn list_audit(&self, limit: u32, before_id: Option<i64>) -> Result<Vec<AuditEvent>> {
        Ok(self.store().list_audit(limit, before_id).await?)
    }

    /// How many runs match a listing's filters, per status.
    pub async fn count_runs_by_status(&self, query: &RunQuery) -> Result<Vec<(RunStatus, u64)>> {
        Ok(self.store().count_runs_by_status(query).await?)
    }

    pub async fn search_artifacts(&self, query: &ArtifactQuery) -> Result<Vec<ArtifactRecord>> {
        Ok(self.store().search_artifacts(query).await?)
    }

    /// An artifact and its content, whose SHA-256 is checked against the
    /// recorded one before it is returned.
    pub async fn artifact_content(&self, id: i64) -> Result<(ArtifactRecord, Vec<u8>)> {
        let artifact = self
            .store()
            .get_artifact(id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no artifact with id {id}")))?;
        let bytes = self.blobs().read_verified(&artifact.sha256).await?;
        Ok((artifact, bytes))
    }

    /// A block run with its tries.
    pub async fn block_run_details(&self, id: &BlockRunId) -> Result<BlockRunDetails> {
        let block_run = self.get_block_run(id).await?;
        let tries = self.store().list_tries(id).await?;
        let queue_reason = if block_run.status == BlockRunStatus::Queued {
            self.queue_reasons(&block_run.run_id).await?.remove(id)
        } else {
            None
        };
        Ok(BlockRunDetails {
            block_run,
            tries,
            queue_reason,
        })
    }

    /// The block run of `block` in another attempt of the same run.
    pub async fn block_run_in_attempt(
        &self,
        run_id: &RunId,
        attempt: u32,
        block: &str,
    ) -> Result<BlockRunRecord> {
        self.store()
            .list_block_runs(run_id, Some(attempt))
            .await?
            .into_iter()
            .find(|block_run| block_run.block == block)
            .ok_or_else(|| {
                Error::NotFound(format!(
                    "run {run_id} has no block run of `{block}` in attempt {attempt}"
                ))
            })
    }

    /// Succeeds when the database answers.
    pub async fn check_database(&self) -> Result<()> {
        Ok(self.store().ping().await?)
    }

    /// How many tries this process is executing.
    pub fn executing_tries(&self) -> usize {
        self.inner
            .local_tries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .values()
            .map(|tries| tries.len())
            .sum()
    }
}
