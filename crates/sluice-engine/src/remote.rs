//! The engine's side of the agent protocol: remote agents register, claim
//! tries (holding the request until one is claimable), renew their leases,
//! store log chunks and files, and report their tries' ends. Every write
//! about a try is fenced by its lease epoch; a stale one is
//! `StaleLease` and changes nothing.
//!
//! A remote agent is an executor (`kind = agent`) claiming only runs no
//! `sluice run` process owns, like the server's built-in agent. A claimed
//! child-pipeline block has no process to run: it is handed to the built-in
//! agent of the server that answered the claim, which starts and watches the
//! child run under the same lease.

use std::collections::BTreeMap;
use std::time::Duration;

use sluice_core::ids::{AgentId, ExecutorId, TryId};
use sluice_core::spec::BlockKind;
use sluice_core::status::BlockRunStatus;
use sluice_store::{
    AgentListing, AgentRecord, Claim, ClaimRequest, DataRef, ExecutorRecord, LogChunk, NewArtifact,
    TryRecord, TryStatus,
};
use tokio_util::sync::CancellationToken;

use crate::clock::add;
use crate::completion::{EndedTry, Ending, TryEnd};
use crate::tokens::is_valid_token_name;
use crate::{Engine, Error, Event, Result};

/// The longest a claim may wait for a claimable try.
pub const MAX_CLAIM_WAIT: Duration = Duration::from_secs(25);

/// A remote agent introducing itself.
#[derive(Clone, Debug)]
pub struct AgentRegistration {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub version: String,
    pub host: String,
    pub pid: u32,
}

/// What a remote try executes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteCommand {
    /// A shell script with its `${{ }}` values substituted shell-quoted.
    Shell { script: String },
    /// A script file relative to the project directory.
    Script { path: String },
}

/// A try claimed by a remote agent, with everything executing it needs.
#[derive(Clone, Debug)]
pub struct RemoteTry {
    pub claim: Claim,
    pub command: RemoteCommand,
    pub variables: BTreeMap<String, serde_json::Value>,
    pub secrets: Vec<String>,
    pub inputs: serde_json::Value,
    pub env: BTreeMap<String, String>,
    pub artifact_globs: Vec<String>,
    pub timeout: Option<Duration>,
    pub kill_grace: Duration,
    pub lease_ttl: Duration,
}

/// A lease a remote agent holds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeldLease {
    pub try_id: TryId,
    pub epoch: i64,
}

/// A remote agent's heartbeat.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AgentHeartbeat {
    pub agent: AgentId,
    /// The leases it holds, to renew.
    pub leases: Vec<HeldLease>,
    /// It stopped claiming and finishes what it runs.
    pub draining: bool,
}

/// What an agent is doing, as listings show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AgentStatus {
    /// Heartbeating, running nothing.
    Online,
    /// Heartbeating, running tries.
    Busy,
    /// Heartbeating, finishing its tries before it stops.
    Draining,
    /// Silent for longer than a lease lasts.
    Offline,
}

impl AgentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Online => "online",
            AgentStatus::Busy => "busy",
            AgentStatus::Draining => "draining",
            AgentStatus::Offline => "offline",
        }
    }
}

/// An agent in a listing.
#[derive(Clone, Debug, PartialEq)]
pub struct AgentSummary {
    pub listing: AgentListing,
    pub status: AgentStatus,
}

/// The most agents a listing shows.
pub const MAX_AGENTS: u32 = 1_000;

/// The answer to a heartbeat.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LeaseReport {
    /// Tries to stop: their run is cancelled or ended, or their block run
    /// moved on.
    pub cancel: Vec<TryId>,
    /// Tries whose lease the agent no longer holds.
    pub lost: Vec<TryId>,
    pub expires_at: jiff::Timestamp,
}

/// How a remote try ended, as its agent reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RemoteEnd {
    Completed,
    Failed,
    TimedOut,
    Cancelled,
    /// The agent shut down first: the try runs again without using up a
    /// retry.
    Interrupted,
}

/// A remote try's end.
#[derive(Clone, Debug)]
pub struct RemoteEnding {
    pub epoch: i64,
    pub end: RemoteEnd,
    pub exit_code: Option<i32>,
    pub error: Option<String>,
    pub outputs: BTreeMap<String, String>,
    /// Stored before with [`Engine::upload_file`].
    pub data: Option<DataRef>,
    /// Stored before with [`Engine::upload_file`].
    pub artifacts: Vec<NewArtifact>,
}

impl Engine {
    /// Records a remote agent and returns its id.
    pub async fn register_agent(&self, registration: AgentRegistration) -> Result<AgentId> {
        if !is_valid_token_name(&registration.name) {
            return Err(Error::invalid(
                format!("`{}` is not a valid agent name", registration.name),
                Some("use 1 to 64 letters, digits, `_`, `-` or `.`".to_owned()),
            ));
        }
        let now = self.clock().now();
        let id = AgentId(format!(
            "agent-{}-{}",
            registration.name,
            crate::services::new_id()
        ));
        self.store()
            .register_executor(&ExecutorRecord {
                id: id.executor(),
                kind: "agent".to_owned(),
                host: registration.host,
                pid: registration.pid,
                started_at: now,
                heartbeat_at: now,
                labels: registration.labels,
            })
            .await?;
        self.store()
            .put_agent(&AgentRecord {
                id: id.clone(),
                name: registration.name,
                version: registration.version.clone(),
                registered_at: now,
            })
            .await?;
        tracing::info!(agent = %id, version = %registration.version, "an agent registered");
        Ok(id)
    }

    async fn agent_record(&self, agent: &AgentId) -> Result<ExecutorRecord> {
        match self.store().get_executor(&agent.executor()).await? {
            Some(record) if record.kind == "agent" => Ok(record),
            _ => Err(unknown_agent(agent)),
        }
    }

    /// Claims a try for a remote agent, waiting up to `wait` (at most
    /// [`MAX_CLAIM_WAIT`]) for one to become claimable: the engine's events
    /// and wake-ups (other servers' announced changes among them) end the
    /// wait at once, the poll interval catches what nobody announced. `None` when nothing came or `stop` fired.
    pub async fn claim_remote(
        &self,
        agent: &AgentId,
        wait: Duration,
        stop: &CancellationToken,
    ) -> Result<Option<RemoteTry>> {
        let record = self.agent_record(agent).await?;
        self.store()
            .heartbeat_executor(&record.id, self.clock().now())
            .await?;
        let started = tokio::time::Instant::now();
        let deadline = started + wait.min(MAX_CLAIM_WAIT);
        let mut events = self.subscribe();
        loop {
            // A held request outlives a frozen or cut-off agent: once a
            // heartbeat is due, the agent must still be sending them, or
            // the try would go to a process that never runs it (its lease
            // would expire and cost the block a try).
            if started.elapsed() >= self.config().lease_ttl / 3
                && !self.agent_answers(&record.id).await?
            {
                return Ok(None);
            }
            let now = self.clock().now();
            let request = ClaimRequest {
                executor: record.id.clone(),
                owner: None,
                labels: Some(record.labels.clone()),
                now,
                lease_expires_at: add(now, self.config().lease_ttl),
            };
            if let Some(claim) = self.store().claim(&request).await? {
                self.observe_claim(&claim);
                if let Some(remote) = self.remote_try(claim).await? {
                    return Ok(Some(remote));
                }
                continue;
            }
            tokio::select! {
                () = stop.cancelled() => return Ok(None),
                () = tokio::time::sleep_until(deadline) => return Ok(None),
                _ = events.recv() => {}
                // Another server's change, announced through the database.
                () = self.inner.wake.notified() => {}
                () = tokio::time::sleep(self.config().poll_interval) => {}
            }
        }
    }

    /// Whether an agent's heartbeats still arrive: its latest is no older
    /// than two heartbeat intervals (a third of the lease TTL each).
    async fn agent_answers(&self, executor: &ExecutorId) -> Result<bool> {
        let Some(record) = self.store().get_executor(executor).await? else {
            return Ok(false);
        };
        let silent = self.clock().now().duration_since(record.heartbeat_at);
        Ok(silent.is_negative() || silent.unsigned_abs() <= self.config().lease_ttl * 2 / 3)
    }

    /// What a remote agent needs to execute a claimed try; `None` when the
    /// try was handed to the built-in agent or ended because it cannot run.
    async fn remote_try(&self, claim: Claim) -> Result<Option<RemoteTry>> {
        let prepared = self.prepare_try(&claim).await?;
        let Some(block) = prepared.block() else {
            let error = format!(
                "block `{}` is not in the pinned pipeline",
                claim.block_run.block
            );
            self.end_unrunnable(&claim, None, error).await?;
            return Ok(None);
        };
        if matches!(block.kind, BlockKind::Pipeline { .. }) {
            self.hand_off(claim);
            return Ok(None);
        }
        let command = match prepared.command() {
            Ok(sluice_exec::Command::Shell { script }) => RemoteCommand::Shell { script },
            Ok(sluice_exec::Command::Script { path }) => RemoteCommand::Script {
                path: path.to_string_lossy().into_owned(),
            },
            Err(error) => {
                let masked = sluice_exec::Masker::new(prepared.secrets())
                    .mask(&error)
                    .into_owned();
                self.end_unrunnable(&claim, Some(&block.retries), masked)
                    .await?;
                return Ok(None);
            }
        };
        Ok(Some(RemoteTry {
            command,
            variables: prepared.variables().clone(),
            secrets: prepared.secrets().to_vec(),
            inputs: prepared.inputs(),
            env: crate::scheduler::block_env(&claim.run, &block.env),
            artifact_globs: block.artifacts.clone(),
            timeout: block.timeout.map(|timeout| timeout.0),
            kill_grace: self.config().kill_grace,
            lease_ttl: self.config().lease_ttl,
            claim,
        }))
    }

    async fn end_unrunnable(
        &self,
        claim: &Claim,
        retries: Option<&sluice_core::spec::RetryPolicy>,
        error: String,
    ) -> Result<()> {
        let ended = EndedTry {
            run_id: &claim.run.id,
            block_run: &claim.block_run,
            attempt_try: &claim.attempt_try,
            retries,
        };
        let ending = Ending {
            end: TryEnd::Unrunnable,
            exit_code: None,
            error: Some(error),
            outputs: BTreeMap::new(),
            data: None,
            artifacts: Vec::new(),
        };
        match self.end_try(ended, ending).await {
            Ok(_) | Err(Error::Store(sluice_store::Error::StaleLease(_))) => Ok(()),
            Err(other) => Err(other),
        }
    }

    /// Records that a remote agent is alive and renews the leases it
    /// holds; says which tries it must stop.
    pub async fn heartbeat_agent(&self, heartbeat: &AgentHeartbeat) -> Result<LeaseReport> {
        let AgentHeartbeat {
            agent,
            leases,
            draining,
        } = heartbeat;
        let now = self.clock().now();
        self.store()
            .heartbeat_executor(&agent.executor(), now)
            .await
            .map_err(|error| match error {
                sluice_store::Error::NotFound(_) => unknown_agent(agent),
                other => Error::Store(other),
            })?;
        if *draining {
            self.store().set_agent_draining(agent, true).await?;
        }
        let expires_at = add(now, self.config().lease_ttl);
        let mut report = LeaseReport {
            expires_at,
            ..LeaseReport::default()
        };
        for lease in leases {
            match self
                .store()
                .renew_lease(&lease.try_id, lease.epoch, expires_at)
                .await
            {
                Ok(state) if state.cancel_requested => report.cancel.push(lease.try_id.clone()),
                Ok(_) => {}
                Err(sluice_store::Error::StaleLease(_)) => report.lost.push(lease.try_id.clone()),
                Err(other) => return Err(other.into()),
            }
        }
        Ok(report)
    }

    /// The try of a write, if it is still running under `epoch`.
    async fn held_try(&self, try_id: &TryId, epoch: i64) -> Result<TryRecord> {
        match self.store().get_try(try_id).await? {
            Some(record) if record.lease_epoch == epoch && record.status == TryStatus::Running => {
                Ok(record)
            }
            Some(_) => Err(Error::Store(sluice_store::Error::StaleLease(
                try_id.clone(),
            ))),
            None => Err(Error::NotFound(format!("no try `{try_id}`"))),
        }
    }

    /// Stores one numbered chunk of a remote try's log; a chunk sent again
    /// under the same `seq` changes nothing.
    pub async fn append_agent_log(&self, chunk: LogChunk, epoch: i64) -> Result<()> {
        let Some(record) = self.store().get_try(&chunk.try_id).await? else {
            return Err(Error::NotFound(format!("no try `{}`", chunk.try_id)));
        };
        self.store().append_log_chunk(&chunk, epoch).await?;
        if let Some(block_run) = self.store().get_block_run(&record.block_run_id).await? {
            self.publish(Event::Log {
                run_id: block_run.run_id,
                try_id: chunk.try_id.clone(),
                seq: chunk.seq,
            });
        }
        Ok(())
    }

    /// Stores a file of a running remote try (its data output or an
    /// artifact) as a blob, if its content has the SHA-256 the agent
    /// announced. A mismatch means the file was damaged on its way: the try
    /// fails with that error, and the upload is refused.
    pub async fn upload_file(
        &self,
        try_id: &TryId,
        epoch: i64,
        sha256: &str,
        content: Vec<u8>,
    ) -> Result<sluice_store::blobs::BlobRef> {
        let record = self.held_try(try_id, epoch).await?;
        let uploads = self.config().scratch_dir.join("uploads");
        let path = uploads.join(crate::services::new_id());
        let written = async {
            tokio::fs::create_dir_all(&uploads).await?;
            tokio::fs::write(&path, &content).await
        }
        .await;
        written.map_err(|source| Error::Io {
            context: format!("cannot write an upload to {}", path.display()),
            source,
        })?;
        let stored = self.blobs().put_file_verified(&path, sha256).await;
        let _ = tokio::fs::remove_file(&path).await;
        match stored {
            Ok(blob) => Ok(blob),
            Err(sluice_store::blobs::Error::Mismatch { expected, actual }) => {
                let message = format!(
                    "an uploaded file of try `{try_id}` was damaged on its way: its SHA-256 is {actual}, not the announced {expected}"
                );
                self.fail_try(&record, message.clone()).await?;
                Err(Error::invalid(
                    message,
                    Some("the try failed; check the network between the agent and the server, then retry the run".to_owned()),
                ))
            }
            Err(sluice_store::blobs::Error::InvalidDigest(digest)) => Err(Error::invalid(
                format!("`{digest}` is not a SHA-256 digest"),
                Some("send 64 lowercase hexadecimal digits".to_owned()),
            )),
            Err(other) => Err(other.into()),
        }
    }

    async fn fail_try(&self, record: &TryRecord, error: String) -> Result<()> {
        let Some(block_run) = self.store().get_block_run(&record.block_run_id).await? else {
            return Ok(());
        };
        let run = self.get_run(&block_run.run_id).await?;
        let claim = Claim {
            attempt_try: record.clone(),
            block_run,
            run,
        };
        self.end_unrunnable(&claim, None, error).await
    }

    /// Ends a remote try as its agent reports it; the engine decides
    /// whether its block run is retried or finished, as for a local try.
    /// Returns the block run's status afterwards.
    pub async fn complete_agent_try(
        &self,
        agent: &AgentId,
        try_id: &TryId,
        ending: RemoteEnding,
    ) -> Result<BlockRunStatus> {
        let record = self.held_try(try_id, ending.epoch).await?;
        if record.executor != agent.executor() {
            return Err(Error::Store(sluice_store::Error::StaleLease(
                try_id.clone(),
            )));
        }
        if let Some(data) = &ending.data
            && !matches!(data.format.as_str(), "csv" | "jsonl")
        {
            return Err(Error::invalid(
                format!("`{}` is not a data format", data.format),
                Some("send csv or jsonl".to_owned()),
            ));
        }
        let files = ending
            .data
            .iter()
            .map(|data| &data.sha256)
            .chain(ending.artifacts.iter().map(|artifact| &artifact.sha256));
        for sha256 in files {
            let stored = self
                .blobs()
                .path_of(sha256)
                .map(|path| path.exists())
                .unwrap_or(false);
            if !stored {
                return Err(Error::invalid(
                    format!("the file with SHA-256 `{sha256}` was not uploaded"),
                    Some("upload every file with PUT /api/agent/tries/{id}/files before completing the try".to_owned()),
                ));
            }
        }
        let block_run = self
            .store()
            .get_block_run(&record.block_run_id)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no block run `{}`", record.block_run_id)))?;
        let run = self.get_run(&block_run.run_id).await?;
        let spec = self
            .pinned_pipeline(&run.pipeline, &run.pipeline_version)
            .await?;
        // The agent masks what it sends; masking again here keeps a
        // misconfigured agent from storing a secret.
        let masker = sluice_exec::Masker::new(&run.variables.secret_values());
        let ended = EndedTry {
            run_id: &run.id,
            block_run: &block_run,
            attempt_try: &record,
            retries: spec.block(&block_run.block).map(|block| &block.retries),
        };
        let ending = Ending {
            end: match ending.end {
                RemoteEnd::Completed => TryEnd::Completed,
                RemoteEnd::Failed => TryEnd::Failed,
                RemoteEnd::TimedOut => TryEnd::TimedOut,
                RemoteEnd::Cancelled => TryEnd::Cancelled,
                RemoteEnd::Interrupted => TryEnd::Interrupted,
            },
            exit_code: ending.exit_code,
            error: ending.error.map(|error| masker.mask(&error).into_owned()),
            outputs: ending
                .outputs
                .into_iter()
                .map(|(key, value)| (key, masker.mask(&value).into_owned()))
                .collect(),
            data: ending.data,
            artifacts: ending.artifacts,
        };
        let status = self.end_try(ended, ending).await?;
        if status == BlockRunStatus::Queued {
            // The retry may be claimed through another server.
            self.announce_change().await;
        }
        Ok(status)
    }
}

impl Engine {
    /// Remote agents by name with what they are doing: an agent silent for
    /// longer than a lease lasts is offline (its tries are or will be
    /// reaped).
    pub async fn list_agents(&self) -> Result<Vec<AgentSummary>> {
        let now = self.clock().now();
        let ttl = jiff::SignedDuration::try_from(self.config().lease_ttl)
            .unwrap_or(jiff::SignedDuration::MAX);
        let listings = self.store().list_agents(MAX_AGENTS).await?;
        Ok(listings
            .into_iter()
            .map(|listing| {
                let status = if now.duration_since(listing.heartbeat_at) > ttl {
                    AgentStatus::Offline
                } else if listing.draining {
                    AgentStatus::Draining
                } else if listing.running_tries > 0 {
                    AgentStatus::Busy
                } else {
                    AgentStatus::Online
                };
                AgentSummary { listing, status }
            })
            .collect())
    }
}

fn unknown_agent(agent: &AgentId) -> Error {
    Error::NotFound(format!("no agent `{agent}` is registered"))
}
