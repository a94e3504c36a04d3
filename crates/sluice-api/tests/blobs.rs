//! The server's engine with its blobs in an S3-compatible object store (moto
//! on loopback): a run's artifact and data output become objects in the
//! bucket, content-addressed under the prefix, and the API serves them back
//! with their SHA-256 verified. `sluice up --blobs s3://...` opens the same
//! store.

mod common;

use axum::http::StatusCode;
use serde_json::json;
use sluice_store::conformance::s3_server::S3TestServer;

const ETL: &str = r#"
blocks:
  extract:
    run: |
      echo "rows=3" >> "$SLUICE_OUTPUT"
      printf 'id,name\n1,a\n2,b\n3,c\n' > "$SLUICE_DATA"
      echo "summary of the load" > "$SLUICE_ARTIFACTS/summary.txt"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn artifacts_and_data_outputs_live_in_the_bucket_and_are_served_verified() {
    let s3 = tokio::task::spawn_blocking(S3TestServer::start)
        .await
        .expect("moto starts");
    s3.create_bucket("sluice-blobs");
    let blobs = s3.blob_store("sluice-blobs", "ledger");
    blobs.check_access().await.expect("the bucket is reachable");
    let world = common::world_with_blobs(&[("etl", ETL)], false, Some(blobs)).await;

    let created = world.post("/api/pipelines/etl/runs", json!({})).await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.text());
    let run_id = created.json()["pipeline_run"]["id"]
        .as_str()
        .expect("an id")
        .to_owned();
    let run = world.finish(&run_id).await;
    assert_eq!(run.status.as_str(), "completed", "{run:?}");

    let artifacts = world
        .get(&format!("/api/artifacts?run={run_id}"))
        .await
        .json();
    let artifact = &artifacts["artifacts"][0];
    assert_eq!(artifact["name"], "summary.txt");
    let sha256 = artifact["sha256"].as_str().expect("a digest").to_owned();
    let download = world
        .get(artifact["download_url"].as_str().expect("a download url"))
        .await;
    assert_eq!(download.status, StatusCode::OK, "{}", download.text());
    assert_eq!(download.body, b"summary of the load\n");
    let key = format!("ledger/{}/{}", &sha256[..2], &sha256[2..]);
    let object = tokio::task::block_in_place(|| s3.object("sluice-blobs", &key));
    assert_eq!(
        object.as_deref(),
        Some(&b"summary of the load\n"[..]),
        "the artifact is the object {key} in the bucket"
    );

    let details = world
        .get(&format!("/api/pipeline_runs/{run_id}"))
        .await
        .json();
    let extract = details["attempts"][0]["block_runs"][0]["id"]
        .as_str()
        .expect("a block run")
        .to_owned();
    let outputs = world
        .get(&format!("/api/block_runs/{extract}/outputs?sample_count=2"))
        .await
        .json();
    assert_eq!(outputs["outputs"]["rows"], "3", "{outputs:#}");
    assert_eq!(outputs["data"]["rows"], json!([["1", "a"], ["2", "b"]]));
    assert!(
        !world.dir.path().join(".sluice/blobs").exists(),
        "nothing was written to the project's blob directory"
    );
}
