//! The leases an agent holds and the two tasks that keep them honest: the
//! heartbeat renews every lease every third of the TTL and stops the tries
//! the server names; the watchdog stops a try whose lease could not be
//! renewed before the TTL minus a margin, so that a try never runs after the
//! server may have given it to another agent.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sluice_client::Client;
use sluice_core::ids::{AgentId, TryId};
use sluice_proto::{HeartbeatRequest, HeldTry};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// Why the agent stopped a try before it ended by itself.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// The heartbeat reply asked for it (the run was cancelled or ended).
    Cancelled,
    /// The server says the lease is no longer this agent's.
    Lost,
    /// The lease could not be renewed in time.
    Unrenewed,
    /// The agent shut down and the drain grace ran out.
    Interrupted,
}

/// A try the agent executes.
struct Held {
    epoch: i64,
    /// When the lease was last known to be renewed, by this agent's clock:
    /// the instant the successful request was sent.
    renewed_at: Instant,
    cancel: CancellationToken,
    reason: Option<StopReason>,
}

/// The tries an agent holds, shared by the claim loop, the try tasks and
/// the lease tasks.
#[derive(Clone, Default)]
pub(crate) struct Leases {
    held: Arc<Mutex<HashMap<TryId, Held>>>,
}

impl std::fmt::Debug for Leases {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Leases").field("held", &self.len()).finish()
    }
}

impl Leases {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<TryId, Held>> {
        self.held
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
    }

    /// Starts holding a try whose claim was answered at `claimed_at`.
    pub fn hold(&self, try_id: TryId, epoch: i64, claimed_at: Instant) -> CancellationToken {
        let cancel = CancellationToken::new();
        self.lock().insert(
            try_id,
            Held {
                epoch,
                renewed_at: claimed_at,
                cancel: cancel.clone(),
                reason: None,
            },
        );
        cancel
    }

    /// Stops holding a try; returns why it was stopped, if it was.
    pub fn release(&self, try_id: &TryId) -> Option<StopReason> {
        self.lock().remove(try_id).and_then(|held| held.reason)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Stops a try, keeping the first reason given.
    pub fn stop(&self, try_id: &TryId, reason: StopReason) {
        if let Some(held) = self.lock().get_mut(try_id) {
            held.reason.get_or_insert(reason);
            held.cancel.cancel();
        }
    }

    /// Stops every try.
    pub fn stop_all(&self, reason: StopReason) {
        for held in self.lock().values_mut() {
            held.reason.get_or_insert(reason);
            held.cancel.cancel();
        }
    }

    fn snapshot(&self) -> Vec<HeldTry> {
        self.lock()
            .iter()
            .map(|(try_id, held)| HeldTry {
                try_id: try_id.0.clone(),
                epoch: held.epoch,
            })
            .collect()
    }

    fn renewed(&self, tries: &[HeldTry], at: Instant) {
        let mut held = self.lock();
        for sent in tries {
            if let Some(entry) = held.get_mut(&TryId(sent.try_id.clone()))
                && entry.epoch == sent.epoch
            {
                entry.renewed_at = entry.renewed_at.max(at);
            }
        }
    }

    /// Stops the tries whose lease was last renewed before `limit`.
    fn stop_unrenewed(&self, limit: Instant) -> usize {
        let mut stopped = 0;
        for (try_id, held) in self.lock().iter_mut() {
            if held.renewed_at < limit && !held.cancel.is_cancelled() {
                tracing::warn!(try_id = %try_id, "the lease could not be renewed in time; stopping the try");
                held.reason.get_or_insert(StopReason::Unrenewed);
                held.cancel.cancel();
                stopped += 1;
            }
        }
        stopped
    }
}

/// What the lease tasks need.
#[derive(Clone, Debug)]
pub(crate) struct LeaseParams {
    pub client: Client,
    pub agent: AgentId,
    pub leases: Leases,
    pub ttl: Duration,
    /// Set when the agent drains; reported in heartbeats.
    pub draining: CancellationToken,
    /// Ends both tasks.
    pub stop: CancellationToken,
}

/// How long before the lease's end a try is stopped when its lease could
/// not be renewed: enough for the process group to be killed (SIGTERM,
/// grace, SIGKILL is the try's own business; this covers the SIGKILL path).
pub(crate) fn renew_margin(ttl: Duration) -> Duration {
    ttl / 4
}

/// Renews the leases every third of the TTL until `stop`. A failed
/// heartbeat is logged and tried again at the next beat; the watchdog acts
/// if failures last.
pub(crate) async fn heartbeat(params: LeaseParams) {
    let every = params.ttl / 3;
    let mut failing = false;
    loop {
        tokio::select! {
            () = params.stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let tries = params.leases.snapshot();
        let request = HeartbeatRequest {
            agent_id: params.agent.0.clone(),
            tries: tries.clone(),
            draining: params.draining.is_cancelled(),
        };
        let sent_at = Instant::now();
        let answer = tokio::time::timeout(every, params.client.agent_heartbeat(&request)).await;
        match answer {
            Ok(Ok(reply)) => {
                if failing {
                    tracing::info!("heartbeats reach the server again");
                    failing = false;
                }
                params.leases.renewed(&tries, sent_at);
                for try_id in reply.cancel {
                    tracing::info!(try_id = %try_id, "the server asks to stop the try");
                    params.leases.stop(&TryId(try_id), StopReason::Cancelled);
                }
                for try_id in reply.lost {
                    tracing::warn!(try_id = %try_id, "the lease is no longer this agent's; stopping the try");
                    params.leases.stop(&TryId(try_id), StopReason::Lost);
                }
            }
            Ok(Err(error)) => {
                if !failing {
                    tracing::warn!(error = %format!("{error:#}"), "a heartbeat failed; trying again");
                }
                failing = true;
            }
            Err(_) => {
                if !failing {
                    tracing::warn!("a heartbeat timed out; trying again");
                }
                failing = true;
            }
        }
    }
}

/// Stops tries whose lease was not renewed for the TTL minus the margin,
/// checking often enough to act before the server's reaper does.
pub(crate) async fn watchdog(params: LeaseParams) {
    let deadline = params.ttl.saturating_sub(renew_margin(params.ttl));
    let every = (params.ttl / 20).max(Duration::from_millis(10));
    loop {
        tokio::select! {
            () = params.stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        if let Some(limit) = Instant::now().checked_sub(deadline) {
            params.leases.stop_unrenewed(limit);
        }
    }
}
