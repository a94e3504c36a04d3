//! The access policy, the router and the OpenAPI document agree: every
//! route of the policy table is routed, documented and guarded, answered
//! with no token, with a bad token and with each role as the table says.

mod common;

use std::collections::BTreeSet;

use axum::http::{Method, StatusCode};
use sluice_api::auth::{Access, POLICY};
use sluice_api::openapi::ApiDoc;
use sluice_engine::tokens::Role;
use utoipa::OpenApi;

const PIPELINE: &str = "blocks:\n  only:\n    run: 'true'\n";

/// A concrete path for a route, with placeholder ids.
fn concrete(route: &str) -> String {
    route
        .replace("{name}", "one")
        .replace("{id}", "01234567-89ab-7def-8123-456789abcdef")
        .replace("{pipeline}", "one")
        .replace("{trigger}", "nightly")
}

fn body_for(method: &Method) -> Option<serde_json::Value> {
    (method == Method::POST || method == Method::PUT).then(|| serde_json::json!({}))
}

#[tokio::test]
async fn every_route_answers_each_role_as_the_policy_says() {
    let world = common::world(&[("one", PIPELINE)], true).await;
    let mut tokens = Vec::new();
    for role in Role::ALL {
        let secret = format!("sluice_test_{}_{}", role.as_str(), "0".repeat(40));
        world
            .engine
            .create_token(&format!("test-{role}"), role, &secret, "test")
            .await
            .expect("a token");
        tokens.push((role, secret));
    }

    for (method, route, access) in POLICY {
        let uri = concrete(route);
        // Live streams would never end: their status is all that matters,
        // and a stream of an unknown block run answers 404 at once.
        let body = body_for(method);

        let anonymous = world
            .call(method.clone(), &uri, None, &[], body.clone())
            .await;
        let unknown = world
            .call(
                method.clone(),
                &uri,
                Some("sluice_not_a_real_token_000000000000000000"),
                &[],
                body.clone(),
            )
            .await;
        match access {
            Access::Public => {
                assert_ne!(
                    anonymous.status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {route}"
                );
            }
            Access::Role(_) => {
                assert_eq!(
                    anonymous.status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {route} without a token: {}",
                    anonymous.text()
                );
                assert_eq!(anonymous.json()["error"]["code"], "unauthorized");
                assert_eq!(
                    unknown.status,
                    StatusCode::UNAUTHORIZED,
                    "{method} {route} with an unknown token"
                );
            }
        }
        for (role, secret) in &tokens {
            let answer = world
                .call(method.clone(), &uri, Some(secret), &[], body.clone())
                .await;
            let allowed = match access {
                Access::Public => true,
                Access::Role(needed) => role.allows(*needed),
            };
            if allowed {
                assert!(
                    answer.status != StatusCode::UNAUTHORIZED
                        && answer.status != StatusCode::FORBIDDEN,
                    "{method} {route} as {role} should be allowed, got {}: {}",
                    answer.status,
                    answer.text()
                );
                assert!(
                    !answer.status.is_server_error(),
                    "{method} {route} as {role}: {} {}",
                    answer.status,
                    answer.text()
                );
                let routed = answer.status != StatusCode::NOT_FOUND
                    || !answer.text().contains(sluice_api::request::NO_ROUTE);
                assert!(routed, "{method} {route} is in the policy but not routed");
            } else {
                assert_eq!(
                    answer.status,
                    StatusCode::FORBIDDEN,
                    "{method} {route} as {role} should be refused: {}",
                    answer.text()
                );
                assert_eq!(answer.json()["error"]["code"], "forbidden");
            }
        }
    }
}

#[tokio::test]
async fn a_route_missing_from_the_policy_needs_admin() {
    assert_eq!(
        sluice_api::auth::access_for(&Method::GET, "/api/not-in-the-table"),
        Access::Role(Role::Admin)
    );
}

/// Method and path of every operation in the OpenAPI document.
fn documented() -> BTreeSet<(String, String)> {
    let doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
    let mut operations = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            if ["get", "post", "put", "delete", "patch"].contains(&method.as_str()) {
                operations.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    operations
}

#[test]
fn the_openapi_document_lists_exactly_the_routes_of_the_policy() {
    let policy: BTreeSet<(String, String)> = POLICY
        .iter()
        .map(|(method, route, _)| (method.to_string(), (*route).to_owned()))
        .collect();
    let documented = documented();
    let undocumented: Vec<_> = policy.difference(&documented).collect();
    let unguarded: Vec<_> = documented.difference(&policy).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from the OpenAPI document: {undocumented:?}"
    );
    assert!(
        unguarded.is_empty(),
        "documented operations missing from the policy table: {unguarded:?}"
    );
}

#[tokio::test]
async fn a_path_outside_the_policy_is_not_routed() {
    let world = common::world(&[("one", PIPELINE)], false).await;
    let answer = world.get("/api/pipelines/one/unknown").await;
    assert_eq!(answer.status, StatusCode::NOT_FOUND);
    assert!(answer.text().contains(sluice_api::request::NO_ROUTE));
    let answer = world
        .call(Method::DELETE, "/api/pipeline_runs", None, &[], None)
        .await;
    assert_eq!(answer.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer.json()["error"]["code"], "method_not_allowed");
}

#[test]
fn the_openapi_document_matches_its_snapshot() {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document serializes");
    // The version changes with every release; the shape is what matters.
    doc["info"]["version"] = serde_json::json!("[version]");
    insta::assert_json_snapshot!("openapi", doc);
}
