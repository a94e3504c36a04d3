//! Operations through the CLI and a real `sluice up`: signed and retried
//! notifications shown by `runs show` and the API, `slow` runs against their
//! history, failures resolved by a retry, retention by `sluice gc` (and a
//! `gc` killed halfway) and by `sluice up` at startup, and `GET /metrics`
//! read by a Prometheus parser.

mod common;
#[path = "../../sluice-engine/tests/receivers/mod.rs"]
mod receivers;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use common::{Project, wait_until};
use hmac::{Hmac, KeyInit, Mac};
use jiff::{SignedDuration, Timestamp};
use receivers::{SmtpSink, WebhookReceiver};
use serde_json::{Value, json};
use sluice_core::ids::{BlockRunId, RunId, TryId};
use sluice_core::status::{BlockRunStatus, RunStatus};
use sluice_store::bulk::{HistoryArtifact, HistoryBlockRun, HistoryLoader, HistoryRun};
use sluice_store::{InvokedBy, NewRun, RunQuery, Store};

const TIMEOUT: Duration = Duration::from_secs(60);

/// A running `sluice up` on a free port, killed when dropped.
struct Server {
    child: Child,
    base: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    fn start(project: &Project, env: &[(&str, &str)]) -> Server {
        let mut command = project.command(&["up", "--listen", "127.0.0.1:0"]);
        command
            .envs(env.iter().copied())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        let mut child = command.spawn().expect("spawn sluice up");
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = BufReader::new(child.stderr.take().expect("stderr"));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while pipe.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                sink.lock().expect("lock").push_str(&line);
                line.clear();
            }
        });
        let mut base = String::new();
        wait_until("the server to say where it listens", TIMEOUT, || {
            let text = stderr.lock().expect("lock").clone();
            match text.find("http://") {
                Some(start) => {
                    base = text[start..]
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    true
                }
                None => false,
            }
        });
        Server {
            child,
            base,
            stderr,
        }
    }

    fn get(&self, path: &str) -> Value {
        let response = reqwest::blocking::get(format!("{}{path}", self.base)).expect("GET");
        assert!(response.status().is_success(), "GET {path}: {response:?}");
        response.json().expect("JSON")
    }

    fn text(&self, path: &str) -> String {
        reqwest::blocking::get(format!("{}{path}", self.base))
            .expect("GET")
            .text()
            .expect("text")
    }

    fn trigger(&self, pipeline: &str, variables: Value) -> String {
        let response = reqwest::blocking::Client::new()
            .post(format!("{}/api/pipelines/{pipeline}/runs", self.base))
            .json(&json!({ "variables": variables }))
            .send()
            .expect("POST");
        assert!(response.status().is_success(), "{response:?}");
        let body: Value = response.json().expect("JSON");
        body["pipeline_run"]["id"]
            .as_str()
            .expect("an id")
            .to_owned()
    }

    fn wait_for_status(&self, id: &str, wanted: &str) {
        wait_until(&format!("run {id} to be {wanted}"), TIMEOUT, || {
            self.get(&format!("/api/pipeline_runs/{id}"))["pipeline_run"]["status"] == wanted
        });
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("sluice up said:\n{}", self.stderr.lock().expect("lock"));
        }
    }
}

fn stdout(project: &Project, args: &[&str]) -> String {
    let output = project.sluice(args);
    assert!(
        output.status.success(),
        "sluice {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("UTF-8")
}

fn json_of(project: &Project, args: &[&str]) -> Value {
    serde_json::from_str(&stdout(project, args)).expect("JSON")
}

fn ids(runs: &[Value]) -> Vec<String> {
    runs.iter()
        .map(|run| run["id"].as_str().expect("an id").to_owned())
        .collect()
}

#[test]
fn notifications_are_signed_retried_and_shown_by_runs_show_and_the_api() {
    let hook = WebhookReceiver::start(&[500, 500]);
    let mail = SmtpSink::start();
    let key = b"a-signing-key-of-the-ops-team".to_vec();
    let secret = format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(&key)
    );
    let project = Project::new();
    project.pipeline(
        "report",
        &format!(
            "notify:\n  channels:\n    hook:\n      webhook: {}\n      secret_env: OPS_HOOK_SECRET\n    \
             mail:\n      smtp: {}\n      from: sluice@example.com\n      to: oncall@example.com\n  \
             on:\n    completed: [hook, mail]\nblocks:\n  only:\n    run: 'true'\n",
            hook.url,
            mail.url()
        ),
    );
    let server = Server::start(&project, &[("OPS_HOOK_SECRET", &secret)]);
    let id = server.trigger("report", json!({}));
    server.wait_for_status(&id, "completed");

    // Two refusals, then the third send is taken (10s and 20s of backoff).
    let requests = hook.wait_for(3, Duration::from_secs(90));
    assert_eq!(
        requests.iter().map(|r| r.status).collect::<Vec<_>>(),
        [500, 500, 200]
    );
    for request in &requests {
        let id = &request.headers["webhook-id"];
        let timestamp = &request.headers["webhook-timestamp"];
        let mut mac = <Hmac<sha2::Sha256> as KeyInit>::new_from_slice(&key).expect("a key");
        mac.update(format!("{id}.{timestamp}.").as_bytes());
        mac.update(&request.body);
        let expected = format!(
            "v1,{}",
            base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
        );
        assert_eq!(request.headers["webhook-signature"], expected);
        assert_eq!(request.json()["type"], "run.completed");
    }
    assert_eq!(mail.mails().len(), 1);

    let path = format!("/api/pipeline_runs/{id}");
    let mut notifications = Vec::new();
    wait_until("both deliveries to be final", TIMEOUT, || {
        notifications = server.get(&path)["notifications"]
            .as_array()
            .expect("notifications")
            .clone();
        notifications.len() == 2 && notifications.iter().all(|n| n["status"] == "delivered")
    });
    let by_channel: BTreeMap<&str, &Value> = notifications
        .iter()
        .map(|n| (n["channel"].as_str().expect("a channel"), n))
        .collect();
    let webhook = by_channel["hook"];
    assert_eq!(webhook["event"], "completed");
    assert_eq!(webhook["kind"], "webhook");
    assert_eq!(webhook["attempts"], 3);
    assert_eq!(webhook["max_attempts"], 5);
    let port = hook.url.split(':').nth(2).expect("a port");
    let port = port.split('/').next().expect("a port");
    assert_eq!(webhook["target"], format!("http://127.0.0.1:{port}/***"));
    let error = webhook["last_error"].as_str().expect("the last error");
    assert!(error.contains("500") && !error.contains("token"), "{error}");
    assert!(webhook["delivered_at"].is_string());
    let email = by_channel["mail"];
    assert_eq!(
        (email["kind"].clone(), email["attempts"].clone()),
        (json!("email"), json!(1))
    );
    assert_eq!(email["target"], mail.url());

    // `runs show` prints the same through the server as on the database.
    let embedded = json_of(&project, &["runs", "show", &id, "-o", "json"]);
    let remote = json_of(
        &project,
        &["runs", "show", &id, "-o", "json", "--server", &server.base],
    );
    assert_eq!(embedded["notifications"], remote["notifications"]);
    assert_eq!(embedded["notifications"], json!(notifications));
    let table = stdout(&project, &["runs", "show", &id, "--server", &server.base]);
    assert_eq!(table, stdout(&project, &["runs", "show", &id]));
    let section = table
        .split("\nnotifications\n")
        .nth(1)
        .expect("a notifications section");
    let hook_line = section
        .lines()
        .find(|line| line.contains(" hook "))
        .expect("the webhook's line");
    for part in ["completed", "webhook", "delivered", "3/5", "/***", "500"] {
        assert!(hook_line.contains(part), "{part} in {hook_line}");
    }
    assert!(!table.contains("s3cr3t"), "{table}");
}

#[test]
fn a_slow_run_is_flagged_against_its_history_and_listed() {
    let project = Project::new();
    project.pipeline(
        "etl",
        "drift:\n  runs: 10\n  factor: 1.5\n  min_runs: 3\nvariables:\n  pause: '0'\n\
         blocks:\n  extract:\n    run: sleep ${{ vars.pause }}\n  load:\n    needs: [extract]\n    \
         run: 'true'\n",
    );
    let mut history = Vec::new();
    for _ in 0..3 {
        let (code, run) = project.run("etl", &[]);
        assert_eq!(code, 0, "{run}");
        history.push(run["id"].as_str().expect("an id").to_owned());
    }
    assert!(project.list(&["--slow"]).is_empty());
    let (code, slow) = project.run("etl", &["-v", "pause=3"]);
    assert_eq!(code, 0, "{slow}");
    let slow = slow["id"].as_str().expect("an id").to_owned();

    assert_eq!(ids(&project.list(&["--slow"])), [slow.as_str()]);
    let details = project.show(&slow);
    assert_eq!(details["run"]["slow"], true);
    let baseline = &details["run"]["baseline"];
    assert_eq!(baseline["run"]["samples"], 3);
    assert_eq!(baseline["factor"], 1.5);
    assert!(baseline["run"]["p95_ms"].as_u64().expect("a p95") < 2_000);
    let blocks: Vec<&str> = baseline["blocks"]
        .as_object()
        .expect("blocks")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(blocks, ["extract", "load"]);

    let table = stdout(&project, &["runs", "show", &slow]);
    let line = |label: &str| {
        table
            .lines()
            .find(|line| line.starts_with(label))
            .unwrap_or_else(|| panic!("no {label} line in {table}"))
            .to_owned()
    };
    assert!(line("flags").contains("slow"), "{table}");
    let duration = line("duration");
    assert!(
        duration.contains("(baseline median ") && duration.contains("of 3 runs; slow above"),
        "{duration}"
    );
    let header = table
        .lines()
        .find(|line| line.trim_start().starts_with("BLOCK "))
        .expect("the block table");
    assert!(header.contains("DURATION  BASELINE"), "{header}");
    assert!(line("  extract").contains("median "), "{table}");

    // The first run had no history: no baseline, not slow.
    let first = project.show(&history[0]);
    assert!(first["run"]["baseline"].is_null());
    assert_eq!(first["run"]["slow"], false);
    let table = stdout(&project, &["runs", "show", &history[0]]);
    assert!(!table.contains("BASELINE"), "{table}");
}

#[test]
fn a_failure_is_unresolved_until_a_retry_completes_it() {
    let project = Project::new();
    project.pipeline(
        "load",
        "blocks:\n  check:\n    run: test -e \"$TEST_DIR/gate\"\n  publish:\n    needs: [check]\n    run: 'true'\n",
    );
    project.write("gate", "open");
    let (code, fine) = project.run("load", &[]);
    assert_eq!(code, 0, "{fine}");
    std::fs::remove_file(project.path().join("gate")).expect("close the gate");
    let (code, failed) = project.run("load", &[]);
    assert_eq!(code, 1, "{failed}");
    let failed = failed["id"].as_str().expect("an id").to_owned();

    assert_eq!(ids(&project.list(&["--unresolved"])), [failed.as_str()]);
    let before = project.show(&failed);
    assert!(before["run"]["resolved"].is_null());

    project.write("gate", "open");
    let retried = project.sluice(&["runs", "retry", &failed]);
    assert_eq!(retried.status.code(), Some(0), "{retried:?}");

    assert!(project.list(&["--unresolved"]).is_empty());
    let after = project.show(&failed);
    assert_eq!(after["run"]["status"], "completed");
    assert_eq!(after["run"]["resolved"]["run_id"], failed.as_str());
    assert_eq!(after["run"]["resolved"]["attempt"], 2);
    let table = stdout(&project, &["runs", "show", &failed]);
    let flags = table
        .lines()
        .find(|line| line.starts_with("flags"))
        .expect("flags");
    assert!(flags.contains("resolved"), "{table}");
    assert!(
        table
            .lines()
            .any(|line| line.starts_with("resolved") && line.contains("by attempt 2 at ")),
        "{table}"
    );
}

// Retention.

/// The runs and blobs a retention test starts with.
struct Ledger {
    /// Runs retention must delete, with their block runs' tries.
    expired: BTreeMap<String, Vec<String>>,
    /// Runs retention must keep.
    kept: BTreeSet<String>,
    /// Blobs referenced by kept runs.
    kept_blobs: BTreeSet<String>,
    /// Blobs only expired runs reference.
    expired_blobs: BTreeSet<String>,
}

const DAY: i64 = 86_400;

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
}

async fn open_store(project: &Project) -> Arc<dyn Store> {
    Arc::new(
        sluice_store::sqlite::SqliteStore::open(&project.path().join(".sluice/sluice.db"))
            .await
            .expect("the project's database"),
    )
}

/// One finished run created `age_seconds` ago, whose only block left an
/// artifact with `content`.
fn history_run(
    id: &str,
    pipeline: &str,
    version: &str,
    age_seconds: i64,
) -> (HistoryRun, HistoryBlockRun) {
    let created = Timestamp::now() - SignedDuration::from_secs(age_seconds);
    let finished = created + SignedDuration::from_secs(30);
    let block = HistoryBlockRun {
        id: BlockRunId(format!("{id}-b")),
        try_id: TryId(format!("{id}-t")),
        block: "only".to_owned(),
        status: BlockRunStatus::Completed,
        started_at: Some(created),
        finished_at: finished,
        exit_code: Some(0),
        error: None,
    };
    let run = HistoryRun {
        id: RunId(id.to_owned()),
        pipeline: pipeline.to_owned(),
        pipeline_version: version.to_owned(),
        status: RunStatus::Completed,
        priority: 0,
        invoked_by: InvokedBy {
            kind: "schedule".to_owned(),
            name: None,
            actor: None,
            parent_run_id: None,
        },
        tags: Vec::new(),
        variables: Default::default(),
        created_at: created,
        started_at: Some(created),
        finished_at: finished,
        error: None,
        blocks: vec![block.clone()],
    };
    (run, block)
}

const RETAINED: &str =
    "retention:\n  days: 30\n  keep_last: 2\nblocks:\n  only:\n    run: 'true'\n";
const KEEP_LAST: &str =
    "retention:\n  days: 30\n  keep_last: 3\nblocks:\n  only:\n    run: 'true'\n";

/// A project with `daily` (30 days, keep 2) and `weekly` (30 days, keep 3)
/// and a ledger of: `expired` old runs of `daily`, three recent ones, five
/// old runs of `weekly` (of which only the two newest are among its latest
/// three runs), an old run of `daily` that
/// never finished, and one real run each. Every loaded run has an artifact
/// blob; one blob is shared by an expired run and a kept one.
fn retention_project(expired: usize) -> (Project, Ledger) {
    let project = Project::new();
    project.pipeline("daily", RETAINED);
    project.pipeline("weekly", KEEP_LAST);
    let mut ledger = Ledger {
        expired: BTreeMap::new(),
        kept: BTreeSet::new(),
        kept_blobs: BTreeSet::new(),
        expired_blobs: BTreeSet::new(),
    };
    let mut versions = BTreeMap::new();
    for pipeline in ["daily", "weekly"] {
        let (code, run) = project.run(pipeline, &[]);
        assert_eq!(code, 0, "{run}");
        ledger
            .kept
            .insert(run["id"].as_str().expect("an id").to_owned());
        versions.insert(
            pipeline,
            run["pipeline_version"]
                .as_str()
                .expect("a version")
                .to_owned(),
        );
    }
    let blobs = sluice_store::blobs::BlobStore::new(project.path().join(".sluice/blobs"));
    let scratch = tempfile::tempdir().expect("a scratch directory");
    let rt = runtime();
    let mut runs = Vec::new();
    let mut artifacts = Vec::new();
    let mut add = |id: String, pipeline: &str, age: i64, content: String, keep: bool| {
        let (run, block) = history_run(&id, pipeline, &versions[pipeline], age);
        let file = scratch.path().join(&id);
        std::fs::write(&file, &content).expect("write an artifact");
        let blob = rt.block_on(blobs.put_file(&file)).expect("store a blob");
        if keep {
            ledger.kept.insert(id.clone());
            ledger.kept_blobs.insert(blob.sha256.clone());
        } else {
            ledger
                .expired
                .insert(id.clone(), vec![block.try_id.to_string()]);
            ledger.expired_blobs.insert(blob.sha256.clone());
        }
        artifacts.push(HistoryArtifact {
            run_id: run.id.clone(),
            block_run_id: block.id.clone(),
            try_id: block.try_id.clone(),
            name: "out.txt".to_owned(),
            size: blob.size,
            sha256: blob.sha256,
            created_at: run.finished_at,
        });
        runs.push(run);
    };
    for index in 0..expired {
        // The oldest first, so an interrupted pass has purged some.
        let age = 400 * DAY - i64::try_from(index).expect("an index") * 60;
        add(
            format!("old-{index:05}"),
            "daily",
            age,
            format!("old {index}"),
            false,
        );
    }
    for index in 0..3 {
        add(
            format!("recent-{index}"),
            "daily",
            5 * DAY + index,
            format!("recent {index}"),
            true,
        );
    }
    // Shared with `old-00000`: referenced by a kept run, so kept.
    add(
        "recent-shared".to_owned(),
        "daily",
        4 * DAY,
        "old 0".to_owned(),
        true,
    );
    for index in 0..5 {
        // The latest three of `weekly` are its real run and the two newest here.
        let keep = index >= 3;
        add(
            format!("weekly-{index}"),
            "weekly",
            100 * DAY - index * DAY,
            format!("weekly {index}"),
            keep,
        );
    }
    ledger
        .expired_blobs
        .retain(|blob| !ledger.kept_blobs.contains(blob));
    rt.block_on(async {
        let mut loader = HistoryLoader::sqlite(&project.path().join(".sluice/sluice.db"))
            .await
            .expect("a loader");
        loader.load(&runs).await.expect("load history");
        loader
            .load_artifacts(&artifacts)
            .await
            .expect("load artifacts");
        drop(loader);

        // A run created long ago that never finished is never deleted.
        let store = open_store(&project).await;
        store
            .create_run(NewRun {
                id: RunId("old-unfinished".to_owned()),
                pipeline: "daily".to_owned(),
                pipeline_version: versions["daily"].clone(),
                project_version: None,
                status: RunStatus::Initial,
                priority: 0,
                invoked_by: InvokedBy {
                    kind: "manual".to_owned(),
                    name: None,
                    actor: None,
                    parent_run_id: None,
                },
                tags: Vec::new(),
                variables: Default::default(),
                created_at: Timestamp::now() - SignedDuration::from_secs(500 * DAY),
                sla_at: None,
                idempotency_key: None,
                owner: None,
                block_concurrency: None,
                error: None,
                window: None,
                blocks: Vec::new(),
            })
            .await
            .expect("create an unfinished run");
    });
    ledger.kept.insert("old-unfinished".to_owned());
    (project, ledger)
}

/// The digests of the blobs on disk.
fn blobs_on_disk(project: &Project) -> BTreeSet<String> {
    let root = project.path().join(".sluice/blobs");
    let mut found = BTreeSet::new();
    for prefix in std::fs::read_dir(&root)
        .expect("the blob directory")
        .flatten()
    {
        let name = prefix.file_name().to_string_lossy().into_owned();
        if name.len() != 2 || !prefix.path().is_dir() {
            continue;
        }
        for file in std::fs::read_dir(prefix.path())
            .expect("a prefix")
            .flatten()
        {
            found.insert(format!("{name}{}", file.file_name().to_string_lossy()));
        }
    }
    found
}

/// Every run of the ledger as it now stands in the database: the ids of
/// all runs, and whether any row of an expired run is left.
fn check_purged(project: &Project, ledger: &Ledger) {
    runtime().block_on(async {
        let store = open_store(project).await;
        let mut all = BTreeSet::new();
        let mut cursor = None;
        loop {
            let page = store
                .list_runs(&RunQuery {
                    limit: 500,
                    cursor,
                    ..RunQuery::default()
                })
                .await
                .expect("list runs");
            all.extend(page.runs.iter().map(|run| run.id.to_string()));
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(all, ledger.kept, "the runs left");
        for (id, tries) in &ledger.expired {
            let run = RunId(id.clone());
            assert!(store.get_run(&run).await.unwrap().is_none(), "{id}");
            assert!(
                store.list_block_runs(&run, None).await.unwrap().is_empty(),
                "{id}"
            );
            assert!(store.list_run_tries(&run).await.unwrap().is_empty(), "{id}");
            assert!(store.list_artifacts(&run).await.unwrap().is_empty(), "{id}");
            assert!(store.list_attempts(&run).await.unwrap().is_empty(), "{id}");
            for attempt_try in tries {
                let chunks = store
                    .read_log(&TryId(attempt_try.clone()), None, 10)
                    .await
                    .unwrap();
                assert!(chunks.is_empty(), "{id}");
            }
        }
        for id in &ledger.kept {
            let run = RunId(id.clone());
            assert!(store.get_run(&run).await.unwrap().is_some(), "{id}");
            if id != "old-unfinished" {
                assert!(
                    !store.list_block_runs(&run, None).await.unwrap().is_empty(),
                    "{id}"
                );
            }
            // The loaded ones have their artifacts.
            if id.starts_with("recent-") || id.starts_with("weekly-") {
                assert!(
                    !store.list_artifacts(&run).await.unwrap().is_empty(),
                    "{id}"
                );
            }
        }
        for blob in &ledger.kept_blobs {
            assert!(store.blob_referenced(blob).await.unwrap(), "{blob}");
        }
    });
    let on_disk = blobs_on_disk(project);
    for blob in &ledger.kept_blobs {
        assert!(
            on_disk.contains(blob),
            "a kept run's blob {blob} was deleted"
        );
    }
    for blob in &ledger.expired_blobs {
        assert!(
            !on_disk.contains(blob),
            "the orphaned blob {blob} is still there"
        );
    }
}

#[test]
fn gc_deletes_exactly_the_expired_runs_and_their_blobs() {
    let (project, ledger) = retention_project(4);
    assert_eq!(ledger.expired.len(), 7);
    let before = blobs_on_disk(&project);

    // A dry run reports and deletes nothing.
    let report = json_of(
        &project,
        &["gc", "--dry-run", "--blob-grace", "0s", "-o", "json"],
    );
    assert_eq!(report["dry_run"], true);
    let reported: BTreeSet<String> = ids(report["runs"].as_array().expect("runs"))
        .into_iter()
        .collect();
    let expected: BTreeSet<String> = ledger.expired.keys().cloned().collect();
    assert_eq!(reported, expected);
    assert_eq!(report["blobs"], json!([]));
    assert_eq!(blobs_on_disk(&project), before);
    assert_eq!(
        project.list(&["--limit", "500"]).len(),
        ledger.kept.len() + ledger.expired.len()
    );

    let report = json_of(&project, &["gc", "--blob-grace", "0s", "-o", "json"]);
    assert_eq!(report["dry_run"], false);
    let deleted: BTreeSet<String> = ids(report["runs"].as_array().expect("runs"))
        .into_iter()
        .collect();
    assert_eq!(deleted, expected);
    let blobs: BTreeSet<String> = report["blobs"]
        .as_array()
        .expect("blobs")
        .iter()
        .map(|blob| blob.as_str().expect("a digest").to_owned())
        .collect();
    assert_eq!(blobs, ledger.expired_blobs);
    check_purged(&project, &ledger);

    // Each purge is audited; a second pass finds nothing to do.
    runtime().block_on(async {
        let store = open_store(&project).await;
        let audit = store.list_audit(100, None).await.expect("the audit");
        let purged: BTreeSet<String> = audit
            .iter()
            .filter(|event| event.action == "run.purge")
            .map(|event| event.target.clone())
            .collect();
        assert_eq!(purged, expected);
    });
    let report = json_of(&project, &["gc", "--blob-grace", "0s", "-o", "json"]);
    assert_eq!(report["runs"], json!([]));
    assert_eq!(report["blobs"], json!([]));
}

#[test]
fn gc_killed_halfway_leaves_nothing_dangling_after_the_next_pass() {
    let (project, ledger) = retention_project(3_000);
    let total = ledger.kept.len() + ledger.expired.len();
    let rt = runtime();
    let count = || {
        rt.block_on(async {
            let store = open_store(&project).await;
            store
                .count_runs_by_status(&RunQuery::default())
                .await
                .expect("count runs")
                .iter()
                .map(|(_, count)| *count as usize)
                .sum::<usize>()
        })
    };
    assert_eq!(count(), total);

    let mut gc = project.spawn(&["gc", "--blob-grace", "0s"]);
    wait_until("gc to delete some runs", TIMEOUT, || count() < total);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(i32::try_from(gc.id()).expect("a pid")),
        nix::sys::signal::Signal::SIGKILL,
    )
    .expect("SIGKILL gc");
    let status = gc.wait().expect("gc ends");
    assert_eq!(
        std::os::unix::process::ExitStatusExt::signal(&status),
        Some(9),
        "gc finished before it was killed; the test needs more expired runs"
    );
    let left = count();
    assert!(
        left > ledger.kept.len(),
        "the first pass was not interrupted"
    );

    let output = project.sluice(&["gc", "--blob-grace", "0s", "-o", "json"]);
    assert!(output.status.success(), "{output:?}");
    check_purged(&project, &ledger);
}

/// `sluice up` applies retention when it starts (then hourly): the expired
/// runs go with their rows, the kept ones stay, and each purge is audited
/// as retention's. Their blobs are younger than the server's grace period
/// (an hour), so they wait for a later pass.
#[test]
fn the_server_applies_retention_when_it_starts() {
    let (project, ledger) = retention_project(4);
    let server = Server::start(&project, &[]);
    let listed = || -> BTreeSet<String> {
        ids(server.get("/api/pipeline_runs?limit=500")["pipeline_runs"]
            .as_array()
            .expect("runs"))
        .into_iter()
        .collect()
    };
    wait_until("the server to purge the expired runs", TIMEOUT, || {
        listed().len() == ledger.kept.len()
    });
    assert_eq!(listed(), ledger.kept);
    let audit = server.get("/api/audit?limit=100");
    let purged: BTreeSet<String> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|event| event["action"] == "run.purge")
        .map(|event| {
            assert_eq!(event["actor"], "sluice:retention", "{event}");
            event["target"].as_str().expect("a target").to_owned()
        })
        .collect();
    let expected: BTreeSet<String> = ledger.expired.keys().cloned().collect();
    assert_eq!(purged, expected);
    let on_disk = blobs_on_disk(&project);
    assert!(
        ledger
            .expired_blobs
            .iter()
            .all(|blob| on_disk.contains(blob)),
        "a blob younger than the grace period was deleted"
    );
}

#[test]
fn metrics_are_prometheus_text_with_bounded_labels() {
    let project = Project::new();
    project.pipeline(
        "etl",
        "variables:\n  fail: 'no'\nblocks:\n  extract:\n    run: test ${{ vars.fail }} = no\n",
    );
    let server = Server::start(&project, &[]);
    let mut runs = Vec::new();
    for fail in ["no", "no", "yes"] {
        let id = server.trigger("etl", json!({ "fail": fail }));
        let wanted = if fail == "no" { "completed" } else { "failed" };
        server.wait_for_status(&id, wanted);
        runs.push(id);
    }

    // The first scrape is itself timed, under the route `/metrics`.
    server.text("/metrics");
    let text = server.text("/metrics");
    // `prometheus-parse` skips a sample whose label value holds a `}` (such
    // as the route `/api/pipeline_runs/{id}`), so the API latency is read
    // for `/metrics`, and the run ids are looked for in the text as well.
    let lines = text.lines().map(|line| Ok(line.to_owned()));
    let scrape = prometheus_parse::Scrape::parse(lines).expect("the Prometheus text format");
    let value = |name: &str, labels: &[(&str, &str)]| {
        scrape
            .samples
            .iter()
            .find(|sample| {
                sample.metric == name
                    && labels
                        .iter()
                        .all(|(key, value)| sample.labels.get(key) == Some(*value))
            })
            .map(|sample| sample.value.clone())
    };
    let gauge = |labels: &[(&str, &str)]| match value("sluice_runs", labels) {
        Some(prometheus_parse::Value::Gauge(value)) => value,
        other => panic!("sluice_runs {labels:?}: {other:?}\n{text}"),
    };
    assert_eq!(gauge(&[("pipeline", "etl"), ("status", "completed")]), 2.0);
    assert_eq!(gauge(&[("pipeline", "etl"), ("status", "failed")]), 1.0);

    match value(
        "sluice_block_run_duration_seconds",
        &[("pipeline", "etl"), ("status", "completed")],
    ) {
        Some(prometheus_parse::Value::Histogram(buckets)) => {
            let total = buckets.iter().map(|b| b.count).fold(0.0, f64::max);
            assert_eq!(total, 2.0, "{buckets:?}");
        }
        other => panic!("no block-run histogram: {other:?}\n{text}"),
    }
    match value(
        "sluice_api_request_duration_seconds",
        &[("route", "/metrics"), ("method", "GET"), ("status", "2xx")],
    ) {
        Some(prometheus_parse::Value::Histogram(buckets)) => {
            let total = buckets.iter().map(|b| b.count).fold(0.0, f64::max);
            assert_eq!(total, 1.0, "{buckets:?}");
            assert!(buckets.iter().any(|b| b.less_than.is_infinite()));
        }
        other => panic!("no API latency histogram: {other:?}\n{text}"),
    }
    for family in [
        "sluice_queue_wait_seconds",
        "sluice_block_run_duration_seconds",
    ] {
        assert!(
            scrape.docs.contains_key(family),
            "no HELP for {family}\n{text}"
        );
    }
    assert!(
        text.contains("route=\"/api/pipelines/{name}/runs\",method=\"POST\",status=\"2xx\""),
        "{text}"
    );
    // No label value is a run id (nor holds one, as a route path would).
    for run in &runs {
        assert!(!text.contains(run.as_str()), "{run} in\n{text}");
    }
    for sample in &scrape.samples {
        for (key, label) in sample.labels.iter() {
            for run in &runs {
                assert!(
                    !label.contains(run.as_str()),
                    "{}{{{key}={label}}}",
                    sample.metric
                );
            }
        }
    }
}
