//! Pinning a project's files: every run records the version of the files it
//! was triggered with, so that its tries, wherever they run, and its retries
//! see exactly those files, whatever changed on disk since.
//!
//! ```text
//!  walk the project (.gitignore, .ignore, .sluiceignore; no hidden files)
//!    └─> each file: path, size, mode, SHA-256 (cached by size, mtime, inode)
//!          └─> manifest lines "sha256 size mode path", sorted by path
//!                └─> version = SHA-256 of the manifest
//!  new contents ──> blobs;  new version ──> store (`project_version`)
//! ```
//!
//! Executors fetch a version's files by their digests and cache each
//! version once (`sluice_exec::ProjectCache`).

use std::collections::{HashMap, HashSet};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use sluice_store::ProjectFile;

use crate::error::{Error, Result};
use crate::project::sha256_hex;

/// Most files a run may pin.
pub const MAX_FILES: usize = 10_000;
/// Most bytes a run may pin.
pub const MAX_BYTES: u64 = 256 * 1024 * 1024;
/// The file listing what a run does not pin, in `.gitignore` syntax.
pub const IGNORE_FILE: &str = ".sluiceignore";
/// A file modified this recently is hashed again next time: its mtime may
/// not change with a write in the same tick.
const TRUST_AFTER: Duration = Duration::from_secs(2);

/// A file of the project on disk.
#[derive(Clone, Debug)]
pub struct ScannedFile {
    pub file: ProjectFile,
    pub source: PathBuf,
}

/// The project's files as they are now, and their version.
#[derive(Clone, Debug)]
pub struct Scan {
    pub version: String,
    pub files: Vec<ScannedFile>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Stamp {
    size: u64,
    mtime_ns: i128,
    inode: u64,
}

/// What this process already knows, so that a trigger of an unchanged
/// project only reads the directory.
#[derive(Default)]
pub(crate) struct Snapshots {
    digests: Mutex<HashMap<PathBuf, (Stamp, String)>>,
    /// Blobs and versions known to be stored; neither is ever deleted
    /// while a version references it.
    stored_blobs: Mutex<HashSet<String>>,
    stored_versions: Mutex<HashSet<String>>,
}

/// The manifest a version's digest is computed from.
pub fn manifest(files: &[ProjectFile]) -> String {
    let mut text = String::new();
    for file in files {
        let mode = if file.executable { "755" } else { "644" };
        text.push_str(&format!(
            "{} {} {mode} {}\n",
            file.sha256, file.size, file.path
        ));
    }
    text
}

/// The version of a set of files sorted by path.
pub fn version_of(files: &[ProjectFile]) -> String {
    sha256_hex(manifest(files).as_bytes())
}

/// Reads the project's files under `dir`, leaving out `unpinned` paths.
fn scan(dir: &Path, unpinned: &[PathBuf], snapshots: &Snapshots) -> Result<Scan> {
    let absolute = |path: &Path| std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let root = absolute(dir);
    let unpinned: Vec<PathBuf> = unpinned.iter().map(|path| absolute(path)).collect();
    let hint = || {
        Some(format!(
            "list what blocks do not need (data, build outputs, virtual environments) in {} (`.gitignore` syntax)",
            dir.join(IGNORE_FILE).display()
        ))
    };
    let walk = ignore::WalkBuilder::new(&root)
        .hidden(true)
        .git_ignore(true)
        .git_global(false)
        .git_exclude(false)
        .require_git(false)
        .ignore(true)
        .parents(false)
        .follow_links(false)
        .add_custom_ignore_filename(IGNORE_FILE)
        .filter_entry(move |entry| !unpinned.iter().any(|path| path == entry.path()))
        .build();
    let now = SystemTime::now();
    let mut found: Vec<(String, PathBuf, std::fs::Metadata)> = Vec::new();
    let mut bytes = 0u64;
    for entry in walk {
        let entry = entry.map_err(|error| {
            Error::invalid(
                format!(
                    "cannot read the project's files under {}: {error}",
                    dir.display()
                ),
                hint(),
            )
        })?;
        let path = entry.path();
        // A symbolic link pins what it points to when that is a file.
        let Ok(metadata) = std::fs::metadata(path) else {
            continue;
        };
        if !metadata.is_file() {
            continue;
        }
        let relative = path.strip_prefix(&root).unwrap_or(path);
        let Some(name) = relative.to_str().filter(|name| {
            !name.is_empty() && !name.chars().any(char::is_control) && !name.contains('\\')
        }) else {
            return Err(Error::invalid(
                format!(
                    "the project file {} has a name a run cannot pin (not UTF-8, or with a control character or `\\`)",
                    path.display()
                ),
                Some(format!("rename it, or list it in {IGNORE_FILE}")),
            ));
        };
        bytes += metadata.len();
        found.push((name.to_owned(), path.to_path_buf(), metadata));
        if found.len() > MAX_FILES || bytes > MAX_BYTES {
            return Err(Error::invalid(
                format!(
                    "the project under {} has more files than a run may pin (at most {MAX_FILES} files and {} MiB)",
                    dir.display(),
                    MAX_BYTES / (1024 * 1024)
                ),
                hint(),
            ));
        }
    }
    found.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));

    let mut files = Vec::with_capacity(found.len());
    for (name, source, metadata) in found {
        let stamp = Stamp {
            size: metadata.len(),
            mtime_ns: i128::from(metadata.mtime()) * 1_000_000_000
                + i128::from(metadata.mtime_nsec()),
            inode: metadata.ino(),
        };
        let cached = snapshots
            .digests
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(&source)
            .filter(|(known, _)| *known == stamp)
            .map(|(_, digest)| digest.clone());
        let sha256 = match cached {
            Some(digest) => digest,
            None => {
                let (digest, size) =
                    sluice_exec::file_sha256(&source).map_err(|source_error| Error::Io {
                        context: format!("cannot read the project file {}", source.display()),
                        source: source_error,
                    })?;
                let settled = metadata
                    .modified()
                    .ok()
                    .and_then(|modified| now.duration_since(modified).ok())
                    .is_some_and(|age| age >= TRUST_AFTER);
                if settled && size == stamp.size {
                    snapshots
                        .digests
                        .lock()
                        .unwrap_or_else(|poison| poison.into_inner())
                        .insert(source.clone(), (stamp, digest.clone()));
                }
                digest
            }
        };
        files.push(ScannedFile {
            file: ProjectFile {
                path: name,
                sha256,
                size: metadata.len(),
                executable: metadata.mode() & 0o111 != 0,
            },
            source,
        });
    }
    let listed: Vec<ProjectFile> = files.iter().map(|scanned| scanned.file.clone()).collect();
    Ok(Scan {
        version: version_of(&listed),
        files,
    })
}

impl crate::Engine {
    /// Records the project's files as they are now (their contents as
    /// blobs, their list as a version) and returns the version.
    pub(crate) async fn pin_project_files(&self) -> Result<String> {
        let dir = self.project().dir.clone();
        let engine = self.clone();
        let scanned = tokio::task::spawn_blocking(move || {
            scan(&dir, &engine.config().unpinned, &engine.inner.snapshots)
        })
        .await
        .map_err(|join| Error::Io {
            context: "the project scan stopped".to_owned(),
            source: std::io::Error::other(join.to_string()),
        })??;
        let snapshots = &self.inner.snapshots;
        if snapshots
            .stored_versions
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .contains(&scanned.version)
        {
            return Ok(scanned.version);
        }
        for scanned_file in &scanned.files {
            let sha256 = &scanned_file.file.sha256;
            let known = snapshots
                .stored_blobs
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .contains(sha256);
            if known {
                continue;
            }
            if !self.blobs().contains(sha256).await? {
                self.blobs()
                    .put_file_verified(&scanned_file.source, sha256)
                    .await
                    .map_err(|error| {
                        Error::conflict(
                            format!(
                                "the project file {} changed while the run was being created: {error}",
                                scanned_file.file.path
                            ),
                            Some("trigger the run again once the file is saved".to_owned()),
                        )
                    })?;
            }
            snapshots
                .stored_blobs
                .lock()
                .unwrap_or_else(|poison| poison.into_inner())
                .insert(sha256.clone());
        }
        let files: Vec<ProjectFile> = scanned
            .files
            .iter()
            .map(|scanned| scanned.file.clone())
            .collect();
        self.store()
            .put_project_version(&scanned.version, &files)
            .await?;
        snapshots
            .stored_versions
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .insert(scanned.version.clone());
        Ok(scanned.version)
    }

    /// Puts a working copy of the files `run` is pinned to at `dest`, from
    /// this process's cache of versions (filled from the blob store). A run
    /// recorded without a project version runs in the project directory.
    pub(crate) async fn check_out_project(
        &self,
        run: &sluice_store::RunRecord,
        dest: &Path,
    ) -> std::result::Result<PathBuf, String> {
        let Some(version) = &run.project_version else {
            return Ok(self.project().dir.clone());
        };
        let cache = self
            .inner
            .project_cache
            .get_or_try_init(|| async {
                sluice_exec::ProjectCache::open(&self.config().project_cache_dir).map(Arc::new)
            })
            .await
            .map_err(|error| format!("{error:#}"))?;
        let list = || async {
            let files = self
                .project_files(version)
                .await
                .map_err(|error| format!("{error:#}"))?;
            Ok(files.into_iter().map(pinned).collect())
        };
        let blobs = self.blobs().clone();
        let fetch = |file: sluice_exec::PinnedFile, dest: PathBuf| {
            let blobs = blobs.clone();
            async move {
                blobs
                    .download_verified(&file.sha256, &dest)
                    .await
                    .map(|_| ())
                    .map_err(|error| format!("{error:#}"))
            }
        };
        cache
            .checkout(version, dest, list, fetch)
            .await
            .map_err(|error| {
                format!("cannot check out version {version} of the project's files: {error:#}")
            })?;
        Ok(dest.to_path_buf())
    }

    /// The content of a file of a project version, checked against its
    /// SHA-256; `NotFound` unless the version holds a file with that digest.
    pub async fn project_file_content(&self, version: &str, sha256: &str) -> Result<Vec<u8>> {
        if !self.store().project_file_held(version, sha256).await? {
            return Err(Error::NotFound(format!(
                "project version `{version}` has no file with SHA-256 `{sha256}`"
            )));
        }
        Ok(self.blobs().read_verified(sha256).await?)
    }

    /// The files of a project version, or `NotFound`.
    pub async fn project_files(&self, version: &str) -> Result<Vec<ProjectFile>> {
        self.store()
            .get_project_version(version)
            .await?
            .ok_or_else(|| Error::NotFound(format!("no project version `{version}`")))
    }
}

/// A stored project file as an executor sees it.
pub fn pinned(file: ProjectFile) -> sluice_exec::PinnedFile {
    sluice_exec::PinnedFile {
        path: file.path,
        sha256: file.sha256,
        size: file.size,
        executable: file.executable,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, path: &str, content: &str) {
        let path = dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    fn paths(scan: &Scan) -> Vec<&str> {
        scan.files.iter().map(|f| f.file.path.as_str()).collect()
    }

    #[test]
    fn pins_what_is_not_ignored_and_changes_version_with_any_file() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        write(root, "pipelines/etl.yaml", "blocks: {}\n");
        write(root, "scripts/load.sh", "echo load\n");
        write(root, ".sluice/sluice.db", "database");
        write(root, ".env", "SECRET=1");
        write(root, ".gitignore", "target/\n");
        write(root, "target/big.bin", "build output");
        write(root, IGNORE_FILE, "data/*.csv\n");
        write(root, "data/input.csv", "a,b\n");
        write(root, "data/keep.txt", "kept");
        // A database and a blob store kept in the project are never pinned.
        write(root, "state.db", "database");
        write(root, "blobs/ab/cd", "an artifact");
        let unpinned = [root.join("state.db"), root.join("blobs")];
        let snapshots = Snapshots::default();
        let first = scan(root, &unpinned, &snapshots).unwrap();
        assert_eq!(
            paths(&first),
            ["data/keep.txt", "pipelines/etl.yaml", "scripts/load.sh"]
        );
        assert_eq!(
            first.version,
            version_of(
                &first
                    .files
                    .iter()
                    .map(|f| f.file.clone())
                    .collect::<Vec<_>>()
            )
        );
        let again = scan(root, &unpinned, &snapshots).unwrap();
        assert_eq!(first.version, again.version);

        // Ignored files do not change the version; pinned ones do, even
        // with the same size (a fresh mtime is never trusted).
        write(root, "data/input.csv", "c,d\n");
        assert_eq!(
            scan(root, &unpinned, &snapshots).unwrap().version,
            first.version
        );
        write(root, "scripts/load.sh", "echo LOAD\n");
        let changed = scan(root, &unpinned, &snapshots).unwrap();
        assert_ne!(changed.version, first.version);

        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(
            root.join("scripts/load.sh"),
            std::fs::Permissions::from_mode(0o755),
        )
        .unwrap();
        let executable = scan(root, &unpinned, &snapshots).unwrap();
        assert_ne!(executable.version, changed.version);
        assert!(executable.files[2].file.executable);
    }

    #[test]
    fn refuses_too_many_files_with_a_hint() {
        let dir = tempfile::tempdir().unwrap();
        for index in 0..=MAX_FILES {
            write(dir.path(), &format!("f/{index}"), "");
        }
        let refused = scan(dir.path(), &[], &Snapshots::default()).unwrap_err();
        assert!(
            refused.to_string().contains("at most 10000 files"),
            "{refused}"
        );
        assert!(refused.hint().unwrap().contains(IGNORE_FILE));
    }
}
