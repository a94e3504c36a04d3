//! Notification deliveries: idempotent recording, recording with a run's
//! end in one transaction, exclusive claims with retries fenced by the
//! claim's attempt count, the SLA-risk mark, and the block timings of
//! completed runs.

use std::collections::BTreeSet;
use std::sync::Arc;

use sluice_core::ids::RunId;
use sluice_core::status::{BlockRunStatus, RunStatus};

use super::fixtures::{at, block_id, claim_request, create, new_run, queue, running_run, success};
use crate::{
    DeliveryClaim, DeliveryOutcome, DeliveryResult, DeliveryStatus, Error, NewDelivery,
    RunTransition, Store,
};

fn delivery(run: &RunId, event: &str, channel: &str) -> NewDelivery {
    NewDelivery {
        run_id: run.clone(),
        attempt: 1,
        event: event.to_owned(),
        channel: channel.to_owned(),
        kind: "webhook".to_owned(),
        max_attempts: 3,
        payload: serde_json::json!({ "type": format!("run.{event}"), "data": { "run_id": run } }),
        created_at: at(10),
    }
}

fn claim(now: i64, limit: u32) -> DeliveryClaim {
    DeliveryClaim {
        now: at(now),
        claimed_until: at(now + 60),
        limit,
    }
}

pub async fn notification_deliveries(store: Arc<dyn Store>) {
    let run = running_run(&store, new_run("notify-1", "etl", &["only"])).await;
    let failed = [
        delivery(&run, "failed", "ops"),
        delivery(&run, "failed", "mail"),
    ];
    assert_eq!(store.record_deliveries(&failed).await.unwrap(), 2);
    // Raising the same event again records nothing new.
    assert_eq!(store.record_deliveries(&failed).await.unwrap(), 0);
    assert_eq!(store.record_deliveries(&[]).await.unwrap(), 0);

    let listed = store.list_deliveries(&run).await.unwrap();
    assert_eq!(listed.len(), 2);
    assert_eq!(listed[0].channel, "ops");
    assert_eq!(listed[0].event, "failed");
    assert_eq!(listed[0].kind, "webhook");
    assert_eq!(listed[0].status, DeliveryStatus::Pending);
    assert_eq!(listed[0].attempts, 0);
    assert_eq!(listed[0].max_attempts, 3);
    assert_eq!(listed[0].payload, failed[0].payload);
    assert_eq!(listed[0].created_at, at(10));
    assert_eq!(listed[0].next_attempt_at, Some(at(10)));

    // Nothing is due before it was created.
    assert!(
        store
            .claim_deliveries(&claim(5, 10))
            .await
            .unwrap()
            .is_empty()
    );
    let first = store.claim_deliveries(&claim(20, 1)).await.unwrap();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].id, listed[0].id);
    assert_eq!(first[0].attempts, 1);
    assert_eq!(first[0].claimed_until, Some(at(80)));
    // A held delivery is not claimed again; the other one is.
    let second = store.claim_deliveries(&claim(21, 10)).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].id, listed[1].id);
    assert!(
        store
            .claim_deliveries(&claim(22, 10))
            .await
            .unwrap()
            .is_empty()
    );

    // The first send fails and is scheduled again.
    let retry = DeliveryOutcome {
        id: first[0].id,
        attempts: 1,
        at: at(25),
        result: DeliveryResult::Retry {
            error: "POST http://127.0.0.1/*** answered 500".to_owned(),
            retry_at: at(100),
        },
    };
    assert!(store.finish_delivery(&retry).await.unwrap());
    // Applying the same outcome again does nothing: the claim is spent.
    assert!(!store.finish_delivery(&retry).await.unwrap());
    // The second channel gives up for good.
    let given_up = DeliveryOutcome {
        id: second[0].id,
        attempts: 1,
        at: at(30),
        result: DeliveryResult::Failed {
            error: "smtp://mail:25: the SMTP server refused a recipient".to_owned(),
        },
    };
    assert!(store.finish_delivery(&given_up).await.unwrap());
    assert!(
        store
            .claim_deliveries(&claim(99, 10))
            .await
            .unwrap()
            .is_empty()
    );
    let again = store.claim_deliveries(&claim(100, 10)).await.unwrap();
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].attempts, 2);
    assert_eq!(
        again[0].last_error.as_deref(),
        Some("POST http://127.0.0.1/*** answered 500")
    );
    // A sender whose claim was taken over cannot record its outcome.
    let stale = DeliveryOutcome {
        id: first[0].id,
        attempts: 1,
        at: at(101),
        result: DeliveryResult::Delivered,
    };
    assert!(!store.finish_delivery(&stale).await.unwrap());
    let delivered = DeliveryOutcome {
        attempts: 2,
        at: at(102),
        ..stale
    };
    assert!(store.finish_delivery(&delivered).await.unwrap());

    // A held claim that expired is claimed again, but final ones never are.
    assert!(
        store
            .claim_deliveries(&claim(10_000, 10))
            .await
            .unwrap()
            .is_empty()
    );

    let listed = store.list_deliveries(&run).await.unwrap();
    assert_eq!(listed[0].status, DeliveryStatus::Delivered);
    assert_eq!(listed[0].attempts, 2);
    assert_eq!(listed[0].delivered_at, Some(at(102)));
    assert_eq!(listed[0].next_attempt_at, None);
    assert_eq!(listed[0].claimed_until, None);
    assert_eq!(listed[0].updated_at, at(102));
    assert_eq!(listed[1].status, DeliveryStatus::Failed);
    assert_eq!(listed[1].attempts, 1);
    assert_eq!(listed[1].delivered_at, None);
    assert_eq!(
        listed[1].last_error.as_deref(),
        Some("smtp://mail:25: the SMTP server refused a recipient")
    );
    let other = create(&store, new_run("notify-2", "etl", &["only"])).await;
    assert!(store.list_deliveries(&other).await.unwrap().is_empty());
}

pub async fn expired_delivery_claims(store: Arc<dyn Store>) {
    let run = running_run(&store, new_run("notify-3", "etl", &["only"])).await;
    store
        .record_deliveries(&[delivery(&run, "completed", "chat")])
        .await
        .unwrap();
    let first = store.claim_deliveries(&claim(10, 10)).await.unwrap();
    assert_eq!(first.len(), 1);
    // The sender died: once its hold ends, the delivery is claimed again,
    // as a new attempt, and the dead sender's late outcome is refused.
    assert!(
        store
            .claim_deliveries(&claim(69, 10))
            .await
            .unwrap()
            .is_empty()
    );
    let second = store.claim_deliveries(&claim(70, 10)).await.unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].attempts, 2);
    let late = DeliveryOutcome {
        id: first[0].id,
        attempts: first[0].attempts,
        at: at(71),
        result: DeliveryResult::Delivered,
    };
    assert!(!store.finish_delivery(&late).await.unwrap());
}

pub async fn concurrent_delivery_claims_are_exclusive(store: Arc<dyn Store>) {
    let run = running_run(&store, new_run("notify-4", "etl", &["only"])).await;
    let deliveries: Vec<NewDelivery> = (0..20)
        .map(|channel| delivery(&run, "failed", &format!("channel{channel}")))
        .collect();
    assert_eq!(store.record_deliveries(&deliveries).await.unwrap(), 20);
    let claims = (0..4).map(|_| {
        let store = store.clone();
        tokio::spawn(async move { store.claim_deliveries(&claim(20, 3)).await.unwrap() })
    });
    let mut seen = BTreeSet::new();
    let mut total = 0;
    for handle in claims {
        for claimed in handle.await.unwrap() {
            total += 1;
            assert!(
                seen.insert(claimed.id),
                "delivery {} claimed twice",
                claimed.id
            );
        }
    }
    assert_eq!(total, 12);
}

pub async fn run_end_with_deliveries(store: Arc<dyn Store>) {
    let run = running_run(&store, new_run("notify-5", "etl", &["only"])).await;
    let end = RunTransition {
        id: run.clone(),
        attempt: 1,
        from: RunStatus::Running,
        to: RunStatus::Failed,
        at: at(5),
        error: Some("block `only` failed".to_owned()),
        timeout_at: None,
        timed_out: false,
    };
    let deliveries = [delivery(&run, "failed", "ops")];
    assert!(
        store
            .transition_run_notifying(&end, &deliveries)
            .await
            .unwrap()
    );
    assert_eq!(store.list_deliveries(&run).await.unwrap().len(), 1);
    let run_record = store.get_run(&run).await.unwrap().unwrap();
    assert_eq!(run_record.status, RunStatus::Failed);
    // A losing writer's end records no deliveries.
    let losing = RunTransition {
        to: RunStatus::Cancelled,
        ..end
    };
    let other = [delivery(&run, "cancelled", "ops")];
    assert!(
        !store
            .transition_run_notifying(&losing, &other)
            .await
            .unwrap()
    );
    let listed = store.list_deliveries(&run).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].event, "failed");
}

pub async fn sla_risk_marks(store: Arc<dyn Store>) {
    let run = running_run(&store, new_run("notify-6", "etl", &["only"])).await;
    assert_eq!(
        store.get_run(&run).await.unwrap().unwrap().sla_at_risk_at,
        None
    );
    assert!(store.mark_sla_at_risk(&run, at(7)).await.unwrap());
    assert!(!store.mark_sla_at_risk(&run, at(8)).await.unwrap());
    assert_eq!(
        store.get_run(&run).await.unwrap().unwrap().sla_at_risk_at,
        Some(at(7))
    );
    let missing = store
        .mark_sla_at_risk(&RunId::from("no-such-run"), at(7))
        .await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
}

/// Runs one run of `etl` whose blocks `a` and `b` complete, taking
/// `seconds` each, and ends it with `status`.
async fn timed_run(store: &Arc<dyn Store>, id: &str, start: i64, seconds: i64, status: RunStatus) {
    let mut run = new_run(id, "etl", &["a", "b"]);
    run.created_at = at(start);
    let run = running_run(store, run).await;
    for block in ["a", "b"] {
        let block_run = block_id(id, block);
        queue(store, &block_run, at(start)).await;
        let claimed = store
            .claim(&claim_request("executor", at(start)))
            .await
            .unwrap()
            .expect("a claimable block run");
        assert_eq!(claimed.block_run.id, block_run);
        store
            .complete_try(&success(&claimed, at(start + seconds)))
            .await
            .unwrap();
        let record = store.get_block_run(&block_run).await.unwrap().unwrap();
        assert_eq!(record.status, BlockRunStatus::Completed);
    }
    let change = RunTransition {
        id: run,
        attempt: 1,
        from: RunStatus::Running,
        to: status,
        at: at(start + seconds),
        error: None,
        timeout_at: None,
        timed_out: false,
    };
    assert!(store.transition_run(&change).await.unwrap());
}

pub async fn completed_block_timings(store: Arc<dyn Store>) {
    timed_run(&store, "old", 0, 10, RunStatus::Completed).await;
    timed_run(&store, "middle", 100, 20, RunStatus::Completed).await;
    timed_run(&store, "broken", 200, 99, RunStatus::Failed).await;
    timed_run(&store, "new", 300, 30, RunStatus::Completed).await;
    let timings = store.completed_block_timings("etl", 2).await.unwrap();
    let seen: Vec<(String, String, i64)> = timings
        .iter()
        .map(|timing| {
            (
                timing.run_id.to_string(),
                timing.block.clone(),
                timing
                    .finished_at
                    .duration_since(timing.started_at)
                    .as_secs(),
            )
        })
        .collect();
    assert_eq!(
        seen,
        vec![
            ("new".to_owned(), "a".to_owned(), 30),
            ("new".to_owned(), "b".to_owned(), 30),
            ("middle".to_owned(), "a".to_owned(), 20),
            ("middle".to_owned(), "b".to_owned(), 20),
        ]
    );
    assert!(
        store
            .completed_block_timings("other", 20)
            .await
            .unwrap()
            .is_empty()
    );
}
