//! The web UI in a real browser: headless Chromium, driven over WebDriver
//! by `chromedriver`, against a real `sluice up --auth` on a free port.
//!
//! One test, one server, one browser session: the scenarios run one after
//! another (each reports on its own, so a broken page does not hide the
//! others) and save a screenshot of every page under
//! `target/ui-screenshots/` (`SLUICE_UPDATE_SCREENSHOTS=1` also writes them
//! to `docs/ui/`). The test needs `/usr/bin/chromium` and
//! `/usr/bin/chromedriver` (`apt-get install chromium chromium-driver`, or
//! `SLUICE_CHROMIUM` and `SLUICE_CHROMEDRIVER`); `SLUICE_SKIP_BROWSER=1`
//! skips it on a machine without them. CI runs it.

mod common;
#[path = "browser/harness.rs"]
mod harness;
#[path = "browser/pages.rs"]
mod pages;
#[path = "browser/runs.rs"]
mod runs;
#[path = "browser/webdriver.rs"]
mod webdriver;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use common::Project;
use harness::{Api, Screenshots, Server, no_console_errors};
use serde_json::Value;
use webdriver::{Browser, Driver, Session, wait};

/// A pipeline that fails on its first attempt, with a data output, an
/// artifact and a secret variable.
const ETL: &str = r#"
variables:
  region: emea
  token: {default: "hush-token-4711", secret: true}
blocks:
  extract:
    run: |
      echo "extracting ${{ vars.region }}"
      echo "rows=3" >> "$SLUICE_OUTPUT"
      printf 'id,name\n1,a\n2,b\n3,c\n' > "$SLUICE_DATA"
      echo "summary of ${{ vars.region }}" > "$SLUICE_ARTIFACTS/summary.txt"
  broken:
    needs: [extract]
    run: |
      echo "broken sees $SLUICE_VAR_REGION"
      test "$SLUICE_ATTEMPT" -ge 2
  load:
    needs: [broken]
    run: echo "loaded"
"#;

/// A block that prints a line (and a red one), then waits for the file
/// `$TEST_DIR/gates/GATE` (at most a minute), then prints another.
const GATE: &str = r#"
variables:
  gate: none
blocks:
  wait:
    run: |
      echo "first line"
      printf '\033[31mred alert\033[0m\n'
      for _ in $(seq 1 600); do
        if [ -f "$TEST_DIR/gates/$SLUICE_VAR_GATE" ]; then break; fi
        sleep 0.1
      done
      echo "second line"
  after:
    needs: [wait]
    run: echo "after the gate"
"#;

/// What the scenarios share: the server, the API as an operator, the
/// browser and the runs seeded before the server started.
pub struct World {
    pub project: Project,
    pub server: Server,
    pub operator: String,
    pub viewer: String,
    pub session: Session,
    pub screenshots: Screenshots,
    /// Completed runs of `hello`.
    pub hello_runs: Vec<String>,
    /// The failed run of `etl` (attempt 1 fails at `broken`).
    pub etl_run: String,
}

impl World {
    pub fn api(&self) -> Api<'_> {
        Api {
            server: &self.server,
            token: self.operator.clone(),
        }
    }

    /// Opens a page after checking the console of the page it leaves, and
    /// waits for its `<main id="content">`.
    pub fn visit(&self, path: &str) -> Result<()> {
        let leaving = self.session.current_path().unwrap_or_default();
        no_console_errors(&self.session, &leaving)?;
        self.session.goto(&self.server.url(path))?;
        // Pages are rendered on the server: once loaded, the main element
        // is there, so a page that lacks it fails fast.
        self.session
            .wait_for("main#content", Duration::from_secs(5))
            .with_context(|| format!("opening {path}"))?;
        Ok(())
    }

    /// Creates the file a `gate` block waits for.
    pub fn open_gate(&self, gate: &str) -> Result<()> {
        std::fs::write(self.gate_path(gate), "open\n").context("opening a gate")
    }

    fn gate_path(&self, gate: &str) -> PathBuf {
        self.project.path().join("gates").join(gate)
    }

    /// `document.querySelectorAll(css)` mapped through `expression`, where
    /// `e` is each element.
    pub fn collect(&self, css: &str, expression: &str) -> Result<Vec<Value>> {
        let script = format!(
            "return Array.from(document.querySelectorAll(arguments[0])).map(e => {expression});"
        );
        Ok(self
            .session
            .execute(&script, vec![Value::from(css)])?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Strings from [`World::collect`].
    pub fn strings(&self, css: &str, expression: &str) -> Result<Vec<String>> {
        Ok(self
            .collect(css, expression)?
            .into_iter()
            .map(|value| value.as_str().unwrap_or_default().to_owned())
            .collect())
    }
}

/// Runs `sluice run PIPELINE` on the project's database; the run id, after
/// checking its status.
fn seed(project: &Project, pipeline: &str, wanted: &str) -> Result<String> {
    let (_, run) = project.run(pipeline, &[]);
    ensure!(run["status"] == wanted, "seeding {pipeline}: {run:#}");
    Ok(run["id"]
        .as_str()
        .context("the seeded run has no id")?
        .to_owned())
}

fn world(driver: &Driver) -> Result<World> {
    let project = Project::new();
    project.pipeline("etl", ETL);
    project.pipeline("gate", GATE);
    project.pipeline("hello", "blocks:\n  greet:\n    run: echo hello\n");
    project.pipeline(
        "gpu",
        "blocks:\n  train:\n    labels: {gpu: 'true'}\n    run: 'true'\n",
    );
    project.pipeline(
        "nightly",
        "triggers:\n  - name: nightly\n    schedule: \"0 2 * * *\"\n    catchup: none\nblocks:\n  only:\n    run: 'true'\n",
    );
    std::fs::create_dir_all(project.path().join("gates"))?;
    let hello_runs = vec![
        seed(&project, "hello", "completed")?,
        seed(&project, "hello", "completed")?,
    ];
    let etl_run = seed(&project, "etl", "failed")?;
    let operator = harness::create_token(&project, "ops", "operator")?;
    let viewer = harness::create_token(&project, "watcher", "viewer")?;
    let server = Server::start(&project)?;
    let session = driver.session()?;
    Ok(World {
        project,
        server,
        operator,
        viewer,
        session,
        screenshots: Screenshots::new()?,
        hello_runs,
        etl_run,
    })
}

#[test]
fn the_web_ui_works_in_a_real_browser() {
    let browser = Browser::from_env();
    let missing = browser.missing();
    if !missing.is_empty() {
        if std::env::var("SLUICE_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!("browser tests skipped (SLUICE_SKIP_BROWSER=1)");
            return;
        }
        let missing: Vec<String> = missing
            .iter()
            .map(|path| path.display().to_string())
            .collect();
        panic!(
            "the browser tests need headless Chromium and chromedriver, and {} is missing\n\
             hint: install them with `apt-get install -y chromium chromium-driver` (.ci/run does), \
             point SLUICE_CHROMIUM and SLUICE_CHROMEDRIVER at them, \
             or set SLUICE_SKIP_BROWSER=1 to skip these tests on this machine",
            missing.join(" and ")
        );
    }
    let driver = Driver::start(browser).expect("chromedriver starts");
    let world = world(&driver).expect("the project, the server and the browser start");

    let mut scenarios = harness::Scenarios::new(&world.session, &world.screenshots);
    scenarios.run("sign in", || runs::sign_in(&world));
    scenarios.run("runs page filters", || runs::runs_page_filters(&world));
    scenarios.run("block status live", || runs::block_status_live(&world));
    scenarios.run("log viewer live", || runs::log_viewer_live(&world));
    scenarios.run("retry from a block", || runs::retry_from_block(&world));
    scenarios.run("queue drag", || pages::queue_drag(&world));
    scenarios.run("artifact download", || pages::artifact_download(&world));
    scenarios.run("every page", || pages::every_page(&world));
    scenarios.run("viewer and CSRF", || pages::viewer_and_csrf(&world));
    let log = world.server.log();
    scenarios.finish(&log);
}

/// Waits for the current page's URL path (and query) to satisfy `check`.
pub fn wait_for_path(
    session: &Session,
    what: &str,
    check: impl Fn(&str) -> bool,
) -> Result<String> {
    let mut path = String::new();
    wait(what, Duration::from_secs(15), || {
        path = session.current_path()?;
        Ok(check(&path))
    })
    .with_context(|| format!("the page is {path}"))?;
    Ok(path)
}
