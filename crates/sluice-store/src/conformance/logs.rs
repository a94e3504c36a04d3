//! Conformance cases for log chunks, the audit log and executors.

use std::sync::Arc;

use sluice_core::ids::ExecutorId;

use super::fixtures::{at, block_id, claim_request, labels, new_run, queue, running_run};
use crate::{Error, ExecutorRecord, LogChunk, LogLine, NewAuditEvent, Store};

/// Chunks are stored once per number, read back in order, and paged by
/// `after_seq`.
pub async fn log_chunks(store: Arc<dyn Store>) {
    let id = running_run(&store, new_run("run-1", "etl", &["a"])).await;
    queue(&store, &block_id(id.as_str(), "a"), at(1)).await;
    let claim = store
        .claim(&claim_request("agent-1", at(2)))
        .await
        .unwrap()
        .unwrap();
    let try_id = claim.attempt_try.id.clone();
    let epoch = claim.attempt_try.lease_epoch;
    let chunk = |seq: u64, text: &str| LogChunk {
        try_id: try_id.clone(),
        seq,
        lines: vec![
            LogLine {
                at: at(seq as i64),
                stream: "stdout".to_owned(),
                text: text.to_owned(),
            },
            LogLine {
                at: at(seq as i64),
                stream: "stderr".to_owned(),
                text: format!("{text} (stderr)"),
            },
        ],
    };

    for seq in [3, 0, 4, 1, 2] {
        store
            .append_log_chunk(&chunk(seq, &format!("chunk {seq}")), epoch)
            .await
            .unwrap();
    }
    // A second upload of a stored number keeps the first one.
    store
        .append_log_chunk(&chunk(2, "replaced"), epoch)
        .await
        .unwrap();

    let all = store.read_log(&try_id, None, 100).await.unwrap();
    let expected: Vec<LogChunk> = (0..5)
        .map(|seq| chunk(seq, &format!("chunk {seq}")))
        .collect();
    assert_eq!(all, expected);

    let mut pages = Vec::new();
    let mut after = None;
    loop {
        let page = store.read_log(&try_id, after, 2).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.seq);
        pages.push(page.iter().map(|chunk| chunk.seq).collect::<Vec<_>>());
    }
    assert_eq!(pages, [vec![0, 1], vec![2, 3], vec![4]]);
    assert!(
        store
            .read_log(&try_id, Some(u64::MAX), 10)
            .await
            .unwrap()
            .is_empty()
    );

    // A process may print any character, NUL included; it comes back as it
    // was printed.
    let odd = chunk(5, "nul \u{0} tab \t quote \" emoji \u{1f600}");
    store.append_log_chunk(&odd, epoch).await.unwrap();
    assert_eq!(store.read_log(&try_id, Some(4), 10).await.unwrap(), [odd]);
}

/// The audit log reads newest first, paged by id.
pub async fn audit_paging(store: Arc<dyn Store>) {
    for index in 0..25 {
        store
            .append_audit(&NewAuditEvent {
                at: at(index),
                actor: "alice".to_owned(),
                action: "run.cancel".to_owned(),
                target: format!("run-{index}"),
                details: serde_json::json!({ "index": index }),
            })
            .await
            .unwrap();
    }
    let mut targets = Vec::new();
    let mut before = None;
    let mut pages = 0;
    loop {
        let page = store.list_audit(10, before).await.unwrap();
        let Some(last) = page.last() else { break };
        assert!(page.len() <= 10);
        assert!(page.windows(2).all(|pair| pair[0].id > pair[1].id));
        before = Some(last.id);
        targets.extend(page.iter().map(|event| event.target.clone()));
        pages += 1;
    }
    assert_eq!(pages, 3);
    let expected: Vec<String> = (0..25).rev().map(|index| format!("run-{index}")).collect();
    assert_eq!(targets, expected);

    let newest = &store.list_audit(1, None).await.unwrap()[0];
    assert_eq!(newest.at, at(24));
    assert_eq!(newest.actor, "alice");
    assert_eq!(newest.action, "run.cancel");
    assert_eq!(newest.details, serde_json::json!({ "index": 24 }));
}

/// Executors register (again), heartbeat and leave.
pub async fn executors(store: Arc<dyn Store>) {
    let mut executor = ExecutorRecord {
        id: ExecutorId::from("agent-1"),
        kind: "agent".to_owned(),
        host: "box-1".to_owned(),
        pid: 4242,
        started_at: at(0),
        heartbeat_at: at(0),
        labels: labels(&[("gpu", "yes")]),
    };
    store.register_executor(&executor).await.unwrap();
    assert_eq!(
        store.get_executor(&executor.id).await.unwrap().as_ref(),
        Some(&executor)
    );

    store
        .heartbeat_executor(&executor.id, at(15))
        .await
        .unwrap();
    let stored = store.get_executor(&executor.id).await.unwrap().unwrap();
    assert_eq!(stored.heartbeat_at, at(15));

    // A restarted agent registers again under its id.
    executor.pid = 4343;
    executor.started_at = at(20);
    executor.heartbeat_at = at(20);
    store.register_executor(&executor).await.unwrap();
    assert_eq!(
        store.get_executor(&executor.id).await.unwrap().as_ref(),
        Some(&executor)
    );

    store.remove_executor(&executor.id).await.unwrap();
    store.remove_executor(&executor.id).await.unwrap();
    assert_eq!(store.get_executor(&executor.id).await.unwrap(), None);
    let missing = store.heartbeat_executor(&executor.id, at(30)).await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
}
