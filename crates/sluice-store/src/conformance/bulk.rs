//! Bulk-loaded history reads back through the store exactly as history the
//! store wrote itself: runs, attempts, tags, block runs, tries and
//! artifacts.

use std::sync::Arc;

use sluice_core::ids::{BlockRunId, RunId, TryId};
use sluice_core::status::{BlockRunStatus, RunStatus};
use sluice_core::vars::ResolvedVariables;

use super::fixtures::at;
use crate::bulk::{HistoryArtifact, HistoryBlockRun, HistoryLoader, HistoryRun};
use crate::{Error, InvokedBy, RunQuery, Store, TryStatus};

fn history_run(index: i64, pipeline: &str, status: RunStatus) -> HistoryRun {
    let id = format!("hist-{index}");
    let block_status = match status {
        RunStatus::Completed => BlockRunStatus::Completed,
        RunStatus::Cancelled => BlockRunStatus::Cancelled,
        _ => BlockRunStatus::Failed,
    };
    HistoryRun {
        id: RunId(id.clone()),
        pipeline: pipeline.to_owned(),
        pipeline_version: "0".repeat(64),
        status,
        priority: 0,
        invoked_by: InvokedBy {
            kind: "schedule".to_owned(),
            name: Some("nightly".to_owned()),
            actor: None,
            parent_run_id: None,
        },
        tags: vec![format!("team-{pipeline}")],
        variables: ResolvedVariables::default(),
        created_at: at(index * 60),
        started_at: Some(at(index * 60 + 1)),
        finished_at: at(index * 60 + 30),
        error: (status == RunStatus::Failed).then(|| "block `load` failed".to_owned()),
        blocks: vec![
            HistoryBlockRun {
                id: BlockRunId(format!("{id}.extract")),
                try_id: TryId(format!("{id}.extract.1")),
                block: "extract".to_owned(),
                status: BlockRunStatus::Completed,
                started_at: Some(at(index * 60 + 1)),
                finished_at: at(index * 60 + 10),
                exit_code: Some(0),
                error: None,
            },
            HistoryBlockRun {
                id: BlockRunId(format!("{id}.load")),
                try_id: TryId(format!("{id}.load.1")),
                block: "load".to_owned(),
                status: block_status,
                started_at: Some(at(index * 60 + 10)),
                finished_at: at(index * 60 + 30),
                exit_code: Some(i32::from(status != RunStatus::Completed)),
                error: None,
            },
        ],
    }
}

/// Loads runs in two batches and reads them back through every listing a
/// history page uses; refuses unfinished runs without loading anything.
pub async fn bulk_history(store: Arc<dyn Store>, mut loader: HistoryLoader) {
    let first: Vec<HistoryRun> = (0..3)
        .map(|index| history_run(index, "etl", RunStatus::Completed))
        .collect();
    let mut second = vec![
        history_run(3, "etl", RunStatus::Failed),
        history_run(4, "report", RunStatus::Cancelled),
    ];
    second[1].blocks[1].started_at = None;
    second[1].blocks[1].exit_code = None;
    loader.load(&first).await.unwrap();
    loader.load(&second).await.unwrap();

    let run = store
        .get_run(&RunId::from("hist-3"))
        .await
        .unwrap()
        .expect("the loaded run");
    assert_eq!(run.pipeline, "etl");
    assert_eq!(run.status, RunStatus::Failed);
    assert_eq!(run.attempt, 1);
    assert_eq!(run.invoked_by.kind, "schedule");
    assert_eq!(run.invoked_by.name.as_deref(), Some("nightly"));
    assert_eq!(run.tags, vec!["team-etl".to_owned()]);
    assert_eq!(run.created_at, at(180));
    assert_eq!(run.started_at, Some(at(181)));
    assert_eq!(run.finished_at, Some(at(210)));
    assert_eq!(run.error.as_deref(), Some("block `load` failed"));
    let attempts = store.list_attempts(&run.id).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].status, RunStatus::Failed);

    let blocks = store.list_block_runs(&run.id, None).await.unwrap();
    let names: Vec<_> = blocks.iter().map(|block| block.block.as_str()).collect();
    assert_eq!(names, ["extract", "load"]);
    assert_eq!(blocks[1].status, BlockRunStatus::Failed);
    assert_eq!(blocks[1].tries, 1);
    assert_eq!(blocks[1].exit_code, Some(1));
    assert_eq!(blocks[1].started_at, Some(at(190)));
    let tries = store.list_run_tries(&run.id).await.unwrap();
    assert_eq!(tries.len(), 2);
    assert_eq!(tries[1].status, TryStatus::Failed);
    assert_eq!(tries[1].finished_at, Some(at(210)));

    // Artifacts of loaded tries read back, and reference their blobs.
    let digest = "ab".repeat(32);
    assert!(!store.blob_referenced(&digest).await.unwrap());
    loader
        .load_artifacts(&[HistoryArtifact {
            run_id: run.id.clone(),
            block_run_id: blocks[0].id.clone(),
            try_id: tries[0].id.clone(),
            name: "report.csv".to_owned(),
            size: 42,
            sha256: digest.clone(),
            created_at: at(190),
        }])
        .await
        .unwrap();
    let artifacts = store.list_artifacts(&run.id).await.unwrap();
    assert_eq!(artifacts.len(), 1);
    assert_eq!(artifacts[0].name, "report.csv");
    assert_eq!(artifacts[0].size, 42);
    assert_eq!(artifacts[0].try_id, tries[0].id);
    assert_eq!(artifacts[0].created_at, at(190));
    assert!(store.blob_referenced(&digest).await.unwrap());

    // A block run that never started has no try.
    let cancelled = RunId::from("hist-4");
    let blocks = store.list_block_runs(&cancelled, None).await.unwrap();
    assert_eq!(blocks[1].status, BlockRunStatus::Cancelled);
    assert_eq!(blocks[1].tries, 0);
    assert_eq!(store.list_run_tries(&cancelled).await.unwrap().len(), 1);

    let page = store
        .list_runs(&RunQuery {
            pipelines: vec!["etl".to_owned()],
            statuses: vec![RunStatus::Completed],
            created_after: Some(at(60)),
            limit: 10,
            ..RunQuery::default()
        })
        .await
        .unwrap();
    let ids: Vec<_> = page.runs.iter().map(|run| run.id.as_str()).collect();
    assert_eq!(ids, ["hist-2", "hist-1"]);
    let tagged = store
        .list_runs(&RunQuery {
            tag: Some("team-report".to_owned()),
            limit: 10,
            ..RunQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(tagged.runs.len(), 1);
    assert_eq!(tagged.runs[0].id.as_str(), "hist-4");
    // Loaded runs are found by the text search like created ones.
    let searched = store
        .list_runs(&RunQuery {
            text: Some("HIST-4".to_owned()),
            limit: 10,
            ..RunQuery::default()
        })
        .await
        .unwrap();
    let ids: Vec<_> = searched.runs.iter().map(|run| run.id.as_str()).collect();
    assert_eq!(ids, ["hist-4"]);
    assert_eq!(
        store
            .count_runs_by_status(&RunQuery::default())
            .await
            .unwrap(),
        vec![
            (RunStatus::Cancelled, 1),
            (RunStatus::Completed, 3),
            (RunStatus::Failed, 1)
        ]
    );

    // Unfinished history is refused, and nothing of its batch is loaded.
    let refused = vec![
        history_run(5, "etl", RunStatus::Completed),
        history_run(6, "etl", RunStatus::Running),
    ];
    match loader.load(&refused).await {
        Err(Error::Conflict(message)) => assert!(message.contains("hist-6"), "{message}"),
        other => panic!("an unfinished run was not refused: {other:?}"),
    }
    assert!(
        store
            .get_run(&RunId::from("hist-5"))
            .await
            .unwrap()
            .is_none()
    );
}
