//! The guardian: a small `sh` process that outlives an agent (a remote
//! `sluice agent`, or the built-in agent of `sluice up` and `sluice run`) if
//! the agent's process is killed (SIGKILL, OOM), and then kills every
//! process of the agent's tries, so that no block keeps running after its
//! agent is gone while its try is lost and runs again elsewhere.
//!
//! The guardian reads its stdin, a pipe whose only writer is the agent: the
//! kernel closes it when the agent exits, however it exits. Then it kills
//! every process whose environment carries this agent's id
//! ([`AGENT_ID_VAR`], set for every try), repeating until none is left, so
//! that grandchildren and processes that left the try's process group go
//! too. After a clean shutdown there is nothing left to kill. It reads
//! `/proc`, so it works on Linux only; elsewhere it finds nothing.

use std::process::Stdio;

use tokio::process::{Child, ChildStdin};

/// The environment variable naming the agent in every try it runs; the
/// agent sets it after the block's own `env:`, which cannot override it.
pub const AGENT_ID_VAR: &str = "SLUICE_AGENT_ID";

/// The guardian's script; `$1` is the agent id.
const SCRIPT: &str = r#"
cat > /dev/null
mark="SLUICE_AGENT_ID=$1"
rounds=0
while [ "$rounds" -lt 50 ]; do
    found=0
    for environ in /proc/[0-9]*/environ; do
        pid=${environ#/proc/}
        pid=${pid%/environ}
        [ "$pid" = "$$" ] && continue
        if tr '\0' '\n' < "$environ" 2>/dev/null | grep -qxF "$mark"; then
            kill -KILL "$pid" 2>/dev/null && found=1
        fi
    done
    [ "$found" = 0 ] && exit 0
    rounds=$((rounds + 1))
done
"#;

/// A running guardian. Dropping it closes the pipe: the guardian then
/// looks for leftover processes once and exits.
#[derive(Debug)]
pub struct Guardian {
    _child: Child,
    _pipe: ChildStdin,
}

/// Starts the guardian of the agent whose tries carry
/// `SLUICE_AGENT_ID=agent`. The guardian is not killed with the agent on
/// purpose: outliving it is its job.
pub fn start(agent: &str) -> std::io::Result<Guardian> {
    let mut child = tokio::process::Command::new("sh")
        .arg("-c")
        .arg(SCRIPT)
        .arg("sluice-agent-guardian")
        .arg(agent)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(false)
        .spawn()?;
    let pipe = child
        .stdin
        .take()
        .ok_or_else(|| std::io::Error::other("the guardian has no stdin"))?;
    Ok(Guardian {
        _child: child,
        _pipe: pipe,
    })
}
