//! The world of the browser tests: a real `sluice up` with auth on, its API
//! reached with a bearer token or with the browser's session cookie,
//! screenshots under the target directory, and a runner that runs every
//! scenario, keeps going after a failure and reports them all at the end.

use std::io::{BufRead, BufReader};
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::common::{BIN, Project};
use crate::webdriver::{Session, wait};

/// How long a page, a run or a live update may take to appear.
pub const TIMEOUT: Duration = Duration::from_secs(30);

/// A running `sluice up --auth` on a free loopback port, killed when dropped.
pub struct Server {
    child: Child,
    pub base: String,
    stderr: Arc<Mutex<String>>,
}

impl Server {
    pub fn start(project: &Project) -> Result<Server> {
        let mut child = project.spawn(&["up", "--listen", "127.0.0.1:0", "--auth"]);
        let stderr = Arc::new(Mutex::new(String::new()));
        let Some(pipe) = child.stderr.take() else {
            let _ = child.kill();
            let _ = child.wait();
            anyhow::bail!("sluice up has no stderr to read");
        };
        let mut pipe = BufReader::new(pipe);
        let sink = stderr.clone();
        std::thread::spawn(move || {
            let mut line = String::new();
            while pipe.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                sink.lock().expect("lock").push_str(&line);
                line.clear();
            }
        });
        let mut base = String::new();
        let listening = wait("the server to say where it listens", TIMEOUT, || {
            let text = stderr.lock().expect("lock").clone();
            Ok(match text.find("http://") {
                Some(start) => {
                    base = text[start..]
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .trim_end_matches('/')
                        .to_owned();
                    true
                }
                None => false,
            })
        });
        let server = Server {
            child,
            base,
            stderr,
        };
        listening.with_context(|| format!("sluice up said:\n{}", server.log()))?;
        Ok(server)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn log(&self) -> String {
        self.stderr.lock().expect("lock").clone()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `sluice token create --name NAME --role ROLE`: the secret it prints.
pub fn create_token(project: &Project, name: &str, role: &str) -> Result<String> {
    let created = project.sluice(&["token", "create", "--name", name, "--role", role]);
    ensure!(created.status.success(), "token create: {created:?}");
    Ok(String::from_utf8(created.stdout)?.trim().to_owned())
}

/// A client that does not follow redirects, so tests see them.
pub fn http() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("an HTTP client")
}

/// The REST API as an API client sees it: a bearer token.
pub struct Api<'a> {
    pub server: &'a Server,
    pub token: String,
}

impl Api<'_> {
    pub fn get(&self, path: &str) -> Result<Value> {
        let response = http()
            .get(self.server.url(path))
            .bearer_auth(&self.token)
            .send()
            .with_context(|| format!("GET {path}"))?;
        let status = response.status();
        let body = response.text()?;
        ensure!(status.is_success(), "GET {path}: {status} {body}");
        serde_json::from_str(&body).with_context(|| format!("GET {path}: not JSON"))
    }

    pub fn post(&self, path: &str, body: Value) -> Result<Value> {
        let response = http()
            .post(self.server.url(path))
            .bearer_auth(&self.token)
            .json(&body)
            .send()
            .with_context(|| format!("POST {path}"))?;
        let status = response.status();
        let body = response.text()?;
        ensure!(status.is_success(), "POST {path}: {status} {body}");
        serde_json::from_str(&body).with_context(|| format!("POST {path}: not JSON"))
    }

    /// Triggers a run of `pipeline` with variables; its id.
    pub fn trigger(&self, pipeline: &str, variables: Value) -> Result<String> {
        let created = self.post(
            &format!("/api/pipelines/{pipeline}/runs"),
            serde_json::json!({ "variables": variables }),
        )?;
        Ok(created["pipeline_run"]["id"]
            .as_str()
            .context("the new run has no id")?
            .to_owned())
    }

    pub fn run(&self, id: &str) -> Result<Value> {
        self.get(&format!("/api/pipeline_runs/{id}"))
    }

    pub fn wait_for_run_status(&self, id: &str, wanted: &str) -> Result<()> {
        wait(&format!("run {id} to be {wanted}"), TIMEOUT, || {
            Ok(self.run(id)?["pipeline_run"]["status"] == wanted)
        })
    }

    /// The ids of the queued block runs, in claim order.
    pub fn queue_order(&self) -> Result<Vec<String>> {
        Ok(self.get("/api/queue")?["block_runs"]
            .as_array()
            .context("no block_runs in the queue")?
            .iter()
            .filter_map(|entry| entry["block_run_id"].as_str().map(str::to_owned))
            .collect())
    }
}

/// The `Cookie` header value that carries the browser's session.
pub fn session_cookie(session: &Session) -> Result<String> {
    let cookies = session.cookies()?;
    let cookie = cookies
        .iter()
        .find(|cookie| cookie["name"] == "sluice_session")
        .context("no sluice_session cookie in the browser")?;
    Ok(format!(
        "sluice_session={}",
        cookie["value"]
            .as_str()
            .context("the cookie has no value")?
    ))
}

/// The page's CSRF token from `<meta name="csrf-token">`.
pub fn csrf_token(session: &Session) -> Result<String> {
    let meta = session
        .find("meta[name=csrf-token]")?
        .context("the page has no <meta name=csrf-token>")?;
    session
        .attribute(&meta, "content")?
        .filter(|token| !token.is_empty())
        .context("the csrf-token meta is empty")
}

/// Fails with the console's errors since the last check, if any.
pub fn no_console_errors(session: &Session, page: &str) -> Result<()> {
    let errors: Vec<String> = session
        .console()?
        .into_iter()
        .filter(|entry| entry["level"] == "SEVERE")
        .map(|entry| entry["message"].as_str().unwrap_or_default().to_owned())
        .collect();
    if !errors.is_empty() {
        bail!(
            "the browser console has errors on {page}:\n  {}",
            errors.join("\n  ")
        );
    }
    Ok(())
}

/// Where screenshots go: `target/ui-screenshots/`, and with
/// `SLUICE_UPDATE_SCREENSHOTS=1` also the documentation's `docs/ui/`.
pub struct Screenshots {
    directory: PathBuf,
    documentation: Option<PathBuf>,
}

impl Screenshots {
    pub fn new() -> Result<Screenshots> {
        // The binary is `target/<profile>/sluice`.
        let target = Path::new(BIN)
            .parent()
            .and_then(Path::parent)
            .context("the sluice binary is not under a target directory")?;
        let directory = target.join("ui-screenshots");
        std::fs::create_dir_all(&directory)
            .with_context(|| format!("creating {}", directory.display()))?;
        let documentation = (std::env::var("SLUICE_UPDATE_SCREENSHOTS").as_deref() == Ok("1"))
            .then(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/ui"));
        Ok(Screenshots {
            directory,
            documentation,
        })
    }

    /// Saves the viewport as `NAME.png`.
    pub fn save(&self, session: &Session, name: &str) -> Result<()> {
        let png = session.screenshot()?;
        ensure!(png.starts_with(b"\x89PNG"), "the screenshot is not a PNG");
        let path = self.directory.join(format!("{name}.png"));
        std::fs::write(&path, &png).with_context(|| format!("writing {}", path.display()))?;
        if let Some(documentation) = &self.documentation {
            std::fs::create_dir_all(documentation)?;
            let path = documentation.join(format!("{name}.png"));
            std::fs::write(&path, &png).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }

    /// Saves a screenshot of a failure, which is never copied to the docs.
    pub fn save_failure(&self, session: &Session, name: &str) {
        if let Ok(png) = session.screenshot() {
            let _ = std::fs::write(self.directory.join(format!("failed-{name}.png")), png);
        }
    }

    pub fn directory(&self) -> &Path {
        &self.directory
    }
}

/// Runs scenarios one after another on one browser session and collects
/// their failures, so one broken page does not hide the others.
pub struct Scenarios<'a> {
    session: &'a Session,
    screenshots: &'a Screenshots,
    passed: Vec<&'static str>,
    failed: Vec<(&'static str, String)>,
}

impl<'a> Scenarios<'a> {
    pub fn new(session: &'a Session, screenshots: &'a Screenshots) -> Scenarios<'a> {
        Scenarios {
            session,
            screenshots,
            passed: Vec::new(),
            failed: Vec::new(),
        }
    }

    pub fn run(&mut self, name: &'static str, scenario: impl FnOnce() -> Result<()>) {
        let started = std::time::Instant::now();
        let outcome = std::panic::catch_unwind(AssertUnwindSafe(scenario));
        let failure = match outcome {
            Ok(Ok(())) => None,
            Ok(Err(error)) => Some(format!("{error:#}")),
            Err(panic) => Some(
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                    .unwrap_or_else(|| "panicked".to_owned()),
            ),
        };
        match failure {
            None => {
                eprintln!("browser: {name}: ok ({:.1?})", started.elapsed());
                self.passed.push(name);
            }
            Some(message) => {
                eprintln!("browser: {name}: FAILED ({:.1?})", started.elapsed());
                self.screenshots
                    .save_failure(self.session, &name.replace(' ', "-"));
                // Do not let one scenario's console errors fail the next.
                let _ = self.session.console();
                self.failed.push((name, message));
            }
        }
    }

    /// Panics with every failure, if there was one.
    pub fn finish(self, server_log: &str) {
        if self.failed.is_empty() {
            return;
        }
        let mut report = format!(
            "{} of {} browser scenarios failed (screenshots in {}):\n",
            self.failed.len(),
            self.failed.len() + self.passed.len(),
            self.screenshots.directory().display()
        );
        for (name, message) in &self.failed {
            report.push_str(&format!("\n--- {name}\n{message}\n"));
        }
        let tail: Vec<&str> = server_log.lines().rev().take(40).collect();
        report.push_str("\n--- the server's last log lines\n");
        for line in tail.into_iter().rev() {
            report.push_str(line);
            report.push('\n');
        }
        panic!("{report}");
    }
}
