//! The server process: the HTTP listener, the reconcilers and the built-in
//! local agent, with a graceful shutdown.
//!
//! ```text
//!   signal ──> stop accepting requests, end live streams
//!          ──> agent stops claiming; running tries get `drain_grace` to end
//!          ──> tries still running are interrupted and re-queued (a restart
//!              runs them again); the executor deregisters
//! ```
//!
//! Startup is "reconcile from what the database says": the first pass of the
//! engine loop finishes whatever a crashed predecessor left behind.

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use sluice_engine::Engine;
use sluice_engine::agent::{LocalAgent, Scope};
use sluice_engine::operations::{RETENTION_ACTOR, RetentionParams};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{AppState, router};

/// How a server is started.
#[derive(Clone, Debug)]
pub struct ServeOptions {
    pub listen: SocketAddr,
    /// Whether every request needs a bearer token.
    pub auth: bool,
    /// How long running tries may take to finish after a shutdown signal.
    pub drain_grace: Duration,
    /// Whether the server runs tries itself; without it, only remote agents
    /// do (child-pipeline blocks need it, see `docs/agents.md`).
    pub local_agent: bool,
    /// The labels the built-in agent offers: it takes the block runs whose
    /// required labels are a subset (with none, only unlabelled blocks).
    pub labels: std::collections::BTreeMap<String, String>,
    /// Days to keep the finished runs of pipelines without `retention:`
    /// (`--retention-days`); `None` keeps them all. Pipelines with
    /// `retention:` follow it either way.
    pub retention_days: Option<u32>,
}

/// How often the server applies retention (and once at startup).
const RETENTION_EVERY: Duration = Duration::from_secs(3600);
/// Blobs written more recently than this are never deleted by retention,
/// so that an upload in flight keeps its blob.
const RETENTION_BLOB_GRACE: Duration = Duration::from_secs(3600);

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "refusing to listen on {0} without auth: anyone who can reach this address could run commands on this machine"
    )]
    Insecure(SocketAddr),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("the HTTP server failed")]
    Http(#[source] std::io::Error),
    #[error("the engine could not start")]
    Engine(#[source] sluice_engine::Error),
}

impl ServeError {
    /// A remedy for the user.
    pub fn hint(&self) -> Option<&'static str> {
        match self {
            ServeError::Insecure(_) => Some(
                "pass --auth (and create tokens with `sluice token create`), or listen on 127.0.0.1",
            ),
            ServeError::Bind { .. } => {
                Some("pick another address with --listen, or stop what uses this one")
            }
            _ => None,
        }
    }
}

/// A bound server, not yet serving.
#[derive(Debug)]
pub struct Server {
    engine: Engine,
    listener: TcpListener,
    options: ServeOptions,
    /// Routes served beside the API (the web UI), composed by the binary.
    pages: Option<axum::Router>,
}

impl Server {
    /// Checks the options and binds the listener (port 0 picks a free one;
    /// see [`Server::local_addr`]).
    pub async fn bind(engine: Engine, options: ServeOptions) -> Result<Server, ServeError> {
        if !options.auth && !options.listen.ip().is_loopback() {
            return Err(ServeError::Insecure(options.listen));
        }
        let listener =
            TcpListener::bind(options.listen)
                .await
                .map_err(|source| ServeError::Bind {
                    addr: options.listen,
                    source,
                })?;
        Ok(Server {
            engine,
            listener,
            options,
            pages: None,
        })
    }

    /// Serves `pages` beside the API: routes the API does not have (the web
    /// UI). They bring their own authentication.
    pub fn with_pages(mut self, pages: axum::Router) -> Server {
        self.pages = Some(pages);
        self
    }

    /// The address the server listens on.
    pub fn local_addr(&self) -> Result<SocketAddr, ServeError> {
        self.listener.local_addr().map_err(ServeError::Http)
    }

    /// Serves until `signal` completes, then shuts down gracefully.
    pub async fn run(
        self,
        signal: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServeError> {
        let Server {
            engine,
            listener,
            options,
            pages,
        } = self;
        let state = AppState::new(engine.clone(), options.auth);
        let shutdown = state.shutdown.clone();
        let app = match pages {
            Some(pages) => router(state).merge(pages),
            None => router(state),
        };
        let app = app.into_make_service_with_connect_info::<SocketAddr>();

        let agent = if options.local_agent {
            let labels = Some(options.labels.clone());
            let agent = LocalAgent::register(engine.clone(), "server", Scope::Unowned, labels)
                .await
                .map_err(ServeError::Engine)?;
            Some(agent)
        } else {
            None
        };
        let stop_engine = CancellationToken::new();
        // The listener of other servers' changes: it ends with the engine
        // loop, and retries on its own while the database is away.
        let change_listener = tokio::spawn({
            let engine = engine.clone();
            let stop = stop_engine.clone();
            async move { engine.listen_for_changes(stop).await }
        });
        // Retention: at startup, then hourly; it ends with the engine loop.
        let retention = tokio::spawn(retention_loop(
            engine.clone(),
            options.retention_days,
            stop_engine.clone(),
        ));
        let engine_loop = tokio::spawn(engine_loop(
            engine.clone(),
            agent,
            stop_engine.clone(),
            options.drain_grace,
        ));

        let http_shutdown = shutdown.clone();
        tokio::spawn(async move {
            signal.await;
            tracing::info!("shutting down: no new requests or tries; running tries may finish");
            http_shutdown.cancel();
        });
        let served = axum::serve(listener, app)
            .with_graceful_shutdown({
                let shutdown = shutdown.clone();
                async move { shutdown.cancelled().await }
            })
            .await;
        // Whatever ended the HTTP server also ends the engine loop.
        shutdown.cancel();
        stop_engine.cancel();
        if let Err(error) = change_listener.await {
            tracing::error!(%error, "the listener of other servers' changes panicked");
        }
        if let Err(error) = retention.await {
            tracing::error!(%error, "the retention loop panicked");
        }
        match engine_loop.await {
            Ok(interrupted) => {
                if interrupted > 0 {
                    tracing::warn!(
                        tries = interrupted,
                        "interrupted tries went back to the queue; they run again when a server starts"
                    );
                }
                tracing::info!("the server stopped");
            }
            Err(error) => tracing::error!(%error, "the engine loop panicked"),
        }
        served.map_err(ServeError::Http)
    }
}

/// Reconciles and claims until `stop`, then drains the agent. Errors of one
/// pass are logged and the next pass tries again (the database may be back);
/// nothing here holds state a restart would lose. Returns how many tries the
/// drain interrupted.
async fn engine_loop(
    engine: Engine,
    mut agent: Option<LocalAgent>,
    stop: CancellationToken,
    drain_grace: Duration,
) -> usize {
    let heartbeat_every = engine.config().lease_ttl / 3;
    let mut last_heartbeat = tokio::time::Instant::now();
    let mut failing = false;
    while !stop.is_cancelled() {
        let pass = async {
            let reconciled = engine.reconcile().await?;
            if reconciled.changes > 0 {
                // Other servers' agents may claim what this pass queued.
                engine.announce_change().await;
            }
            if let Some(agent) = agent.as_mut() {
                agent.fill().await?;
                if last_heartbeat.elapsed() >= heartbeat_every {
                    agent.heartbeat().await?;
                    last_heartbeat = tokio::time::Instant::now();
                }
            }
            Ok::<(), sluice_engine::Error>(())
        };
        match pass.await {
            Ok(()) if failing => {
                failing = false;
                // At the level of the failure it ends, so that a log kept
                // at the default level says when the outage was over.
                tracing::warn!("the engine loop works again");
            }
            Ok(()) => {}
            Err(error) => {
                if !failing {
                    tracing::error!(error = %format!("{error:#}"), "an engine pass failed; retrying");
                }
                failing = true;
            }
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = engine.wait_for_change() => {}
        }
    }
    match agent {
        Some(agent) => agent.drain(drain_grace).await,
        None => 0,
    }
}

/// Applies retention now and every [`RETENTION_EVERY`] until `stop`. A pass
/// re-reads the world (a pass killed midway is finished by the next one);
/// a failed pass is logged and the next one tries again.
async fn retention_loop(engine: Engine, default_days: Option<u32>, stop: CancellationToken) {
    let params = RetentionParams {
        default_days,
        dry_run: false,
        blob_grace: RETENTION_BLOB_GRACE,
        actor: RETENTION_ACTOR.to_owned(),
    };
    let mut every = tokio::time::interval(RETENTION_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            _ = every.tick() => {}
        }
        let pass = tokio::select! {
            () = stop.cancelled() => return,
            pass = engine.apply_retention(&params) => pass,
        };
        if let Err(error) = pass {
            tracing::error!(error = %format!("{error:#}"), "a retention pass failed; retrying in an hour");
        }
    }
}
