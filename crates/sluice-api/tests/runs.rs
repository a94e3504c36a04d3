//! The run ledger over the REST API: triggering (with idempotency keys),
//! listing with filters and keyset pages, details, cancel, retry, batch
//! actions, outputs, data, artifacts and export; secrets never leave the
//! server; concurrent triggers never surface a locked database.

mod common;

use axum::http::{Method, StatusCode};

const CANARY: &str = "canary-5ecret-7f3a9c";

const ETL: &str = r#"
tags: [nightly]
variables:
  region: emea
  password: {default: "x", secret: true}
blocks:
  extract:
    run: |
      echo "region ${{ vars.region }} password ${{ vars.password }} env $SLUICE_VAR_PASSWORD"
      echo "rows=3" >> "$SLUICE_OUTPUT"
      echo "token=$SLUICE_VAR_PASSWORD" >> "$SLUICE_OUTPUT"
      printf 'a,b\n1,2\n3,4\n5,6\n' > "$SLUICE_DATA"
      echo "a report" > "$SLUICE_ARTIFACTS/report.txt"
  load:
    needs: [extract]
    run: echo "loaded ${{ blocks.extract.outputs.rows }}"
"#;

const SLOW: &str =
    "blocks:\n  wait:\n    run: sleep 30\n  after:\n    needs: [wait]\n    run: 'true'\n";

const FAILS: &str = "blocks:\n  first:\n    run: 'true'\n  broken:\n    needs: [first]\n    run: exit 3\n  last:\n    needs: [broken]\n    run: 'true'\n";

fn run_id(answer: &common::Answer) -> String {
    answer.json()["pipeline_run"]["id"]
        .as_str()
        .expect("a run id")
        .to_owned()
}

#[tokio::test]
async fn a_triggered_run_is_recorded_with_its_variables_and_secrets_never_leave() {
    let world = common::world(&[("etl", ETL)], false).await;
    let created = world
        .post(
            "/api/pipelines/etl/runs",
            serde_json::json!({"variables": {"region": "apac", "password": CANARY}}),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let id = run_id(&created);
    let run = world.finish(&id).await;
    assert_eq!(run.status.as_str(), "completed");

    let details = world.get(&format!("/api/pipeline_runs/{id}")).await;
    assert_eq!(details.status, StatusCode::OK);
    let json = details.json();
    let variables = &json["pipeline_run"]["variables"];
    assert_eq!(variables["region"]["value"], "apac");
    assert_eq!(variables["region"]["layer"], "run");
    assert_eq!(variables["password"]["value"], "***");
    assert_eq!(json["pipeline_run"]["invoked_by"]["kind"], "api");
    let block_runs = json["attempts"][0]["block_runs"]
        .as_array()
        .expect("block runs");
    let extract = block_runs
        .iter()
        .find(|block_run| block_run["block"] == "extract")
        .expect("extract");
    let extract_id = extract["id"].as_str().expect("an id");

    // Everything a client can read about the run.
    let mut answers = vec![
        created,
        details,
        world.get("/api/pipeline_runs?summary=true").await,
        world.get(&format!("/api/block_runs/{extract_id}")).await,
        world
            .get(&format!("/api/block_runs/{extract_id}/logs"))
            .await,
        world
            .get(&format!(
                "/api/block_runs/{extract_id}/outputs?sample_count=2"
            ))
            .await,
        world.get("/api/pipeline_runs/export?format=jsonl").await,
        world.get("/api/pipeline_runs/export?format=csv").await,
        world.get("/api/audit").await,
        world.get("/api/artifacts").await,
    ];
    let outputs = answers[5].json();
    assert_eq!(outputs["outputs"]["rows"], "3");
    assert_eq!(outputs["outputs"]["token"], "***");
    assert_eq!(outputs["data"]["columns"], serde_json::json!(["a", "b"]));
    assert_eq!(outputs["data"]["rows"].as_array().map(Vec::len), Some(2));
    assert_eq!(outputs["data"]["truncated"], true);
    let log = answers[4].text();
    assert!(log.contains("region apac password *** env ***"), "{log}");

    let csv = world
        .get(&format!("/api/block_runs/{extract_id}/data.csv"))
        .await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.text(), "a,b\n1,2\n3,4\n5,6\n");

    let artifacts = answers[9].json();
    let artifact = &artifacts["artifacts"][0];
    assert_eq!(artifact["name"], "report.txt");
    let download = world
        .get(artifact["download_url"].as_str().expect("a download url"))
        .await;
    assert_eq!(download.status, StatusCode::OK);
    let sha256 = sluice_engine::project::sha256_hex(&download.body);
    assert_eq!(artifact["sha256"], sha256);
    assert_eq!(
        download.headers["x-sluice-sha256"].to_str().expect("ASCII"),
        sha256
    );
    answers.push(download);

    let stream = world
        .stream(&format!("/api/block_runs/{extract_id}/logs/stream"))
        .await;
    assert!(stream.contains("event: end"), "{stream}");
    assert!(stream.contains("password ***"), "{stream}");
    let canary_seen: Vec<String> = answers
        .iter()
        .map(common::Answer::text)
        .chain([stream])
        .filter(|text| text.contains(CANARY))
        .collect();
    assert!(
        canary_seen.is_empty(),
        "the secret left the server: {canary_seen:?}"
    );
}

#[tokio::test]
async fn an_idempotency_key_replays_the_same_run_and_refuses_another_body() {
    let world = common::world(&[("etl", ETL)], false).await;
    let body = serde_json::json!({"variables": {"region": "us"}});
    let key = [("idempotency-key", "nightly-2026-11-23")];
    let first = world
        .call(
            Method::POST,
            "/api/pipelines/etl/runs",
            None,
            &key,
            Some(body.clone()),
        )
        .await;
    let again = world
        .call(
            Method::POST,
            "/api/pipelines/etl/runs",
            None,
            &key,
            Some(body),
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(run_id(&first), run_id(&again));

    let other = world
        .call(
            Method::POST,
            "/api/pipelines/etl/runs",
            None,
            &key,
            Some(serde_json::json!({"variables": {"region": "emea"}})),
        )
        .await;
    assert_eq!(other.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(other.json()["error"]["hint"].is_string());
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx() {
    let world = common::world(&[("etl", ETL)], false).await;
    let unknown = world
        .post("/api/pipelines/nope/runs", serde_json::json!({}))
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    let bad_field = world
        .post(
            "/api/pipelines/etl/runs",
            serde_json::json!({"variabels": {}}),
        )
        .await;
    assert_eq!(bad_field.status, StatusCode::UNPROCESSABLE_ENTITY);
    let undeclared = world
        .post(
            "/api/pipelines/etl/runs",
            serde_json::json!({"variables": {"colour": "red"}}),
        )
        .await;
    assert_eq!(
        undeclared.status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "{}",
        undeclared.text()
    );
    for uri in [
        "/api/pipeline_runs?status=bogus",
        "/api/pipeline_runs?after=yesterday",
        "/api/pipeline_runs?limit=501",
        "/api/pipeline_runs?next_cursor=garbage",
        "/api/pipeline_runs?surprise=1",
    ] {
        let answer = world.get(uri).await;
        assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(answer.json()["error"]["code"], "bad_request", "{uri}");
    }
    let missing = world.get("/api/pipeline_runs/no-such-run").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let big = "x".repeat(2 * 1024 * 1024);
    let too_large = world
        .post(
            "/api/pipelines/etl/runs",
            serde_json::json!({"variables": {"region": big}}),
        )
        .await;
    assert_eq!(too_large.status, StatusCode::PAYLOAD_TOO_LARGE);
}

#[tokio::test]
async fn listing_filters_by_status_and_window_and_pages_by_key() {
    let world = common::world(&[("etl", ETL), ("fails", FAILS)], false).await;
    let mut ids = Vec::new();
    for _ in 0..3 {
        let answer = world
            .post("/api/pipelines/fails/runs", serde_json::json!({}))
            .await;
        ids.push(run_id(&answer));
    }
    for id in &ids {
        world.finish(id).await;
    }
    let ok = run_id(
        &world
            .post("/api/pipelines/etl/runs", serde_json::json!({}))
            .await,
    );
    world.finish(&ok).await;

    let failed = world
        .get("/api/pipeline_runs?status=failed&summary=true")
        .await
        .json();
    assert_eq!(failed["pipeline_runs"].as_array().map(Vec::len), Some(3));
    assert_eq!(failed["summary"]["failed"], 3);
    assert_eq!(failed["summary"]["completed"], 0);

    let after = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let before = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    let window = world
        .get(&format!(
            "/api/pipeline_runs?pipeline=etl&pipeline=fails&status=failed&status=completed&after={after}&before={before}"
        ))
        .await
        .json();
    assert_eq!(window["pipeline_runs"].as_array().map(Vec::len), Some(4));
    let empty = world
        .get(&format!("/api/pipeline_runs?before={after}"))
        .await
        .json();
    assert_eq!(empty["pipeline_runs"].as_array().map(Vec::len), Some(0));

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let uri = match &cursor {
            Some(cursor) => format!("/api/pipeline_runs?limit=3&next_cursor={cursor}"),
            None => "/api/pipeline_runs?limit=3".to_owned(),
        };
        let page = world.get(&uri).await.json();
        for run in page["pipeline_runs"].as_array().expect("runs") {
            seen.push(run["id"].as_str().expect("an id").to_owned());
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
    }
    let mut expected: Vec<String> = ids.iter().chain([&ok]).cloned().collect();
    expected.sort();
    let mut sorted = seen.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "every run exactly once across pages");
}

#[tokio::test]
async fn cancel_retry_and_batch_actions() {
    let world = common::world(&[("slow", SLOW), ("fails", FAILS)], false).await;
    let slow = run_id(
        &world
            .post("/api/pipelines/slow/runs", serde_json::json!({}))
            .await,
    );
    // Retrying a run that has not ended is refused.
    let early = world
        .post(
            &format!("/api/pipeline_runs/{slow}/retry"),
            serde_json::json!({}),
        )
        .await;
    assert_eq!(early.status, StatusCode::CONFLICT);

    let dry = world
        .post(
            "/api/pipeline_runs/batch",
            serde_json::json!({"action": "cancel", "filter": {"pipeline": ["slow"]}, "dry_run": true}),
        )
        .await
        .json();
    assert_eq!(dry["runs"][0]["id"], slow);
    assert_eq!(dry["runs"][0]["outcome"], "would_cancel");
    let still = world
        .get(&format!("/api/pipeline_runs/{slow}"))
        .await
        .json();
    assert_ne!(still["pipeline_run"]["status"], "cancelled");

    let done = world
        .post(
            "/api/pipeline_runs/batch",
            serde_json::json!({"action": "cancel", "filter": {"pipeline": ["slow"]}}),
        )
        .await
        .json();
    assert_eq!(done["runs"][0]["outcome"], "cancelled");
    let run = world.finish(&slow).await;
    assert_eq!(run.status.as_str(), "cancelled");
    assert!(run.cancel_requested_by.is_some());

    let failed = run_id(
        &world
            .post("/api/pipelines/fails/runs", serde_json::json!({}))
            .await,
    );
    world.finish(&failed).await;
    let missing_block = world
        .post(
            &format!("/api/pipeline_runs/{failed}/retry"),
            serde_json::json!({"mode": "from_block"}),
        )
        .await;
    assert_eq!(missing_block.status, StatusCode::UNPROCESSABLE_ENTITY);
    let retried = world
        .post(
            &format!("/api/pipeline_runs/{failed}/retry"),
            serde_json::json!({"mode": "from_block", "block": "broken"}),
        )
        .await;
    assert_eq!(retried.status, StatusCode::OK, "{}", retried.text());
    assert_eq!(retried.json()["pipeline_run"]["attempt"], 2);
    world.finish(&failed).await;
    let details = world
        .get(&format!("/api/pipeline_runs/{failed}"))
        .await
        .json();
    let second = &details["attempts"][1]["block_runs"];
    let first = second
        .as_array()
        .expect("block runs")
        .iter()
        .find(|block_run| block_run["block"] == "first")
        .expect("first");
    assert_eq!(first["reused_from_attempt"], 1);

    // Mage's shape.
    let mage = world
        .call(
            Method::PUT,
            &format!("/api/pipeline_runs/{failed}"),
            None,
            &[],
            Some(serde_json::json!({"pipeline_run": {"pipeline_run_action": "retry_blocks"}})),
        )
        .await;
    assert_eq!(mage.status, StatusCode::OK, "{}", mage.text());
    assert_eq!(mage.json()["pipeline_run"]["attempt"], 3);
    world.finish(&failed).await;

    let audit = world.get("/api/audit").await.json();
    let actions: Vec<&str> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|event| event["action"].as_str())
        .collect();
    assert!(
        actions.contains(&"POST /api/pipeline_runs/batch"),
        "{actions:?}"
    );
}

#[tokio::test]
async fn concurrent_triggers_create_exactly_one_run_per_key() {
    let world = common::world(&[("etl", ETL)], false).await;
    let router = world.router();
    let mut tasks = tokio::task::JoinSet::new();
    for index in 0..1_200 {
        let router = router.clone();
        tasks.spawn(async move {
            use tower::ServiceExt;
            let key = if index < 1_000 {
                format!("distinct-{index}")
            } else {
                "shared".to_owned()
            };
            let request = axum::http::Request::builder()
                .method(Method::POST)
                .uri("/api/pipelines/etl/runs")
                .header("idempotency-key", key)
                .header("content-type", "application/json")
                .body(axum::body::Body::from(r#"{"variables": {}}"#))
                .expect("a request");
            let response = router.oneshot(request).await.expect("an answer");
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20)
                .await
                .expect("a body");
            (status, String::from_utf8_lossy(&body).into_owned())
        });
    }
    let mut shared_runs = std::collections::BTreeSet::new();
    let mut all_runs = std::collections::BTreeSet::new();
    let mut index = 0;
    while let Some(joined) = tasks.join_next().await {
        let (status, body) = joined.expect("the task ends");
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let json: serde_json::Value = serde_json::from_str(&body).expect("JSON");
        let id = json["pipeline_run"]["id"]
            .as_str()
            .expect("an id")
            .to_owned();
        if json["pipeline_run"]["idempotency_key"] == "shared" {
            shared_runs.insert(id.clone());
        }
        all_runs.insert(id);
        index += 1;
    }
    assert_eq!(index, 1_200);
    assert_eq!(shared_runs.len(), 1, "one run for the shared key");
    assert_eq!(all_runs.len(), 1_001, "1,000 distinct keys and one shared");
    let counted = world
        .get("/api/pipeline_runs?summary=true&limit=1")
        .await
        .json();
    let total: u64 = counted["summary"]
        .as_object()
        .expect("a summary")
        .values()
        .filter_map(serde_json::Value::as_u64)
        .sum();
    assert_eq!(total, 1_001);
}

#[tokio::test]
async fn pipelines_show_their_last_run_and_next_fire_time() {
    let scheduled = "triggers:\n  - name: nightly\n    schedule: '0 2 * * *'\n    timezone: Europe/London\n  - name: paused\n    schedule: '* * * * *'\n    enabled: false\nblocks:\n  only:\n    run: 'true'\n";
    let world = common::world(&[("etl", ETL), ("nightly", scheduled)], false).await;
    let before = world.get("/api/pipelines").await.json();
    let etl = &before["pipelines"][0];
    assert_eq!(etl["name"], "etl");
    assert!(etl["last_run"].is_null());
    assert!(etl["next_fire_at"].is_null(), "no schedule, no fire time");

    let nightly = &before["pipelines"][1];
    let next: jiff::Timestamp = nightly["next_fire_at"]
        .as_str()
        .expect("a next fire time")
        .parse()
        .expect("RFC 3339");
    let now = jiff::Timestamp::now();
    assert!(next > now && next <= now + jiff::SignedDuration::from_hours(25));
    let london = next.to_zoned(jiff::tz::TimeZone::get("Europe/London").expect("a zone"));
    assert_eq!((london.hour(), london.minute()), (2, 0));

    let details = world.get("/api/pipelines/nightly").await.json();
    assert_eq!(
        details["triggers"][0]["next_fire_at"],
        nightly["next_fire_at"]
    );
    assert!(
        details["triggers"][1]["next_fire_at"].is_null(),
        "a disabled trigger does not fire"
    );

    let id = run_id(
        &world
            .post("/api/pipelines/etl/runs", serde_json::json!({}))
            .await,
    );
    world.finish(&id).await;
    let after = world.get("/api/pipelines").await.json();
    assert_eq!(after["pipelines"][0]["last_run"]["id"], id.as_str());
    assert_eq!(after["pipelines"][0]["last_run"]["status"], "completed");
}

#[tokio::test]
async fn runs_are_found_by_text_and_by_start_and_finish_windows() {
    let world = common::world(&[("etl", ETL), ("fails", FAILS)], false).await;
    let ok = run_id(
        &world
            .post(
                "/api/pipelines/etl/runs",
                serde_json::json!({"variables": {"region": "Lapland", "password": CANARY}}),
            )
            .await,
    );
    world.finish(&ok).await;
    let failed = run_id(
        &world
            .post("/api/pipelines/fails/runs", serde_json::json!({}))
            .await,
    );
    world.finish(&failed).await;

    let found = |answer: common::Answer| -> Vec<String> {
        assert_eq!(answer.status, StatusCode::OK, "{}", answer.text());
        answer.json()["pipeline_runs"]
            .as_array()
            .expect("runs")
            .iter()
            .filter_map(|run| run["id"].as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(
        found(world.get("/api/pipeline_runs?q=lapland").await),
        vec![ok.clone()]
    );
    assert_eq!(
        found(world.get("/api/pipeline_runs?q=broken").await),
        vec![failed.clone()]
    );
    assert_eq!(
        found(
            world
                .get(&format!("/api/pipeline_runs?q={}", &ok[..13]))
                .await
        ),
        vec![ok.clone()]
    );
    assert!(found(world.get(&format!("/api/pipeline_runs?q={CANARY}")).await).is_empty());

    let hour_ago = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    let in_an_hour = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1);
    let finished = found(
        world
            .get(&format!(
                "/api/pipeline_runs?finished_after={hour_ago}&finished_before={in_an_hour}&status=failed"
            ))
            .await,
    );
    assert_eq!(finished, vec![failed.clone()]);
    assert!(
        found(
            world
                .get(&format!("/api/pipeline_runs?started_before={hour_ago}"))
                .await
        )
        .is_empty()
    );
    let bad = world
        .get(&format!(
            "/api/pipeline_runs?started_after={in_an_hour}&started_before={hour_ago}"
        ))
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_log_stream_resumes_after_the_last_event_id() {
    // Three lines far enough apart in time to land in three chunks.
    let chatty = "blocks:\n  talk:\n    run: |\n      echo first\n      sleep 0.3\n      echo second\n      sleep 0.3\n      echo third\n";
    let world = common::world(&[("chatty", chatty)], false).await;
    let id = run_id(
        &world
            .post("/api/pipelines/chatty/runs", serde_json::json!({}))
            .await,
    );
    world.finish(&id).await;
    let details = world.get(&format!("/api/pipeline_runs/{id}")).await.json();
    let block_run = details["attempts"][0]["block_runs"][0]["id"]
        .as_str()
        .expect("a block run")
        .to_owned();
    let uri = format!("/api/block_runs/{block_run}/logs/stream");
    let whole = world.stream(&uri).await;
    for line in ["first", "second", "third"] {
        assert!(whole.contains(line), "{whole}");
    }
    // The id of the event that carried `first`.
    let after_first = whole
        .split("\n\n")
        .find(|event| event.contains("first"))
        .and_then(|event| event.lines().find_map(|line| line.strip_prefix("id: ")))
        .expect("the first chunk's last line has an id")
        .to_owned();
    assert!(after_first.starts_with("1:"), "{after_first}");

    let resumed = world
        .call(
            Method::GET,
            &uri,
            None,
            &[("last-event-id", after_first.as_str())],
            None,
        )
        .await;
    assert_eq!(resumed.status, StatusCode::OK);
    let request = axum::http::Request::builder()
        .uri(&uri)
        .header("last-event-id", after_first.as_str())
        .body(axum::body::Body::empty())
        .expect("a request");
    use tower::ServiceExt;
    let response = world.router().oneshot(request).await.expect("an answer");
    let body = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        axum::body::to_bytes(response.into_body(), 1 << 20),
    )
    .await
    .expect("the stream ends")
    .expect("a body");
    let resumed = String::from_utf8_lossy(&body);
    assert!(!resumed.contains("first"), "{resumed}");
    assert!(
        resumed.contains("second") && resumed.contains("third"),
        "{resumed}"
    );
    assert!(resumed.contains("event: end"), "{resumed}");

    let bad = world
        .call(
            Method::GET,
            &uri,
            None,
            &[("last-event-id", "yesterday")],
            None,
        )
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn diff_and_evidence_over_the_api() {
    let world = common::world(&[("etl", ETL), ("fails", FAILS)], false).await;
    let good = run_id(
        &world
            .post("/api/pipelines/etl/runs", serde_json::json!({}))
            .await,
    );
    world.finish(&good).await;
    let other = run_id(
        &world
            .post(
                "/api/pipelines/etl/runs",
                serde_json::json!({"variables": {"region": "apac", "password": CANARY}}),
            )
            .await,
    );
    world.finish(&other).await;
    let diff = world
        .get(&format!("/api/pipeline_runs/diff?a={good}&b={other}"))
        .await;
    assert_eq!(diff.status, StatusCode::OK, "{}", diff.text());
    let json = diff.json();
    assert_eq!(json["fields"][0]["differs"], true);
    assert!(!diff.text().contains(CANARY));
    let missing = world
        .get(&format!("/api/pipeline_runs/diff?a={good}"))
        .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);

    let failed = run_id(
        &world
            .post("/api/pipelines/fails/runs", serde_json::json!({}))
            .await,
    );
    world.finish(&failed).await;
    let evidence = world
        .get(&format!("/api/pipeline_runs/{failed}/evidence"))
        .await
        .json();
    assert_eq!(evidence["failures"][0]["block"], "broken");
    assert!(evidence["resolved_by"].is_null());
    let markdown = world
        .get(&format!("/api/pipeline_runs/{failed}/evidence?format=md"))
        .await;
    assert_eq!(
        markdown.headers["content-type"].to_str().expect("ASCII"),
        "text/markdown; charset=utf-8"
    );
    assert!(
        markdown.text().contains("## Failures"),
        "{}",
        markdown.text()
    );
}
