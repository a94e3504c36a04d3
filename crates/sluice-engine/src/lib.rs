//! The engine: application services (`trigger_run`, `cancel_run`,
//! `retry_run`), the reconcilers that move runs forward, and the built-in
//! local agent that executes tries in this process.
//!
//! Every reconciler re-reads the world from the store and is safe to run
//! twice at once or in two processes; none holds state a restart would lose.
//! State changes wake the reconcilers at once through an in-process notify
//! (and, between servers on PostgreSQL, `LISTEN/NOTIFY`: `wakeups.rs`),
//! with a slow poll as the fallback.

pub mod agent;
pub mod backfill;
mod child;
pub mod clock;
mod completion;
pub mod data;
pub mod diagnose;
pub mod error;
pub mod events;
mod limits;
pub mod metrics;
pub mod notify;
pub mod operations;
mod prepare;
pub mod project;
pub mod queries;
pub mod queue;
mod reconcile;
pub mod remote;
pub mod requests;
pub mod scheduler;
pub mod services;
pub mod sessions;
pub mod signature;
mod sla;
pub mod smtp;
pub mod snapshot;
pub mod tokens;
pub mod triggers;
mod wakeups;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use sluice_core::ids::{RunId, TryId};
use sluice_core::spec::{self, Pipeline};
use sluice_store::Store;
use sluice_store::blobs::BlobStore;
use tokio::sync::{Notify, broadcast};
use tokio_util::sync::CancellationToken;

pub use backfill::{BackfillRequest, BackfillView, BackfillWindow, WindowState};
pub use clock::{Clock, ManualClock, SystemClock};
pub use error::{Error, Result};
pub use events::Event;
pub use project::{LoadError, LoadedPipeline, Project};
pub use reconcile::Reconciled;
pub use services::{RetryMode, RetryRequest, TriggerRequest};
/// The store's records and parameters, for the adapters (API, UI) that may
/// not depend on `sluice-store` themselves (DESIGN §9).
pub use sluice_store;

/// Tunables of the engine.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    /// How long a lease lasts without a heartbeat.
    pub lease_ttl: Duration,
    /// Between SIGTERM and SIGKILL when a block is timed out or cancelled.
    pub kill_grace: Duration,
    /// Where tries get their scratch directories.
    pub scratch_dir: PathBuf,
    /// Where the built-in agent caches the project versions runs are
    /// pinned to (`sluice_exec::ProjectCache`).
    pub project_cache_dir: PathBuf,
    /// Files and directories inside the project that runs never pin (the
    /// database, the blob store, scratch space), besides hidden and ignored
    /// ones.
    pub unpinned: Vec<PathBuf>,
    /// Most tries the built-in agent runs at once.
    pub local_concurrency: usize,
    /// Most runs in `running` at once across all pipelines (no limit when `None`).
    pub max_active_runs: Option<u32>,
    /// The fallback poll of the reconcilers when nothing wakes them.
    pub poll_interval: Duration,
    /// Whether [`Engine::reconcile`] fires the project's schedules. A
    /// server (`sluice up`) does; a `sluice run` process does not, so
    /// running one pipeline by hand never starts scheduled runs of others.
    pub fire_schedules: bool,
}

impl EngineConfig {
    /// Defaults for a project directory: scratch space under `.sluice/tmp`.
    pub fn for_project(dir: &std::path::Path) -> Self {
        EngineConfig {
            lease_ttl: Duration::from_secs(30),
            kill_grace: Duration::from_secs(10),
            scratch_dir: dir.join(".sluice").join("tmp"),
            project_cache_dir: dir.join(".sluice").join("projects"),
            unpinned: vec![
                dir.join(".sluice").join("tmp"),
                dir.join(".sluice").join("projects"),
            ],
            local_concurrency: 16,
            max_active_runs: None,
            poll_interval: Duration::from_millis(500),
            fire_schedules: false,
        }
    }
}

/// The engine. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

struct Inner {
    store: Arc<dyn Store>,
    blobs: BlobStore,
    project: RwLock<Arc<Project>>,
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    wake: Notify,
    events: broadcast::Sender<Event>,
    /// Parsed pipelines by version; derived from the store, so losing it
    /// loses nothing.
    specs: Mutex<HashMap<String, Arc<Pipeline>>>,
    /// Cancellation handles of the tries this process is executing, by run.
    local_tries: Mutex<HashMap<RunId, HashMap<TryId, CancellationToken>>>,
    /// Set when this process stops its tries because it shuts down, not
    /// because anyone cancelled them: they go back to the queue.
    interrupting: std::sync::atomic::AtomicBool,
    /// Child-pipeline tries a remote agent claimed, waiting for this
    /// process's built-in agent; lost with this process, their leases
    /// expire and the reaper re-queues them.
    handoff: Mutex<Vec<sluice_store::Claim>>,
    /// The web session key, read from the store once (`sessions.rs`).
    session_key: tokio::sync::OnceCell<Vec<u8>>,
    /// This process's counters and histograms (`metrics.rs`).
    metrics: metrics::Metrics,
    /// Digests of the project's files and what is stored (`snapshot.rs`).
    snapshots: snapshot::Snapshots,
    /// The built-in agent's cache of project versions, opened on first use.
    project_cache: tokio::sync::OnceCell<Arc<sluice_exec::ProjectCache>>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("project", &self.project().dir)
            .finish_non_exhaustive()
    }
}

impl Engine {
    pub fn new(
        store: Arc<dyn Store>,
        blobs: BlobStore,
        project: Project,
        clock: Arc<dyn Clock>,
        config: EngineConfig,
    ) -> Engine {
        let (events, _) = broadcast::channel(4096);
        Engine {
            inner: Arc::new(Inner {
                store,
                blobs,
                project: RwLock::new(Arc::new(project)),
                clock,
                config,
                wake: Notify::new(),
                events,
                specs: Mutex::new(HashMap::new()),
                local_tries: Mutex::new(HashMap::new()),
                interrupting: std::sync::atomic::AtomicBool::new(false),
                handoff: Mutex::new(Vec::new()),
                session_key: tokio::sync::OnceCell::new(),
                metrics: metrics::Metrics::default(),
                snapshots: snapshot::Snapshots::default(),
                project_cache: tokio::sync::OnceCell::new(),
            }),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.inner.store
    }

    pub fn blobs(&self) -> &BlobStore {
        &self.inner.blobs
    }

    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// This process's counters and histograms.
    pub fn metrics(&self) -> &metrics::Metrics {
        &self.inner.metrics
    }

    pub fn project(&self) -> Arc<Project> {
        self.inner
            .project
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    /// Replaces the project (after its files changed). Runs already created
    /// stay pinned to the version they started with.
    pub fn set_project(&self, project: Project) {
        *self
            .inner
            .project
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = Arc::new(project);
    }

    /// Subscribes to the engine's events.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// Wakes the reconcilers and the local agent.
    pub fn wake(&self) {
        self.inner.wake.notify_waiters();
        self.inner.wake.notify_one();
    }

    /// Waits until something wakes the engine or the poll interval passes.
    pub async fn wait_for_change(&self) {
        let _ =
            tokio::time::timeout(self.inner.config.poll_interval, self.inner.wake.notified()).await;
    }

    pub(crate) fn publish(&self, event: Event) {
        let _ = self.inner.events.send(event);
    }

    /// The pipeline a run is pinned to, by version hash.
    pub async fn pinned_pipeline(&self, name: &str, version: &str) -> Result<Arc<Pipeline>> {
        if let Some(spec) = self
            .inner
            .specs
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(version)
        {
            return Ok(spec.clone());
        }
        let project = self.project();
        let spec = match project.pipeline(name) {
            Some(loaded) if loaded.version == version => loaded.spec.clone(),
            _ => {
                let source = self
                    .inner
                    .store
                    .get_pipeline_version(version)
                    .await?
                    .ok_or_else(|| {
                        Error::NotFound(format!(
                            "version {version} of pipeline `{name}` is not in the database"
                        ))
                    })?;
                let file = format!("pipelines/{name}.yaml");
                Arc::new(spec::parse_pipeline(name, &file, &source).map_err(Error::Pipeline)?)
            }
        };
        self.inner
            .specs
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(version.to_owned(), spec.clone());
        Ok(spec)
    }
}
