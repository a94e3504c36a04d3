//! Pinned project files on an executor's disk: a cache with one directory
//! per project version, and a fresh working copy of it for every try.
//!
//! ```text
//!  version known? ──yes──> <cache>/<version>/ ──copy──> <scratch>/project (the try's cwd)
//!        │ no
//!        v
//!  <cache>/.partial-<version>-<n>/ ── fetch each file, check size and SHA-256,
//!                                     set its mode ──> rename to <cache>/<version>/
//! ```
//!
//! A version's directory appears by one rename, so it is complete or absent:
//! an executor killed halfway leaves only a `.partial-*` directory, removed
//! by the next [`ProjectCache::open`]. Tries never run in the cache itself,
//! so a block that writes into its working directory cannot change what a
//! later try of the same version sees.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

/// One file of a project version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedFile {
    /// Relative to the project directory, `/`-separated.
    pub path: String,
    pub sha256: String,
    pub size: u64,
    pub executable: bool,
}

/// Why a project version could not be put on disk.
#[derive(Debug, thiserror::Error)]
pub enum ProjectError {
    #[error("`{path}` is not a safe relative path for a project file")]
    UnsafePath { path: String },
    #[error("cannot fetch project file `{path}`: {message}")]
    Fetch { path: String, message: String },
    #[error(
        "project file `{path}` arrived with SHA-256 {actual} and {actual_size} bytes, expected {expected} and {expected_size}"
    )]
    Mismatch {
        path: String,
        expected: String,
        actual: String,
        expected_size: u64,
        actual_size: u64,
    },
    #[error("cannot write {}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// Versions kept in the cache; older ones go once they are unused for
/// [`KEEP_UNUSED`].
const KEEP_VERSIONS: usize = 16;
const KEEP_UNUSED: Duration = Duration::from_secs(3600);

/// The cache directory of pinned project versions.
pub struct ProjectCache {
    root: PathBuf,
    /// One lock per version being materialised by this process.
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    counter: AtomicU64,
}

impl std::fmt::Debug for ProjectCache {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter
            .debug_struct("ProjectCache")
            .field("root", &self.root)
            .finish_non_exhaustive()
    }
}

impl ProjectCache {
    /// Opens (creating) the cache at `root` and removes partial versions an
    /// earlier process left.
    pub fn open(root: impl Into<PathBuf>) -> Result<ProjectCache, ProjectError> {
        let root = root.into();
        std::fs::create_dir_all(&root).map_err(io_error(&root))?;
        if let Ok(entries) = std::fs::read_dir(&root) {
            for entry in entries.flatten() {
                if entry.file_name().to_string_lossy().starts_with(".partial-") {
                    let _ = std::fs::remove_dir_all(entry.path());
                }
            }
        }
        Ok(ProjectCache {
            root,
            locks: std::sync::Mutex::new(HashMap::new()),
            counter: AtomicU64::new(0),
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The directory of `version`, fetching its files with `fetch(file,
    /// destination)` when it is not cached yet. Every fetched file is
    /// checked against its size and SHA-256 before the version appears.
    pub async fn materialize<F, Fut>(
        &self,
        version: &str,
        files: &[PinnedFile],
        fetch: F,
    ) -> Result<PathBuf, ProjectError>
    where
        F: Fn(PinnedFile, PathBuf) -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        if !is_digest(version) {
            return Err(ProjectError::UnsafePath {
                path: version.to_owned(),
            });
        }
        let target = self.root.join(version);
        let lock = {
            let mut locks = self
                .locks
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            locks.entry(version.to_owned()).or_default().clone()
        };
        let _held = lock.lock().await;
        if tokio::fs::metadata(&target).await.is_ok() {
            touch(&target);
            return Ok(target);
        }
        let partial = self.root.join(format!(
            ".partial-{version}-{}-{}",
            std::process::id(),
            self.counter.fetch_add(1, Ordering::Relaxed)
        ));
        let written = write_version(&partial, files, &fetch).await;
        if let Err(error) = written {
            let _ = tokio::fs::remove_dir_all(&partial).await;
            return Err(error);
        }
        if let Err(source) = tokio::fs::rename(&partial, &target).await {
            // Another process put the same version there first.
            let _ = tokio::fs::remove_dir_all(&partial).await;
            if tokio::fs::metadata(&target).await.is_err() {
                return Err(ProjectError::Io {
                    path: target,
                    source,
                });
            }
        }
        self.evict(version);
        Ok(target)
    }

    /// Puts a working copy of `version` at `dest` for one try. The
    /// version's file list is asked of `list` only when the version is not
    /// cached yet; its files are then fetched with `fetch`.
    pub async fn checkout<L, LFut, F, Fut>(
        &self,
        version: &str,
        dest: &Path,
        list: L,
        fetch: F,
    ) -> Result<(), ProjectError>
    where
        L: FnOnce() -> LFut,
        LFut: Future<Output = Result<Vec<PinnedFile>, String>>,
        F: Fn(PinnedFile, PathBuf) -> Fut,
        Fut: Future<Output = Result<(), String>>,
    {
        let cached = self.root.join(version);
        let dir = if is_digest(version) && tokio::fs::metadata(&cached).await.is_ok() {
            touch(&cached);
            cached
        } else {
            let files = list().await.map_err(|message| ProjectError::Fetch {
                path: format!("(the file list of version {version})"),
                message,
            })?;
            self.materialize(version, &files, fetch).await?
        };
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(io_error(parent))?;
        }
        working_copy(&dir, dest).await
    }

    /// Removes cached versions beyond the newest [`KEEP_VERSIONS`] that were
    /// not used for [`KEEP_UNUSED`].
    fn evict(&self, keep: &str) {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return;
        };
        let mut versions: Vec<(SystemTime, PathBuf)> = entries
            .flatten()
            .filter(|entry| {
                let name = entry.file_name();
                let name = name.to_string_lossy();
                is_digest(&name) && name != keep
            })
            .filter_map(|entry| {
                let modified = entry.metadata().ok()?.modified().ok()?;
                Some((modified, entry.path()))
            })
            .collect();
        versions.sort_by_key(|(modified, _)| std::cmp::Reverse(*modified));
        let now = SystemTime::now();
        for (modified, path) in versions.into_iter().skip(KEEP_VERSIONS - 1) {
            let unused = now.duration_since(modified).unwrap_or_default();
            if unused >= KEEP_UNUSED {
                let _ = std::fs::remove_dir_all(path);
            }
        }
    }
}

/// Copies a cached version to `dest` (created; it must not exist), keeping
/// the files' modes: the working directory of one try.
pub async fn working_copy(version_dir: &Path, dest: &Path) -> Result<(), ProjectError> {
    let from = version_dir.to_path_buf();
    let to = dest.to_path_buf();
    tokio::task::spawn_blocking(move || copy_tree(&from, &to))
        .await
        .map_err(|join| ProjectError::Io {
            path: dest.to_path_buf(),
            source: io::Error::other(join.to_string()),
        })?
}

/// Wraps an I/O error with the path it happened at.
fn io_error(path: &Path) -> impl FnOnce(io::Error) -> ProjectError {
    let path = path.to_path_buf();
    move |source| ProjectError::Io { path, source }
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), ProjectError> {
    std::fs::create_dir(to).map_err(io_error(to))?;
    for entry in std::fs::read_dir(from).map_err(io_error(from))? {
        let entry = entry.map_err(io_error(from))?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry.file_type().map_err(io_error(&source))?;
        if kind.is_dir() {
            copy_tree(&source, &target)?;
        } else {
            std::fs::copy(&source, &target).map_err(io_error(&target))?;
        }
    }
    Ok(())
}

async fn write_version<F, Fut>(
    partial: &Path,
    files: &[PinnedFile],
    fetch: &F,
) -> Result<(), ProjectError>
where
    F: Fn(PinnedFile, PathBuf) -> Fut,
    Fut: Future<Output = Result<(), String>>,
{
    tokio::fs::create_dir_all(partial)
        .await
        .map_err(io_error(partial))?;
    for file in files {
        let relative = safe_relative(&file.path)?;
        let dest = partial.join(relative);
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(io_error(parent))?;
        }
        fetch(file.clone(), dest.clone())
            .await
            .map_err(|message| ProjectError::Fetch {
                path: file.path.clone(),
                message,
            })?;
        let check = dest.clone();
        let (actual, actual_size) = tokio::task::spawn_blocking(move || file_sha256(&check))
            .await
            .map_err(|join| ProjectError::Io {
                path: dest.clone(),
                source: io::Error::other(join.to_string()),
            })?
            .map_err(io_error(&dest))?;
        if actual != file.sha256 || actual_size != file.size {
            return Err(ProjectError::Mismatch {
                path: file.path.clone(),
                expected: file.sha256.clone(),
                actual,
                expected_size: file.size,
                actual_size,
            });
        }
        set_mode(&dest, file.executable).map_err(io_error(&dest))?;
    }
    Ok(())
}

/// A manifest path as a relative path that stays inside the project.
fn safe_relative(path: &str) -> Result<PathBuf, ProjectError> {
    let unsafe_path = || ProjectError::UnsafePath {
        path: path.to_owned(),
    };
    if path.is_empty() || path.contains('\\') || path.contains('\0') {
        return Err(unsafe_path());
    }
    let relative = Path::new(path);
    if relative
        .components()
        .any(|component| !matches!(component, Component::Normal(_)))
    {
        return Err(unsafe_path());
    }
    Ok(relative.to_path_buf())
}

fn is_digest(text: &str) -> bool {
    text.len() == 64
        && text
            .bytes()
            .all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte))
}

/// The SHA-256 (lowercase hex) and size of a file, read in 64 KiB pieces.
pub fn file_sha256(path: &Path) -> io::Result<(String, u64)> {
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0u8; 64 * 1024];
    let mut size = 0u64;
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    let digest = hasher.finalize();
    let mut hex = String::with_capacity(64);
    for byte in digest {
        use std::fmt::Write;
        let _ = write!(hex, "{byte:02x}");
    }
    Ok((hex, size))
}

fn set_mode(path: &Path, executable: bool) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let mode = if executable { 0o755 } else { 0o644 };
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

/// Marks a version as used now, for eviction.
fn touch(path: &Path) {
    if let Ok(dir) = std::fs::File::open(path) {
        let _ = dir.set_modified(SystemTime::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(content: &[u8]) -> String {
        let digest = Sha256::digest(content);
        digest.iter().map(|byte| format!("{byte:02x}")).collect()
    }

    fn pinned(path: &str, content: &[u8], executable: bool) -> PinnedFile {
        PinnedFile {
            path: path.to_owned(),
            sha256: sha(content),
            size: content.len() as u64,
            executable,
        }
    }

    async fn serve(
        contents: HashMap<String, Vec<u8>>,
        file: PinnedFile,
        dest: PathBuf,
    ) -> Result<(), String> {
        let content = contents.get(&file.sha256).ok_or("no such blob")?;
        tokio::fs::write(&dest, content)
            .await
            .map_err(|error| error.to_string())
    }

    #[tokio::test]
    async fn materialises_once_and_copies_per_try() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ProjectCache::open(dir.path().join("cache")).unwrap();
        let files = vec![
            pinned("scripts/run.sh", b"#!/bin/sh\necho hi\n", true),
            pinned("data/a b.txt", b"x", false),
        ];
        let contents: HashMap<String, Vec<u8>> = [
            (files[0].sha256.clone(), b"#!/bin/sh\necho hi\n".to_vec()),
            (files[1].sha256.clone(), b"x".to_vec()),
        ]
        .into();
        let version = "ab".repeat(32);
        let fetches = std::sync::atomic::AtomicUsize::new(0);
        let fetch = |file: PinnedFile, dest: PathBuf| {
            fetches.fetch_add(1, Ordering::SeqCst);
            serve(contents.clone(), file, dest)
        };
        let first = cache.materialize(&version, &files, &fetch).await.unwrap();
        let again = cache.materialize(&version, &files, &fetch).await.unwrap();
        assert_eq!(first, again);
        assert_eq!(fetches.load(Ordering::SeqCst), 2, "fetched once per file");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(first.join("scripts/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);

        let work = dir.path().join("try-1");
        working_copy(&first, &work).await.unwrap();
        std::fs::write(work.join("data/a b.txt"), "changed by a block").unwrap();
        assert_eq!(std::fs::read(first.join("data/a b.txt")).unwrap(), b"x");
        let mode = std::fs::metadata(work.join("scripts/run.sh"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o755);
    }

    #[tokio::test]
    async fn refuses_corrupt_content_and_unsafe_paths_leaving_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ProjectCache::open(dir.path().join("cache")).unwrap();
        let version = "cd".repeat(32);
        let files = vec![pinned("run.sh", b"echo one", false)];
        let corrupt = |_file: PinnedFile, dest: PathBuf| async move {
            tokio::fs::write(&dest, b"echo two")
                .await
                .map_err(|error| error.to_string())
        };
        let refused = cache.materialize(&version, &files, corrupt).await;
        assert!(
            matches!(refused, Err(ProjectError::Mismatch { .. })),
            "{refused:?}"
        );
        let left: Vec<_> = std::fs::read_dir(cache.root()).unwrap().collect();
        assert!(left.is_empty(), "nothing is left behind: {left:?}");

        for path in ["../escape", "/etc/passwd", "a/../../b", ""] {
            let files = vec![pinned(path, b"", false)];
            let refused = cache
                .materialize(&version, &files, |_f: PinnedFile, _d: PathBuf| async {
                    Ok(())
                })
                .await;
            assert!(
                matches!(refused, Err(ProjectError::UnsafePath { .. })),
                "{path}: {refused:?}"
            );
        }
        let failed = cache
            .materialize(
                &version,
                &[pinned("x", b"", false)],
                |_f: PinnedFile, _d: PathBuf| async { Err("the server is gone".to_owned()) },
            )
            .await;
        assert!(
            matches!(failed, Err(ProjectError::Fetch { .. })),
            "{failed:?}"
        );
        assert!(std::fs::read_dir(cache.root()).unwrap().next().is_none());
    }
}
