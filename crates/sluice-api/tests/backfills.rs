//! `/api/backfills`: a dry run lists the windows and creates nothing; a
//! backfill is created, read with its windows, listed, paused and
//! cancelled; a bad request is refused before anything is written.

mod common;

use axum::http::StatusCode;
use serde_json::json;

const ETL: &str = "blocks:\n  only:\n    run: 'true'\ntriggers:\n\
    \x20 - {name: hourly, every: 1h}\n";

#[tokio::test]
async fn a_backfill_is_planned_created_listed_paused_and_cancelled() {
    let world = common::world(&[("etl", ETL)], false).await;
    let body = |dry_run: bool| {
        json!({
            "pipeline": "etl",
            "from": "2026-01-01T01:00:00Z",
            "to": "2026-01-01T03:00:00Z",
            "dry_run": dry_run,
        })
    };

    let planned = world.post("/api/backfills", body(true)).await;
    assert_eq!(planned.status, StatusCode::OK, "{}", planned.text());
    let plan = planned.json();
    assert!(plan["backfill"].is_null());
    let windows = plan["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 3);
    assert_eq!(windows[0]["window_start"], "2026-01-01T00:00:00Z");
    assert_eq!(windows[0]["window_end"], "2026-01-01T01:00:00Z");
    assert!(windows.iter().all(|window| window["state"] == "pending"));
    let listed = world.get("/api/backfills").await;
    assert_eq!(
        listed.json()["backfills"],
        json!([]),
        "a dry run creates nothing"
    );

    let created = world.post("/api/backfills", body(false)).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let backfill = created.json()["backfill"].clone();
    assert_eq!(backfill["status"], "running");
    assert_eq!(backfill["trigger"], "hourly");
    assert_eq!(backfill["max_concurrent"], 1);
    assert_eq!(backfill["priority"], -10);
    assert_eq!(backfill["created_by"], "anonymous");
    let id = backfill["id"].as_str().unwrap().to_owned();

    world.engine.reconcile().await.unwrap();
    let shown = world.get(&format!("/api/backfills/{id}")).await;
    assert_eq!(shown.status, StatusCode::OK, "{}", shown.text());
    let states: Vec<String> = shown.json()["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|window| window["state"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(states, ["run", "pending", "pending"]);
    assert!(shown.json()["windows"][0]["run_id"].is_string());

    let listed = world.get("/api/backfills").await;
    assert_eq!(listed.json()["backfills"][0]["id"], id.as_str());

    let paused = world
        .post(&format!("/api/backfills/{id}/pause"), json!({}))
        .await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.text());
    assert_eq!(paused.json()["backfill"]["status"], "paused");
    let again = world
        .post(&format!("/api/backfills/{id}/pause"), json!({}))
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);

    let cancelled = world
        .post(&format!("/api/backfills/{id}/cancel"), json!({}))
        .await;
    assert_eq!(cancelled.status, StatusCode::OK, "{}", cancelled.text());
    assert_eq!(cancelled.json()["backfill"]["status"], "cancelled");

    let unknown = world.get("/api/backfills/nope").await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_bad_backfill_request_is_refused() {
    let world = common::world(&[("etl", ETL)], false).await;
    let unknown_trigger = world
        .post(
            "/api/backfills",
            json!({"pipeline": "etl", "trigger": "nightly",
                   "from": "2026-01-01T00:00:00Z", "to": "2026-01-02T00:00:00Z"}),
        )
        .await;
    assert_eq!(unknown_trigger.status, StatusCode::UNPROCESSABLE_ENTITY);
    let backwards = world
        .post(
            "/api/backfills",
            json!({"pipeline": "etl", "from": "2026-01-02T00:00:00Z", "to": "2026-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!(backwards.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown_field = world
        .post(
            "/api/backfills",
            json!({"pipeline": "etl", "from": "2026-01-01T00:00:00Z",
                   "to": "2026-01-02T00:00:00Z", "window": 1}),
        )
        .await;
    assert!(unknown_field.status.is_client_error());
    assert_eq!(
        world.get("/api/backfills").await.json()["backfills"],
        json!([])
    );
}
