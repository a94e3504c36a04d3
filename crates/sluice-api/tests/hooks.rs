//! Webhook and API triggers over the router: signatures by the Standard
//! Webhooks and GitHub schemes, rotated secrets, stale and tampered
//! deliveries, one run per delivery id even under concurrent repeats,
//! oversized bodies, and API triggers with their tokens.

mod common;

use axum::http::{Method, StatusCode};
use sluice_api::webhook::{sign_github, sign_standard};

const HOOKED: &str = r#"
variables:
  branch: {default: none}
  who: {default: nobody}
triggers:
  - name: push
    webhook: {scheme: standard, secret_file: secrets/push}
    variables_from: {branch: /ref}
    variables: {who: the-hook}
  - name: gh
    webhook: {scheme: github, secret_file: secrets/gh}
  - name: refresh
    api: true
  - name: mapped
    api: true
    variables_from: {branch: /git/ref}
blocks:
  only:
    run: echo "${{ vars.branch }}"
"#;

async fn world() -> common::World {
    let world = common::world(&[("hooked", HOOKED)], false).await;
    let secrets = world.dir.path().join("secrets");
    std::fs::create_dir_all(&secrets).expect("secrets/");
    // `old` and `new`, as during a rotation.
    std::fs::write(secrets.join("push"), "whsec_b2xk\nwhsec_bmV3\n").expect("a secret");
    std::fs::write(secrets.join("gh"), "gh-secret\n").expect("a secret");
    world
}

fn standard(secret: &[u8], id: &str, timestamp: i64, body: &str) -> Vec<(String, String)> {
    vec![
        ("webhook-id".to_owned(), id.to_owned()),
        ("webhook-timestamp".to_owned(), timestamp.to_string()),
        (
            "webhook-signature".to_owned(),
            sign_standard(secret, id, timestamp, body.as_bytes()),
        ),
    ]
}

async fn deliver(
    world: &common::World,
    path: &str,
    headers: &[(String, String)],
    body: &str,
) -> common::Answer {
    use tower::ServiceExt;
    let mut request = axum::http::Request::builder()
        .method(Method::POST)
        .uri(path)
        .header("content-type", "application/json");
    for (name, value) in headers {
        request = request.header(name.as_str(), value.as_str());
    }
    let response = world
        .router()
        .oneshot(
            request
                .body(axum::body::Body::from(body.to_owned()))
                .expect("a request"),
        )
        .await
        .expect("an answer");
    let status = response.status();
    let headers = response.headers().clone();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("a body")
        .to_vec();
    common::Answer {
        status,
        headers,
        body,
    }
}

async fn run_count(world: &common::World) -> u64 {
    let summary = world
        .get("/api/pipeline_runs?summary=true&limit=1")
        .await
        .json();
    summary["summary"]
        .as_object()
        .expect("a summary")
        .values()
        .filter_map(serde_json::Value::as_u64)
        .sum()
}

fn now() -> i64 {
    jiff::Timestamp::now().as_second()
}

#[tokio::test]
async fn a_signed_delivery_starts_one_run_with_its_payload() {
    let world = world().await;
    let body = r#"{"ref": "refs/heads/main"}"#;
    let headers = standard(b"new", "msg_1", now(), body);
    let first = deliver(&world, "/hooks/hooked/push", &headers, body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    let run = first.json()["pipeline_run"].clone();
    assert_eq!(run["invoked_by"]["kind"], "webhook");
    assert_eq!(run["invoked_by"]["name"], "push");
    assert_eq!(run["variables"]["branch"]["value"], "refs/heads/main");
    assert_eq!(run["variables"]["who"]["value"], "the-hook");
    assert_eq!(run["variables"]["who"]["layer"], "trigger");

    // The same delivery again: the same run, nothing new.
    let again = deliver(&world, "/hooks/hooked/push", &headers, body).await;
    assert_eq!(again.json()["pipeline_run"]["id"], run["id"]);
    // Signed with the old secret of the rotation: still accepted.
    let old = deliver(
        &world,
        "/hooks/hooked/push",
        &standard(b"old", "msg_2", now(), body),
        body,
    )
    .await;
    assert_eq!(old.status, StatusCode::CREATED, "{}", old.text());
    assert_eq!(run_count(&world).await, 2);
}

#[tokio::test]
async fn bad_deliveries_are_refused_and_create_nothing() {
    let world = world().await;
    let body = r#"{"ref": "main"}"#;
    let cases = [
        (
            "tampered body",
            standard(b"new", "m1", now(), body),
            r#"{"ref": "evil"}"#,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "stale timestamp",
            standard(b"new", "m2", now() - 301, body),
            body,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "unknown secret",
            standard(b"someone-else", "m3", now(), body),
            body,
            StatusCode::UNAUTHORIZED,
        ),
        (
            "no signature",
            vec![
                ("webhook-id".to_owned(), "m4".to_owned()),
                ("webhook-timestamp".to_owned(), now().to_string()),
            ],
            body,
            StatusCode::BAD_REQUEST,
        ),
    ];
    for (what, headers, sent, expected) in cases {
        let answer = deliver(&world, "/hooks/hooked/push", &headers, sent).await;
        assert_eq!(answer.status, expected, "{what}: {}", answer.text());
    }
    let big = format!(r#"{{"ref": "{}"}}"#, "x".repeat(2 * 1024 * 1024));
    let oversized = deliver(
        &world,
        "/hooks/hooked/push",
        &standard(b"new", "m5", now(), &big),
        &big,
    )
    .await;
    assert_eq!(oversized.status, StatusCode::PAYLOAD_TOO_LARGE);
    let unknown = deliver(&world, "/hooks/hooked/nope", &[], body).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(run_count(&world).await, 0);
}

#[tokio::test]
async fn github_deliveries_are_verified_and_deduplicated() {
    let world = world().await;
    let body = r#"{"zen": "Keep it logically awesome."}"#;
    let headers = vec![
        ("x-github-delivery".to_owned(), "72d3162e-cc78".to_owned()),
        (
            "x-hub-signature-256".to_owned(),
            sign_github(b"gh-secret", body.as_bytes()),
        ),
    ];
    let first = deliver(&world, "/hooks/hooked/gh", &headers, body).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    let again = deliver(&world, "/hooks/hooked/gh", &headers, body).await;
    assert_eq!(
        again.json()["pipeline_run"]["id"],
        first.json()["pipeline_run"]["id"]
    );
    let tampered = deliver(&world, "/hooks/hooked/gh", &headers, "{}").await;
    assert_eq!(tampered.status, StatusCode::UNAUTHORIZED);
    assert_eq!(run_count(&world).await, 1);
}

#[tokio::test]
async fn concurrent_repeats_of_one_delivery_make_one_run() {
    let world = world().await;
    let body = r#"{"ref": "main"}"#;
    let headers = standard(b"new", "msg_concurrent", now(), body);
    let mut tasks = tokio::task::JoinSet::new();
    let world = std::sync::Arc::new(world);
    for _ in 0..50 {
        let world = world.clone();
        let headers = headers.clone();
        tasks.spawn(async move { deliver(&world, "/hooks/hooked/push", &headers, body).await });
    }
    let mut ids = std::collections::BTreeSet::new();
    while let Some(answer) = tasks.join_next().await {
        let answer = answer.expect("the task ends");
        assert_eq!(answer.status, StatusCode::CREATED, "{}", answer.text());
        ids.insert(answer.json()["pipeline_run"]["id"].to_string());
    }
    assert_eq!(ids.len(), 1);
    assert_eq!(run_count(&world).await, 1);
}

#[tokio::test]
async fn an_api_trigger_needs_a_token_and_honours_idempotency_keys() {
    let world = world().await;
    let operator = format!("sluice_{}", "a".repeat(40));
    let viewer = format!("sluice_{}", "b".repeat(40));
    world
        .engine
        .create_token(
            "ops",
            sluice_engine::tokens::Role::Operator,
            &operator,
            "test",
        )
        .await
        .expect("a token");
    world
        .engine
        .create_token("look", sluice_engine::tokens::Role::Viewer, &viewer, "test")
        .await
        .expect("a token");
    let body = serde_json::json!({"who": "api", "branch": "release"});
    let call = |token: Option<&'static str>, key: Option<&'static str>| {
        let body = body.clone();
        let world = &world;
        async move {
            let mut headers = Vec::new();
            if let Some(key) = key {
                headers.push(("idempotency-key", key));
            }
            world
                .call(
                    Method::POST,
                    "/api/triggers/hooked/refresh",
                    token,
                    &headers,
                    Some(body),
                )
                .await
        }
    };
    let anonymous = call(None, None).await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
    let operator: &'static str = Box::leak(operator.into_boxed_str());
    let viewer: &'static str = Box::leak(viewer.into_boxed_str());
    assert_eq!(call(Some(viewer), None).await.status, StatusCode::FORBIDDEN);
    let first = call(Some(operator), Some("refresh-1")).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.text());
    let run = first.json()["pipeline_run"].clone();
    assert_eq!(run["invoked_by"]["kind"], "api");
    assert_eq!(run["invoked_by"]["name"], "refresh");
    assert_eq!(run["invoked_by"]["actor"], "ops");
    assert_eq!(run["variables"]["branch"]["value"], "release");
    assert_eq!(run["variables"]["who"]["value"], "api");
    let replay = call(Some(operator), Some("refresh-1")).await;
    assert_eq!(replay.json()["pipeline_run"]["id"], run["id"]);
    assert_eq!(run_count(&world).await, 1);

    let undeclared = world
        .call(
            Method::POST,
            "/api/triggers/hooked/refresh",
            Some(operator),
            &[],
            Some(serde_json::json!({"colour": "red"})),
        )
        .await;
    assert_eq!(undeclared.status, StatusCode::UNPROCESSABLE_ENTITY);
    let mapped = world
        .call(
            Method::POST,
            "/api/triggers/hooked/mapped",
            Some(operator),
            &[],
            Some(serde_json::json!({"git": {"ref": "v1.2"}, "extra": true})),
        )
        .await;
    assert_eq!(mapped.status, StatusCode::CREATED, "{}", mapped.text());
    assert_eq!(
        mapped.json()["pipeline_run"]["variables"]["branch"]["value"],
        "v1.2"
    );
}
