//! The conformance cases every blob store backend (local directory, S3) must
//! pass. Each takes a fresh, empty [`BlobStore`] and a scratch directory for
//! the files it stores.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::blobs::{BlobRef, BlobStore, Error};

const HELLO: &[u8] = b"hello";
const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, content).expect("write a scratch file");
    path
}

fn sha256_hex(content: &[u8]) -> String {
    Sha256::digest(content)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Stores a file, finds it by digest, reads and downloads it back, stores
/// it again harmlessly, and deletes it (twice).
pub async fn blob_put_read_delete(blobs: BlobStore, scratch: &Path) {
    let file = write(scratch, "hello.txt", HELLO);
    assert!(!blobs.contains(HELLO_SHA256).await.unwrap());

    let blob = blobs.put_file(&file).await.unwrap();
    assert_eq!(
        blob,
        BlobRef {
            sha256: HELLO_SHA256.to_owned(),
            size: 5
        }
    );
    assert!(blobs.contains(HELLO_SHA256).await.unwrap());
    let key = blobs.path_of(HELLO_SHA256).unwrap();
    assert!(
        key.ends_with(format!("2c/{}", &HELLO_SHA256[2..])),
        "content-addressed as ab/cdef…: {}",
        key.display()
    );
    assert_eq!(blobs.read_verified(HELLO_SHA256).await.unwrap(), HELLO);
    let copy = scratch.join("copy.txt");
    assert_eq!(
        blobs.download_verified(HELLO_SHA256, &copy).await.unwrap(),
        5
    );
    assert_eq!(std::fs::read(&copy).unwrap(), HELLO);
    assert_eq!(blobs.put_file(&file).await.unwrap(), blob);

    blobs.delete(HELLO_SHA256).await.unwrap();
    blobs.delete(HELLO_SHA256).await.unwrap();
    assert!(!blobs.contains(HELLO_SHA256).await.unwrap());
    assert!(matches!(
        blobs.read_verified(HELLO_SHA256).await,
        Err(Error::NotFound(_))
    ));
}

/// An upload whose content does not have the announced digest is refused
/// and stores nothing, under either digest.
pub async fn blob_mismatch_refused(blobs: BlobStore, scratch: &Path) {
    let file = write(scratch, "damaged.txt", b"hello!");
    let error = blobs
        .put_file_verified(&file, HELLO_SHA256)
        .await
        .unwrap_err();
    match &error {
        Error::Mismatch { expected, actual } => {
            assert_eq!(expected, HELLO_SHA256);
            assert_eq!(actual, &sha256_hex(b"hello!"));
        }
        other => panic!("expected a mismatch, got {other}"),
    }
    assert!(!blobs.contains(HELLO_SHA256).await.unwrap());
    assert!(!blobs.contains(&sha256_hex(b"hello!")).await.unwrap());

    let file = write(scratch, "hello.txt", HELLO);
    let blob = blobs.put_file_verified(&file, HELLO_SHA256).await.unwrap();
    assert_eq!(blob.sha256, HELLO_SHA256);
    assert!(blobs.contains(HELLO_SHA256).await.unwrap());

    assert!(matches!(
        blobs.put_file_verified(&file, "not-a-digest").await,
        Err(Error::InvalidDigest(_))
    ));
}

/// A stored blob whose content changed is refused on read and on download,
/// and a refused download leaves no file behind.
pub async fn blob_corrupt_refused(blobs: BlobStore, scratch: &Path) {
    let file = write(scratch, "hello.txt", HELLO);
    blobs.put_file(&file).await.unwrap();
    blobs
        .overwrite_unchecked(HELLO_SHA256, b"jello".to_vec())
        .await
        .unwrap();

    let error = blobs.read_verified(HELLO_SHA256).await.unwrap_err();
    assert!(matches!(error, Error::Corrupt(_)), "{error}");
    let copy = scratch.join("copy.txt");
    let error = blobs
        .download_verified(HELLO_SHA256, &copy)
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Corrupt(_)), "{error}");
    assert!(!copy.exists(), "a refused download leaves no file");
}

/// A missing blob is `NotFound`; deleting it does nothing; a name that is
/// not a digest is refused before the store is asked.
pub async fn blob_not_found(blobs: BlobStore, scratch: &Path) {
    let missing = sha256_hex(b"never stored");
    assert!(!blobs.contains(&missing).await.unwrap());
    assert!(matches!(
        blobs.read_verified(&missing).await,
        Err(Error::NotFound(digest)) if digest == missing
    ));
    let copy = scratch.join("copy.txt");
    assert!(matches!(
        blobs.download_verified(&missing, &copy).await,
        Err(Error::NotFound(_))
    ));
    blobs.delete(&missing).await.unwrap();
    for name in [
        "",
        "../../etc/passwd",
        &missing.to_uppercase(),
        &missing[1..],
    ] {
        assert!(
            matches!(
                blobs.read_verified(name).await,
                Err(Error::InvalidDigest(_))
            ),
            "{name}"
        );
        assert!(
            matches!(blobs.contains(name).await, Err(Error::InvalidDigest(_))),
            "{name}"
        );
    }
}

/// The size of the large file: several multipart parts and a short last
/// one on an object store.
const LARGE: usize = 21 * 1024 * 1024 + 12345;

/// A large file round-trips intact through a streamed upload and a streamed
/// download; a large file with the wrong announced digest stores nothing.
pub async fn blob_large_streaming(blobs: BlobStore, scratch: &Path) {
    // Varied content, so that a part sent twice or out of order changes the
    // digest.
    let content: Vec<u8> = (0..LARGE)
        .map(|index| (index.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    let expected = sha256_hex(&content);
    let file = write(scratch, "large.bin", &content);
    drop(content);

    let wrong = sha256_hex(b"something else");
    let error = blobs.put_file_verified(&file, &wrong).await.unwrap_err();
    assert!(matches!(error, Error::Mismatch { .. }), "{error}");
    assert!(!blobs.contains(&expected).await.unwrap());

    let blob = blobs.put_file_verified(&file, &expected).await.unwrap();
    assert_eq!(
        blob,
        BlobRef {
            sha256: expected.clone(),
            size: LARGE as u64
        }
    );
    let copy = scratch.join("large-copy.bin");
    assert_eq!(
        blobs.download_verified(&expected, &copy).await.unwrap(),
        LARGE as u64
    );
    assert_eq!(sha256_hex(&std::fs::read(&copy).unwrap()), expected);
    assert_eq!(
        sha256_hex(&blobs.read_verified(&expected).await.unwrap()),
        expected
    );
}
