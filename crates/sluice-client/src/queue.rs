//! The queue calls: listing queued block runs with their reasons, moving
//! one, and cancelling the runs whose queued block runs match a filter.

use reqwest::Method;
use sluice_proto::{Queue, QueueCancelRequest, QueueCancelResponse, QueueMoveRequest};

use crate::{Client, Result};

impl Client {
    /// `GET /api/queue`: queued block runs in claim order, runs waiting to
    /// be admitted, each with its reason.
    pub async fn list_queue(&self) -> Result<Queue> {
        self.get(&["api", "queue"], &[]).await
    }

    /// `POST /api/queue/move`: answers the queue after the move.
    pub async fn move_in_queue(&self, body: &QueueMoveRequest) -> Result<Queue> {
        let url = self.url(&["api", "queue", "move"]);
        let request = self.request(Method::POST, url.clone()).json(body);
        self.json(request, &url).await
    }

    /// `POST /api/queue/cancel`.
    pub async fn cancel_queued(&self, body: &QueueCancelRequest) -> Result<QueueCancelResponse> {
        let url = self.url(&["api", "queue", "cancel"]);
        let request = self.request(Method::POST, url.clone()).json(body);
        self.json(request, &url).await
    }
}
