//! [`run_try`]: one try from request to outcome.
//!
//! The supervisor and the log pump run concurrently in the caller's task, so
//! there is no detached task to own: dropping the future stops both, and a
//! guard kills the process group with it.

use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;
use nix::unistd::Pid;
use process_wrap::tokio::{ChildWrapper, CommandWrap, KillOnDrop, ProcessGroup};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::collect::{self, CollectParams};
use crate::error::Error;
use crate::group::{Group, KillGuard};
use crate::logs::{self, LogChunk, PumpParams};
use crate::mask::Masker;
use crate::prepare;
use crate::types::{TryOutcome, TryRequest, TryResult};

/// How long output is still read once the process group is gone. Only a
/// process that left the group (`setsid`) can hold the pipes open that long.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Runs one try of a block and returns how it ended.
///
/// Log lines are sent to `logs` as they arrive; a full channel slows the
/// block down instead of buffering without bound, and a dropped receiver is
/// tolerated. Firing `cancel` stops the process group (SIGTERM, `kill_grace`,
/// SIGKILL) and ends the try as [`TryResult::Cancelled`]; the request's
/// timeout does the same with [`TryResult::TimedOut`]. The function returns
/// only once nothing of the block's process group runs any more.
///
/// A block that fails, times out, is cancelled, or cannot be started (a
/// missing script, a missing interpreter) is an `Ok` outcome; `Err` means the
/// executor could not prepare the try or read what the block left.
pub async fn run_try(
    request: TryRequest,
    logs: mpsc::Sender<LogChunk>,
    cancel: CancellationToken,
) -> Result<TryOutcome, Error> {
    let masker = Masker::new(&request.secrets);
    prepare::check_globs(&request.artifact_globs)?;
    let project_dir = prepare::project_dir(&request.project_dir).await?;
    let files = prepare::scratch_files(&request).await?;
    let refuse = |result: TryResult, message: String| {
        Ok(TryOutcome::without_process(
            result,
            masker.mask(&message).into_owned(),
        ))
    };
    let program = match prepare::program(&request.command, &project_dir) {
        Ok(program) => program,
        Err(message) => return refuse(TryResult::Failed, message),
    };
    if cancel.is_cancelled() {
        return refuse(TryResult::Cancelled, "cancelled".to_owned());
    }

    let mut command = tokio::process::Command::new(&program.program);
    command
        .args(&program.args)
        .current_dir(&project_dir)
        .envs(prepare::environment(&request, &files))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut command = CommandWrap::from(command);
    command.wrap(ProcessGroup::leader()).wrap(KillOnDrop);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(error) => {
            return refuse(
                TryResult::Failed,
                format!("cannot start {}: {error}", program.name()),
            );
        }
    };
    let Some(group) = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(|id| Group::new(Pid::from_raw(id)))
    else {
        return refuse(
            TryResult::Failed,
            format!("{} exited before it could be watched", program.name()),
        );
    };
    let guard = KillGuard::arm(group);
    tracing::debug!(
        block = request.context.block,
        try_number = request.context.try_number,
        group = ?group,
        "block started"
    );

    let group_gone = CancellationToken::new();
    let pump = logs::pump(PumpParams {
        stdout: child.stdout().take(),
        stderr: child.stderr().take(),
        logs,
        masker: &masker,
        group_gone: group_gone.clone(),
        drain_timeout: DRAIN_TIMEOUT,
    });
    let supervise = async {
        let supervised = supervise(SuperviseParams {
            leader: child.as_mut(),
            group,
            timeout: request.timeout,
            kill_grace: request.kill_grace,
            cancel: &cancel,
        })
        .await;
        group_gone.cancel();
        supervised
    };
    let (supervised, ()) = tokio::join!(supervise, pump);
    let (ending, status) = supervised.map_err(|source| Error::Wait { source })?;
    guard.disarm();

    let collected = collect::collect(CollectParams {
        files,
        project_dir,
        artifact_globs: request.artifact_globs.clone(),
        masker: masker.clone(),
    })
    .await?;
    let (result, error) = judge(ending, status, &request);
    Ok(TryOutcome {
        result,
        exit_code: status.code(),
        signal: status.signal(),
        error: error.map(|error| masker.mask(&error).into_owned()),
        outputs: collected.outputs,
        data: collected.data,
        artifacts: collected.artifacts,
    })
}

/// Why the block's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ending {
    Exited,
    TimedOut,
    Cancelled,
}

struct SuperviseParams<'a> {
    leader: &'a mut dyn ChildWrapper,
    group: Group,
    timeout: Option<Duration>,
    kill_grace: Duration,
    cancel: &'a CancellationToken,
}

/// Waits for the leader to exit, the timeout, or cancellation; then makes
/// sure nothing of the group is left.
async fn supervise(params: SuperviseParams<'_>) -> std::io::Result<(Ending, ExitStatus)> {
    let SuperviseParams {
        leader,
        group,
        timeout,
        kill_grace,
        cancel,
    } = params;
    let timeout = async {
        match timeout {
            Some(timeout) => tokio::time::sleep(timeout).await,
            None => std::future::pending().await,
        }
    };
    let ending = tokio::select! {
        exited = leader.wait() => Ok(exited?),
        () = timeout => Err(Ending::TimedOut),
        () = cancel.cancelled() => Err(Ending::Cancelled),
    };
    match ending {
        Ok(status) => {
            // The leader is gone, but what it started in the background may
            // not be; it gets the same SIGTERM, grace, SIGKILL sequence.
            if group.is_alive().await {
                tracing::debug!(group = ?group, "the block left processes behind; stopping them");
                group.stop(leader, Some(status), kill_grace).await?;
            }
            Ok((Ending::Exited, status))
        }
        Err(ending) => {
            let status = group.stop(leader, None, kill_grace).await?;
            Ok((ending, status))
        }
    }
}

fn judge(ending: Ending, status: ExitStatus, request: &TryRequest) -> (TryResult, Option<String>) {
    match ending {
        Ending::TimedOut => {
            let timeout = request.timeout.unwrap_or_default();
            (
                TryResult::TimedOut,
                Some(format!("timed out after {}", human_duration(timeout))),
            )
        }
        Ending::Cancelled => (TryResult::Cancelled, Some("cancelled".to_owned())),
        Ending::Exited if status.success() => (TryResult::Completed, None),
        Ending::Exited => {
            let error = match (status.code(), status.signal()) {
                (Some(code), _) => format!("exit code {code}"),
                (None, Some(signal)) => match Signal::try_from(signal) {
                    Ok(name) => format!("killed by signal {signal} ({name})"),
                    Err(_) => format!("killed by signal {signal}"),
                },
                (None, None) => format!("exited abnormally ({status})"),
            };
            (TryResult::Failed, Some(error))
        }
    }
}

/// `5s`, `1m 30s`, `1s 500ms`.
fn human_duration(duration: Duration) -> String {
    match jiff::SignedDuration::try_from(duration) {
        Ok(duration) => format!("{duration:#}"),
        Err(_) => format!("{duration:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_like_a_person_wrote_them() {
        assert_eq!(human_duration(Duration::from_secs(5)), "5s");
        assert_eq!(human_duration(Duration::from_secs(90)), "1m 30s");
        assert_eq!(human_duration(Duration::from_millis(1500)), "1s 500ms");
    }
}
