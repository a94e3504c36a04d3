//! Test support for servers and agents as real processes on loopback: a
//! `sluice up` with auth and a short lease TTL on SQLite or on a schema of
//! its own in PostgreSQL, `sluice agent` processes talking to it, and the
//! HTTP calls a test makes as an operator or as an agent.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{self, PgSchema, Project, wait_until};

/// Makes a test of each scenario (a function taking a [`Backend`]) in
/// module `sqlite` and in module `postgres`.
macro_rules! on_both_backends {
    ($($scenario:ident),* $(,)?) => {
        mod sqlite {
            $(#[test]
            fn $scenario() {
                super::$scenario($crate::fleet::Backend::Sqlite);
            })*
        }
        mod postgres {
            $(#[test]
            fn $scenario() {
                super::$scenario($crate::fleet::Backend::Postgres);
            })*
        }
    };
}

pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A `sluice` process whose stderr is collected; killed when dropped.
pub struct Process {
    child: Child,
    stderr: Arc<Mutex<String>>,
}

impl Process {
    pub fn start(project: &Project, args: &[&str]) -> Process {
        Process::spawned(project.spawn(args))
    }

    /// Collects the stderr of a spawned `sluice` (stderr piped).
    pub fn spawned(mut child: Child) -> Process {
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = BufReader::new(child.stderr.take().expect("stderr"));
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while pipe.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                sink.lock().expect("lock").push_str(&line);
                line.clear();
            }
        });
        Process { child, stderr }
    }

    pub fn log(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, signal).expect("a signal");
    }

    pub fn wait_exit(&mut self) -> std::process::ExitStatus {
        let mut status = None;
        wait_until("the process to exit", TIMEOUT, || {
            status = self.child.try_wait().expect("wait");
            status.is_some()
        });
        status.expect("an exit status")
    }

    /// SIGKILL, and wait until the process is gone.
    pub fn kill(&mut self) {
        self.signal(nix::sys::signal::Signal::SIGKILL);
        self.wait_exit();
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Where a test's servers keep their ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// The project's own SQLite file.
    Sqlite,
    /// A schema of its own in the PostgreSQL test database.
    Postgres,
}

/// How a [`World`] starts.
pub struct Setup<'a> {
    pub pipelines: &'a [(&'a str, &'a str)],
    /// `--database` of every command; the project's SQLite file when `None`.
    pub database: Option<String>,
    /// Further arguments of `sluice up` (`--lease-ttl` is 3s unless given).
    pub server_args: &'a [&'a str],
}

/// A project, a server with auth on, an operator token and an agent token.
pub struct World {
    pub project: Project,
    pub server: Process,
    pub base: String,
    pub operator: String,
    pub agent: String,
    pub database: Option<String>,
    server_args: Vec<String>,
    /// Dropped after the server: fields drop in declaration order.
    pub schema: Option<PgSchema>,
}

/// Creates a token in the world's database and returns it.
fn token(project: &Project, database: Option<&str>, name: &str, role: &str) -> String {
    let mut args = vec!["token", "create", "--name", name, "--role", role];
    if let Some(database) = database {
        args.extend(["--database", database]);
    }
    let created = project.sluice(&args);
    assert!(created.status.success(), "{created:?}");
    String::from_utf8(created.stdout)
        .expect("UTF-8")
        .trim()
        .to_owned()
}

/// The base URL a starting server prints (`listening on http://…`).
fn wait_for_base(server: &Process) -> String {
    let mut base = String::new();
    wait_until("the server to say where it listens", TIMEOUT, || {
        let text = server.log();
        match text.find("http://") {
            Some(start) => {
                base = text[start..]
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                true
            }
            None => false,
        }
    });
    base
}

impl World {
    /// A world on `backend`; `None` when that is PostgreSQL and no test
    /// database is configured (see `common::postgres_url`).
    pub fn start(backend: Backend, pipelines: &[(&str, &str)]) -> Option<World> {
        World::on(backend, pipelines, &[])
    }

    /// [`World::start`] with further arguments of `sluice up`.
    pub fn on(backend: Backend, pipelines: &[(&str, &str)], server_args: &[&str]) -> Option<World> {
        let schema = match backend {
            Backend::Sqlite => None,
            Backend::Postgres => Some(PgSchema::create("agents on PostgreSQL")?),
        };
        let mut world = World::with(Setup {
            pipelines,
            database: schema.as_ref().map(|schema| schema.database.clone()),
            server_args,
        });
        world.schema = schema;
        Some(world)
    }

    pub fn with(setup: Setup<'_>) -> World {
        let project = Project::new();
        for (name, yaml) in setup.pipelines {
            project.pipeline(name, yaml);
        }
        let database = setup.database;
        let operator = token(&project, database.as_deref(), "ops", "operator");
        let agent = token(&project, database.as_deref(), "agents", "agent");
        let mut server_args: Vec<String> = setup
            .server_args
            .iter()
            .map(|arg| (*arg).to_owned())
            .collect();
        if !server_args.iter().any(|arg| arg == "--lease-ttl") {
            server_args.extend(["--lease-ttl".to_owned(), "3s".to_owned()]);
        }
        if let Some(database) = &database {
            server_args.extend(["--database".to_owned(), database.clone()]);
        }
        let (server, base) = start_server(&project, "127.0.0.1:0", &server_args);
        World {
            project,
            server,
            base,
            operator,
            agent,
            database,
            server_args,
            schema: None,
        }
    }

    /// Another server on the same database and project, on a port of its
    /// own: its process and base URL.
    pub fn another_server(&self, extra: &[&str]) -> (Process, String) {
        let mut args = self.server_args.clone();
        args.extend(extra.iter().map(|arg| (*arg).to_owned()));
        start_server(&self.project, "127.0.0.1:0", &args)
    }

    /// Kills the server with SIGKILL.
    pub fn crash_server(&mut self) {
        self.server.kill();
    }

    /// Starts the server again on the same address and database, as a
    /// supervisor restarting it would.
    pub fn restart_server(&mut self) {
        let listen = self
            .base
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .to_owned();
        let (server, base) = start_server(&self.project, &listen, &self.server_args);
        assert_eq!(base, self.base, "the restarted server listens where it did");
        self.server = server;
    }

    /// A `sluice agent` talking to this world's server.
    pub fn agent(&self, name: &str, labels: &str) -> Process {
        self.agent_at(&self.base, name, labels)
    }

    /// A `sluice agent` talking to the server at `base`.
    pub fn agent_at(&self, base: &str, name: &str, labels: &str) -> Process {
        Process::start(
            &self.project,
            &[
                "agent",
                "--server",
                base,
                "--token",
                &self.agent,
                "--labels",
                labels,
                "--name",
                name,
                "--drain-grace",
                "5s",
            ],
        )
    }

    /// A `sluice agent` with no project directory at all: started in
    /// `home` (an empty directory of its own), with its work directory
    /// there, so every file a try sees was fetched from the server.
    pub fn agent_without_project(&self, name: &str, labels: &str, home: &Path) -> Process {
        let child = std::process::Command::new(common::BIN)
            .args([
                "agent",
                "--server",
                &self.base,
                "--token",
                &self.agent,
                "--labels",
                labels,
                "--name",
                name,
                "--work-dir",
            ])
            .arg(home.join("work"))
            .current_dir(home)
            .env("TEST_DIR", self.project.path())
            .env("NO_COLOR", "1")
            .env_remove("SLUICE_PROJECT")
            .env_remove("SLUICE_SERVER")
            .env_remove("SLUICE_TOKEN")
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn sluice agent");
        Process::spawned(child)
    }

    /// A request to the server at `base`; `None` when it could not be made
    /// (the server is down).
    pub fn try_call_at(
        &self,
        base: &str,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> Option<(u16, Value)> {
        let client = reqwest::blocking::Client::builder()
            .timeout(TIMEOUT)
            .build()
            .expect("an HTTP client");
        let mut request = client
            .request(method, format!("{base}{path}"))
            .bearer_auth(token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().ok()?;
        let status = response.status().as_u16();
        let text = response.text().ok()?;
        Some((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    pub fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        self.try_call_at(&self.base, method, path, token, body)
            .unwrap_or_else(|| panic!("no answer from {}{path}", self.base))
    }

    pub fn get(&self, path: &str) -> Value {
        self.get_at(&self.base, path)
    }

    pub fn get_at(&self, base: &str, path: &str) -> Value {
        let (status, body) = self
            .try_call_at(base, reqwest::Method::GET, path, &self.operator, None)
            .unwrap_or_else(|| panic!("no answer from {base}{path}"));
        assert_eq!(status, 200, "GET {path}: {body}");
        body
    }

    pub fn trigger(&self, pipeline: &str) -> String {
        self.trigger_with(pipeline, json!({}))
    }

    /// Triggers a run with these variables and returns its id.
    pub fn trigger_with(&self, pipeline: &str, variables: Value) -> String {
        let (status, body) = self.call(
            reqwest::Method::POST,
            &format!("/api/pipelines/{pipeline}/runs"),
            &self.operator,
            Some(json!({"variables": variables})),
        );
        assert_eq!(status, 201, "{body}");
        body["pipeline_run"]["id"]
            .as_str()
            .expect("an id")
            .to_owned()
    }

    pub fn details(&self, run: &str) -> Value {
        self.get(&format!("/api/pipeline_runs/{run}"))
    }

    pub fn block_run(&self, run: &str, block: &str) -> Value {
        self.details(run)["attempts"][0]["block_runs"]
            .as_array()
            .expect("block runs")
            .iter()
            .find(|block_run| block_run["block"] == block)
            .expect("the block run")
            .clone()
    }

    pub fn wait_for_run(&self, run: &str, wanted: &str) {
        wait_until(&format!("run {run} to be {wanted}"), TIMEOUT, || {
            self.details(run)["pipeline_run"]["status"] == wanted
        });
    }

    /// The text of every stored log line of a block run's try, in order.
    pub fn log_lines(&self, block_run: &str, try_number: u64) -> Vec<String> {
        let mut lines = Vec::new();
        let mut after = String::new();
        loop {
            let page = self.get(&format!(
                "/api/block_runs/{block_run}/logs?try={try_number}&limit=1000{after}"
            ));
            let chunk: Vec<String> = page["lines"]
                .as_array()
                .expect("lines")
                .iter()
                .filter_map(|line| line["text"].as_str().map(str::to_owned))
                .collect();
            if chunk.is_empty() {
                return lines;
            }
            lines.extend(chunk);
            after = format!("&after_seq={}", page["next_after_seq"]);
        }
    }
}

/// Starts `sluice up --listen LISTEN --auth ARGS` and waits until it says
/// where it listens.
fn start_server(project: &Project, listen: &str, args: &[String]) -> (Process, String) {
    let mut all = vec!["up", "--listen", listen, "--auth"];
    all.extend(args.iter().map(String::as_str));
    let server = Process::start(project, &all);
    let base = wait_for_base(&server);
    (server, base)
}
