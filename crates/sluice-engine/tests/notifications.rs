//! Notifications end to end with a manual clock: every event reaches a
//! webhook receiver and an SMTP sink, a delivery is retried with its
//! backoff, and `sla_at_risk` is raised from the blocks' history before the
//! deadline. Tries are claimed and ended through the store interface, the
//! way an agent's would be, and the reconcilers are stepped by hand.

mod receivers;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use receivers::{SmtpSink, WebhookReceiver};
use sluice_core::ids::{ExecutorId, RunId};
use sluice_core::status::{BlockRunStatus, RunStatus};
use sluice_engine::{Clock, Engine, EngineConfig, ManualClock, Project, TriggerRequest};
use sluice_store::blobs::BlobStore;
use sluice_store::sqlite::SqliteStore;
use sluice_store::{
    BlockRunNext, ClaimRequest, DeliveryStatus, InvokedBy, TryCompletion, TryStatus,
};

const EVENTS: [&str; 8] = [
    "failed",
    "completed",
    "cancelled",
    "sla_missed",
    "sla_at_risk",
    "timed_out",
    "slow",
    "recovered",
];

struct World {
    _dir: tempfile::TempDir,
    engine: Engine,
    clock: Arc<ManualClock>,
}

async fn world(name: &str, yaml: &str) -> World {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
    std::fs::write(dir.path().join(format!("pipelines/{name}.yaml")), yaml).unwrap();
    let project = Project::load(dir.path()).unwrap();
    let store = SqliteStore::open(&dir.path().join(".sluice/sluice.db"))
        .await
        .unwrap();
    let clock = Arc::new(ManualClock::new("2026-03-01T00:00:00Z".parse().unwrap()));
    let engine = Engine::new(
        Arc::new(store),
        BlobStore::new(dir.path().join(".sluice/blobs")),
        project,
        clock.clone(),
        EngineConfig::for_project(dir.path()),
    );
    World {
        _dir: dir,
        engine,
        clock,
    }
}

fn request(pipeline: &str) -> TriggerRequest {
    TriggerRequest {
        pipeline: pipeline.to_owned(),
        variables: BTreeMap::new(),
        trigger_variables: BTreeMap::new(),
        priority: None,
        invoked_by: InvokedBy {
            kind: "manual".to_owned(),
            name: None,
            actor: Some("test".to_owned()),
            parent_run_id: None,
        },
        idempotency_key: None,
        owner: None,
    }
}

impl World {
    fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// Starts a run: created, admitted, its first block queued.
    async fn start(&self, pipeline: &str) -> RunId {
        let run = self.engine.trigger_run(request(pipeline)).await.unwrap();
        self.engine.reconcile().await.unwrap();
        run
    }

    /// Claims the next queued try and ends it with `status` after `took`,
    /// reconciling as time passes so that deadlines are enforced on the way.
    async fn work(&self, took: Duration, status: TryStatus) {
        let now = self.clock.now();
        let claim = self
            .engine
            .store()
            .claim(&ClaimRequest {
                executor: ExecutorId("test-agent".to_owned()),
                owner: None,
                labels: None,
                now,
                lease_expires_at: sluice_engine::clock::add(now, Duration::from_secs(86_400)),
            })
            .await
            .unwrap()
            .expect("a queued try");
        let mut left = took;
        while !left.is_zero() {
            let step = left.min(Duration::from_secs(60));
            self.advance(step);
            left -= step;
            self.engine.reconcile().await.unwrap();
        }
        let block_status = match status {
            TryStatus::Completed => BlockRunStatus::Completed,
            TryStatus::Cancelled => BlockRunStatus::Cancelled,
            _ => BlockRunStatus::Failed,
        };
        self.engine
            .store()
            .complete_try(&TryCompletion {
                try_id: claim.attempt_try.id.clone(),
                block_run_id: claim.block_run.id.clone(),
                epoch: claim.attempt_try.lease_epoch,
                status,
                at: self.clock.now(),
                exit_code: Some(i32::from(status != TryStatus::Completed)),
                error: (status != TryStatus::Completed).then(|| "exit code 1".to_owned()),
                timed_out: false,
                outputs: BTreeMap::new(),
                data: None,
                artifacts: Vec::new(),
                next: BlockRunNext::Finish {
                    status: block_status,
                },
            })
            .await
            .unwrap();
        self.engine.reconcile().await.unwrap();
    }

    async fn status(&self, run: &RunId) -> RunStatus {
        self.engine.get_run(run).await.unwrap().status
    }

    /// Sends what is due until nothing is left pending, moving the clock
    /// past each backoff; bounded so a stuck delivery fails the test.
    async fn deliver_everything(&self, runs: &[RunId]) {
        for _ in 0..20 {
            self.engine.send_notifications().await.unwrap();
            let mut pending = false;
            for run in runs {
                pending |= self
                    .engine
                    .run_notifications(run)
                    .await
                    .unwrap()
                    .iter()
                    .any(|delivery| delivery.status == DeliveryStatus::Pending);
            }
            if !pending {
                return;
            }
            self.advance(Duration::from_secs(60));
        }
        panic!("deliveries still pending after 20 passes");
    }
}

fn all_events_to(channels: &str) -> String {
    EVENTS
        .iter()
        .map(|event| format!("    {event}: {channels}\n"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_event_reaches_the_webhook_and_the_mailbox() {
    let hook = WebhookReceiver::start(&[]);
    let mail = SmtpSink::start();
    let yaml = format!(
        "sla: 5m\ntimeout: 10m\ntimeout_status: warning\n\
         drift:\n  runs: 5\n  factor: 1.5\n  min_runs: 2\n\
         notify:\n  channels:\n    hook:\n      webhook: {}\n    mail:\n      smtp: {}\n      \
         from: sluice@example.com\n      to: [oncall@example.com, data@example.com]\n  on:\n{}\
         blocks:\n  work:\n    run: 'true'\n",
        hook.url,
        mail.url(),
        all_events_to("[hook, mail]")
    );
    let world = world("ops", &yaml).await;
    let mut runs = Vec::new();

    // Two runs of 6 minutes make the history; each misses its 5-minute SLA.
    for _ in 0..2 {
        let run = world.start("ops").await;
        world
            .work(Duration::from_secs(6 * 60), TryStatus::Completed)
            .await;
        assert_eq!(world.status(&run).await, RunStatus::Completed);
        runs.push(run);
    }
    // The third is at risk from its start (its block takes 6 minutes),
    // times out at 10 minutes (flagged only) and completes at 30: slow.
    let risky = world.start("ops").await;
    world.engine.enforce_deadlines().await.unwrap();
    assert!(
        world
            .engine
            .get_run(&risky)
            .await
            .unwrap()
            .sla_at_risk_at
            .is_some()
    );
    world
        .work(Duration::from_secs(30 * 60), TryStatus::Completed)
        .await;
    let risky_record = world.engine.get_run(&risky).await.unwrap();
    assert!(risky_record.timed_out && risky_record.sla_missed && risky_record.slow);
    runs.push(risky.clone());
    // A failure, then a completion: recovered.
    let failing = world.start("ops").await;
    world.work(Duration::from_secs(60), TryStatus::Failed).await;
    assert_eq!(world.status(&failing).await, RunStatus::Failed);
    runs.push(failing);
    let recovering = world.start("ops").await;
    world
        .work(Duration::from_secs(60), TryStatus::Completed)
        .await;
    assert_eq!(world.status(&recovering).await, RunStatus::Completed);
    runs.push(recovering);
    // A cancelled run.
    let cancelled = world.engine.trigger_run(request("ops")).await.unwrap();
    world.engine.cancel_run(&cancelled, "test").await.unwrap();
    world.engine.reconcile().await.unwrap();
    assert_eq!(world.status(&cancelled).await, RunStatus::Cancelled);
    runs.push(cancelled);

    world.deliver_everything(&runs).await;

    let mut recorded = Vec::new();
    for run in &runs {
        recorded.extend(world.engine.run_notifications(run).await.unwrap());
    }
    assert!(
        recorded
            .iter()
            .all(|delivery| delivery.status == DeliveryStatus::Delivered && delivery.attempts == 1),
        "{recorded:#?}"
    );
    let webhook_events: BTreeSet<String> = hook
        .received()
        .iter()
        .map(|request| request.json()["data"]["event"].as_str().unwrap().to_owned())
        .collect();
    let all: BTreeSet<String> = EVENTS.iter().map(|event| (*event).to_owned()).collect();
    assert_eq!(webhook_events, all);
    // One request per recorded webhook delivery, each typed `run.EVENT`
    // and without a signature (no `secret_env`).
    let requests = hook.received();
    assert_eq!(requests.len(), recorded.len() / 2);
    for request in &requests {
        let body = request.json();
        assert_eq!(
            body["type"],
            format!("run.{}", body["data"]["event"].as_str().unwrap())
        );
        assert_eq!(request.path, "/hooks/sluice?token=s3cr3t");
        assert!(request.headers.contains_key("webhook-id"));
        assert!(!request.headers.contains_key("webhook-signature"));
    }
    let mails = mail.mails();
    assert_eq!(mails.len(), recorded.len() / 2);
    for message in &mails {
        assert_eq!(message.from, "sluice@example.com");
        assert_eq!(message.to, ["oncall@example.com", "data@example.com"]);
        assert!(message.subject().starts_with("[sluice] "), "{message:?}");
    }
    let subjects: Vec<&str> = mails.iter().map(|message| message.subject()).collect();
    for (words, event) in [
        ("failed", "failed"),
        ("completed after a failure", "recovered"),
        ("was cancelled", "cancelled"),
        ("missed its SLA", "sla_missed"),
        ("slow against its baseline", "slow"),
        ("timed out", "timed_out"),
    ] {
        assert!(
            subjects.iter().any(|subject| subject.contains(words)),
            "no mail about {event}: {subjects:#?}"
        );
    }
    // Each run's event reaches each channel once.
    let risky_events: BTreeSet<(String, String)> = world
        .engine
        .run_notifications(&risky)
        .await
        .unwrap()
        .into_iter()
        .map(|delivery| (delivery.event, delivery.channel))
        .collect();
    let mut expected = BTreeSet::new();
    for event in [
        "sla_at_risk",
        "sla_missed",
        "timed_out",
        "slow",
        "completed",
    ] {
        for channel in ["hook", "mail"] {
            expected.insert((event.to_owned(), channel.to_owned()));
        }
    }
    assert_eq!(risky_events, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_failing_twice_is_delivered_on_its_third_attempt() {
    let hook = WebhookReceiver::start(&[500, 500]);
    let yaml = format!(
        "notify:\n  channels:\n    hook:\n      webhook: {}\n  on:\n    completed: hook\n\
         blocks:\n  work:\n    run: 'true'\n",
        hook.url
    );
    let world = world("load", &yaml).await;
    let run = world.start("load").await;
    world
        .work(Duration::from_secs(1), TryStatus::Completed)
        .await;
    assert_eq!(world.status(&run).await, RunStatus::Completed);

    // `work` reconciled once after the end: the first send failed.
    let delivery = &world.engine.run_notifications(&run).await.unwrap()[0];
    assert_eq!(delivery.status, DeliveryStatus::Pending);
    assert_eq!(delivery.attempts, 1);
    assert!(
        delivery
            .last_error
            .as_deref()
            .is_some_and(|error| error.contains("500") && !error.contains("s3cr3t")),
        "{delivery:?}"
    );
    let first_retry = delivery.next_attempt_at.expect("a retry time");
    assert_eq!(
        first_retry,
        sluice_engine::clock::add(world.clock.now(), Duration::from_secs(10))
    );

    // Not before its backoff.
    world.advance(Duration::from_secs(9));
    assert_eq!(world.engine.send_notifications().await.unwrap(), 0);
    world.advance(Duration::from_secs(1));
    assert_eq!(world.engine.send_notifications().await.unwrap(), 1);
    let delivery = &world.engine.run_notifications(&run).await.unwrap()[0];
    assert_eq!(
        (delivery.status, delivery.attempts),
        (DeliveryStatus::Pending, 2)
    );
    // The second backoff is twice the first.
    assert_eq!(
        delivery.next_attempt_at,
        Some(sluice_engine::clock::add(
            world.clock.now(),
            Duration::from_secs(20)
        ))
    );
    world.advance(Duration::from_secs(19));
    assert_eq!(world.engine.send_notifications().await.unwrap(), 0);
    world.advance(Duration::from_secs(1));
    assert_eq!(world.engine.send_notifications().await.unwrap(), 1);

    let delivery = &world.engine.run_notifications(&run).await.unwrap()[0];
    assert_eq!(delivery.status, DeliveryStatus::Delivered);
    assert_eq!(delivery.attempts, 3);
    assert_eq!(delivery.delivered_at, Some(world.clock.now()));
    assert_eq!(delivery.next_attempt_at, None);
    // The receiver saw the same message three times, so it can drop repeats.
    let requests = hook.received();
    assert_eq!(
        requests.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 500, 200]
    );
    let ids: BTreeSet<&String> = requests.iter().map(|r| &r.headers["webhook-id"]).collect();
    assert_eq!(ids.len(), 1);
    // Nothing more is sent once it is delivered.
    world.advance(Duration::from_secs(3600));
    assert_eq!(world.engine.send_notifications().await.unwrap(), 0);
    assert_eq!(hook.received().len(), 3);

    // The run's details carry it, with the URL masked.
    let details = world.engine.run_details(&run).await.unwrap();
    assert_eq!(details.notifications.len(), 1);
    let target = details.notifications[0].target.as_deref().unwrap();
    assert!(
        target.ends_with("/***") && !target.contains("s3cr3t"),
        "{target}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sla_at_risk_is_raised_before_the_deadline_from_the_blocks_history() {
    let hook = WebhookReceiver::start(&[]);
    // Each block took 4 minutes in the past, so a run takes about 8; the
    // SLA allows 6.
    let yaml = format!(
        "sla: 6m\nnotify:\n  channels:\n    hook:\n      webhook: {}\n  on:\n    \
         sla_at_risk: hook\nblocks:\n  extract:\n    run: 'true'\n  load:\n    \
         needs: [extract]\n    run: 'true'\n",
        hook.url
    );
    let world = world("nightly", &yaml).await;
    let history = world.start("nightly").await;
    world
        .work(Duration::from_secs(4 * 60), TryStatus::Completed)
        .await;
    world
        .work(Duration::from_secs(4 * 60), TryStatus::Completed)
        .await;
    assert_eq!(world.status(&history).await, RunStatus::Completed);

    let run = world.start("nightly").await;
    let started = world.clock.now();
    // The first check of the deadlines once the run is running.
    world.engine.enforce_deadlines().await.unwrap();
    let record = world.engine.get_run(&run).await.unwrap();
    let deadline = record.sla_at.expect("an SLA deadline");
    // Raised at once, six minutes before the deadline.
    assert_eq!(record.sla_at_risk_at, Some(started));
    assert!(!record.sla_missed);
    assert_eq!(
        deadline,
        sluice_engine::clock::add(started, Duration::from_secs(6 * 60))
    );
    let estimate = world.engine.estimated_finish(&record).await.unwrap();
    assert_eq!(
        estimate,
        Some(sluice_engine::clock::add(
            started,
            Duration::from_secs(8 * 60)
        ))
    );
    // Notified once, however many passes follow.
    world
        .work(Duration::from_secs(60), TryStatus::Completed)
        .await;
    world.engine.reconcile().await.unwrap();
    let deliveries = world.engine.run_notifications(&run).await.unwrap();
    assert_eq!(deliveries.len(), 1, "{deliveries:#?}");
    assert_eq!(deliveries[0].event, "sla_at_risk");
    assert_eq!(deliveries[0].status, DeliveryStatus::Delivered);
    let body = hook.wait_for(1, Duration::from_secs(10))[0].json();
    assert_eq!(body["data"]["run_id"], run.as_str());
    assert_eq!(body["data"]["sla_missed"], false);
    // The run that made the history had none to be judged by.
    assert!(
        world
            .engine
            .get_run(&history)
            .await
            .unwrap()
            .sla_at_risk_at
            .is_none()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_without_history_is_not_at_risk() {
    let yaml = "sla: 1m\nblocks:\n  only:\n    run: 'true'\n";
    let world = world("fresh", yaml).await;
    let run = world.start("fresh").await;
    world.engine.reconcile().await.unwrap();
    let record = world.engine.get_run(&run).await.unwrap();
    assert!(record.sla_at_risk_at.is_none());
    assert!(!record.sla_missed);
}
