//! sluice's remote agent (`sluice agent`): it registers with a server,
//! claims tries whose required labels it offers (by long poll), runs them
//! with `sluice-exec`, streams their logs, uploads their files, renews
//! their leases, and reports their ends. It speaks only HTTP, through
//! `sluice-client`; it never opens the database (DESIGN §9).
//!
//! ```text
//!  register ──> claim loop (long poll, while a slot is free and not draining)
//!                   │ claimed
//!                   v
//!               try task: run_try ──> log chunks ──> files ──> complete
//!                   ^
//!  heartbeat (TTL/3) ── cancel / lost ──> stop the try (process group)
//!  watchdog ── lease not renewed for TTL − margin ──> stop the try
//!  drain signal ──> stop claiming; tries get `drain_grace`; the rest are
//!                   stopped and reported `interrupted` (they run again)
//!  guardian (a process) ── the agent died ──> kill every process of its tries
//! ```
//!
//! A try runs in a fresh copy of the project files its run is pinned to:
//! the agent fetches each version once, file by file by SHA-256, into its
//! cache (`WORK_DIR/projects`, see `sluice_exec::ProjectCache`). A run
//! recorded without a project version runs in the `--project` directory.

mod execute;
mod leases;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use sluice_client::Client;
use sluice_core::ids::{AgentId, TryId};
use sluice_proto::{ClaimTryRequest, RegisterAgentRequest};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::execute::TryEnv;
use crate::leases::{LeaseParams, Leases, StopReason};

/// How long a claim asks the server to wait for a claimable try.
const CLAIM_WAIT: Duration = Duration::from_secs(25);
/// The pause after a failed claim before the next.
const CLAIM_BACKOFF: Duration = Duration::from_secs(1);

/// How an agent runs.
#[derive(Clone, Debug)]
pub struct AgentOptions {
    /// Shown by `sluice agents list`.
    pub name: String,
    /// The labels offered; blocks requiring a subset of them are claimed.
    pub labels: BTreeMap<String, String>,
    /// Most tries executing at once.
    pub concurrency: usize,
    /// Where tries of runs recorded without a project version run; every
    /// other try runs in a copy of its run's pinned project files.
    pub project_dir: Option<PathBuf>,
    /// Where tries get their scratch directories, and the cache of project
    /// versions (`projects/`).
    pub work_dir: PathBuf,
    /// How long running tries may take to finish once draining starts.
    pub drain_grace: Duration,
    /// This agent's version, reported when it registers.
    pub version: String,
    pub host: String,
}

/// Why an agent could not run.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot register with the server")]
    Register(#[source] sluice_client::Error),
    #[error("cannot start the guardian process (`sh`)")]
    Guardian(#[source] std::io::Error),
    #[error("cannot create the work directory {path}")]
    WorkDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot open the cache of project versions")]
    ProjectCache(#[source] sluice_exec::ProjectError),
}

/// How an agent's life ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Summary {
    /// Tries claimed and executed.
    pub tries: usize,
    /// Tries stopped because the drain grace ran out.
    pub interrupted: usize,
}

/// Registers with the server behind `client` and executes tries until
/// `drain` fires; then stops claiming and drains.
pub async fn run(
    client: Client,
    options: AgentOptions,
    drain: CancellationToken,
) -> Result<Summary, Error> {
    tokio::fs::create_dir_all(&options.work_dir)
        .await
        .map_err(|source| Error::WorkDir {
            path: options.work_dir.clone(),
            source,
        })?;
    let projects = std::sync::Arc::new(
        sluice_exec::ProjectCache::open(options.work_dir.join("projects"))
            .map_err(Error::ProjectCache)?,
    );
    let registered = client
        .register_agent(&RegisterAgentRequest {
            name: options.name.clone(),
            labels: options.labels.clone(),
            version: options.version.clone(),
            host: options.host.clone(),
            pid: std::process::id(),
        })
        .await
        .map_err(Error::Register)?;
    let agent = AgentId(registered.agent_id);
    let ttl = Duration::from_millis(registered.lease_ttl_ms).max(Duration::from_millis(30));
    tracing::info!(agent = %agent, ttl_ms = registered.lease_ttl_ms, "registered");
    // The guardian lives as long as this function: dropped at its end, it
    // finds nothing to kill and exits; if the agent is killed, it kills the
    // agent's tries.
    let guardian = sluice_exec::guardian::start(agent.as_str()).map_err(Error::Guardian)?;

    let leases = Leases::default();
    let stop_leases = CancellationToken::new();
    let lease_params = LeaseParams {
        client: client.clone(),
        agent: agent.clone(),
        leases: leases.clone(),
        ttl,
        draining: drain.clone(),
        stop: stop_leases.clone(),
    };
    // The lease tasks live as long as the agent: both end on `stop_leases`
    // after the last try reported; their failures are logged and retried.
    let mut lease_tasks = JoinSet::new();
    lease_tasks.spawn(leases::heartbeat(lease_params.clone()));
    lease_tasks.spawn(leases::watchdog(lease_params));

    let env = TryEnv {
        client: client.clone(),
        agent: agent.clone(),
        leases: leases.clone(),
        project_dir: options.project_dir.clone(),
        work_dir: options.work_dir.clone(),
        projects: projects.clone(),
    };
    // Each try is a task named by its try id (in its log lines); it ends
    // when its process group is gone and its end is reported, and is
    // stopped through its cancellation token.
    let mut tries = JoinSet::new();
    let mut summary = Summary::default();
    let concurrency = options.concurrency.max(1);
    while !drain.is_cancelled() {
        while let Some(joined) = tries.try_join_next() {
            log_join(joined);
        }
        if tries.len() >= concurrency {
            tokio::select! {
                () = drain.cancelled() => break,
                joined = tries.join_next() => {
                    if let Some(joined) = joined {
                        log_join(joined);
                    }
                }
            }
            continue;
        }
        let request = ClaimTryRequest {
            agent_id: agent.0.clone(),
            wait_ms: Some(u64::try_from(CLAIM_WAIT.as_millis()).unwrap_or(u64::MAX)),
        };
        // A claim dropped here because the agent drains may have claimed a
        // try on the server: its lease expires unrenewed and the reaper
        // queues it again.
        let claimed = tokio::select! {
            () = drain.cancelled() => break,
            claimed = client.claim_try(&request) => claimed,
        };
        match claimed {
            Ok(Some(claimed)) => {
                // The server held the request until it claimed the try, so
                // the lease started just before the answer arrived; the
                // watchdog's margin covers the answer's way back.
                let claimed_at = Instant::now();
                summary.tries += 1;
                tracing::info!(try_id = %claimed.try_id, block = %claimed.block, run_id = %claimed.run_id, "claimed a try");
                let cancel = leases.hold(TryId(claimed.try_id.clone()), claimed.epoch, claimed_at);
                tries.spawn(execute::execute(env.clone(), claimed, cancel));
            }
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(error = %format!("{error:#}"), "a claim failed; trying again");
                tokio::select! {
                    () = drain.cancelled() => break,
                    () = tokio::time::sleep(CLAIM_BACKOFF) => {}
                }
            }
        }
    }

    if !tries.is_empty() {
        tracing::info!(tries = tries.len(), grace = ?options.drain_grace, "draining: no new claims; running tries may finish");
    }
    let deadline = Instant::now() + options.drain_grace;
    loop {
        match tokio::time::timeout_at(deadline, tries.join_next()).await {
            Ok(Some(joined)) => log_join(joined),
            Ok(None) => break,
            Err(_) => {
                summary.interrupted = leases.len();
                tracing::warn!(
                    tries = summary.interrupted,
                    "the drain grace ended; stopping the tries still running so that they run again"
                );
                leases.stop_all(StopReason::Interrupted);
                while let Some(joined) = tries.join_next().await {
                    log_join(joined);
                }
                break;
            }
        }
    }
    stop_leases.cancel();
    while let Some(joined) = lease_tasks.join_next().await {
        log_join(joined);
    }
    drop(guardian);
    Ok(summary)
}

fn log_join(joined: Result<(), tokio::task::JoinError>) {
    if let Err(error) = joined {
        tracing::error!(%error, "an agent task panicked");
    }
}
