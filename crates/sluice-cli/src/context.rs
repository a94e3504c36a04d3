//! Opening a project: its pipelines, its SQLite database under `.sluice/`,
//! its blob directory, and an engine over them. Every command that opens a
//! project first finishes runs whose executor is gone, so no run stays
//! `running` after its `sluice run` process was killed.

use std::path::Path;
use std::sync::Arc;

use sluice_engine::{Engine, EngineConfig, LoadError, Project, SystemClock};
use sluice_store::Store;
use sluice_store::blobs::{BlobStore, ObjectStoreOptions};

use crate::args::BlobArgs;

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
    open_on(project, None, &BlobArgs::from_environment()).await
}

/// Opens the store a `--database` value names: a `postgres://` URL, a
/// SQLite file path (or `sqlite://PATH`), or the project's own SQLite file
/// when `None`.
pub async fn open_store(
    project_dir: &Path,
    database: Option<&str>,
) -> Result<Arc<dyn Store>, Failure> {
    let location = match database {
        None => sluice_store::Location::Sqlite(project_dir.join(".sluice").join("sluice.db")),
        Some(url) => sluice_store::Location::parse(url),
    };
    let shown = match &location {
        sluice_store::Location::Postgres(_) => "the PostgreSQL database".to_owned(),
        sluice_store::Location::Sqlite(path) => path.display().to_string(),
    };
    location.open().await.map_err(|error| {
        let mut failure = Failure::from(error);
        failure.message = format!("cannot open {shown}: {}", failure.message);
        if failure.hint.is_none() {
            failure.hint = Some(
                "check --database (a postgres:// URL or a SQLite file path) and that the database is reachable"
                    .to_owned(),
            );
        }
        failure
    })
}

/// Opens the project's engine on the database a `--database` value names.
pub async fn open_on(
    project: Project,
    database: Option<&str>,
    blobs: &BlobArgs,
) -> Result<Engine, Failure> {
    let config = EngineConfig::for_project(&project.dir);
    open_engine(project, database, blobs, config).await
}

/// Opens the server's engine: like [`open_on`], and it fires the project's
/// schedules when it reconciles. `configure` adjusts the tunables last
/// (`sluice up --lease-ttl`).
pub async fn open_server_on(
    project: Project,
    database: Option<&str>,
    blobs: &BlobArgs,
    configure: impl FnOnce(&mut EngineConfig),
) -> Result<Engine, Failure> {
    let mut config = EngineConfig::for_project(&project.dir);
    config.fire_schedules = true;
    configure(&mut config);
    open_engine(project, database, blobs, config).await
}

/// The blob store `--blobs` names (the project's `.sluice/blobs` without
/// it), checked to be reachable before anything is written.
async fn open_blobs(project: &Project, args: &BlobArgs) -> Result<BlobStore, Failure> {
    let Some(location) = &args.blobs else {
        return Ok(BlobStore::new(project.dir.join(".sluice").join("blobs")));
    };
    let options = ObjectStoreOptions {
        endpoint: args.blobs_endpoint.clone(),
        ..ObjectStoreOptions::default()
    };
    let blobs = BlobStore::open(location, &options)?;
    blobs.check_access().await.map_err(|error| {
        let mut failure = Failure::from(error);
        failure.message = format!("cannot use the blob store {location}: {}", failure.message);
        failure
    })?;
    Ok(blobs)
}

async fn open_engine(
    project: Project,
    database: Option<&str>,
    blobs: &BlobArgs,
    mut config: EngineConfig,
) -> Result<Engine, Failure> {
    let store = open_store(&project.dir, database).await?;
    let blobs = open_blobs(&project, blobs).await?;
    // A database file or blob directory inside the project is never part
    // of what a run pins (it changes with every run).
    if let Some(sluice_store::Location::Sqlite(path)) = database.map(sluice_store::Location::parse)
    {
        let absolute = std::path::absolute(&path).unwrap_or(path);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut name = absolute.clone().into_os_string();
            name.push(suffix);
            config.unpinned.push(name.into());
        }
    }
    if !blobs.root().as_os_str().is_empty() {
        config
            .unpinned
            .push(std::path::absolute(blobs.root()).unwrap_or_else(|_| blobs.root().to_path_buf()));
    }
    let engine = Engine::new(store, blobs, project, Arc::new(SystemClock), config);
    engine.reap_lost_executors().await?;
    Ok(engine)
}
