//! Conformance cases for what a server needs: the readiness probe, run
//! counts per status, artifact search, API tokens and idempotency keys.

use std::sync::Arc;

use sluice_core::status::{BlockRunStatus, RunStatus};

use super::fixtures::{at, block_id, claim_request, create, move_run, new_run, queue, success};
use crate::{ArtifactQuery, Error, NewApiToken, NewArtifact, RunQuery, RunTransition, Store};

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

/// The first value of a server secret stays on record; names are apart.
pub async fn server_secrets(store: Arc<dyn Store>) {
    let first = store
        .reserve_server_secret("session-key", "aaaa", at(0))
        .await
        .unwrap();
    assert_eq!(first, "aaaa");
    let second = store
        .reserve_server_secret("session-key", "bbbb", at(1))
        .await
        .unwrap();
    assert_eq!(second, "aaaa", "a second server must get the first value");
    let other = store
        .reserve_server_secret("other-key", "cccc", at(1))
        .await
        .unwrap();
    assert_eq!(other, "cccc");
}

/// Listings filter by start and finish windows and search id, pipeline,
/// error and non-secret variable values, never secret ones; counts follow.
pub async fn run_search_and_windows(store: Arc<dyn Store>) {
    use sluice_core::vars::{ResolvedVariable, ResolvedVariables, VariableLayer};

    let variables = |region: &str, secret: &str| {
        let mut values = std::collections::BTreeMap::new();
        values.insert(
            "region".to_owned(),
            ResolvedVariable {
                value: serde_json::json!(region),
                layer: VariableLayer::Run,
                secret: false,
            },
        );
        values.insert(
            "password".to_owned(),
            ResolvedVariable {
                value: serde_json::json!(secret),
                layer: VariableLayer::Default,
                secret: true,
            },
        );
        ResolvedVariables(values)
    };
    let mut first = new_run("run-alpha", "etl", &["a"]);
    first.variables = variables("Emea-North", "hunter2");
    let mut second = new_run("run-beta", "report", &["a"]);
    second.variables = variables("apac", "emea-secret");
    second.created_at = at(1);
    let first = create(&store, first).await;
    let second = create(&store, second).await;

    // `run-alpha` starts at 10 and fails at 20 with an error; `run-beta`
    // starts at 30 and is still running.
    let step = |id: &sluice_core::ids::RunId, from, to, when, error: Option<&str>| RunTransition {
        id: id.clone(),
        attempt: 1,
        from,
        to,
        at: at(when),
        error: error.map(str::to_owned),
        timeout_at: None,
        timed_out: false,
    };
    for transition in [
        step(&first, RunStatus::Initial, RunStatus::Running, 10, None),
        step(
            &first,
            RunStatus::Running,
            RunStatus::Failed,
            20,
            Some("block `load` failed: Disk Full"),
        ),
        step(&second, RunStatus::Initial, RunStatus::Running, 30, None),
    ] {
        assert!(store.transition_run(&transition).await.unwrap());
    }

    let ids = |page: crate::RunPage| -> Vec<String> {
        let mut ids: Vec<String> = page.runs.into_iter().map(|run| run.id.0).collect();
        ids.sort();
        ids
    };
    let search = |text: &str| RunQuery {
        text: Some(text.to_owned()),
        limit: 10,
        ..RunQuery::default()
    };
    for (text, expected) in [
        ("ALPHA", vec!["run-alpha"]),
        ("report", vec!["run-beta"]),
        ("disk full", vec!["run-alpha"]),
        ("emea", vec!["run-alpha"]),
        ("hunter2", vec![]),
        ("secret", vec![]),
        ("run-", vec!["run-alpha", "run-beta"]),
    ] {
        let found = ids(store.list_runs(&search(text)).await.unwrap());
        assert_eq!(found, expected, "searching `{text}`");
    }
    let counted = store.count_runs_by_status(&search("emea")).await.unwrap();
    assert_eq!(counted, vec![(RunStatus::Failed, 1)]);

    let window = |query: RunQuery| RunQuery { limit: 10, ..query };
    let started_late = window(RunQuery {
        started_after: Some(at(15)),
        ..RunQuery::default()
    });
    assert_eq!(
        ids(store.list_runs(&started_late).await.unwrap()),
        vec!["run-beta"]
    );
    let started_early = window(RunQuery {
        started_before: Some(at(15)),
        ..RunQuery::default()
    });
    assert_eq!(
        ids(store.list_runs(&started_early).await.unwrap()),
        vec!["run-alpha"]
    );
    let finished = window(RunQuery {
        finished_after: Some(at(20)),
        finished_before: Some(at(21)),
        ..RunQuery::default()
    });
    assert_eq!(
        ids(store.list_runs(&finished).await.unwrap()),
        vec!["run-alpha"]
    );
    let unfinished = window(RunQuery {
        finished_before: Some(at(20)),
        ..RunQuery::default()
    });
    assert!(store.list_runs(&unfinished).await.unwrap().runs.is_empty());
    assert_eq!(
        store.count_runs_by_status(&started_late).await.unwrap(),
        vec![(RunStatus::Running, 1)]
    );
}
