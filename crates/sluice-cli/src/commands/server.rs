//! `sluice up` (the server) and `sluice token` (API tokens).

use std::collections::BTreeMap;
use std::sync::Arc;

use sluice_api::{ServeOptions, Server};
use sluice_engine::tokens::Role;
use sluice_engine::{Engine, EngineConfig, SystemClock};
use sluice_store::blobs::BlobStore;

use crate::args::{DatabaseArgs, OutputFormat, ProjectArgs, RoleArg, UpArgs};
use crate::{CommandResult, Failure, context, output};

/// Serves the project until SIGTERM or Ctrl-C, then shuts down gracefully.
pub async fn up(args: UpArgs) -> CommandResult {
    let drain_grace: sluice_core::duration::Duration =
        args.drain_grace.parse().map_err(|error| {
            Failure::bad_input(
                format!("--drain-grace `{}`: {error}", args.drain_grace),
                Some("write a duration like 30s or 2m".to_owned()),
            )
        })?;
    super::gc::check_retention_days(args.retention_days)?;
    let lease_ttl = parse_duration("--lease-ttl", &args.lease_ttl)?;
    let poll_interval = parse_duration("--poll-interval", &args.poll_interval)?;
    let labels = parse_labels(&args.labels)?;
    let project = context::load_project(&args.project.dir())?;
    let engine = context::open_server_on(
        project,
        args.database.database.as_deref(),
        &args.blobs,
        |config| {
            config.lease_ttl = lease_ttl;
            config.poll_interval = poll_interval;
        },
    )
    .await?;
    let options = ServeOptions {
        listen: args.listen,
        auth: args.auth,
        drain_grace: drain_grace.0,
        local_agent: !args.no_local_agent,
        labels,
        retention_days: args.retention_days,
    };
    let server = Server::bind(engine.clone(), options)
        .await
        .map_err(serve_failure)?
        .with_pages(sluice_web::router(engine.clone(), args.auth));
    let addr = server.local_addr().map_err(serve_failure)?;
    eprintln!(
        "sluice is serving {} on http://{addr} ({})",
        engine.project().dir.display(),
        if args.auth {
            "auth on"
        } else {
            "auth off, loopback only"
        }
    );
    server.run(shutdown_signal()).await.map_err(serve_failure)?;
    Ok(0)
}

/// A duration option (`30s`, `2m`); zero is refused.
pub(crate) fn parse_duration(option: &str, text: &str) -> Result<std::time::Duration, Failure> {
    let parsed: Result<sluice_core::duration::Duration, _> = text.parse();
    match parsed {
        Ok(duration) if !duration.0.is_zero() => Ok(duration.0),
        Ok(_) => Err(Failure::bad_input(
            format!("{option} `{text}` is zero"),
            Some("write a duration like 3s or 30s".to_owned()),
        )),
        Err(error) => Err(Failure::bad_input(
            format!("{option} `{text}`: {error}"),
            Some("write a duration like 30s or 2m".to_owned()),
        )),
    }
}

/// Labels written as `k=v,k2=v2` (empty for none).
pub(crate) fn parse_labels(text: &str) -> Result<BTreeMap<String, String>, Failure> {
    let mut labels = BTreeMap::new();
    for pair in text
        .split(',')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
    {
        match pair.split_once('=') {
            Some((key, value)) if !key.trim().is_empty() => {
                labels.insert(key.trim().to_owned(), value.trim().to_owned());
            }
            _ => {
                return Err(Failure::bad_input(
                    format!("--labels: `{pair}` is not `key=value`"),
                    Some("write labels like gpu=true,zone=eu".to_owned()),
                ));
            }
        }
    }
    Ok(labels)
}

fn serve_failure(error: sluice_api::ServeError) -> Failure {
    Failure {
        code: match error {
            sluice_api::ServeError::Insecure(_) | sluice_api::ServeError::Bind { .. } => 2,
            _ => 1,
        },
        hint: error.hint().map(str::to_owned),
        message: crate::error_chain(&error),
    }
}

/// Completes at the first SIGTERM or SIGINT.
pub(crate) async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let terminate = async {
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(error) => {
                tracing::error!(%error, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    tokio::select! {
        () = terminate => eprintln!("sluice: SIGTERM received, shutting down"),
        result = tokio::signal::ctrl_c() => {
            if result.is_ok() {
                eprintln!("sluice: interrupted, shutting down");
            }
        }
    }
}

/// An engine over a database only, for commands that need no pipelines.
async fn admin_engine(database: &DatabaseArgs, project: &ProjectArgs) -> Result<Engine, Failure> {
    let dir = project.dir();
    let store = context::open_store(&dir, database.database.as_deref()).await?;
    let project = sluice_engine::Project {
        dir: dir.clone(),
        pipelines: Default::default(),
    };
    Ok(Engine::new(
        store,
        BlobStore::new(dir.join(".sluice").join("blobs")),
        project,
        Arc::new(SystemClock),
        EngineConfig::for_project(&dir),
    ))
}

fn role(arg: RoleArg) -> Role {
    match arg {
        RoleArg::Viewer => Role::Viewer,
        RoleArg::Operator => Role::Operator,
        RoleArg::Admin => Role::Admin,
        RoleArg::Agent => Role::Agent,
    }
}

pub async fn token_create(
    name: &str,
    role_arg: RoleArg,
    database: &DatabaseArgs,
    project: &ProjectArgs,
) -> CommandResult {
    let engine = admin_engine(database, project).await?;
    let (record, token) = sluice_api::tokens::create(
        &engine,
        name,
        role(role_arg),
        &crate::commands::run::actor(),
    )
    .await
    .map_err(|error| {
        let detail = error.detail();
        Failure {
            code: if detail.code == "internal" { 1 } else { 2 },
            message: detail.message,
            hint: detail.hint,
        }
    })?;
    eprintln!(
        "created token `{}` with role `{}`; it is shown only now:",
        record.name, record.role
    );
    println!("{token}");
    Ok(0)
}

pub async fn token_list(
    format: OutputFormat,
    database: &DatabaseArgs,
    project: &ProjectArgs,
) -> CommandResult {
    let engine = admin_engine(database, project).await?;
    let tokens = engine.list_tokens().await?;
    match format {
        OutputFormat::Json => {
            let rows: Vec<serde_json::Value> = tokens
                .iter()
                .map(|token| {
                    serde_json::json!({
                        "name": token.name,
                        "role": token.role,
                        "created_at": token.created_at,
                        "created_by": token.created_by,
                        "revoked_at": token.revoked_at,
                    })
                })
                .collect();
            output::print_json(&rows)?;
        }
        OutputFormat::Table => {
            let rows: Vec<Vec<String>> = tokens
                .iter()
                .map(|token| {
                    vec![
                        token.name.clone(),
                        token.role.clone(),
                        output::time(Some(token.created_at)),
                        token.created_by.clone().unwrap_or_default(),
                        token
                            .revoked_at
                            .map(|at| output::time(Some(at)))
                            .unwrap_or_default(),
                    ]
                })
                .collect();
            print!(
                "{}",
                output::table(&["NAME", "ROLE", "CREATED", "BY", "REVOKED"], &rows)
            );
        }
    }
    Ok(0)
}

pub async fn token_revoke(
    name: &str,
    database: &DatabaseArgs,
    project: &ProjectArgs,
) -> CommandResult {
    let engine = admin_engine(database, project).await?;
    engine
        .revoke_token(name, &crate::commands::run::actor())
        .await?;
    eprintln!("revoked token `{name}`");
    Ok(0)
}
