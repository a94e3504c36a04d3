//! What every benchmark drives sluice with: the `sluice` binary, throwaway
//! projects, databases (an SQLite file, or a fresh PostgreSQL schema),
//! `sluice up` and `sluice agent` processes with their memory read from
//! `/proc`, and bounded waiting.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::Value;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, ConnectOptions, Connection, Executor};

/// What every benchmark is given.
#[derive(Clone, Debug)]
pub struct Options {
    /// The `sluice` binary under test.
    pub sluice: PathBuf,
    /// Small sizes, for development and the smoke test.
    pub quick: bool,
    /// A PostgreSQL database for the PostgreSQL variants; each benchmark
    /// works in a fresh schema of its own.
    pub postgres: Option<String>,
}

impl Options {
    /// `full` normally, `quick` with `--quick`.
    pub fn size(&self, full: usize, quick: usize) -> usize {
        if self.quick { quick } else { full }
    }
}

/// The `sluice` binary: `explicit` when given, otherwise the one next to
/// this binary, which is built first (in this binary's profile) when the
/// bench runs under cargo.
pub fn sluice_binary(explicit: Option<PathBuf>) -> Result<PathBuf> {
    if let Some(path) = explicit {
        if !path.is_file() {
            bail!(
                "the sluice binary {} does not exist; build it with `cargo build --release --bin sluice` or pass another --sluice",
                path.display()
            );
        }
        return Ok(path);
    }
    let me = std::env::current_exe()?;
    let release = me
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|name| name == "release");
    if let Ok(cargo) = std::env::var("CARGO") {
        let mut build = Command::new(cargo);
        build.args(["build", "--quiet", "-p", "sluice-cli", "--bin", "sluice"]);
        if release {
            build.arg("--release");
        }
        let status = build.status().context("cannot run cargo build")?;
        if !status.success() {
            bail!("building sluice failed");
        }
    }
    let binary = me.with_file_name("sluice");
    if !binary.exists() {
        bail!(
            "{} not found; build it with `cargo build --release --bin sluice` or pass --sluice PATH",
            binary.display()
        );
    }
    Ok(binary)
}

/// A throwaway project directory.
pub struct Project {
    pub dir: tempfile::TempDir,
}

impl Project {
    pub fn new() -> Result<Project> {
        let dir = tempfile::Builder::new().prefix("sluice-bench").tempdir()?;
        std::fs::create_dir_all(dir.path().join("pipelines"))?;
        Ok(Project { dir })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn path_str(&self) -> Result<&str> {
        self.path()
            .to_str()
            .context("the temporary path is not UTF-8")
    }

    pub fn pipeline(&self, name: &str, yaml: &str) -> Result<()> {
        std::fs::write(self.path().join(format!("pipelines/{name}.yaml")), yaml)?;
        Ok(())
    }

    /// `sluice ARGS --project DIR [--database URL]`, ready to run.
    pub fn command(&self, sluice: &Path, args: &[&str], database: &Database) -> Command {
        let mut command = Command::new(sluice);
        command
            .args(args)
            .arg("--project")
            .arg(self.path())
            .env("NO_COLOR", "1")
            .env_remove("SLUICE_PROJECT")
            .env_remove("SLUICE_SERVER")
            .env_remove("SLUICE_TOKEN")
            .env_remove("SLUICE_DATABASE_URL")
            .stdin(Stdio::null());
        if let Some(url) = &database.url {
            command.arg("--database").arg(url);
        }
        command
    }
}

/// The database a benchmark works on: the project's SQLite file (`url` is
/// `None`), or a schema of its own in a PostgreSQL database.
#[derive(Debug)]
pub struct Database {
    pub url: Option<String>,
    /// The schema to drop at the end, with the database it lives in.
    schema: Option<(PgConnectOptions, String)>,
}

impl Database {
    pub fn sqlite() -> Database {
        Database {
            url: None,
            schema: None,
        }
    }

    /// A fresh schema in the PostgreSQL database at `url`; [`Database::drop_schema`]
    /// removes it.
    pub async fn postgres(url: &str, purpose: &str) -> Result<Database> {
        let options = PgConnectOptions::from_str(url)
            .with_context(|| format!("--postgres {url} is not a PostgreSQL URL"))?;
        let name = format!("sluice_bench_{purpose}_{}", uuid::Uuid::now_v7().simple());
        let mut connection = options
            .connect()
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {url}"))?;
        connection
            .execute(AssertSqlSafe(format!("CREATE SCHEMA {name}")))
            .await
            .with_context(|| format!("cannot create schema {name}"))?;
        connection.close().await?;
        let separator = if url.contains('?') { '&' } else { '?' };
        Ok(Database {
            url: Some(format!("{url}{separator}options=-c%20search_path%3D{name}")),
            schema: Some((options, name)),
        })
    }

    /// The location `sluice_store` opens: the URL, or the project's file.
    pub fn location(&self, project: &Project) -> String {
        match &self.url {
            Some(url) => url.clone(),
            None => project
                .path()
                .join(".sluice/sluice.db")
                .to_string_lossy()
                .into_owned(),
        }
    }

    pub fn name(&self) -> &'static str {
        if self.url.is_some() {
            "PostgreSQL"
        } else {
            "SQLite"
        }
    }

    /// Drops the PostgreSQL schema, if any.
    pub async fn drop_schema(&self) -> Result<()> {
        if let Some((options, name)) = &self.schema {
            let mut connection = options.connect().await?;
            connection
                .execute(AssertSqlSafe(format!(
                    "DROP SCHEMA IF EXISTS {name} CASCADE"
                )))
                .await?;
            connection.close().await?;
        }
        Ok(())
    }
}

/// A background `sluice` process; killed when dropped.
pub struct Process {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

/// How much of a process's stderr is kept.
const STDERR_KEPT: usize = 64 * 1024;

impl Process {
    pub fn spawn(mut command: Command) -> Result<Process> {
        command.stdout(Stdio::null()).stderr(Stdio::piped());
        let mut child = command.spawn().context("cannot start sluice")?;
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = BufReader::new(child.stderr.take().context("no stderr pipe")?);
        let sink = stderr.clone();
        std::thread::Builder::new()
            .name("stderr".to_owned())
            .spawn(move || {
                let mut line = String::new();
                while pipe.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                    let mut kept = sink.lock().expect("stderr lock");
                    kept.push_str(&line);
                    if kept.len() > STDERR_KEPT {
                        let cut = kept.len() - STDERR_KEPT / 2;
                        let cut = (cut..kept.len())
                            .find(|&i| kept.is_char_boundary(i))
                            .unwrap_or(kept.len());
                        kept.drain(..cut);
                    }
                    line.clear();
                }
            })?;
        Ok(Process { child, stderr })
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn stderr(&self) -> String {
        self.stderr.lock().expect("stderr lock").clone()
    }

    /// Fails with the process's stderr when it has exited.
    pub fn check_alive(&mut self, what: &str) -> Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!("{what} exited ({status}):\n{}", self.stderr());
        }
        Ok(())
    }

    /// `VmRSS` (now) and `VmHWM` (peak) in KiB.
    pub fn memory_kib(&self) -> Result<(u64, u64)> {
        memory_kib(self.pid())
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `VmRSS` and `VmHWM` of a process, in KiB.
pub fn memory_kib(pid: u32) -> Result<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let field = |name: &str| -> Result<u64> {
        let line = status
            .lines()
            .find(|line| line.starts_with(name))
            .with_context(|| format!("no {name} in /proc/{pid}/status"))?;
        Ok(line
            .split_whitespace()
            .nth(1)
            .context("an empty memory line")?
            .parse()?)
    };
    Ok((field("VmRSS:")?, field("VmHWM:")?))
}

/// A running `sluice up` and its address.
pub struct Server {
    pub process: Process,
    pub base: String,
    pub http: Http,
}

impl Server {
    /// Starts `sluice up` on a free loopback port and waits until it says
    /// where it listens.
    pub async fn start(
        options: &Options,
        project: &Project,
        database: &Database,
        extra: &[&str],
        token: Option<&str>,
    ) -> Result<Server> {
        let mut args = vec!["up", "--listen", "127.0.0.1:0"];
        args.extend_from_slice(extra);
        let mut process = Process::spawn(project.command(&options.sluice, &args, database))?;
        let mut base = String::new();
        wait_until("sluice up to listen", Duration::from_secs(60), || {
            let text = process.stderr();
            match text.find("http://") {
                Some(start) => {
                    base = text[start..]
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    Ok(true)
                }
                None => process.check_alive("sluice up").map(|()| false),
            }
        })
        .await?;
        let http = Http::new(&base, token)?;
        Ok(Server {
            process,
            base,
            http,
        })
    }

    /// A typed client of this server.
    pub fn client(&self, token: Option<&str>) -> Result<sluice_client::Client> {
        Ok(sluice_client::Client::new(
            &self.base,
            token.map(str::to_owned),
        )?)
    }
}

/// Creates an API token with `role` on the project's database.
pub fn token(
    options: &Options,
    project: &Project,
    database: &Database,
    name: &str,
    role: &str,
) -> Result<String> {
    let output = project
        .command(
            &options.sluice,
            &["token", "create", "--name", name, "--role", role],
            database,
        )
        .output()?;
    if !output.status.success() {
        bail!(
            "sluice token create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(String::from_utf8(output.stdout)?.trim().to_owned())
}

/// Starts `sluice agent` against `server`.
pub fn agent(
    options: &Options,
    project: &Project,
    server: &Server,
    token: &str,
    name: &str,
    concurrency: usize,
) -> Result<Process> {
    let concurrency = concurrency.to_string();
    let mut command = project.command(
        &options.sluice,
        &[
            "agent",
            "--server",
            &server.base,
            "--token",
            token,
            "--name",
            name,
            "--concurrency",
            &concurrency,
            "--drain-grace",
            "2s",
        ],
        &Database::sqlite(),
    );
    command.env("SLUICE_LOG", "warn");
    Process::spawn(command)
}

/// Plain GETs against a server, for listings with any query string.
#[derive(Clone, Debug)]
pub struct Http {
    client: reqwest::Client,
    base: String,
    token: Option<String>,
}

impl Http {
    pub fn new(base: &str, token: Option<&str>) -> Result<Http> {
        Ok(Http {
            client: reqwest::Client::builder()
                .timeout(Duration::from_secs(300))
                .build()?,
            base: base.trim_end_matches('/').to_owned(),
            token: token.map(str::to_owned),
        })
    }

    /// `GET path` (with its query string) as JSON; fails on a non-2xx.
    pub async fn get(&self, path: &str) -> Result<Value> {
        let body = self.get_text(path).await?;
        serde_json::from_str(&body).with_context(|| format!("GET {path}: the reply is not JSON"))
    }

    /// `GET path`'s body, whatever its type (a web page, say).
    pub async fn get_text(&self, path: &str) -> Result<String> {
        let mut request = self.client.get(format!("{}{path}", self.base));
        if let Some(token) = &self.token {
            request = request.bearer_auth(token);
        }
        let response = request
            .send()
            .await
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        let body = response.text().await?;
        if !status.is_success() {
            bail!("GET {path}: {status}: {body}");
        }
        Ok(body)
    }

    /// The status of `GET path` without reading a JSON body.
    pub async fn status(&self, path: &str) -> Result<u16> {
        let response = self
            .client
            .get(format!("{}{path}", self.base))
            .send()
            .await?;
        Ok(response.status().as_u16())
    }
}

/// Polls `condition` until it holds; an error after `timeout`.
pub async fn wait_until(
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        if condition()? {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {what}");
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

/// Waits until every run of `pipeline` on `server` is finished and `count`
/// of them exist; returns the per-status counts.
pub async fn wait_for_runs(
    http: &Http,
    pipeline: &str,
    count: u64,
    timeout: Duration,
) -> Result<Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let page = http
            .get(&format!(
                "/api/pipeline_runs?pipeline={pipeline}&limit=1&summary=true"
            ))
            .await?;
        let summary = &page["summary"];
        let of = |status: &str| summary[status].as_u64().unwrap_or(0);
        let finished = of("completed") + of("failed") + of("cancelled");
        if finished >= count {
            if of("completed") < count {
                bail!("runs of {pipeline} did not all complete: {summary}");
            }
            return Ok(summary.clone());
        }
        if Instant::now() > deadline {
            bail!("timed out after {timeout:?} waiting for {count} runs of {pipeline}: {summary}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The wall clock as seconds since the Unix epoch, comparable with bash's
/// `$EPOCHREALTIME` in the blocks.
pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs_f64())
        .unwrap_or(0.0)
}
