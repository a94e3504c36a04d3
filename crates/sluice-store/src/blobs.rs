//! The blob store: files (artifacts, data outputs) kept in a local directory,
//! content-addressed by their SHA-256.
//!
//! A blob lives at `root/ab/cdef…`, where `abcdef…` is the hex SHA-256 of its
//! content. A blob is written to a temporary file in the root first and then
//! renamed into place, so a reader never sees half a blob; its digest is
//! checked again on every read, so a corrupted file is refused rather than
//! served.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// A blob store error.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot {action} `{path}`")]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// The content does not have the SHA-256 its uploader announced.
    #[error("the content's SHA-256 is {actual}, not the expected {expected}")]
    Mismatch { expected: String, actual: String },
    /// A stored blob no longer has the SHA-256 it is stored under.
    #[error("blob {0} is corrupt: its content no longer matches its SHA-256")]
    Corrupt(String),
    #[error("blob {0} is not stored")]
    NotFound(String),
    #[error("`{0}` is not a SHA-256 digest: expected 64 lowercase hexadecimal digits")]
    InvalidDigest(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A stored blob: its digest and size in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRef {
    pub sha256: String,
    pub size: u64,
}

/// A content-addressed directory of blobs.
#[derive(Clone, Debug)]
pub struct BlobStore {
    root: PathBuf,
}

/// The buffer through which files are hashed and copied.
const CHUNK: usize = 64 * 1024;

impl BlobStore {
    /// A store over `root`; the directory is created on the first write.
    pub fn new(root: impl Into<PathBuf>) -> BlobStore {
        BlobStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stores a copy of the file at `path` and returns its digest and size.
    pub async fn put_file(&self, path: &Path) -> Result<BlobRef> {
        let root = self.root.clone();
        let path = path.to_owned();
        blocking(move || put(&root, &path, None)).await
    }

    /// Stores a copy of the file at `path` only if its SHA-256 is
    /// `expected_sha256`; refuses it with [`Error::Mismatch`] otherwise.
    pub async fn put_file_verified(&self, path: &Path, expected_sha256: &str) -> Result<BlobRef> {
        check_digest(expected_sha256)?;
        let root = self.root.clone();
        let path = path.to_owned();
        let expected = expected_sha256.to_owned();
        blocking(move || put(&root, &path, Some(&expected))).await
    }

    /// Where the blob with this digest is stored (it may not exist).
    /// Refuses anything but a SHA-256 digest, so that a digest taken from a
    /// request can never name a path outside the store.
    pub fn path_of(&self, sha256: &str) -> Result<PathBuf> {
        check_digest(sha256)?;
        Ok(self.root.join(&sha256[..2]).join(&sha256[2..]))
    }

    /// Reads a whole blob and checks its digest; refuses a corrupt blob with
    /// [`Error::Corrupt`].
    pub async fn read_verified(&self, sha256: &str) -> Result<Vec<u8>> {
        let path = self.path_of(sha256)?;
        let sha256 = sha256.to_owned();
        blocking(move || {
            let content = match std::fs::read(&path) {
                Ok(content) => content,
                Err(error) if error.kind() == io::ErrorKind::NotFound => {
                    return Err(Error::NotFound(sha256));
                }
                Err(source) => return Err(io_error("read", &path, source)),
            };
            if hex(&Sha256::digest(&content)) != sha256 {
                return Err(Error::Corrupt(sha256));
            }
            Ok(content)
        })
        .await
    }

    /// Removes a blob; removing one that is not stored does nothing.
    pub async fn delete(&self, sha256: &str) -> Result<()> {
        let path = self.path_of(sha256)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(io_error("remove", &path, source)),
        }
    }
}

/// Hashes `path` while copying it into a temporary file in `root`, then
/// renames the copy into place.
fn put(root: &Path, path: &Path, expected: Option<&str>) -> Result<BlobRef> {
    std::fs::create_dir_all(root).map_err(|source| io_error("create", root, source))?;
    let mut source = File::open(path).map_err(|source| io_error("open", path, source))?;
    let mut copy = tempfile::Builder::new()
        .prefix(".incoming-")
        .tempfile_in(root)
        .map_err(|source| io_error("create a temporary file in", root, source))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buffer = vec![0u8; CHUNK];
    loop {
        let read = match source.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(source) => return Err(io_error("read", path, source)),
        };
        hasher.update(&buffer[..read]);
        copy.write_all(&buffer[..read])
            .map_err(|source| io_error("write", copy.path(), source))?;
        size += read as u64;
    }
    let sha256 = hex(&hasher.finalize());
    if let Some(expected) = expected
        && expected != sha256
    {
        // Dropping the temporary file deletes it.
        return Err(Error::Mismatch {
            expected: expected.to_owned(),
            actual: sha256,
        });
    }
    copy.as_file()
        .sync_all()
        .map_err(|source| io_error("write", copy.path(), source))?;
    let directory = root.join(&sha256[..2]);
    std::fs::create_dir_all(&directory).map_err(|source| io_error("create", &directory, source))?;
    let target = directory.join(&sha256[2..]);
    // Renaming over an existing blob replaces it with identical content.
    copy.persist(&target)
        .map_err(|error| io_error("store the blob at", &target, error.error))?;
    Ok(BlobRef { sha256, size })
}

/// Runs blocking file work off the async runtime's threads.
async fn blocking<T, F>(work: F) -> Result<T>
where
    F: FnOnce() -> Result<T> + Send + 'static,
    T: Send + 'static,
{
    match tokio::task::spawn_blocking(work).await {
        Ok(result) => result,
        Err(error) => std::panic::resume_unwind(error.into_panic()),
    }
}

fn check_digest(sha256: &str) -> Result<()> {
    let valid = sha256.len() == 64
        && sha256
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
    if valid {
        Ok(())
    } else {
        Err(Error::InvalidDigest(sha256.to_owned()))
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

fn io_error(action: &'static str, path: &Path, source: io::Error) -> Error {
    Error::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, content: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, content).unwrap();
        path
    }

    const HELLO_SHA256: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[tokio::test]
    async fn stores_reads_and_deletes_by_digest() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::new(dir.path().join("blobs"));
        let file = write(dir.path(), "a.txt", b"hello");

        let blob = blobs.put_file(&file).await.unwrap();
        assert_eq!(
            blob,
            BlobRef {
                sha256: HELLO_SHA256.to_owned(),
                size: 5
            }
        );
        let path = blobs.path_of(HELLO_SHA256).unwrap();
        assert_eq!(path, dir.path().join("blobs/2c").join(&HELLO_SHA256[2..]));
        assert_eq!(blobs.read_verified(HELLO_SHA256).await.unwrap(), b"hello");
        // Storing the same content again is harmless.
        assert_eq!(blobs.put_file(&file).await.unwrap(), blob);

        blobs.delete(HELLO_SHA256).await.unwrap();
        blobs.delete(HELLO_SHA256).await.unwrap();
        assert!(matches!(
            blobs.read_verified(HELLO_SHA256).await,
            Err(Error::NotFound(_))
        ));
    }

    #[tokio::test]
    async fn refuses_a_mismatched_upload_and_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("blobs");
        let blobs = BlobStore::new(&root);
        let file = write(dir.path(), "a.txt", b"hello!");

        let error = blobs
            .put_file_verified(&file, HELLO_SHA256)
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Mismatch { .. }), "{error}");
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);

        let file = write(dir.path(), "b.txt", b"hello");
        let blob = blobs.put_file_verified(&file, HELLO_SHA256).await.unwrap();
        assert_eq!(blob.sha256, HELLO_SHA256);
    }

    #[tokio::test]
    async fn refuses_corrupt_content_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::new(dir.path());
        let file = write(dir.path(), "a.txt", b"hello");
        blobs.put_file(&file).await.unwrap();
        std::fs::write(blobs.path_of(HELLO_SHA256).unwrap(), b"jello").unwrap();

        let error = blobs.read_verified(HELLO_SHA256).await.unwrap_err();
        assert!(matches!(error, Error::Corrupt(_)), "{error}");
    }

    #[test]
    fn refuses_anything_but_a_digest_as_a_name() {
        let blobs = BlobStore::new("/blobs");
        for name in [
            "",
            "../../etc/passwd",
            &HELLO_SHA256.to_uppercase(),
            &HELLO_SHA256[1..],
        ] {
            assert!(
                matches!(blobs.path_of(name), Err(Error::InvalidDigest(_))),
                "{name}"
            );
        }
    }
}
