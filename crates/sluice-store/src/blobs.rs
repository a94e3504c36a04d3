//! The blob store: files (artifacts, data outputs) kept in a local directory,
//! content-addressed by their SHA-256.
//!
//! A blob lives at `root/ab/cdef…`, where `abcdef…` is the hex SHA-256 of its
//! content. A blob is written to a temporary file in the root first and then
//! renamed into place, so a reader never sees half a blob; its digest is
//! checked again on every read, so a corrupted file is refused rather than
//! served.
//!
//! The same store can live in an S3-compatible object store instead
//! (`s3://bucket/prefix`, see `blobs/s3.rs`), when sluice is built with the
//! `s3` cargo feature; every method works on both.

use std::fs::File;
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

#[cfg(feature = "s3")]
mod s3;
#[cfg(not(feature = "s3"))]
#[path = "blobs/without_s3.rs"]
mod s3;

use s3::ObjectBlobs;

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
    /// The object store failed (unreachable, denied, ...).
    #[error("cannot {action} `{location}`")]
    Remote {
        action: &'static str,
        location: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A blob location that cannot be opened, with a remedy.
    #[error("{message}")]
    Config { message: String, hint: String },
    /// A file changed while it was being stored; nothing was stored.
    #[error("`{0}` changed while it was being stored")]
    Changed(PathBuf),
}

impl Error {
    /// How to fix the error, where there is a known remedy.
    pub fn hint(&self) -> Option<&str> {
        match self {
            Error::Config { hint, .. } => Some(hint),
            _ => None,
        }
    }
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// A stored blob: its digest and size in bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BlobRef {
    pub sha256: String,
    pub size: u64,
}

/// Content-addressed blobs: in a local directory, or in a bucket of an
/// S3-compatible object store.
#[derive(Clone, Debug)]
pub struct BlobStore {
    /// The local directory; unused when `remote` is set.
    root: PathBuf,
    remote: Option<ObjectBlobs>,
}

/// How to reach an S3-compatible object store, beyond the standard `AWS_*`
/// environment variables.
#[derive(Clone, Debug, Default)]
pub struct ObjectStoreOptions {
    /// The endpoint of an S3-compatible server (like
    /// `http://127.0.0.1:9000`); a plain `http://` one is allowed because it
    /// is named explicitly.
    pub endpoint: Option<String>,
    /// Credentials to use instead of those of the environment.
    pub credentials: Option<StaticCredentials>,
    /// The region to use instead of the environment's (`us-east-1` when
    /// neither says).
    pub region: Option<String>,
}

/// An access key.
#[derive(Clone)]
pub struct StaticCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for StaticCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("StaticCredentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"***")
            .finish()
    }
}

/// The buffer through which files are hashed and copied.
const CHUNK: usize = 64 * 1024;

impl BlobStore {
    /// A store over `root`; the directory is created on the first write.
    pub fn new(root: impl Into<PathBuf>) -> BlobStore {
        BlobStore {
            root: root.into(),
            remote: None,
        }
    }

    /// A store at `location`: `s3://bucket/prefix` for an S3-compatible
    /// object store (configured by the `AWS_*` environment variables and
    /// `options`), or else a local directory.
    pub fn open(location: &str, options: &ObjectStoreOptions) -> Result<BlobStore> {
        let Some((scheme, rest)) = location.split_once("://") else {
            return Ok(BlobStore::new(location));
        };
        if scheme != "s3" {
            return Err(Error::Config {
                message: format!("blob location `{location}`: `{scheme}://` is not supported"),
                hint: "write s3://bucket/prefix for an S3-compatible object store, or a directory"
                    .to_owned(),
            });
        }
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(Error::Config {
                message: format!("blob location `{location}` names no bucket"),
                hint: "write s3://bucket/prefix".to_owned(),
            });
        }
        let remote = open_object_store(bucket, prefix.trim_matches('/'), options)?;
        Ok(BlobStore {
            root: PathBuf::from(prefix),
            remote: Some(remote),
        })
    }

    /// Where the blobs are: the local directory, or `s3://bucket/prefix`.
    pub fn location(&self) -> String {
        match &self.remote {
            Some(remote) => remote.location(),
            None => self.root.display().to_string(),
        }
    }

    /// Checks that the store can be reached (an object store's bucket,
    /// endpoint and credentials), so that a mistake is reported at startup.
    /// A local directory is created on the first write and needs no check.
    pub async fn check_access(&self) -> Result<()> {
        match &self.remote {
            Some(remote) => remote.check_access().await,
            None => Ok(()),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stores a copy of the file at `path` and returns its digest and size.
    pub async fn put_file(&self, path: &Path) -> Result<BlobRef> {
        if let Some(remote) = &self.remote {
            return remote.put_file(path, None).await;
        }
        let root = self.root.clone();
        let path = path.to_owned();
        blocking(move || put(&root, &path, None)).await
    }

    /// Stores a copy of the file at `path` only if its SHA-256 is
    /// `expected_sha256`; refuses it with [`Error::Mismatch`] otherwise.
    pub async fn put_file_verified(&self, path: &Path, expected_sha256: &str) -> Result<BlobRef> {
        check_digest(expected_sha256)?;
        if let Some(remote) = &self.remote {
            return remote.put_file(path, Some(expected_sha256)).await;
        }
        let root = self.root.clone();
        let path = path.to_owned();
        let expected = expected_sha256.to_owned();
        blocking(move || put(&root, &path, Some(&expected))).await
    }

    /// Where the blob with this digest is stored (it may not exist): its
    /// file, or in an object store its key (`prefix/ab/cdef…`).
    /// Refuses anything but a SHA-256 digest, so that a digest taken from a
    /// request can never name a path outside the store.
    pub fn path_of(&self, sha256: &str) -> Result<PathBuf> {
        check_digest(sha256)?;
        if let Some(remote) = &self.remote {
            return Ok(PathBuf::from(remote.key_of(sha256)));
        }
        Ok(self.root.join(&sha256[..2]).join(&sha256[2..]))
    }

    /// Whether the blob with this digest is stored.
    pub async fn contains(&self, sha256: &str) -> Result<bool> {
        let path = self.path_of(sha256)?;
        if let Some(remote) = &self.remote {
            return remote.contains(sha256).await;
        }
        tokio::fs::try_exists(&path)
            .await
            .map_err(|source| io_error("look up", &path, source))
    }

    /// Copies a blob into the file `target` (replacing it) without holding
    /// it in memory, checking its digest on the way; returns its size. A
    /// corrupt blob is refused with [`Error::Corrupt`] and leaves no file.
    pub async fn download_verified(&self, sha256: &str, target: &Path) -> Result<u64> {
        let path = self.path_of(sha256)?;
        if let Some(remote) = &self.remote {
            return remote.download_verified(sha256, target).await;
        }
        let sha256 = sha256.to_owned();
        let target = target.to_owned();
        blocking(move || {
            let copied = copy_verified(&path, &sha256, &target);
            if copied.is_err() {
                let _ = std::fs::remove_file(&target);
            }
            copied
        })
        .await
    }

    /// Replaces a stored blob's content without any check, so that tests
    /// can see corruption refused; never used outside tests.
    #[doc(hidden)]
    pub async fn overwrite_unchecked(&self, sha256: &str, content: Vec<u8>) -> Result<()> {
        let path = self.path_of(sha256)?;
        if let Some(remote) = &self.remote {
            return remote.overwrite_unchecked(sha256, content).await;
        }
        tokio::fs::write(&path, content)
            .await
            .map_err(|source| io_error("write", &path, source))
    }

    /// Reads a whole blob and checks its digest; refuses a corrupt blob with
    /// [`Error::Corrupt`].
    pub async fn read_verified(&self, sha256: &str) -> Result<Vec<u8>> {
        let path = self.path_of(sha256)?;
        if let Some(remote) = &self.remote {
            return remote.read_verified(sha256).await;
        }
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
        if let Some(remote) = &self.remote {
            return remote.delete(sha256).await;
        }
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(source) => Err(io_error("remove", &path, source)),
        }
    }
}

impl BlobStore {
    /// The digests of the stored blobs whose file has not changed for
    /// `grace` (candidates for deletion once no row references them).
    /// Files that are not blobs are left out.
    ///
    /// An object store is not listed (its blobs are deleted only as the
    /// runs that referenced them are): `None` is returned for it.
    pub async fn stale_blobs(&self, grace: std::time::Duration) -> Result<Option<Vec<String>>> {
        if self.remote.is_some() {
            return Ok(None);
        }
        let root = self.root.clone();
        blocking(move || {
            let mut digests = Vec::new();
            let prefixes = match std::fs::read_dir(&root) {
                Ok(entries) => entries,
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(Some(digests)),
                Err(source) => return Err(io_error("read", &root, source)),
            };
            for prefix in prefixes {
                let prefix = prefix.map_err(|source| io_error("read", &root, source))?;
                let prefix_name = prefix.file_name().to_string_lossy().into_owned();
                if prefix_name.len() != 2 || !prefix.path().is_dir() {
                    continue;
                }
                let files = std::fs::read_dir(prefix.path())
                    .map_err(|source| io_error("read", &prefix.path(), source))?;
                for file in files {
                    let file = file.map_err(|source| io_error("read", &prefix.path(), source))?;
                    let digest = format!("{prefix_name}{}", file.file_name().to_string_lossy());
                    if check_digest(&digest).is_ok() && older_than(&file.path(), grace)? {
                        digests.push(digest);
                    }
                }
            }
            digests.sort();
            Ok(Some(digests))
        })
        .await
    }

    /// Removes a blob if its file has not changed for `grace`; returns
    /// whether it was removed. A blob written again meanwhile (an upload of
    /// the same content in flight) is fresh, and stays.
    /// In an object store, whose objects' ages are not read, the blob is
    /// removed at once.
    pub async fn delete_if_stale(&self, sha256: &str, grace: std::time::Duration) -> Result<bool> {
        if self.remote.is_some() {
            self.delete(sha256).await?;
            return Ok(true);
        }
        let path = self.path_of(sha256)?;
        blocking(move || {
            if !older_than(&path, grace)? {
                return Ok(false);
            }
            match std::fs::remove_file(&path) {
                Ok(()) => Ok(true),
                Err(error) if error.kind() == io::ErrorKind::NotFound => Ok(false),
                Err(source) => Err(io_error("remove", &path, source)),
            }
        })
        .await
    }

    /// Removes the temporary files of uploads that never finished (their
    /// process was killed) once they are older than `grace`.
    pub async fn sweep_incoming(&self, grace: std::time::Duration) -> Result<usize> {
        if self.remote.is_some() {
            return Ok(0);
        }
        let root = self.root.clone();
        blocking(move || {
            let entries = match std::fs::read_dir(&root) {
                Ok(entries) => entries,
                Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(0),
                Err(source) => return Err(io_error("read", &root, source)),
            };
            let mut removed = 0;
            for entry in entries {
                let entry = entry.map_err(|source| io_error("read", &root, source))?;
                let incoming = entry
                    .file_name()
                    .to_string_lossy()
                    .starts_with(".incoming-");
                if incoming && older_than(&entry.path(), grace)? {
                    match std::fs::remove_file(entry.path()) {
                        Ok(()) => removed += 1,
                        Err(error) if error.kind() == io::ErrorKind::NotFound => {}
                        Err(source) => return Err(io_error("remove", &entry.path(), source)),
                    }
                }
            }
            Ok(removed)
        })
        .await
    }
}

/// Whether the file at `path` was last modified more than `grace` ago (a
/// file that is gone is not). File times come from the system clock, so
/// this compares with it rather than with an injected clock.
fn older_than(path: &Path, grace: std::time::Duration) -> Result<bool> {
    let modified = match std::fs::metadata(path).and_then(|metadata| metadata.modified()) {
        Ok(modified) => modified,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => return Err(io_error("inspect", path, source)),
    };
    let age = std::time::SystemTime::now()
        .duration_since(modified)
        .unwrap_or_default();
    Ok(age >= grace)
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

#[cfg(feature = "s3")]
fn open_object_store(
    bucket: &str,
    prefix: &str,
    options: &ObjectStoreOptions,
) -> Result<ObjectBlobs> {
    ObjectBlobs::open(bucket, prefix, options)
}

#[cfg(not(feature = "s3"))]
fn open_object_store(
    bucket: &str,
    prefix: &str,
    _options: &ObjectStoreOptions,
) -> Result<ObjectBlobs> {
    let location = format!("s3://{bucket}/{prefix}");
    Err(Error::Config {
        message: format!(
            "blob location `{}`: this sluice was built without S3 support",
            location.trim_end_matches('/')
        ),
        hint: "build it with `cargo build --release -p sluice-cli --features s3`".to_owned(),
    })
}

/// Copies the blob file at `path` to `target` while hashing it.
fn copy_verified(path: &Path, sha256: &str, target: &Path) -> Result<u64> {
    let mut source = match File::open(path) {
        Ok(source) => source,
        Err(error) if error.kind() == io::ErrorKind::NotFound => {
            return Err(Error::NotFound(sha256.to_owned()));
        }
        Err(source) => return Err(io_error("open", path, source)),
    };
    let mut copy = File::create(target).map_err(|source| io_error("create", target, source))?;
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
            .map_err(|source| io_error("write", target, source))?;
        size += read as u64;
    }
    if hex(&hasher.finalize()) != sha256 {
        return Err(Error::Corrupt(sha256.to_owned()));
    }
    Ok(size)
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
