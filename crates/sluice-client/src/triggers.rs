//! The trigger calls: listing triggers and upcoming runs, pausing and
//! resuming a trigger.

use reqwest::Method;
use sluice_proto::{Trigger, TriggerEnvelope, TriggerList, UpcomingList};

use crate::{Client, Result};

impl Client {
    /// `GET /api/triggers`: every trigger with at most `next` next fires.
    pub async fn list_triggers(&self, next: u32) -> Result<TriggerList> {
        self.get(&["api", "triggers"], &[("next", next.to_string())])
            .await
    }

    /// `GET /api/triggers/upcoming`: the next `next` runs, soonest first.
    pub async fn upcoming_fires(&self, next: u32) -> Result<UpcomingList> {
        self.get(
            &["api", "triggers", "upcoming"],
            &[("next", next.to_string())],
        )
        .await
    }

    /// `POST /api/triggers/{pipeline}/{trigger}/pause`.
    pub async fn pause_trigger(&self, pipeline: &str, trigger: &str) -> Result<Trigger> {
        self.trigger_action(pipeline, trigger, "pause").await
    }

    /// `POST /api/triggers/{pipeline}/{trigger}/resume`.
    pub async fn resume_trigger(&self, pipeline: &str, trigger: &str) -> Result<Trigger> {
        self.trigger_action(pipeline, trigger, "resume").await
    }

    async fn trigger_action(&self, pipeline: &str, trigger: &str, action: &str) -> Result<Trigger> {
        let url = self.url(&["api", "triggers", pipeline, trigger, action]);
        let request = self.request(Method::POST, url.clone());
        let envelope: TriggerEnvelope = self.json(request, &url).await?;
        Ok(envelope.trigger)
    }
}
