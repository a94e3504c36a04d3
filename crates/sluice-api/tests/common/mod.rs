//! A world for API tests: a project in a temporary directory, its own
//! SQLite database, an engine on the system clock, and the router, called
//! in process with `oneshot`.

#![allow(dead_code)]

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use sluice_api::{AppState, router};
use sluice_engine::agent::{LocalAgent, Scope, drive_run};
use sluice_engine::sluice_store::RunRecord;
use sluice_engine::sluice_store::blobs::BlobStore;
use sluice_engine::sluice_store::sqlite::SqliteStore;
use sluice_engine::{Engine, EngineConfig, Project, SystemClock};
use tower::ServiceExt;

pub struct World {
    pub dir: tempfile::TempDir,
    pub engine: Engine,
    pub auth: bool,
}

pub async fn world(pipelines: &[(&str, &str)], auth: bool) -> World {
    world_with_blobs(pipelines, auth, None).await
}

/// A [`world`] whose engine keeps blobs in `blobs` (the project's
/// `.sluice/blobs` when `None`).
pub async fn world_with_blobs(
    pipelines: &[(&str, &str)],
    auth: bool,
    blobs: Option<BlobStore>,
) -> World {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::create_dir_all(dir.path().join("pipelines")).expect("pipelines/");
    for (name, yaml) in pipelines {
        std::fs::write(dir.path().join(format!("pipelines/{name}.yaml")), yaml)
            .expect("a pipeline file");
    }
    let project = Project::load(dir.path()).expect("a valid project");
    let store = SqliteStore::open(&dir.path().join(".sluice/sluice.db"))
        .await
        .expect("a database");
    let engine = Engine::new(
        Arc::new(store),
        blobs.unwrap_or_else(|| BlobStore::new(dir.path().join(".sluice/blobs"))),
        project,
        Arc::new(SystemClock),
        EngineConfig::for_project(dir.path()),
    );
    World { dir, engine, auth }
}

/// An answer: status, headers and body.
pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|error| {
            panic!(
                "the body is not JSON ({error}): {}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl World {
    pub fn router(&self) -> axum::Router {
        router(AppState::new(self.engine.clone(), self.auth))
    }

    pub async fn call(
        &self,
        method: Method,
        uri: &str,
        token: Option<&str>,
        headers: &[(&str, &str)],
        body: Option<serde_json::Value>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(token) = token {
            request = request.header(header::AUTHORIZATION, format!("Bearer {token}"));
        }
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = match body {
            Some(body) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(serde_json::to_vec(&body).expect("JSON"))
            }
            None => Body::empty(),
        };
        let response = self
            .router()
            .oneshot(request.body(body).expect("a request"))
            .await
            .expect("the router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let streaming = headers
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| value.starts_with("text/event-stream"));
        // A live stream never ends on its own: its status is the answer.
        let body = if streaming {
            Vec::new()
        } else {
            axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024)
                .await
                .expect("a body")
                .to_vec()
        };
        Answer {
            status,
            headers,
            body,
        }
    }

    /// Reads a live stream that ends on its own (the log stream of a block
    /// run that has ended), within a bounded time.
    pub async fn stream(&self, uri: &str) -> String {
        let request = Request::builder()
            .uri(uri)
            .body(Body::empty())
            .expect("a request");
        let response = self
            .router()
            .oneshot(request)
            .await
            .expect("the router answers");
        assert_eq!(response.status(), StatusCode::OK);
        let body = tokio::time::timeout(
            std::time::Duration::from_secs(30),
            axum::body::to_bytes(response.into_body(), 64 * 1024 * 1024),
        )
        .await
        .expect("the stream ends within 30 s")
        .expect("a body");
        String::from_utf8_lossy(&body).into_owned()
    }

    pub async fn get(&self, uri: &str) -> Answer {
        self.call(Method::GET, uri, None, &[], None).await
    }

    pub async fn post(&self, uri: &str, body: serde_json::Value) -> Answer {
        self.call(Method::POST, uri, None, &[], Some(body)).await
    }

    /// Runs a run to its end in this process, as a server's agent would.
    pub async fn finish(&self, run_id: &str) -> RunRecord {
        let mut agent = LocalAgent::register(self.engine.clone(), "server", Scope::Unowned, None)
            .await
            .expect("an agent");
        let run = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            drive_run(
                &self.engine,
                &mut agent,
                &sluice_core::ids::RunId(run_id.to_owned()),
            ),
        )
        .await
        .expect("the run ends within 60 s")
        .expect("the run is driven");
        agent.shutdown().await;
        run
    }
}
