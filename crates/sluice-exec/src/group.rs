//! The block's process group: signalling it, telling whether anything in it
//! still runs, and stopping it with SIGTERM, a grace period and SIGKILL.
//!
//! The leader may exit long before its group does (`sleep 1000 &`), so the
//! leader's exit status alone never ends a try: the group must be empty.
//! Processes that were orphaned are reparented to init, and an init that does
//! not reap leaves them as zombies, which still count for `kill(2)`; on Linux
//! the group is therefore considered empty once `/proc` shows no member that
//! is not a zombie.

use std::process::ExitStatus;
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use process_wrap::tokio::ChildWrapper;
use tokio::time::Instant;

/// How often the group is checked while waiting for it to empty.
const POLL_INTERVAL: Duration = Duration::from_millis(20);
/// How long to wait for the group to empty after SIGKILL; a process in
/// uninterruptible sleep can outlive SIGKILL for a while.
const AFTER_KILL_TIMEOUT: Duration = Duration::from_secs(5);

/// A process group led by the block's process.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Group {
    id: Pid,
}

impl Group {
    pub(crate) fn new(id: Pid) -> Self {
        Self { id }
    }

    pub(crate) fn signal(self, signal: Signal) {
        match killpg(self.id, signal) {
            Ok(()) | Err(Errno::ESRCH) => {}
            Err(error) => {
                tracing::warn!(group = self.id.as_raw(), %signal, %error, "cannot signal the block's process group");
            }
        }
    }

    /// Whether any process of the group is still running.
    pub(crate) async fn is_alive(self) -> bool {
        // If the check itself cannot run, assume the worst: still alive.
        tokio::task::spawn_blocking(move || self.is_alive_blocking())
            .await
            .unwrap_or(true)
    }

    fn is_alive_blocking(self) -> bool {
        match killpg(self.id, None) {
            Err(Errno::ESRCH) => false,
            // EPERM means a member exists that we may not signal.
            Ok(()) | Err(_) => has_running_member(self.id).unwrap_or(true),
        }
    }

    /// Stops the group: SIGTERM, then up to `grace` for the leader and every
    /// member to exit, then SIGKILL. `status` is the leader's exit status if
    /// it was already collected; the returned status is the leader's.
    pub(crate) async fn stop(
        self,
        leader: &mut dyn ChildWrapper,
        mut status: Option<ExitStatus>,
        grace: Duration,
    ) -> std::io::Result<ExitStatus> {
        self.signal(Signal::SIGTERM);
        let deadline = Instant::now() + grace;
        loop {
            if let Some(exited) = status
                && !self.is_alive().await
            {
                return Ok(exited);
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            let tick = tokio::time::sleep(POLL_INTERVAL.min(deadline - now));
            if status.is_none() {
                tokio::select! {
                    exited = leader.wait() => status = Some(exited?),
                    () = tick => {}
                }
            } else {
                tick.await;
            }
        }

        self.signal(Signal::SIGKILL);
        let status = match status {
            Some(status) => status,
            None => leader.wait().await?,
        };
        let deadline = Instant::now() + AFTER_KILL_TIMEOUT;
        while self.is_alive().await {
            if Instant::now() >= deadline {
                tracing::warn!(
                    group = self.id.as_raw(),
                    "processes of the block's group survived SIGKILL; giving up on them"
                );
                break;
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
        Ok(status)
    }
}

/// Whether `/proc` lists a member of the group that is not a zombie; `None`
/// where `/proc` cannot be read.
fn has_running_member(group: Pid) -> Option<bool> {
    let entries = std::fs::read_dir("/proc").ok()?;
    for entry in entries.flatten() {
        let name = entry.file_name();
        if !name
            .to_str()
            .is_some_and(|name| name.bytes().all(|byte| byte.is_ascii_digit()))
        {
            continue;
        }
        // The process may exit between listing and reading; skip it then.
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        if let Some((state, process_group)) = parse_stat(&stat)
            && process_group == group.as_raw()
            && state != 'Z'
            && state != 'X'
        {
            return Some(true);
        }
    }
    Some(false)
}

/// The state and process group of a `/proc/<pid>/stat` line. The command
/// name may contain spaces and parentheses, so fields are counted from the
/// last `)`.
fn parse_stat(stat: &str) -> Option<(char, i32)> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_ascii_whitespace();
    let state = fields.next()?.chars().next()?;
    let _parent = fields.next()?;
    let process_group = fields.next()?.parse().ok()?;
    Some((state, process_group))
}

/// Kills the group with SIGKILL when dropped while armed, so that a try whose
/// future is dropped (its task aborted) leaves nothing running.
pub(crate) struct KillGuard {
    group: Group,
    armed: bool,
}

impl KillGuard {
    pub(crate) fn arm(group: Group) -> Self {
        Self { group, armed: true }
    }

    /// Called once the group is known to be empty: from then on its id may be
    /// reused by unrelated processes.
    pub(crate) fn disarm(mut self) {
        self.armed = false;
    }
}

impl Drop for KillGuard {
    fn drop(&mut self) {
        if self.armed {
            self.group.signal(Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_read_after_the_command_name() {
        let stat = "4242 (a (weird) name) S 1 4240 4240 0 -1 4194560";
        assert_eq!(parse_stat(stat), Some(('S', 4240)));
        assert_eq!(parse_stat("garbage"), None);
    }
}
