//! Shared helpers of the integration tests: a project in a temporary
//! directory, a request with defaults, a runner that collects log chunks,
//! and process lookups by a unique command-line marker.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use sluice_exec::{BlockContext, Command, LogChunk, LogLine, Stream, TryOutcome, TryRequest};
use tokio_util::sync::CancellationToken;

/// How long any test waits for anything before it fails.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// A project directory and a scratch directory, both removed on drop.
pub struct Project {
    dir: tempfile::TempDir,
    scratch: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().expect("project directory"),
            scratch: tempfile::tempdir().expect("scratch directory"),
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn file(&self, relative: &str) -> PathBuf {
        self.path().join(relative)
    }

    pub fn write(&self, relative: &str, content: &str) {
        let path = self.file(relative);
        std::fs::create_dir_all(path.parent().expect("parent")).expect("create directories");
        std::fs::write(path, content).expect("write project file");
    }

    pub fn write_executable(&self, relative: &str, content: &str) {
        self.write(relative, content);
        let permissions = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(self.file(relative), permissions).expect("chmod");
    }

    pub fn read(&self, relative: &str) -> Vec<u8> {
        std::fs::read(self.file(relative)).expect("read project file")
    }

    /// A request with empty variables, inputs and env, no timeout and a
    /// short kill grace; its scratch directory does not exist yet.
    pub fn request(&self, command: Command) -> TryRequest {
        TryRequest {
            command,
            project_dir: self.path().to_owned(),
            scratch_dir: self.scratch.path().join("try-1"),
            context: BlockContext {
                run_id: "run-0001".into(),
                pipeline: "etl".into(),
                block: "load".into(),
                attempt: 2,
                try_number: 3,
                idempotency_key: "run-0001:load".into(),
            },
            variables: BTreeMap::new(),
            inputs: serde_json::json!({}),
            env: BTreeMap::new(),
            secrets: Vec::new(),
            artifact_globs: Vec::new(),
            timeout: None,
            kill_grace: Duration::from_millis(500),
        }
    }
}

pub fn shell(script: &str) -> Command {
    Command::Shell {
        script: script.to_owned(),
    }
}

pub fn script(path: &str) -> Command {
    Command::Script { path: path.into() }
}

/// A finished try and every chunk it sent.
#[derive(Debug)]
pub struct Finished {
    pub outcome: TryOutcome,
    pub chunks: Vec<LogChunk>,
}

impl Finished {
    pub fn lines(&self) -> impl Iterator<Item = &LogLine> {
        self.chunks.iter().flat_map(|chunk| &chunk.lines)
    }

    pub fn texts(&self, stream: Stream) -> Vec<&str> {
        self.lines()
            .filter(|line| line.stream == stream)
            .map(|line| line.text.as_str())
            .collect()
    }
}

pub async fn run(request: TryRequest) -> Finished {
    run_with(request, CancellationToken::new(), |_| {}).await
}

/// Runs a try; `on_line` sees each line as it arrives, e.g. to cancel.
pub async fn run_with(
    request: TryRequest,
    cancel: CancellationToken,
    mut on_line: impl FnMut(&LogLine) + Send + 'static,
) -> Finished {
    let (sender, mut receiver) = tokio::sync::mpsc::channel::<LogChunk>(16);
    let collector = tokio::spawn(async move {
        let mut chunks = Vec::new();
        while let Some(chunk) = receiver.recv().await {
            chunk.lines.iter().for_each(&mut on_line);
            chunks.push(chunk);
        }
        chunks
    });
    let outcome = tokio::time::timeout(PATIENCE, sluice_exec::run_try(request, sender, cancel))
        .await
        .expect("the try finishes in time")
        .expect("the executor succeeds");
    let chunks = collector.await.expect("collector");
    Finished { outcome, chunks }
}

/// A `sleep` argument no other test or process uses, e.g. `1000.123457`.
pub fn marker() -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("1000.{}{n:03}", std::process::id())
}

/// Pids of live (non-zombie) processes whose command line contains `marker`.
pub fn processes_with(marker: &str) -> Vec<i32> {
    let mut found = Vec::new();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return found;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(marker) && pid != std::process::id() as i32 {
            found.push(pid);
        }
    }
    found
}

/// Waits, with a bounded timeout, until `condition` holds; false if it never
/// did.
pub async fn eventually(mut condition: impl FnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        if condition() {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A shell snippet that runs `start` (which must start `sleep <marker>` in
/// the background somehow) and returns once that `sleep` really runs, so a
/// test checking it is gone cannot pass because it never started.
pub fn start_and_wait(start: &str, marker: &str) -> String {
    format!(
        "{start}\nuntil pgrep -f '^sleep {marker}$' >/dev/null; do sleep 0.01; done\necho started\n"
    )
}
