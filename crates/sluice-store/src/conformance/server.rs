//! Conformance cases for what a server needs: the readiness probe, run
//! counts per status, artifact search, API tokens and idempotency keys.

use std::sync::Arc;

use sluice_core::status::{BlockRunStatus, RunStatus};

use super::fixtures::{at, block_id, claim_request, create, move_run, new_run, queue, success};
use crate::{ArtifactQuery, Error, NewApiToken, NewArtifact, RunQuery, Store};

/// The probe answers; counts per status follow the listing's filters.
pub async fn run_counts(store: Arc<dyn Store>) {
    store.ping().await.unwrap();
    for (index, pipeline) in ["etl", "etl", "etl", "report"].into_iter().enumerate() {
        let mut run = new_run(&format!("run-{index}"), pipeline, &["a"]);
        run.created_at = at(i64::try_from(index).unwrap() * 10);
        run.tags = vec![format!("tag-{pipeline}")];
        create(&store, run).await;
    }
    let id = sluice_core::ids::RunId::from("run-0");
    move_run(&store, &id, RunStatus::Initial, RunStatus::Cancelled).await;

    let all = store
        .count_runs_by_status(&RunQuery::default())
        .await
        .unwrap();
    assert_eq!(
        all,
        vec![(RunStatus::Cancelled, 1), (RunStatus::Initial, 3)]
    );
    let etl = RunQuery {
        pipelines: vec!["etl".to_owned()],
        created_after: Some(at(5)),
        ..RunQuery::default()
    };
    assert_eq!(
        store.count_runs_by_status(&etl).await.unwrap(),
        vec![(RunStatus::Initial, 2)]
    );
    let tagged = RunQuery {
        tag: Some("tag-report".to_owned()),
        statuses: vec![RunStatus::Initial, RunStatus::Failed],
        ..RunQuery::default()
    };
    assert_eq!(
        store.count_runs_by_status(&tagged).await.unwrap(),
        vec![(RunStatus::Initial, 1)]
    );
}

/// Artifacts are found by run, pipeline and name, newest first, and by id.
pub async fn artifact_search(store: Arc<dyn Store>) {
    for (run, pipeline, name) in [
        ("run-1", "etl", "report.html"),
        ("run-2", "other", "plot.png"),
    ] {
        let id = create(&store, new_run(run, pipeline, &["a"])).await;
        move_run(&store, &id, RunStatus::Initial, RunStatus::Running).await;
        let block_run = block_id(run, "a");
        queue(&store, &block_run, at(1)).await;
        let claim = store
            .claim(&claim_request("agent-1", at(2)))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(claim.block_run.status, BlockRunStatus::Running);
        let done = crate::TryCompletion {
            artifacts: vec![NewArtifact {
                name: name.to_owned(),
                size: 5,
                sha256: "ab".repeat(32),
            }],
            ..success(&claim, at(3))
        };
        store.complete_try(&done).await.unwrap();
    }
    let everything = store
        .search_artifacts(&ArtifactQuery {
            limit: 10,
            ..ArtifactQuery::default()
        })
        .await
        .unwrap();
    let names: Vec<&str> = everything.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["plot.png", "report.html"]);
    let by_pipeline = store
        .search_artifacts(&ArtifactQuery {
            pipeline: Some("etl".to_owned()),
            limit: 10,
            ..ArtifactQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_pipeline.len(), 1);
    assert_eq!(by_pipeline[0].run_id.as_str(), "run-1");
    let by_name = store
        .search_artifacts(&ArtifactQuery {
            name: Some("plot.png".to_owned()),
            run: Some("run-2".into()),
            limit: 10,
            ..ArtifactQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(by_name.len(), 1);
    let page = store
        .search_artifacts(&ArtifactQuery {
            before_id: Some(everything[0].id),
            limit: 10,
            ..ArtifactQuery::default()
        })
        .await
        .unwrap();
    assert_eq!(page, everything[1..]);
    assert_eq!(
        store.get_artifact(everything[1].id).await.unwrap().as_ref(),
        Some(&everything[1])
    );
    assert_eq!(store.get_artifact(999_999).await.unwrap(), None);
}

/// Tokens are unique by name and hash, found by hash, revoked once.
pub async fn api_tokens(store: Arc<dyn Store>) {
    let token = NewApiToken {
        name: "ci".to_owned(),
        role: "operator".to_owned(),
        sha256: "aa".repeat(32),
        created_at: at(0),
        created_by: Some("alice".to_owned()),
    };
    store.create_api_token(&token).await.unwrap();
    let again = store.create_api_token(&token).await;
    assert!(matches!(again, Err(Error::Conflict(_))), "{again:?}");

    let found = store
        .find_api_token(&"aa".repeat(32))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (found.name.as_str(), found.role.as_str()),
        ("ci", "operator")
    );
    assert_eq!(found.revoked_at, None);
    assert_eq!(store.find_api_token(&"bb".repeat(32)).await.unwrap(), None);

    assert!(store.revoke_api_token("ci", at(5)).await.unwrap());
    assert!(!store.revoke_api_token("ci", at(6)).await.unwrap());
    let missing = store.revoke_api_token("nobody", at(6)).await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
    let listed = store.list_api_tokens(10).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].revoked_at, Some(at(5)));
}

/// The first request's hash stays on record for a key.
pub async fn idempotency_keys(store: Arc<dyn Store>) {
    let first = store
        .reserve_idempotency_key("etl", "key-1", "hash-a", at(0))
        .await
        .unwrap();
    assert_eq!(first, "hash-a");
    let replay = store
        .reserve_idempotency_key("etl", "key-1", "hash-b", at(1))
        .await
        .unwrap();
    assert_eq!(replay, "hash-a");
    let other_pipeline = store
        .reserve_idempotency_key("report", "key-1", "hash-b", at(1))
        .await
        .unwrap();
    assert_eq!(other_pipeline, "hash-b");
}
