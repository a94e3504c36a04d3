//! The built-in local agent: claims tries through the same store operations a
//! remote agent's requests end in, executes them with `sluice-exec`, renews
//! their leases, streams their logs into the store and reports their end.
//!
//! Each executing try is a task owned by the agent's `JoinSet`: it has a
//! name (its try id), a shutdown path (its cancellation token, then the join
//! in [`LocalAgent::shutdown`]) and an error policy (a log chunk or a try's
//! end that finds the database away is written again until it is back, for
//! at most a lease TTL; any other failed store write is logged, and the
//! lease then expires and the reaper decides).

use std::collections::BTreeMap;

use sluice_core::ids::{ExecutorId, RunId, TryId};
use sluice_core::spec::{Block, BlockKind};
use sluice_exec::{BlockContext, TryOutcome, TryRequest, TryResult};
use sluice_store::{Claim, ClaimRequest, DataRef, ExecutorRecord, LogChunk, LogLine, NewArtifact};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::clock::add;
use crate::completion::{EndedTry, Ending, TryEnd};
use crate::{Engine, Event, Result};

/// This machine's host name, as recorded with executors.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|name| name.trim().to_owned())
        .ok()
        .filter(|name| !name.is_empty())
        .unwrap_or_else(|| "localhost".to_owned())
}

/// Which runs an agent takes work from.
#[derive(Clone, Debug)]
pub enum Scope {
    /// Only runs owned by this agent's executor (`sluice run`).
    Owned,
    /// Only runs no executor owns (a server's built-in agent).
    Unowned,
}

/// The built-in agent of a process.
pub struct LocalAgent {
    engine: Engine,
    executor: ExecutorId,
    scope: Scope,
    labels: Option<BTreeMap<String, String>>,
    tasks: JoinSet<()>,
    stop_claiming: bool,
    /// Kills this agent's tries if this process is killed, so that they do
    /// not run on while their leases expire and they run again elsewhere.
    _guardian: sluice_exec::guardian::Guardian,
}

impl std::fmt::Debug for LocalAgent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalAgent")
            .field("executor", &self.executor)
            .field("running", &self.tasks.len())
            .finish_non_exhaustive()
    }
}

impl LocalAgent {
    /// Registers an executor for this process and returns its agent. `kind`
    /// is `embedded` for `sluice run`, `server` for a server.
    pub async fn register(
        engine: Engine,
        kind: &str,
        scope: Scope,
        labels: Option<BTreeMap<String, String>>,
    ) -> Result<LocalAgent> {
        let now = engine.clock().now();
        let executor = ExecutorId(format!(
            "{kind}-{}-{}",
            std::process::id(),
            crate::services::new_id()
        ));
        engine
            .store()
            .register_executor(&ExecutorRecord {
                id: executor.clone(),
                kind: kind.to_owned(),
                host: host_name(),
                pid: std::process::id(),
                started_at: now,
                heartbeat_at: now,
                labels: labels.clone().unwrap_or_default(),
            })
            .await?;
        let guardian =
            sluice_exec::guardian::start(executor.as_str()).map_err(|source| crate::Error::Io {
                context: "cannot start the guardian process (`sh`) of the built-in agent"
                    .to_owned(),
                source,
            })?;
        Ok(LocalAgent {
            engine,
            executor,
            scope,
            labels,
            tasks: JoinSet::new(),
            stop_claiming: false,
            _guardian: guardian,
        })
    }

    pub fn executor(&self) -> &ExecutorId {
        &self.executor
    }

    /// How many tries are executing.
    pub fn running(&self) -> usize {
        self.tasks.len()
    }

    /// Records that this process is alive.
    pub async fn heartbeat(&self) -> Result<()> {
        self.engine
            .store()
            .heartbeat_executor(&self.executor, self.engine.clock().now())
            .await?;
        Ok(())
    }

    /// Reaps finished try tasks, then claims and starts tries until the
    /// concurrency limit is reached or nothing is claimable. Returns how many
    /// tries it started.
    pub async fn fill(&mut self) -> Result<usize> {
        while let Some(joined) = self.tasks.try_join_next() {
            if let Err(error) = joined {
                tracing::error!(%error, "a try task panicked");
            }
        }
        let mut started = 0;
        if matches!(self.scope, Scope::Unowned) && !self.stop_claiming {
            for claim in self.engine.take_handoff() {
                started += 1;
                self.spawn(claim);
            }
        }
        while !self.stop_claiming && self.tasks.len() < self.engine.config().local_concurrency {
            let now = self.engine.clock().now();
            let request = ClaimRequest {
                executor: self.executor.clone(),
                owner: match self.scope {
                    Scope::Owned => Some(self.executor.clone()),
                    Scope::Unowned => None,
                },
                labels: self.labels.clone(),
                now,
                lease_expires_at: add(now, self.engine.config().lease_ttl),
            };
            let Some(claim) = self.engine.store().claim(&request).await? else {
                break;
            };
            self.engine.observe_claim(&claim);
            started += 1;
            self.spawn(claim);
        }
        Ok(started)
    }

    /// Executes a claimed try in a task of this agent.
    fn spawn(&mut self, claim: Claim) {
        let engine = self.engine.clone();
        let try_id = claim.attempt_try.id.clone();
        let cancel = engine.register_local_try(&claim.run.id, &try_id);
        self.tasks.spawn(async move {
            let run_id = claim.run.id.clone();
            if let Err(error) = execute(&engine, claim, cancel).await {
                tracing::error!(try_id = %try_id, error = %format!("{error:#}"), "executing the try failed");
            }
            engine.unregister_local_try(&run_id, &try_id);
            engine.wake();
        });
    }

    /// Stops claiming and lets executing tries finish for up to `grace`.
    /// Tries still executing then are interrupted: their processes are
    /// killed and their block runs go back to the queue without using up a
    /// retry, so that the next server to start (this one, restarted, or
    /// another on the same database) runs them again. Returns how many tries
    /// were interrupted.
    pub async fn drain(mut self, grace: std::time::Duration) -> usize {
        self.stop_claiming = true;
        let deadline = tokio::time::Instant::now() + grace;
        let mut interrupted = 0;
        loop {
            match tokio::time::timeout_at(deadline, self.tasks.join_next()).await {
                Ok(Some(Err(error))) => tracing::error!(%error, "a try task panicked"),
                Ok(Some(Ok(()))) => {}
                Ok(None) => break,
                Err(_) => {
                    interrupted = self.tasks.len();
                    tracing::warn!(
                        tries = interrupted,
                        "the grace period ended; interrupting the tries still executing so that they run again after a restart"
                    );
                    self.engine
                        .inner
                        .interrupting
                        .store(true, std::sync::atomic::Ordering::SeqCst);
                    self.engine.cancel_all_local_tries();
                    break;
                }
            }
        }
        self.shutdown().await;
        interrupted
    }

    /// Stops claiming, cancels every executing try, and waits for them to
    /// report.
    pub async fn shutdown(mut self) {
        self.stop_claiming = true;
        self.engine.cancel_all_local_tries();
        while let Some(joined) = self.tasks.join_next().await {
            if let Err(error) = joined {
                tracing::error!(%error, "a try task panicked");
            }
        }
        if let Err(error) = self.engine.store().remove_executor(&self.executor).await {
            tracing::warn!(error = %format!("{error:#}"), "could not deregister the executor");
        }
    }
}

impl Engine {
    /// Gives a claimed child-pipeline try to this process's built-in agent,
    /// which starts and watches the child run (a remote agent cannot).
    pub(crate) fn hand_off(&self, claim: Claim) {
        self.inner
            .handoff
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .push(claim);
        self.wake();
    }

    fn take_handoff(&self) -> Vec<Claim> {
        std::mem::take(
            &mut *self
                .inner
                .handoff
                .lock()
                .unwrap_or_else(|poison| poison.into_inner()),
        )
    }

    fn register_local_try(&self, run_id: &RunId, try_id: &TryId) -> CancellationToken {
        let token = CancellationToken::new();
        self.inner
            .local_tries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .entry(run_id.clone())
            .or_default()
            .insert(try_id.clone(), token.clone());
        token
    }

    fn unregister_local_try(&self, run_id: &RunId, try_id: &TryId) {
        let mut tries = self
            .inner
            .local_tries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(of_run) = tries.get_mut(run_id) {
            of_run.remove(try_id);
            if of_run.is_empty() {
                tries.remove(run_id);
            }
        }
    }

    /// Kills the tries of a run that this process executes.
    pub(crate) fn cancel_local_tries(&self, run_id: &RunId) {
        let tries = self
            .inner
            .local_tries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if let Some(of_run) = tries.get(run_id) {
            for token in of_run.values() {
                token.cancel();
            }
        }
    }

    fn cancel_all_local_tries(&self) {
        let tries = self
            .inner
            .local_tries
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        for token in tries.values().flat_map(|of_run| of_run.values()) {
            token.cancel();
        }
    }
}

/// Executes one claimed try to its end and reports it.
async fn execute(engine: &Engine, claim: Claim, cancel: CancellationToken) -> Result<()> {
    let prepared = engine.prepare_try(&claim).await?;
    let Claim {
        attempt_try,
        block_run,
        run,
    } = &claim;
    let masker = sluice_exec::Masker::new(prepared.secrets());
    let block = prepared.block();

    let outcome = match block {
        Some(Block {
            kind: BlockKind::Pipeline { name, variables },
            ..
        }) => {
            let parent = crate::child::Parent {
                run,
                block_run,
                attempt_try,
            };
            let context = prepared.context();
            let outcome =
                crate::child::run_child(engine, parent, name, variables, &context, cancel).await;
            Ok((outcome, StoredFiles::default()))
        }
        Some(block) => match prepared.command() {
            Ok(command) => {
                let scratch_dir = engine.config().scratch_dir.join(attempt_try.id.as_str());
                let checked_out = engine
                    .check_out_project(run, &scratch_dir.join("project"))
                    .await;
                let project_dir = match checked_out {
                    Ok(dir) => dir,
                    Err(error) => {
                        let _ = tokio::fs::remove_dir_all(&scratch_dir).await;
                        // A version that cannot be checked out from this
                        // server's own blobs will not be on a retry either.
                        return finish(engine, &claim, Some(block), &masker, Err(error)).await;
                    }
                };
                let request = TryRequest {
                    command,
                    project_dir,
                    scratch_dir: scratch_dir.clone(),
                    context: BlockContext {
                        run_id: run.id.to_string(),
                        pipeline: run.pipeline.clone(),
                        block: block_run.block.clone(),
                        attempt: block_run.attempt,
                        try_number: attempt_try.try_number,
                        idempotency_key: block_run.idempotency_key.clone(),
                    },
                    variables: prepared.variables().clone(),
                    inputs: prepared.inputs(),
                    env: {
                        // Marks every process of the try as this agent's,
                        // for its guardian.
                        let mut env = crate::scheduler::block_env(run, &block.env);
                        env.insert(
                            sluice_exec::guardian::AGENT_ID_VAR.to_owned(),
                            attempt_try.executor.as_str().to_owned(),
                        );
                        env
                    },
                    secrets: prepared.secrets().to_vec(),
                    artifact_globs: block.artifacts.clone(),
                    timeout: block.timeout.map(|timeout| timeout.0),
                    kill_grace: engine.config().kill_grace,
                };
                let outcome = run_with_lease(engine, &run.id, attempt_try, request, cancel).await;
                let stored = store_files(engine, &outcome).await;
                let _ = tokio::fs::remove_dir_all(&scratch_dir).await;
                match stored {
                    Ok(files) => Ok((outcome, files)),
                    Err(error) => Err(format!("cannot store the block's files: {error:#}")),
                }
            }
            Err(error) => Err(error),
        },
        None => Err(format!(
            "block `{}` is not in the pinned pipeline",
            block_run.block
        )),
    };

    finish(engine, &claim, block, &masker, outcome).await
}

/// Records how a try ended.
async fn finish(
    engine: &Engine,
    claim: &Claim,
    block: Option<&Block>,
    masker: &sluice_exec::Masker,
    outcome: std::result::Result<(TryOutcome, StoredFiles), String>,
) -> Result<()> {
    let Claim {
        attempt_try,
        block_run,
        run,
    } = claim;
    let ending = match outcome {
        Ok((outcome, files)) => {
            let interrupting = engine
                .inner
                .interrupting
                .load(std::sync::atomic::Ordering::SeqCst);
            Ending {
                end: match outcome.result {
                    TryResult::Completed => TryEnd::Completed,
                    TryResult::Cancelled if interrupting => TryEnd::Interrupted,
                    TryResult::Cancelled => TryEnd::Cancelled,
                    TryResult::Failed => TryEnd::Failed,
                    TryResult::TimedOut => TryEnd::TimedOut,
                },
                exit_code: outcome.exit_code,
                error: outcome.error,
                outputs: outcome.outputs,
                data: files.data,
                artifacts: files.artifacts,
            }
        }
        Err(error) => Ending {
            end: TryEnd::Unrunnable,
            exit_code: None,
            error: Some(masker.mask(&error).into_owned()),
            outputs: BTreeMap::new(),
            data: None,
            artifacts: Vec::new(),
        },
    };
    let ended = EndedTry {
        run_id: &run.id,
        block_run,
        attempt_try,
        retries: block.map(|block| &block.retries),
    };
    let patience = engine.config().lease_ttl;
    let stored = until_stored("the try's end", &attempt_try.id, patience, || {
        engine.end_try(ended, ending.clone())
    });
    match stored.await {
        Ok(sluice_core::status::BlockRunStatus::Queued) => {
            // The retry may be claimed through another server.
            engine.announce_change().await;
            Ok(())
        }
        Ok(_) => Ok(()),
        Err(crate::Error::Store(sluice_store::Error::StaleLease(_))) => {
            tracing::warn!(try_id = %attempt_try.id, "the lease was lost before the try ended; its result is dropped");
            Ok(())
        }
        Err(other) => Err(other),
    }
}

/// Runs the try while renewing its lease and storing its log chunks. A lost
/// lease or a cancellation request kills the try.
async fn run_with_lease(
    engine: &Engine,
    run_id: &RunId,
    attempt_try: &sluice_store::TryRecord,
    request: TryRequest,
    cancel: CancellationToken,
) -> TryOutcome {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<sluice_exec::LogChunk>(64);
    let store = engine.store().clone();
    let try_id = attempt_try.id.clone();
    let epoch = attempt_try.lease_epoch;
    let log_engine = engine.clone();
    let log_run = run_id.clone();
    let patience = engine.config().lease_ttl;
    let logs = tokio::spawn(async move {
        while let Some(chunk) = receiver.recv().await {
            let seq = chunk.seq;
            let chunk = LogChunk {
                try_id: try_id.clone(),
                seq,
                lines: chunk
                    .lines
                    .into_iter()
                    .map(|line| LogLine {
                        at: line.at,
                        stream: line.stream.as_str().to_owned(),
                        text: line.text,
                    })
                    .collect(),
            };
            let stored = until_stored("a log chunk", &try_id, patience, || async {
                Ok(store.append_log_chunk(&chunk, epoch).await?)
            });
            match stored.await {
                Ok(()) => log_engine.publish(Event::Log {
                    run_id: log_run.clone(),
                    try_id: try_id.clone(),
                    seq,
                }),
                Err(error) => {
                    tracing::warn!(try_id = %try_id, error = %format!("{error:#}"), "could not store a log chunk");
                }
            }
        }
    });

    let renew_every = engine.config().lease_ttl / 3;
    let lease_engine = engine.clone();
    let lease_try = attempt_try.id.clone();
    let lease_cancel = cancel.clone();
    let lease = tokio::spawn(async move {
        loop {
            tokio::select! {
                () = lease_cancel.cancelled() => return,
                () = tokio::time::sleep(renew_every) => {}
            }
            let expires = add(lease_engine.clock().now(), lease_engine.config().lease_ttl);
            match lease_engine
                .store()
                .renew_lease(&lease_try, epoch, expires)
                .await
            {
                Ok(state) if state.cancel_requested => lease_cancel.cancel(),
                Ok(_) => {}
                Err(sluice_store::Error::StaleLease(_)) => {
                    tracing::warn!(try_id = %lease_try, "lease lost; killing the try");
                    lease_cancel.cancel();
                    return;
                }
                Err(error) => {
                    tracing::warn!(try_id = %lease_try, error = %format!("{error:#}"), "could not renew the lease");
                }
            }
        }
    });

    let outcome = match sluice_exec::run_try(request, sender, cancel.clone()).await {
        Ok(outcome) => outcome,
        Err(error) => TryOutcome::failed(format!("{error:#}")),
    };
    lease.abort();
    let _ = logs.await;
    outcome
}

/// The first pause before a write that found the database away is made
/// again; each further pause doubles, up to [`STORE_RETRY_MAX`].
const STORE_RETRY_FIRST: std::time::Duration = std::time::Duration::from_millis(100);
const STORE_RETRY_MAX: std::time::Duration = std::time::Duration::from_secs(2);

/// Makes a write of a try until the database takes it, for up to
/// `patience`: a try's log and its end are facts that a database restart
/// must not drop. Chunks are written again under the same `seq` and ends
/// under the same epoch, so a write that did land before the connection
/// broke changes nothing the second time. Past `patience` the lease has
/// expired and the reaper decides; any other failure (a stale lease above
/// all) is returned at once.
async fn until_stored<T, F, Fut>(
    what: &str,
    try_id: &TryId,
    patience: std::time::Duration,
    mut write: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    let mut pause = STORE_RETRY_FIRST;
    let mut waited = false;
    loop {
        match write().await {
            Err(crate::Error::Store(sluice_store::Error::Unavailable(error)))
                if tokio::time::Instant::now() + pause < deadline =>
            {
                if !waited {
                    tracing::warn!(try_id = %try_id, %error, "the database is unavailable; storing {what} again when it is back");
                    waited = true;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(STORE_RETRY_MAX);
            }
            Ok(value) => {
                if waited {
                    tracing::info!(try_id = %try_id, "stored {what} after the database came back");
                }
                return Ok(value);
            }
            other => return other,
        }
    }
}

/// A try's data output and artifacts, once stored as blobs.
#[derive(Default)]
struct StoredFiles {
    data: Option<DataRef>,
    artifacts: Vec<NewArtifact>,
}

async fn store_files(engine: &Engine, outcome: &TryOutcome) -> Result<StoredFiles> {
    let mut stored = StoredFiles::default();
    if let Some(data) = &outcome.data {
        let blob = engine.blobs().put_file(&data.path).await?;
        stored.data = Some(DataRef {
            sha256: blob.sha256,
            format: data.format.as_str().to_owned(),
            size: blob.size,
        });
    }
    for artifact in &outcome.artifacts {
        let blob = engine
            .blobs()
            .put_file_verified(&artifact.path, &artifact.sha256)
            .await?;
        stored.artifacts.push(NewArtifact {
            name: artifact.name.clone(),
            size: blob.size,
            sha256: blob.sha256,
        });
    }
    Ok(stored)
}

/// Drives one run to its end in this process: reconcilers, the local agent
/// and the executor's heartbeat, until the run is terminal and nothing of it
/// still executes.
pub async fn drive_run(
    engine: &Engine,
    agent: &mut LocalAgent,
    run_id: &RunId,
) -> Result<sluice_store::RunRecord> {
    let heartbeat_every = engine.config().lease_ttl / 3;
    let mut last_heartbeat = tokio::time::Instant::now();
    loop {
        engine.reconcile().await?;
        agent.fill().await?;
        let run = engine.get_run(run_id).await?;
        if run.status.is_terminal() && agent.running() == 0 {
            return Ok(run);
        }
        if last_heartbeat.elapsed() >= heartbeat_every {
            agent.heartbeat().await?;
            last_heartbeat = tokio::time::Instant::now();
        }
        engine.wait_for_change().await;
    }
}
