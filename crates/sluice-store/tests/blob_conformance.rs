//! Runs the blob store conformance cases against both backends: a local
//! directory, and a bucket of a real S3-compatible server (moto, started on
//! loopback by each test; required, see `conformance::s3_server`).

use sluice_store::blobs::BlobStore;
use sluice_store::conformance::blobs as cases;
use sluice_store::conformance::s3_server::S3TestServer;

macro_rules! blob_cases {
    ($($case:ident),* $(,)?) => {
        mod local {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let dir = tempfile::tempdir().unwrap();
                    let blobs = BlobStore::new(dir.path().join("blobs"));
                    let scratch = dir.path().join("scratch");
                    std::fs::create_dir(&scratch).unwrap();
                    cases::$case(blobs, &scratch).await;
                }
            )*
        }

        mod s3 {
            use super::*;
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $case() {
                    let server = tokio::task::spawn_blocking(S3TestServer::start).await.unwrap();
                    server.create_bucket("sluice-blobs");
                    let blobs = server.blob_store("sluice-blobs", "team/blobs");
                    blobs.check_access().await.unwrap();
                    let scratch = tempfile::tempdir().unwrap();
                    cases::$case(blobs, scratch.path()).await;
                }
            )*
        }
    };
}

blob_cases!(
    blob_put_read_delete,
    blob_mismatch_refused,
    blob_corrupt_refused,
    blob_not_found,
    blob_large_streaming,
);

/// The object store holds a blob under `prefix/ab/cdef…`, with its content.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_keys_are_content_addressed_under_the_prefix() {
    let server = tokio::task::spawn_blocking(S3TestServer::start)
        .await
        .unwrap();
    server.create_bucket("layout");
    let blobs = server.blob_store("layout", "some/prefix");
    assert_eq!(blobs.location(), "s3://layout/some/prefix");
    let scratch = tempfile::tempdir().unwrap();
    let file = scratch.path().join("hello.txt");
    std::fs::write(&file, b"hello").unwrap();
    let blob = blobs.put_file(&file).await.unwrap();

    let key = format!("some/prefix/{}/{}", &blob.sha256[..2], &blob.sha256[2..]);
    assert_eq!(
        blobs.path_of(&blob.sha256).unwrap().to_str(),
        Some(key.as_str())
    );
    assert_eq!(
        server.object("layout", &key).as_deref(),
        Some(&b"hello"[..])
    );
    // Nothing else was left in the bucket (no temporary object).
    assert_eq!(
        server.object("layout", &format!("some/prefix/{}", &blob.sha256)),
        None
    );
}

/// A bucket that does not exist is reported when the store is checked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn s3_missing_bucket_is_reported() {
    let server = tokio::task::spawn_blocking(S3TestServer::start)
        .await
        .unwrap();
    let blobs = server.blob_store("no-such-bucket", "");
    let error = blobs.check_access().await.unwrap_err();
    let message = format!("{error:#}");
    assert!(message.contains("s3://no-such-bucket"), "{message}");
}

#[test]
fn locations_are_parsed_or_refused_with_a_remedy() {
    let options = Default::default();
    let local = BlobStore::open("/var/lib/sluice/blobs", &options).unwrap();
    assert_eq!(local.location(), "/var/lib/sluice/blobs");
    for (location, needle) in [
        ("gs://bucket/prefix", "`gs://` is not supported"),
        ("s3://", "names no bucket"),
        ("s3:///prefix", "names no bucket"),
    ] {
        let error = BlobStore::open(location, &options).unwrap_err();
        assert!(error.to_string().contains(needle), "{location}: {error}");
        assert!(error.hint().is_some(), "{location}");
    }
}
