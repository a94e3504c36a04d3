//! The web UI's session cookie as an alternative to a bearer token: reads
//! work with the cookie alone, every state change also needs the session's
//! CSRF token (403 without it, with auth on or off), roles still apply,
//! live streams accept the cookie, and bearer tokens work as before.

mod common;

use axum::http::{Method, StatusCode};
use serde_json::json;
use sluice_engine::sessions::COOKIE_NAME;
use sluice_engine::tokens::Role;

const ONE: &str = "blocks:\n  only:\n    run: 'true'\n";

async fn token(world: &common::World, name: &str, role: Role) -> String {
    let secret = format!("sluice_{name}_0123456789abcdef0123456789abcdef");
    world
        .engine
        .create_token(name, role, &secret, "test")
        .await
        .expect("a token");
    secret
}

/// A signed-in session: its `Cookie` header and its CSRF token.
async fn session(world: &common::World, secret: &str) -> (String, String) {
    let (_, session) = world
        .engine
        .sign_in(secret)
        .await
        .expect("the store answers")
        .expect("a valid token");
    let csrf = world
        .engine
        .csrf_token(&session.cookie)
        .await
        .expect("a CSRF token");
    (format!("{COOKIE_NAME}={}", session.cookie), csrf)
}

#[tokio::test]
async fn the_session_cookie_reads_and_needs_the_csrf_token_to_change_state() {
    let world = common::world(&[("one", ONE)], true).await;
    let operator = token(&world, "ops", Role::Operator).await;
    let (cookie, csrf) = session(&world, &operator).await;

    let listed = world
        .call(
            Method::GET,
            "/api/pipeline_runs",
            None,
            &[("cookie", &cookie)],
            None,
        )
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());

    let refused = world
        .call(
            Method::POST,
            "/api/pipelines/one/runs",
            None,
            &[("cookie", &cookie)],
            Some(json!({})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());
    assert_eq!(refused.json()["error"]["code"], "forbidden");
    let wrong = world
        .call(
            Method::POST,
            "/api/pipelines/one/runs",
            None,
            &[("cookie", &cookie), ("x-csrf-token", "00ff00ff")],
            Some(json!({})),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);

    let created = world
        .call(
            Method::POST,
            "/api/pipelines/one/runs",
            None,
            &[("cookie", &cookie), ("x-csrf-token", &csrf)],
            Some(json!({})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    // The run is the signed-in token's doing.
    assert_eq!(
        created.json()["pipeline_run"]["invoked_by"]["actor"],
        "ops",
        "{}",
        created.text()
    );

    // A bearer token needs no CSRF token, as before.
    let bearer = world
        .call(
            Method::POST,
            "/api/pipelines/one/runs",
            Some(&operator),
            &[],
            Some(json!({})),
        )
        .await;
    assert_eq!(bearer.status, StatusCode::CREATED, "{}", bearer.text());

    // Live streams take the cookie too.
    let live = world
        .call(
            Method::GET,
            "/api/events",
            None,
            &[("cookie", &cookie)],
            None,
        )
        .await;
    assert_eq!(live.status, StatusCode::OK);
    let anonymous = world
        .call(Method::GET, "/api/events", None, &[], None)
        .await;
    assert_eq!(anonymous.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_session_keeps_its_token_s_role_and_dies_with_it() {
    let world = common::world(&[("one", ONE)], true).await;
    let viewer = token(&world, "watcher", Role::Viewer).await;
    let (cookie, csrf) = session(&world, &viewer).await;
    let refused = world
        .call(
            Method::POST,
            "/api/pipelines/one/runs",
            None,
            &[("cookie", &cookie), ("x-csrf-token", &csrf)],
            Some(json!({})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());
    assert!(
        refused.json()["error"]["message"]
            .as_str()
            .unwrap_or_default()
            .contains("this needs `operator`"),
        "{}",
        refused.text()
    );

    // A forged or tampered cookie is no session.
    // The last digit of the signature, changed to another digit.
    let last = if cookie.ends_with('0') { '1' } else { '0' };
    let tampered = format!("{}{last}", &cookie[..cookie.len() - 1]);
    for cookie in [
        tampered.as_str(),
        "sluice_session=v1.anonymous.9999999999.00.00",
    ] {
        let answer = world
            .call(
                Method::GET,
                "/api/pipeline_runs",
                None,
                &[("cookie", cookie)],
                None,
            )
            .await;
        assert_eq!(answer.status, StatusCode::UNAUTHORIZED, "{cookie}");
    }

    world
        .engine
        .revoke_token("watcher", "test")
        .await
        .expect("revoked");
    let revoked = world
        .call(
            Method::GET,
            "/api/pipeline_runs",
            None,
            &[("cookie", &cookie)],
            None,
        )
        .await;
    assert_eq!(revoked.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn without_auth_a_cookie_still_needs_its_csrf_token() {
    let world = common::world(&[("one", ONE)], false).await;
    let session = world
        .engine
        .anonymous_session()
        .await
        .expect("an anonymous session");
    let cookie = format!("{COOKIE_NAME}={}", session.cookie);
    let csrf = world
        .engine
        .csrf_token(&session.cookie)
        .await
        .expect("a CSRF token");
    let refused = world
        .call(
            Method::POST,
            "/api/pipelines/one/runs",
            None,
            &[("cookie", &cookie)],
            Some(json!({})),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.text());
    let created = world
        .call(
            Method::POST,
            "/api/pipelines/one/runs",
            None,
            &[("cookie", &cookie), ("x-csrf-token", &csrf)],
            Some(json!({})),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    // Without a cookie nothing changes: the API stays open on loopback.
    let plain = world.post("/api/pipelines/one/runs", json!({})).await;
    assert_eq!(plain.status, StatusCode::CREATED);
}
