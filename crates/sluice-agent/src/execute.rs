//! The life of one claimed try on an agent: run it with `sluice-exec` in
//! its own scratch directory, stream its log chunks, upload its data and
//! artifacts, and report its end. Calls to the server are retried while the
//! error is transient; a 409 (stale epoch) stops the try at once.

use std::path::PathBuf;
use std::time::Duration;

use sha2::{Digest, Sha256};
use sluice_client::Client;
use sluice_core::ids::{AgentId, TryId};
use sluice_exec::{BlockContext, Command, TryOutcome, TryRequest, TryResult};
use sluice_proto::{
    AgentCommand, AgentLogLine, ClaimedTry, CompleteTryRequest, CompletedArtifact, CompletedData,
    LogChunkRequest,
};
use tokio_util::sync::CancellationToken;

use crate::leases::{Leases, StopReason};

/// How often a call that failed on the way is tried again.
const ATTEMPTS: u32 = 8;
/// The first pause between attempts; each further pause doubles it.
const BACKOFF: Duration = Duration::from_millis(100);

/// What executing a try needs besides the try itself.
#[derive(Clone, Debug)]
pub(crate) struct TryEnv {
    pub client: Client,
    pub agent: AgentId,
    pub leases: Leases,
    pub project_dir: Option<PathBuf>,
    pub work_dir: PathBuf,
    pub projects: std::sync::Arc<sluice_exec::ProjectCache>,
}

/// Whether an error is worth trying again: the server was unreachable,
/// the exchange broke off, or it answered 503.
fn transient(error: &sluice_client::Error) -> bool {
    match error {
        sluice_client::Error::Connect { .. } | sluice_client::Error::Transport { .. } => true,
        other => other.status() == Some(503),
    }
}

/// Calls `call` until it succeeds, fails for good, or runs out of attempts.
async fn retried<T, F, Fut>(what: &str, mut call: F) -> Result<T, sluice_client::Error>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, sluice_client::Error>>,
{
    let mut pause = BACKOFF;
    let mut attempt = 1;
    loop {
        match call().await {
            Err(error) if transient(&error) && attempt < ATTEMPTS => {
                tracing::debug!(error = %format!("{error:#}"), attempt, "{what} failed; trying again");
                tokio::time::sleep(pause).await;
                pause *= 2;
                attempt += 1;
            }
            other => return other,
        }
    }
}

/// Executes a claimed try to its end and reports it.
pub(crate) async fn execute(env: TryEnv, claimed: ClaimedTry, cancel: CancellationToken) {
    let try_id = TryId(claimed.try_id.clone());
    let scratch_dir = env.work_dir.join("tries").join(&claimed.try_id);
    let outcome = match check_out(&env, &claimed, &scratch_dir).await {
        Ok(project_dir) => run(&env, &claimed, project_dir, &scratch_dir, cancel).await,
        // A failed try: the block's retries apply, as to any failure.
        Err(message) => TryOutcome::failed(message),
    };

    let reason = env.leases.release(&try_id);
    if matches!(reason, Some(StopReason::Lost)) {
        tracing::warn!(try_id = %try_id, "the try was stopped because its lease is lost; nothing is reported");
    } else {
        report(&env, &claimed, outcome, reason).await;
    }
    let _ = tokio::fs::remove_dir_all(&scratch_dir).await;
}

/// The try's working directory: a fresh copy of the project files its run
/// is pinned to, or the agent's `--project` for a run without a version.
async fn check_out(
    env: &TryEnv,
    claimed: &ClaimedTry,
    scratch_dir: &std::path::Path,
) -> Result<PathBuf, String> {
    let Some(version) = &claimed.project_version else {
        return env.project_dir.clone().ok_or_else(|| {
            format!(
                "run {} has no pinned project files and this agent was started without --project; \
                 start the agent with --project DIR to run it",
                claimed.run_id
            )
        });
    };
    let list = || async {
        let listed = retried("fetching the project's file list", || {
            env.client.agent_project_version(version)
        })
        .await
        .map_err(|error| format!("{error:#}"))?;
        Ok(listed
            .files
            .into_iter()
            .map(|file| sluice_exec::PinnedFile {
                path: file.path,
                sha256: file.sha256,
                size: file.size,
                executable: file.executable,
            })
            .collect())
    };
    let fetch = |file: sluice_exec::PinnedFile, dest: PathBuf| async move {
        retried("fetching a project file", || {
            env.client
                .download_project_file(version, &file.sha256, &dest)
        })
        .await
        .map(drop)
        .map_err(|error| format!("{error:#}"))
    };
    let dest = scratch_dir.join("project");
    env.projects
        .checkout(version, &dest, list, fetch)
        .await
        .map_err(|error| {
            format!("cannot check out version {version} of the project's files: {error:#}")
        })?;
    Ok(dest)
}

/// Runs the try in `project_dir`, streaming its log chunks.
async fn run(
    env: &TryEnv,
    claimed: &ClaimedTry,
    project_dir: PathBuf,
    scratch_dir: &std::path::Path,
    cancel: CancellationToken,
) -> TryOutcome {
    let try_id = TryId(claimed.try_id.clone());
    let env_agent = env.agent.clone();
    let request = TryRequest {
        command: match &claimed.command {
            AgentCommand::Shell { script } => Command::Shell {
                script: script.clone(),
            },
            AgentCommand::Script { path } => Command::Script {
                path: PathBuf::from(path),
            },
        },
        project_dir,
        scratch_dir: scratch_dir.to_path_buf(),
        context: BlockContext {
            run_id: claimed.run_id.clone(),
            pipeline: claimed.pipeline.clone(),
            block: claimed.block.clone(),
            attempt: claimed.attempt,
            try_number: claimed.try_number,
            idempotency_key: claimed.idempotency_key.clone(),
        },
        variables: claimed.variables.clone(),
        inputs: claimed.inputs.clone(),
        env: {
            // Marks every process of the try as this agent's, for the
            // guardian; the block's own `env:` cannot override it.
            let mut env = claimed.env.clone();
            env.insert(
                sluice_exec::guardian::AGENT_ID_VAR.to_owned(),
                env_agent.as_str().to_owned(),
            );
            env
        },
        secrets: claimed.secrets.clone(),
        artifact_globs: claimed.artifact_globs.clone(),
        timeout: claimed.timeout_ms.map(Duration::from_millis),
        kill_grace: Duration::from_millis(claimed.kill_grace_ms),
    };

    let (sender, receiver) = tokio::sync::mpsc::channel::<sluice_exec::LogChunk>(64);
    // The log uploader is owned by this try: it ends when the try's log
    // channel closes, and is joined before the try is reported.
    let uploader = tokio::spawn(upload_logs(
        env.clone(),
        try_id.clone(),
        claimed.epoch,
        receiver,
    ));
    let outcome = match sluice_exec::run_try(request, sender, cancel).await {
        Ok(outcome) => outcome,
        Err(error) => TryOutcome::failed(format!("{error:#}")),
    };
    if let Err(error) = uploader.await {
        tracing::error!(%error, "the log uploader panicked");
    }
    outcome
}

/// Sends the try's log chunks as they come. A stale epoch stops the try.
async fn upload_logs(
    env: TryEnv,
    try_id: TryId,
    epoch: i64,
    mut receiver: tokio::sync::mpsc::Receiver<sluice_exec::LogChunk>,
) {
    while let Some(chunk) = receiver.recv().await {
        let body = LogChunkRequest {
            epoch,
            seq: chunk.seq,
            lines: chunk
                .lines
                .into_iter()
                .map(|line| AgentLogLine {
                    at: line.at,
                    stream: line.stream.as_str().to_owned(),
                    text: line.text,
                })
                .collect(),
        };
        let sent = retried("sending a log chunk", || {
            env.client.send_log_chunk(try_id.as_str(), &body)
        })
        .await;
        match sent {
            Ok(()) => {}
            Err(error) if error.is_stale_lease() => {
                env.leases.stop(&try_id, StopReason::Lost);
            }
            Err(error) => {
                tracing::warn!(try_id = %try_id, error = %format!("{error:#}"), "could not send a log chunk");
            }
        }
    }
}

fn sha256_hex(content: &[u8]) -> String {
    let digest = Sha256::digest(content);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    hex
}

/// Uploads a file; `Err` holds the reason the try cannot be completed as
/// it ended.
async fn upload(
    env: &TryEnv,
    claimed: &ClaimedTry,
    path: &std::path::Path,
) -> Result<(String, u64), String> {
    let content = tokio::fs::read(path)
        .await
        .map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let sha256 = sha256_hex(&content);
    let uploaded = retried("uploading a file", || {
        env.client
            .upload_file(&claimed.try_id, claimed.epoch, &sha256, content.clone())
    })
    .await
    .map_err(|error| format!("cannot upload {}: {error:#}", path.display()))?;
    Ok((uploaded.sha256, uploaded.size))
}

/// Uploads the try's files and reports its end.
async fn report(
    env: &TryEnv,
    claimed: &ClaimedTry,
    outcome: TryOutcome,
    reason: Option<StopReason>,
) {
    let mut result = match (outcome.result, reason) {
        (_, Some(StopReason::Interrupted | StopReason::Unrenewed)) => "interrupted",
        (TryResult::Completed, _) => "completed",
        (TryResult::Cancelled, _) => "cancelled",
        (TryResult::Failed, _) => "failed",
        (TryResult::TimedOut, _) => "timed_out",
    };
    let mut error = outcome.error.clone();
    let mut data = None;
    let mut artifacts = Vec::new();
    if result == "completed" || result == "failed" || result == "timed_out" {
        let files = async {
            if let Some(file) = &outcome.data {
                let (sha256, size) = upload(env, claimed, &file.path).await?;
                data = Some(CompletedData {
                    format: file.format.as_str().to_owned(),
                    sha256,
                    size,
                });
            }
            for artifact in &outcome.artifacts {
                let (sha256, size) = upload(env, claimed, &artifact.path).await?;
                artifacts.push(CompletedArtifact {
                    name: artifact.name.clone(),
                    sha256,
                    size,
                });
            }
            Ok::<(), String>(())
        }
        .await;
        if let Err(reason) = files {
            result = "failed";
            error = Some(reason);
            data = None;
            artifacts.clear();
        }
    }
    let body = CompleteTryRequest {
        agent_id: env.agent.0.clone(),
        epoch: claimed.epoch,
        result: result.to_owned(),
        exit_code: outcome.exit_code,
        error,
        outputs: outcome.outputs,
        data,
        artifacts,
    };
    match retried("completing the try", || {
        env.client.complete_try(&claimed.try_id, &body)
    })
    .await
    {
        Ok(completed) => tracing::info!(
            try_id = %claimed.try_id,
            result,
            block_run_status = %completed.block_run_status,
            "the try ended"
        ),
        Err(error) if error.is_stale_lease() => {
            tracing::warn!(try_id = %claimed.try_id, "the lease was lost before the try ended; its result is dropped");
        }
        Err(error) => {
            tracing::error!(try_id = %claimed.try_id, error = %format!("{error:#}"), "could not report the try's end; the server's reaper will decide");
        }
    }
}
