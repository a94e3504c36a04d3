//! A project on disk: its directory and the pipelines in `pipelines/*.yaml`,
//! each with the SHA-256 of its file, which pins a run to the exact version it
//! was started with.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};
use sluice_core::spec::{self, Diagnostic, Pipeline};

/// A pipeline loaded from its file.
#[derive(Clone, Debug)]
pub struct LoadedPipeline {
    pub spec: Arc<Pipeline>,
    pub source: String,
    /// Lowercase hex SHA-256 of `source`.
    pub version: String,
}

/// A project directory and its pipelines.
#[derive(Clone, Debug)]
pub struct Project {
    pub dir: PathBuf,
    pub pipelines: BTreeMap<String, LoadedPipeline>,
}

/// Why a project could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("cannot read {path}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{count} error(s) in the project's pipelines", count = .0.len())]
    Invalid(Vec<Diagnostic>),
}

/// Lowercase hex SHA-256 of some text.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut hex = String::with_capacity(64);
    for byte in digest {
        use std::fmt::Write;
        let _ = write!(hex, "{byte:02x}");
    }
    hex
}

impl Project {
    /// Reads and validates every `pipelines/*.yaml` (and `*.yml`) of `dir`.
    /// Every error of every file is collected before giving up.
    pub fn load(dir: &Path) -> Result<Project, LoadError> {
        let pipelines_dir = dir.join("pipelines");
        let entries = std::fs::read_dir(&pipelines_dir).map_err(|source| LoadError::Io {
            path: pipelines_dir.clone(),
            source,
        })?;
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|source| LoadError::Io {
                path: pipelines_dir.clone(),
                source,
            })?;
            let path = entry.path();
            let is_yaml = matches!(
                path.extension().and_then(|ext| ext.to_str()),
                Some("yaml" | "yml")
            );
            if is_yaml && path.is_file() {
                files.push(path);
            }
        }
        files.sort();

        let mut diagnostics = Vec::new();
        let mut pipelines = BTreeMap::new();
        for path in files {
            let name = path
                .file_stem()
                .and_then(|stem| stem.to_str())
                .unwrap_or_default()
                .to_owned();
            let display = format!(
                "pipelines/{}",
                path.file_name()
                    .and_then(|n| n.to_str())
                    .unwrap_or_default()
            );
            let bytes = std::fs::read(&path).map_err(|source| LoadError::Io {
                path: path.clone(),
                source,
            })?;
            let source = match String::from_utf8(bytes) {
                Ok(source) => source,
                Err(_) => {
                    diagnostics.push(Diagnostic {
                        file: display,
                        line: 1,
                        column: 1,
                        message: "the file is not valid UTF-8 text".to_owned(),
                        hint: Some("save the pipeline file as UTF-8".to_owned()),
                    });
                    continue;
                }
            };
            match spec::parse_pipeline(&name, &display, &source) {
                Ok(pipeline) => {
                    let version = sha256_hex(source.as_bytes());
                    pipelines.insert(
                        name,
                        LoadedPipeline {
                            spec: Arc::new(pipeline),
                            source,
                            version,
                        },
                    );
                }
                Err(errors) => diagnostics.extend(errors),
            }
        }
        let specs: Vec<Pipeline> = pipelines
            .values()
            .map(|loaded| (*loaded.spec).clone())
            .collect();
        diagnostics.extend(spec::validate_project(&specs));
        if diagnostics.is_empty() {
            Ok(Project {
                dir: dir.to_path_buf(),
                pipelines,
            })
        } else {
            Err(LoadError::Invalid(diagnostics))
        }
    }

    pub fn pipeline(&self, name: &str) -> Option<&LoadedPipeline> {
        self.pipelines.get(name)
    }
}
