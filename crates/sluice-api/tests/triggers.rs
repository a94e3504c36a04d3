//! `/api/triggers`: listing the project's triggers with their next fires,
//! the upcoming runs across pipelines, and pausing and resuming.

mod common;

use axum::http::{Method, StatusCode};

const ETL: &str = "blocks:\n  only:\n    run: 'true'\ntriggers:\n\
    \x20 - {name: hourly, every: 1h}\n\
    \x20 - {name: refresh, api: true}\n";
const REPORT: &str = "blocks:\n  only:\n    run: 'true'\ntriggers:\n\
    \x20 - {name: quarter, every: 15m}\n";

#[tokio::test]
async fn triggers_are_listed_paused_and_resumed() {
    let world = common::world(&[("etl", ETL), ("report", REPORT)], false).await;

    let listed = world
        .call(Method::GET, "/api/triggers?next=2", None, &[], None)
        .await;
    assert_eq!(listed.status, StatusCode::OK, "{}", listed.text());
    let triggers = listed.json()["triggers"].clone();
    let names: Vec<String> = triggers
        .as_array()
        .unwrap()
        .iter()
        .map(|trigger| format!("{}/{}", trigger["pipeline"], trigger["trigger"]).replace('"', ""))
        .collect();
    assert_eq!(names, ["etl/hourly", "etl/refresh", "report/quarter"]);
    assert_eq!(triggers[0]["kind"], "every");
    assert_eq!(triggers[0]["paused"], false);
    assert_eq!(triggers[0]["next_fires"].as_array().unwrap().len(), 2);
    assert!(triggers[1]["next_fires"].as_array().unwrap().is_empty());

    let upcoming = world
        .call(
            Method::GET,
            "/api/triggers/upcoming?next=5",
            None,
            &[],
            None,
        )
        .await;
    assert_eq!(upcoming.status, StatusCode::OK);
    let fires = upcoming.json()["upcoming"].as_array().unwrap().clone();
    assert_eq!(fires.len(), 5);
    let times: Vec<jiff::Timestamp> = fires
        .iter()
        .map(|fire| fire["scheduled_for"].as_str().unwrap().parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|pair| pair[0] <= pair[1]), "{times:?}");

    let paused = world
        .call(
            Method::POST,
            "/api/triggers/etl/hourly/pause",
            None,
            &[],
            None,
        )
        .await;
    assert_eq!(paused.status, StatusCode::OK, "{}", paused.text());
    assert_eq!(paused.json()["trigger"]["paused"], true);
    assert_eq!(paused.json()["trigger"]["paused_by"], "anonymous");
    assert!(
        paused.json()["trigger"]["next_fires"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let upcoming = world
        .call(Method::GET, "/api/triggers/upcoming", None, &[], None)
        .await;
    assert!(
        upcoming.json()["upcoming"]
            .as_array()
            .unwrap()
            .iter()
            .all(|fire| fire["trigger"] == "quarter"),
        "a paused trigger has no upcoming runs"
    );

    let resumed = world
        .call(
            Method::POST,
            "/api/triggers/etl/hourly/resume",
            None,
            &[],
            None,
        )
        .await;
    assert_eq!(resumed.status, StatusCode::OK);
    assert_eq!(resumed.json()["trigger"]["paused"], false);

    let not_timed = world
        .call(
            Method::POST,
            "/api/triggers/etl/refresh/pause",
            None,
            &[],
            None,
        )
        .await;
    assert_eq!(not_timed.status, StatusCode::UNPROCESSABLE_ENTITY);
    let unknown = world
        .call(
            Method::POST,
            "/api/triggers/etl/nightly/pause",
            None,
            &[],
            None,
        )
        .await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["error"]["code"], "not_found");

    let bad = world
        .call(Method::GET, "/api/triggers?next=0", None, &[], None)
        .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}
