//! The backfill calls: creating (or planning) a backfill, listing them,
//! reading one with its windows, and pausing, resuming or cancelling one.

use reqwest::Method;
use sluice_proto::{Backfill, BackfillDetail, BackfillEnvelope, BackfillList, BackfillRequest};

use crate::{Client, Result};

impl Client {
    /// `POST /api/backfills`: the backfill and its windows, or with
    /// `dry_run` only the windows.
    pub async fn create_backfill(&self, body: &BackfillRequest) -> Result<BackfillDetail> {
        let url = self.url(&["api", "backfills"]);
        let request = self.request(Method::POST, url.clone()).json(body);
        self.json(request, &url).await
    }

    /// `GET /api/backfills`: newest first, at most `limit`.
    pub async fn list_backfills(&self, limit: u32) -> Result<BackfillList> {
        self.get(&["api", "backfills"], &[("limit", limit.to_string())])
            .await
    }

    /// `GET /api/backfills/{id}`.
    pub async fn backfill(&self, id: &str) -> Result<BackfillDetail> {
        self.get(&["api", "backfills", id], &[]).await
    }

    /// `POST /api/backfills/{id}/pause`, `/resume` or `/cancel`.
    pub async fn backfill_action(&self, id: &str, action: &str) -> Result<Backfill> {
        let url = self.url(&["api", "backfills", id, action]);
        let request = self.request(Method::POST, url.clone());
        let envelope: BackfillEnvelope = self.json(request, &url).await?;
        Ok(envelope.backfill)
    }
}
