//! Opening a project: its pipelines, its SQLite database under `.sluice/`,
//! its blob directory, and an engine over them. Every command that opens a
//! project first finishes runs whose executor is gone, so no run stays
//! `running` after its `sluice run` process was killed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use sluice_engine::{Engine, EngineConfig, LoadError, Project, SystemClock};
use sluice_store::Store;
use sluice_store::blobs::BlobStore;
use sluice_store::sqlite::SqliteStore;

use crate::Failure;

/// Loads the project, reporting every pipeline error.
pub fn load_project(dir: &Path) -> Result<Project, Failure> {
    Project::load(dir).map_err(|error| match error {
        LoadError::Io { path, source } => Failure::bad_input(
            format!("cannot read {}: {source}", path.display()),
            Some(
                "run sluice in a project directory (one holding `pipelines/`), pass --project DIR, or create one with `sluice init`"
                    .to_owned(),
            ),
        ),
        LoadError::Invalid(diagnostics) => Failure::bad_input(
            format!(
                "{} error(s) in the project's pipeline files\n{}",
                diagnostics.len(),
                diagnostics
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("\n")
            ),
            Some("fix the pipeline files, then check them with `sluice validate`".to_owned()),
        ),
    })
}

/// Opens the project's engine on its embedded database.
pub async fn open(dir: &Path) -> Result<Engine, Failure> {
    let project = load_project(dir)?;
    open_with(project).await
}

pub async fn open_with(project: Project) -> Result<Engine, Failure> {
    open_on(project, None).await
}

/// Opens the store a `--database` value names: a SQLite file path (or
/// `sqlite://PATH`), or the project's own database when `None`.
pub async fn open_store(
    project_dir: &Path,
    database: Option<&str>,
) -> Result<Arc<dyn Store>, Failure> {
    let path = match database {
        None => project_dir.join(".sluice").join("sluice.db"),
        Some(url) if url.starts_with("postgres://") || url.starts_with("postgresql://") => {
            return Err(Failure::bad_input(
                "this build of sluice has no PostgreSQL backend",
                Some("use a SQLite file path with --database".to_owned()),
            ));
        }
        Some(url) => PathBuf::from(url.strip_prefix("sqlite://").unwrap_or(url)),
    };
    Ok(Arc::new(SqliteStore::open(&path).await?))
}

/// Opens the project's engine on the database a `--database` value names.
pub async fn open_on(project: Project, database: Option<&str>) -> Result<Engine, Failure> {
    let state = project.dir.join(".sluice");
    let store = open_store(&project.dir, database).await?;
    let blobs = BlobStore::new(state.join("blobs"));
    let config = EngineConfig::for_project(&project.dir);
    let engine = Engine::new(store, blobs, project, Arc::new(SystemClock), config);
    engine.reap_lost_executors().await?;
    Ok(engine)
}
