//! A small W3C WebDriver client over blocking HTTP: enough to drive headless
//! Chromium through `chromedriver` from the browser tests (navigate, find
//! elements by CSS, click, type, run scripts, read cookies, the console log
//! and screenshots). Every call returns an error naming the command and
//! WebDriver's own message instead of panicking, so a scenario can report
//! what it was doing.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use base64::Engine as _;
use serde_json::{Value, json};

/// The key W3C WebDriver uses for element references.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// How long one WebDriver command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// Where the browser and its driver are, and how to start them.
pub struct Browser {
    pub chromium: PathBuf,
    pub chromedriver: PathBuf,
    /// The time zone the browser calls local (`TZ`), so that local time
    /// and UTC differ on the page.
    pub time_zone: String,
}

impl Browser {
    /// Debian's paths, or `SLUICE_CHROMIUM` and `SLUICE_CHROMEDRIVER`.
    pub fn from_env() -> Browser {
        let path = |variable: &str, default: &str| {
            std::env::var_os(variable)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from(default))
        };
        Browser {
            chromium: path("SLUICE_CHROMIUM", "/usr/bin/chromium"),
            chromedriver: path("SLUICE_CHROMEDRIVER", "/usr/bin/chromedriver"),
            time_zone: "Asia/Kolkata".to_owned(),
        }
    }

    /// The programs that are missing, by path.
    pub fn missing(&self) -> Vec<&Path> {
        [self.chromium.as_path(), self.chromedriver.as_path()]
            .into_iter()
            .filter(|path| !path.is_file())
            .collect()
    }
}

/// A running `chromedriver` on a port it chose, killed when dropped.
pub struct Driver {
    child: Child,
    base: String,
    http: reqwest::blocking::Client,
    browser: Browser,
}

impl Driver {
    /// Starts `chromedriver --port=0` and reads the port it bound.
    pub fn start(browser: Browser) -> Result<Driver> {
        let mut child = Command::new(&browser.chromedriver)
            .arg("--port=0")
            .env("TZ", &browser.time_zone)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {}", browser.chromedriver.display()))?;
        let stdout = child.stdout.take().context("chromedriver's stdout")?;
        let (sender, receiver) = mpsc::channel();
        std::thread::spawn(move || {
            // Keep reading to the end so chromedriver never blocks on a
            // full pipe; only the port line matters.
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(port) = line
                    .split("started successfully on port ")
                    .nth(1)
                    .and_then(|rest| rest.trim_end_matches('.').trim().parse::<u16>().ok())
                {
                    let _ = sender.send(port);
                }
            }
        });
        let port = match receiver.recv_timeout(Duration::from_secs(30)) {
            Ok(port) => port,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                bail!("chromedriver did not say which port it listens on within 30 s");
            }
        };
        let http = reqwest::blocking::Client::builder()
            .timeout(COMMAND_TIMEOUT)
            .build()
            .context("an HTTP client")?;
        Ok(Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
            http,
            browser,
        })
    }

    /// Opens a headless Chromium session that records the console log.
    pub fn session(&self) -> Result<Session> {
        let capabilities = json!({
            "capabilities": {
                "alwaysMatch": {
                    "browserName": "chrome",
                    "goog:chromeOptions": {
                        "binary": self.browser.chromium,
                        "args": [
                            "--headless",
                            "--no-sandbox",
                            "--disable-gpu",
                            "--disable-background-networking",
                            "--disable-component-update",
                            "--no-first-run",
                            "--window-size=1280,900",
                        ],
                    },
                    "goog:loggingPrefs": {"browser": "ALL"},
                }
            }
        });
        let value = call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}/session", self.base),
            Some(capabilities),
        )
        .context("starting a Chromium session")?;
        let id = value["sessionId"]
            .as_str()
            .context("no sessionId in the new session")?
            .to_owned();
        Ok(Session {
            http: self.http.clone(),
            base: format!("{}/session/{id}", self.base),
        })
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One browser session; closed (the browser quits) when dropped.
pub struct Session {
    http: reqwest::blocking::Client,
    base: String,
}

/// An element of the current page.
#[derive(Clone, Debug)]
pub struct Element {
    id: String,
}

impl Element {
    fn reference(&self) -> Value {
        json!({ ELEMENT_KEY: self.id })
    }
}

/// Sends one command and returns its `value`, or WebDriver's error.
fn call(
    http: &reqwest::blocking::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
) -> Result<Value> {
    let mut request = http.request(method.clone(), url);
    if let Some(body) = body {
        request = request.json(&body);
    } else if method == reqwest::Method::POST {
        request = request.json(&json!({}));
    }
    let response = request.send().with_context(|| format!("{method} {url}"))?;
    let status = response.status();
    let body: Value = response
        .json()
        .with_context(|| format!("{method} {url}: the reply is not JSON"))?;
    let value = body.get("value").cloned().unwrap_or(Value::Null);
    if !status.is_success() {
        bail!(
            "{method} {url}: {status}: {} {}",
            value["error"].as_str().unwrap_or("error"),
            value["message"]
                .as_str()
                .unwrap_or_default()
                .lines()
                .next()
                .unwrap_or_default()
        );
    }
    Ok(value)
}

impl Session {
    fn get(&self, path: &str) -> Result<Value> {
        call(
            &self.http,
            reqwest::Method::GET,
            &format!("{}{path}", self.base),
            None,
        )
    }

    fn post(&self, path: &str, body: Value) -> Result<Value> {
        call(
            &self.http,
            reqwest::Method::POST,
            &format!("{}{path}", self.base),
            Some(body),
        )
    }

    /// Navigates and waits for the page to load.
    pub fn goto(&self, url: &str) -> Result<()> {
        self.post("/url", json!({ "url": url }))
            .map(drop)
            .with_context(|| format!("opening {url}"))
    }

    pub fn refresh(&self) -> Result<()> {
        self.post("/refresh", json!({})).map(drop)
    }

    pub fn current_url(&self) -> Result<String> {
        Ok(self
            .get("/url")?
            .as_str()
            .context("the URL is not a string")?
            .to_owned())
    }

    /// The current URL's path and query, without scheme and host.
    pub fn current_path(&self) -> Result<String> {
        let url = self.current_url()?;
        let after_scheme = url.split_once("://").map_or(url.as_str(), |(_, rest)| rest);
        Ok(after_scheme
            .find('/')
            .map_or("/".to_owned(), |slash| after_scheme[slash..].to_owned()))
    }

    /// Every element matching a CSS selector, in document order.
    pub fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let found = self
            .post("/elements", json!({"using": "css selector", "value": css}))
            .with_context(|| format!("finding {css}"))?;
        Ok(found
            .as_array()
            .map(|elements| {
                elements
                    .iter()
                    .filter_map(|element| element[ELEMENT_KEY].as_str())
                    .map(|id| Element { id: id.to_owned() })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// The first element matching a CSS selector, if any.
    pub fn find(&self, css: &str) -> Result<Option<Element>> {
        Ok(self.find_all(css)?.into_iter().next())
    }

    /// Waits for an element matching `css` to exist.
    pub fn wait_for(&self, css: &str, timeout: Duration) -> Result<Element> {
        let mut found = None;
        wait(&format!("an element {css}"), timeout, || {
            found = self.find(css)?;
            Ok(found.is_some())
        })
        .with_context(|| format!("on {}", self.current_path().unwrap_or_default()))?;
        found.context("the element vanished")
    }

    pub fn click(&self, element: &Element) -> Result<()> {
        self.post(&format!("/element/{}/click", element.id), json!({}))
            .map(drop)
    }

    /// Clicks the first element matching `css`, waiting for it to exist.
    pub fn click_on(&self, css: &str, timeout: Duration) -> Result<()> {
        let element = self.wait_for(css, timeout)?;
        self.click(&element)
            .with_context(|| format!("clicking {css}"))
    }

    pub fn clear(&self, element: &Element) -> Result<()> {
        self.post(&format!("/element/{}/clear", element.id), json!({}))
            .map(drop)
    }

    pub fn type_text(&self, element: &Element, text: &str) -> Result<()> {
        self.post(
            &format!("/element/{}/value", element.id),
            json!({ "text": text }),
        )
        .map(drop)
    }

    /// Replaces the value of the input matching `css`.
    pub fn fill(&self, css: &str, text: &str) -> Result<()> {
        let element = self.wait_for(css, Duration::from_secs(10))?;
        self.clear(&element)?;
        self.type_text(&element, text)
            .with_context(|| format!("typing into {css}"))
    }

    pub fn text(&self, element: &Element) -> Result<String> {
        Ok(self
            .get(&format!("/element/{}/text", element.id))?
            .as_str()
            .unwrap_or_default()
            .to_owned())
    }

    pub fn attribute(&self, element: &Element, name: &str) -> Result<Option<String>> {
        Ok(self
            .get(&format!("/element/{}/attribute/{name}", element.id))?
            .as_str()
            .map(str::to_owned))
    }

    /// A DOM property (`value`, `href` resolved to an absolute URL, ...).
    pub fn property(&self, element: &Element, name: &str) -> Result<Value> {
        self.get(&format!("/element/{}/property/{name}", element.id))
    }

    pub fn is_enabled(&self, element: &Element) -> Result<bool> {
        Ok(self
            .get(&format!("/element/{}/enabled", element.id))?
            .as_bool()
            .unwrap_or(false))
    }

    /// Runs a script in the page; `arguments[i]` are `args`, where an
    /// [`Element`] is passed with [`Session::element_argument`].
    pub fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.post("/execute/sync", json!({ "script": script, "args": args }))
            .context("running a script in the page")
    }

    pub fn element_argument(element: &Element) -> Value {
        element.reference()
    }

    /// Every cookie of the current page, HttpOnly ones included.
    pub fn cookies(&self) -> Result<Vec<Value>> {
        Ok(self.get("/cookie")?.as_array().cloned().unwrap_or_default())
    }

    pub fn delete_cookies(&self) -> Result<()> {
        call(
            &self.http,
            reqwest::Method::DELETE,
            &format!("{}/cookie", self.base),
            None,
        )
        .map(drop)
    }

    /// The browser console's entries since the last call (chromedriver's
    /// log endpoint; each has `level` and `message`).
    pub fn console(&self) -> Result<Vec<Value>> {
        Ok(self
            .post("/se/log", json!({"type": "browser"}))
            .context("reading the browser console")?
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// A PNG of the viewport.
    pub fn screenshot(&self) -> Result<Vec<u8>> {
        let encoded = self.get("/screenshot")?;
        base64::engine::general_purpose::STANDARD
            .decode(encoded.as_str().context("the screenshot is not a string")?)
            .context("the screenshot is not base64")
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let _ = call(&self.http, reqwest::Method::DELETE, &self.base, None);
    }
}

/// Polls `condition` every 50 ms until it holds, or fails after `timeout`
/// with the condition's last error, if it had one.
pub fn wait(
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> Result<bool>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match condition() {
            Ok(true) => return Ok(()),
            Ok(false) => {}
            Err(error) => last_error = Some(error),
        }
        if Instant::now() >= deadline {
            return Err(match last_error {
                Some(error) => anyhow!("timed out after {timeout:?} waiting for {what}: {error:#}"),
                None => anyhow!("timed out after {timeout:?} waiting for {what}"),
            });
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}
