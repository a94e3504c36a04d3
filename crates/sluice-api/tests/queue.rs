//! `/api/queue`: queued block runs with their reasons, moving one (claims
//! follow), the reason in a run's details, and bulk cancel.

mod common;

use std::collections::BTreeMap;

use axum::http::StatusCode;
use sluice_engine::agent::{LocalAgent, Scope};

const PLAIN: &str = "blocks:\n  a:\n    run: 'true'\n  b:\n    run: 'true'\n";
const GPU: &str = "blocks:\n  train:\n    labels: {gpu: 'true'}\n    run: 'true'\n";

async fn trigger(world: &common::World, pipeline: &str) -> String {
    let created = world
        .post(
            &format!("/api/pipelines/{pipeline}/runs"),
            serde_json::json!({}),
        )
        .await;
    assert!(created.status.is_success(), "{}", created.text());
    created.json()["pipeline_run"]["id"]
        .as_str()
        .expect("a run id")
        .to_owned()
}

/// `pipeline.block` of each queued block run, in claim order.
fn order(queue: &serde_json::Value) -> Vec<String> {
    queue["block_runs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| format!("{}.{}", entry["pipeline"], entry["block"]).replace('"', ""))
        .collect()
}

#[tokio::test]
async fn the_queue_is_listed_reordered_and_cancelled() {
    let world = common::world(&[("plain", PLAIN), ("gpu", GPU)], false).await;
    // A server's built-in agent without labels is online; it is never
    // asked to claim, so the queue stays as the test leaves it.
    let agent = LocalAgent::register(
        world.engine.clone(),
        "server",
        Scope::Unowned,
        Some(BTreeMap::new()),
    )
    .await
    .unwrap();
    let gpu = trigger(&world, "gpu").await;
    trigger(&world, "plain").await;
    world.engine.reconcile().await.unwrap();

    let listed = world.get("/api/queue").await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    let queue = listed.json();
    assert_eq!(order(&queue), ["gpu.train", "plain.a", "plain.b"]);
    let train = &queue["block_runs"][0];
    assert_eq!(train["position"], 1);
    assert_eq!(train["reason"]["kind"], "labels");
    assert_eq!(
        train["reason"]["message"],
        "no online agent offers labels gpu=true"
    );
    assert_eq!(queue["block_runs"][1]["reason"]["kind"], "behind");
    assert_eq!(queue["block_runs"][2]["reason"]["tries"], 1);

    // The run's details say why its block run waits.
    let details = world.get(&format!("/api/pipeline_runs/{gpu}")).await;
    let block_run = &details.json()["attempts"][0]["block_runs"][0];
    assert_eq!(block_run["queue_reason"]["kind"], "labels", "{block_run}");

    // Moving `plain.b` first: the answer and the next claim follow.
    let b = queue["block_runs"][2]["block_run_id"].clone();
    let moved = world
        .post(
            "/api/queue/move",
            serde_json::json!({"block_run_id": b, "to": 1}),
        )
        .await;
    assert_eq!(moved.status, StatusCode::OK, "{}", moved.text());
    assert_eq!(order(&moved.json()), ["plain.b", "gpu.train", "plain.a"]);
    for body in [
        serde_json::json!({"block_run_id": b}),
        serde_json::json!({"block_run_id": b, "to": 1, "before": b}),
        serde_json::json!({"block_run_id": b, "to": 0}),
    ] {
        let refused = world.post("/api/queue/move", body.clone()).await;
        assert_eq!(refused.status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    }
    let unknown = world
        .post(
            "/api/queue/move",
            serde_json::json!({"block_run_id": "nope", "to": 1}),
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);

    // Bulk cancel by label: a dry run first, then for real.
    let dry = world
        .post(
            "/api/queue/cancel",
            serde_json::json!({"labels": {"gpu": "true"}, "dry_run": true}),
        )
        .await;
    assert_eq!(dry.status, StatusCode::OK, "{}", dry.text());
    assert_eq!(dry.json()["run_ids"], serde_json::json!([gpu]));
    let done = world
        .post(
            "/api/queue/cancel",
            serde_json::json!({"labels": {"gpu": "true"}}),
        )
        .await;
    assert_eq!(done.json()["run_ids"], serde_json::json!([gpu]));
    assert_eq!(done.json()["dry_run"], false);
    world.engine.reconcile().await.unwrap();
    assert_eq!(
        order(&world.get("/api/queue").await.json()),
        ["plain.b", "plain.a"]
    );
    agent.shutdown().await;
}
