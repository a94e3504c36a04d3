//! The blob store's S3-compatible backend (Amazon S3, MinIO, moto, ...),
//! behind the `s3` cargo feature.
//!
//! A blob is the object `prefix/ab/cdef…` of a bucket, where `abcdef…` is
//! the hex SHA-256 of its content, the same layout as the local directory.
//!
//! An object must never become visible under its key with content that does
//! not have that digest, and a large file must never be held in memory:
//! - a file of at most [`SINGLE_PUT_LIMIT`] bytes is read once, hashed, and
//!   stored with one PUT only if its digest is the expected one;
//! - a larger file is hashed first, while it is read from the local disk
//!   (nothing is sent yet, so a mismatch uploads nothing), then streamed in
//!   parts of [`PART_SIZE`] bytes with a multipart upload under its final
//!   key while it is hashed again. S3 makes a multipart upload visible only
//!   when it is completed, so if the second digest differs (the file changed
//!   in between) the upload is aborted instead and the object never exists.
//!
//! Reads stream the object and hash it as it arrives; a blob whose content
//! no longer has its digest is refused with [`Error::Corrupt`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as Key;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload, RetryConfig, WriteMultipart};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{BlobRef, Error, ObjectStoreOptions, Result, hex, io_error};

/// Files up to this size are stored with a single PUT.
const SINGLE_PUT_LIMIT: u64 = 8 * 1024 * 1024;
/// The part size of multipart uploads (S3 needs at least 5 MiB but the last).
const PART_SIZE: usize = 8 * 1024 * 1024;
/// Parts in flight at once: with the part being filled, this bounds the
/// memory an upload holds to about three parts.
const PARTS_IN_FLIGHT: usize = 2;
/// The buffer through which local files are read.
const READ_CHUNK: usize = 1024 * 1024;

/// A bucket (and a prefix in it) holding blobs.
#[derive(Clone)]
pub(crate) struct ObjectBlobs {
    store: Arc<dyn ObjectStore>,
    bucket: String,
    prefix: Key,
}

impl std::fmt::Debug for ObjectBlobs {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "ObjectBlobs({})", self.location())
    }
}

impl ObjectBlobs {
    /// A store over `s3://bucket/prefix`, configured from the standard
    /// `AWS_*` environment variables and `options`.
    pub(crate) fn open(bucket: &str, prefix: &str, options: &ObjectStoreOptions) -> Result<Self> {
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            // A misconfigured endpoint should fail within seconds, not after
            // the default three minutes of retries.
            .with_retry(RetryConfig {
                max_retries: 4,
                retry_timeout: Duration::from_secs(30),
                ..RetryConfig::default()
            });
        if let Some(credentials) = &options.credentials {
            builder = builder
                .with_access_key_id(&credentials.access_key_id)
                .with_secret_access_key(&credentials.secret_access_key);
        }
        if let Some(region) = &options.region {
            builder = builder.with_region(region);
        }
        if let Some(endpoint) = &options.endpoint {
            builder = builder.with_endpoint(endpoint);
            if endpoint.starts_with("http://") {
                // Naming a plain-HTTP endpoint explicitly is consent to it.
                builder = builder.with_allow_http(true);
            }
        }
        let store = builder.build().map_err(|source| Error::Config {
            message: format!("cannot configure the object store for `s3://{bucket}`: {source}"),
            hint: "check the AWS_* environment variables and --blobs-endpoint".to_owned(),
        })?;
        let prefix = Key::parse(prefix).map_err(|source| Error::Config {
            message: format!("`{prefix}` is not a valid object key prefix: {source}"),
            hint: "write the blob location like s3://bucket/some/prefix".to_owned(),
        })?;
        Ok(ObjectBlobs {
            store: Arc::new(store),
            bucket: bucket.to_owned(),
            prefix,
        })
    }

    /// `s3://bucket/prefix`, for messages.
    pub(crate) fn location(&self) -> String {
        if self.prefix.as_ref().is_empty() {
            format!("s3://{}", self.bucket)
        } else {
            format!("s3://{}/{}", self.bucket, self.prefix)
        }
    }

    /// The key of the blob with this (checked) digest: `prefix/ab/cdef…`.
    pub(crate) fn key(&self, sha256: &str) -> Key {
        self.prefix.clone().join(&sha256[..2]).join(&sha256[2..])
    }

    /// The key of the blob with this (checked) digest, as text.
    pub(crate) fn key_of(&self, sha256: &str) -> String {
        self.key(sha256).to_string()
    }

    /// Lists the bucket under the prefix once, so that a wrong bucket,
    /// endpoint or credentials are reported at startup.
    pub(crate) async fn check_access(&self) -> Result<()> {
        let prefix = (!self.prefix.as_ref().is_empty()).then_some(&self.prefix);
        self.store
            .list_with_delimiter(prefix)
            .await
            .map(|_| ())
            .map_err(|source| self.remote("list", &self.prefix, source))
    }

    pub(crate) async fn put_file(&self, path: &Path, expected: Option<&str>) -> Result<BlobRef> {
        let size = tokio::fs::metadata(path)
            .await
            .map_err(|source| io_error("open", path, source))?
            .len();
        if size <= SINGLE_PUT_LIMIT {
            self.put_small(path, expected).await
        } else {
            self.put_large(path, expected).await
        }
    }

    async fn put_small(&self, path: &Path, expected: Option<&str>) -> Result<BlobRef> {
        let content = tokio::fs::read(path)
            .await
            .map_err(|source| io_error("read", path, source))?;
        let sha256 = hex(&Sha256::digest(&content));
        check_expected(expected, &sha256)?;
        let size = content.len() as u64;
        let key = self.key(&sha256);
        self.store
            .put(&key, PutPayload::from(content))
            .await
            .map_err(|source| self.remote("upload", &key, source))?;
        Ok(BlobRef { sha256, size })
    }

    async fn put_large(&self, path: &Path, expected: Option<&str>) -> Result<BlobRef> {
        let (sha256, _) = hash_file(path).await?;
        check_expected(expected, &sha256)?;
        let key = self.key(&sha256);
        let upload = self
            .store
            .put_multipart(&key)
            .await
            .map_err(|source| self.remote("start an upload of", &key, source))?;
        let mut writer = WriteMultipart::new_with_chunk_size(upload, PART_SIZE);
        match self.stream_parts(path, &key, &mut writer).await {
            Ok((actual, size)) if actual == sha256 => {
                writer
                    .finish()
                    .await
                    .map_err(|source| self.remote("upload", &key, source))?;
                Ok(BlobRef { sha256, size })
            }
            Ok(_) => {
                self.abort(writer, &key).await;
                Err(Error::Changed(path.to_owned()))
            }
            Err(error) => {
                self.abort(writer, &key).await;
                Err(error)
            }
        }
    }

    /// Sends the file's content as parts, hashing it again on the way;
    /// returns its digest and size.
    async fn stream_parts(
        &self,
        path: &Path,
        key: &Key,
        writer: &mut WriteMultipart,
    ) -> Result<(String, u64)> {
        let mut file = tokio::fs::File::open(path)
            .await
            .map_err(|source| io_error("open", path, source))?;
        let mut hasher = Sha256::new();
        let mut size = 0u64;
        let mut buffer = vec![0u8; READ_CHUNK];
        loop {
            let read = file
                .read(&mut buffer)
                .await
                .map_err(|source| io_error("read", path, source))?;
            if read == 0 {
                break;
            }
            hasher.update(&buffer[..read]);
            size += read as u64;
            writer
                .wait_for_capacity(PARTS_IN_FLIGHT)
                .await
                .map_err(|source| self.remote("upload", key, source))?;
            writer.write(&buffer[..read]);
        }
        Ok((hex(&hasher.finalize()), size))
    }

    async fn abort(&self, writer: WriteMultipart, key: &Key) {
        if let Err(error) = writer.abort().await {
            // The upload was never completed, so no object exists; its
            // parts are left for the bucket's lifecycle rule to clear.
            tracing::warn!(%error, key = %key, "cannot abort a multipart upload");
        }
    }

    /// Starts downloading a blob.
    async fn get(&self, sha256: &str) -> Result<(Key, object_store::GetResult)> {
        let key = self.key(sha256);
        match self.store.get(&key).await {
            Ok(result) => Ok((key, result)),
            Err(object_store::Error::NotFound { .. }) => Err(Error::NotFound(sha256.to_owned())),
            Err(source) => Err(self.remote("download", &key, source)),
        }
    }

    pub(crate) async fn read_verified(&self, sha256: &str) -> Result<Vec<u8>> {
        let (key, result) = self.get(sha256).await?;
        let mut content = Vec::with_capacity(usize::try_from(result.meta.size).unwrap_or(0));
        let mut stream = result.into_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|source| self.remote("download", &key, source))?;
            content.extend_from_slice(&chunk);
        }
        if hex(&Sha256::digest(&content)) != sha256 {
            return Err(Error::Corrupt(sha256.to_owned()));
        }
        Ok(content)
    }

    /// Streams a blob into the file `target` (replacing it), hashing it on
    /// the way; the file is removed again if the blob turns out corrupt.
    pub(crate) async fn download_verified(&self, sha256: &str, target: &Path) -> Result<u64> {
        let (key, result) = self.get(sha256).await?;
        let written = async {
            let mut file = tokio::fs::File::create(target)
                .await
                .map_err(|source| io_error("create", target, source))?;
            let mut stream = result.into_stream();
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|source| self.remote("download", &key, source))?;
                hasher.update(&chunk);
                size += chunk.len() as u64;
                file.write_all(&chunk)
                    .await
                    .map_err(|source| io_error("write", target, source))?;
            }
            file.flush()
                .await
                .map_err(|source| io_error("write", target, source))?;
            if hex(&hasher.finalize()) != sha256 {
                return Err(Error::Corrupt(sha256.to_owned()));
            }
            Ok(size)
        }
        .await;
        if written.is_err() {
            let _ = tokio::fs::remove_file(target).await;
        }
        written
    }

    pub(crate) async fn contains(&self, sha256: &str) -> Result<bool> {
        let key = self.key(sha256);
        match self.store.head(&key).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(source) => Err(self.remote("look up", &key, source)),
        }
    }

    pub(crate) async fn delete(&self, sha256: &str) -> Result<()> {
        let key = self.key(sha256);
        match self.store.delete(&key).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(source) => Err(self.remote("delete", &key, source)),
        }
    }

    /// Replaces a blob's content as it is stored, bypassing every check:
    /// for tests that must see corruption refused.
    #[doc(hidden)]
    pub(crate) async fn overwrite_unchecked(&self, sha256: &str, content: Vec<u8>) -> Result<()> {
        let key = self.key(sha256);
        self.store
            .put(&key, PutPayload::from(content))
            .await
            .map(|_| ())
            .map_err(|source| self.remote("upload", &key, source))
    }

    fn remote(&self, action: &'static str, key: &Key, source: object_store::Error) -> Error {
        Error::Remote {
            action,
            location: format!("s3://{}/{key}", self.bucket),
            source: Box::new(source),
        }
    }
}

fn check_expected(expected: Option<&str>, sha256: &str) -> Result<()> {
    match expected {
        Some(expected) if expected != sha256 => Err(Error::Mismatch {
            expected: expected.to_owned(),
            actual: sha256.to_owned(),
        }),
        _ => Ok(()),
    }
}

/// The digest and size of a local file, read in chunks.
async fn hash_file(path: &Path) -> Result<(String, u64)> {
    let mut file = tokio::fs::File::open(path)
        .await
        .map_err(|source| io_error("open", path, source))?;
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut buffer = vec![0u8; READ_CHUNK];
    loop {
        let read = file
            .read(&mut buffer)
            .await
            .map_err(|source| io_error("read", path, source))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((hex(&hasher.finalize()), size))
}
