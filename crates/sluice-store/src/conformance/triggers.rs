//! Conformance cases of the trigger states: the last fire only moves
//! forward, whoever records it and in whatever order, and pausing and
//! resuming change the state once each.

use std::sync::Arc;

use sluice_core::ids::RunId;

use super::fixtures::at;
use crate::{Store, TriggerFire, TriggerPause, TriggerState};

fn fire(trigger: &str, seconds: i64, run: &str) -> TriggerFire {
    TriggerFire {
        pipeline: "etl".to_owned(),
        trigger: trigger.to_owned(),
        fired_at: at(seconds),
        run_id: Some(RunId::from(run)),
    }
}

fn pause(trigger: &str, paused: bool, seconds: i64) -> TriggerPause {
    TriggerPause {
        pipeline: "etl".to_owned(),
        trigger: trigger.to_owned(),
        paused,
        by: "alice".to_owned(),
        at: at(seconds),
    }
}

/// A trigger's last fire is created on its first fire, moves forward, is
/// recorded again harmlessly, and never moves back.
pub async fn trigger_fires(store: Arc<dyn Store>) {
    assert_eq!(
        store.get_trigger_state("etl", "nightly").await.unwrap(),
        None
    );
    assert!(store.list_trigger_states().await.unwrap().is_empty());

    assert!(
        store
            .record_trigger_fire(&fire("nightly", 100, "r1"))
            .await
            .unwrap()
    );
    assert!(
        store
            .record_trigger_fire(&fire("nightly", 200, "r2"))
            .await
            .unwrap()
    );
    // The same fire again (a second server, or a retry after a crash).
    assert!(
        store
            .record_trigger_fire(&fire("nightly", 200, "r2"))
            .await
            .unwrap()
    );
    // An older fire recorded late never moves the state back.
    assert!(
        !store
            .record_trigger_fire(&fire("nightly", 150, "r-old"))
            .await
            .unwrap()
    );

    let state = store
        .get_trigger_state("etl", "nightly")
        .await
        .unwrap()
        .expect("a state after a fire");
    assert_eq!(
        state,
        TriggerState {
            pipeline: "etl".to_owned(),
            trigger: "nightly".to_owned(),
            last_fired_at: Some(at(200)),
            last_run_id: Some(RunId::from("r2")),
            paused: false,
            paused_by: None,
            paused_at: None,
        }
    );

    // Fires recorded at once from many writers leave the newest.
    let mut writers = Vec::new();
    for seconds in 0..16 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            store
                .record_trigger_fire(&fire("hourly", seconds * 10, &format!("h{seconds}")))
                .await
                .unwrap()
        }));
    }
    for writer in writers {
        writer.await.expect("the writer ends");
    }
    let hourly = store
        .get_trigger_state("etl", "hourly")
        .await
        .unwrap()
        .expect("a state after fires");
    assert_eq!(hourly.last_fired_at, Some(at(150)));
    assert_eq!(hourly.last_run_id, Some(RunId::from("h15")));

    let listed = store.list_trigger_states().await.unwrap();
    let names: Vec<&str> = listed.iter().map(|state| state.trigger.as_str()).collect();
    assert_eq!(names, ["hourly", "nightly"]);
}

/// Pausing and resuming each change a trigger once; pausing a trigger that
/// never fired records it; the last fire survives both.
pub async fn trigger_pauses(store: Arc<dyn Store>) {
    // Resuming what is not paused changes nothing and records nothing.
    assert!(
        !store
            .set_trigger_paused(&pause("nightly", false, 1))
            .await
            .unwrap()
    );
    assert_eq!(
        store.get_trigger_state("etl", "nightly").await.unwrap(),
        None
    );

    assert!(
        store
            .set_trigger_paused(&pause("nightly", true, 2))
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_trigger_paused(&pause("nightly", true, 3))
            .await
            .unwrap()
    );
    let state = store
        .get_trigger_state("etl", "nightly")
        .await
        .unwrap()
        .expect("a paused trigger has a state");
    assert!(state.paused);
    assert_eq!(state.paused_by.as_deref(), Some("alice"));
    assert_eq!(state.paused_at, Some(at(2)));
    assert_eq!(state.last_fired_at, None);

    // A fire recorded while paused (by a server that had not seen the
    // pause yet) keeps the pause.
    assert!(
        store
            .record_trigger_fire(&fire("nightly", 100, "r1"))
            .await
            .unwrap()
    );
    let state = store
        .get_trigger_state("etl", "nightly")
        .await
        .unwrap()
        .unwrap();
    assert!(state.paused);
    assert_eq!(state.last_fired_at, Some(at(100)));

    assert!(
        store
            .set_trigger_paused(&pause("nightly", false, 4))
            .await
            .unwrap()
    );
    assert!(
        !store
            .set_trigger_paused(&pause("nightly", false, 5))
            .await
            .unwrap()
    );
    let state = store
        .get_trigger_state("etl", "nightly")
        .await
        .unwrap()
        .unwrap();
    assert!(!state.paused);
    assert_eq!(state.paused_by, None);
    assert_eq!(state.paused_at, None);
    assert_eq!(state.last_fired_at, Some(at(100)));
    assert_eq!(state.last_run_id, Some(RunId::from("r1")));
}
