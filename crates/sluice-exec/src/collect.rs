//! Everything read after the block is gone: its outputs, its data file and
//! its artifacts. Runs on a blocking thread; files are hashed by streaming,
//! never read whole.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::Error;
use crate::mask::Masker;
use crate::prepare::ScratchFiles;
use crate::types::{ArtifactFile, DataFile, DataFormat};

const HASH_BUFFER_BYTES: usize = 64 * 1024;
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// What the block left behind.
#[derive(Debug, Default)]
pub(crate) struct Collected {
    pub outputs: BTreeMap<String, String>,
    pub data: Option<DataFile>,
    pub artifacts: Vec<ArtifactFile>,
}

/// Where to look.
pub(crate) struct CollectParams {
    pub files: ScratchFiles,
    pub project_dir: PathBuf,
    pub artifact_globs: Vec<String>,
    pub masker: Masker,
}

pub(crate) async fn collect(params: CollectParams) -> Result<Collected, Error> {
    tokio::task::spawn_blocking(move || collect_blocking(&params))
        .await
        .map_err(|source| Error::CollectTask { source })?
}

fn collect_blocking(params: &CollectParams) -> Result<Collected, Error> {
    let files = &params.files;
    let outputs = match std::fs::read(&files.output) {
        Ok(bytes) => parse_outputs(&String::from_utf8_lossy(&bytes), &params.masker),
        // The block may have deleted the file; it then has no outputs.
        Err(error) if error.kind() == ErrorKind::NotFound => BTreeMap::new(),
        Err(source) => {
            return Err(Error::Collect {
                path: files.output.clone(),
                source,
            });
        }
    };
    let data = data_file(&files.data).map_err(|source| Error::Collect {
        path: files.data.clone(),
        source,
    })?;
    let artifacts = artifacts(params)?;
    Ok(Collected {
        outputs,
        data,
        artifacts,
    })
}

/// `key=value` lines; the last value of a key wins, lines without `=` and
/// blank lines are ignored, keys are trimmed, values kept as written.
fn parse_outputs(text: &str, masker: &Masker) -> BTreeMap<String, String> {
    let mut outputs = BTreeMap::new();
    for line in text.lines() {
        let Some((key, value)) = line.split_once('=') else {
            continue;
        };
        let key = key.trim();
        if key.is_empty() {
            continue;
        }
        outputs.insert(
            masker.mask(key).into_owned(),
            masker.mask(value).into_owned(),
        );
    }
    outputs
}

/// The data file, if the block wrote anything but blanks to it. Only the
/// first non-blank byte is read to tell JSON lines (`{`) from CSV.
fn data_file(path: &Path) -> std::io::Result<Option<DataFile>> {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(error) if error.kind() == ErrorKind::NotFound => return Ok(None),
        Err(error) => return Err(error),
    };
    let metadata = file.metadata()?;
    if !metadata.is_file() || metadata.len() == 0 {
        return Ok(None);
    }
    let mut buffer = vec![0; HASH_BUFFER_BYTES];
    let mut first_read = true;
    let first = loop {
        let read = read_retrying(&mut file, &mut buffer)?;
        if read == 0 {
            break None;
        }
        let mut bytes = &buffer[..read];
        if first_read {
            bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
            first_read = false;
        }
        if let Some(&byte) = bytes.iter().find(|byte| !byte.is_ascii_whitespace()) {
            break Some(byte);
        }
    };
    Ok(first.map(|first| DataFile {
        path: path.to_owned(),
        format: if first == b'{' {
            DataFormat::JsonLines
        } else {
            DataFormat::Csv
        },
        size: metadata.len(),
    }))
}

/// Regular files under `$SLUICE_ARTIFACTS`, then regular files matching the
/// globs under the project directory, sorted by name. Symbolic links are not
/// followed: an artifact is a file the block wrote. A name found twice keeps
/// its first file.
fn artifacts(params: &CollectParams) -> Result<Vec<ArtifactFile>, Error> {
    let mut found: BTreeMap<String, PathBuf> = BTreeMap::new();
    let read_error = |path: &Path| {
        let path = path.to_owned();
        move |source| Error::Collect { path, source }
    };
    let artifacts_dir = &params.files.artifacts;
    let mut directories = vec![artifacts_dir.clone()];
    while let Some(directory) = directories.pop() {
        let entries = match std::fs::read_dir(&directory) {
            Ok(entries) => entries,
            Err(error) if error.kind() == ErrorKind::NotFound && directory == *artifacts_dir => {
                continue;
            }
            Err(source) => return Err(read_error(&directory)(source)),
        };
        for entry in entries {
            let entry = entry.map_err(read_error(&directory))?;
            let file_type = entry.file_type().map_err(read_error(&entry.path()))?;
            let path = entry.path();
            if file_type.is_dir() {
                directories.push(path);
            } else if file_type.is_file() {
                found
                    .entry(relative_name(&path, artifacts_dir))
                    .or_insert(path);
            }
        }
    }

    if !params.artifact_globs.is_empty() {
        let project_dir = &params.project_dir;
        let prefix = project_dir
            .to_str()
            .ok_or_else(|| Error::ProjectDirEncoding {
                path: project_dir.clone(),
            })?;
        let prefix = glob::Pattern::escape(prefix);
        let options = glob::MatchOptions {
            require_literal_separator: true,
            ..glob::MatchOptions::new()
        };
        for pattern in &params.artifact_globs {
            let full = format!("{}/{pattern}", prefix.trim_end_matches('/'));
            let matches = glob::glob_with(&full, options).map_err(|source| Error::InvalidGlob {
                pattern: pattern.clone(),
                source,
            })?;
            for matched in matches {
                let path = match matched {
                    Ok(path) => path,
                    Err(error) => {
                        tracing::warn!(%error, pattern, "cannot search for artifacts");
                        continue;
                    }
                };
                let is_file = std::fs::symlink_metadata(&path)
                    .map(|metadata| metadata.is_file())
                    .unwrap_or(false);
                // The scratch files are never artifacts of a glob, unless the
                // project directory is the copy inside the scratch directory.
                let scratch = path.starts_with(&params.files.dir) && !path.starts_with(project_dir);
                if !is_file || scratch {
                    continue;
                }
                found
                    .entry(relative_name(&path, project_dir))
                    .or_insert(path);
            }
        }
    }

    found
        .into_iter()
        .map(|(name, path)| {
            let (size, sha256) = hash_file(&path).map_err(read_error(&path))?;
            Ok(ArtifactFile {
                name: params.masker.mask(&name).into_owned(),
                path,
                size,
                sha256,
            })
        })
        .collect()
}

/// `path` relative to `base`, with `/` separators.
fn relative_name(path: &Path, base: &Path) -> String {
    let relative = path.strip_prefix(base).unwrap_or(path);
    relative
        .components()
        .map(|component| component.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Size and lowercase hex SHA-256 of a file, read in fixed-size pieces.
fn hash_file(path: &Path) -> std::io::Result<(u64, String)> {
    let mut file = File::open(path)?;
    let mut hasher = Sha256::new();
    let mut buffer = vec![0; HASH_BUFFER_BYTES];
    let mut size = 0u64;
    loop {
        let read = read_retrying(&mut file, &mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        size += read as u64;
    }
    let digest = hasher.finalize();
    let hex = digest.iter().map(|byte| format!("{byte:02x}")).collect();
    Ok((size, hex))
}

fn read_retrying(file: &mut File, buffer: &mut [u8]) -> std::io::Result<usize> {
    loop {
        match file.read(buffer) {
            Err(error) if error.kind() == ErrorKind::Interrupted => continue,
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_keep_the_last_value_and_skip_noise() {
        let text = "a=1\n\nnoise\n b =x=y\na=2\r\n=orphan\n";
        let outputs = parse_outputs(text, &Masker::default());
        assert_eq!(
            outputs,
            BTreeMap::from([("a".into(), "2".into()), ("b".into(), "x=y".into())])
        );
    }
}
