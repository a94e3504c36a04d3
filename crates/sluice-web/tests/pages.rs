//! The web UI over HTTP, in process: signing in sets a strict session
//! cookie, a form post without the session's CSRF token is refused, a
//! viewer sees no action, and every page renders a seeded run.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use sluice_core::ids::RunId;
use sluice_engine::agent::{LocalAgent, Scope, drive_run};
use sluice_engine::sluice_store::InvokedBy;
use sluice_engine::sluice_store::blobs::BlobStore;
use sluice_engine::sluice_store::sqlite::SqliteStore;
use sluice_engine::tokens::Role;
use sluice_engine::{Engine, EngineConfig, Project, SystemClock, TriggerRequest};
use tower::ServiceExt;

const ETL: &str = r#"
variables:
  region:
    default: eu
  password:
    default: hunter2
    secret: true
blocks:
  extract:
    run: |
      printf '\033[32mgreen\033[0m line\n'
      printf 'id,name\n1,a\n2,b\n' > "$SLUICE_DATA"
      printf 'hello' > "$SLUICE_ARTIFACTS/report.txt"
      echo "rows=2" >> "$SLUICE_OUTPUT"
  load:
    needs: [extract]
    run: echo loaded
"#;

struct World {
    _dir: tempfile::TempDir,
    engine: Engine,
    auth: bool,
}

/// Fails on its first attempt, completes on the next.
const FLAKY: &str = r#"
blocks:
  only:
    run: test "$SLUICE_ATTEMPT" -ge 2
"#;

async fn world(auth: bool) -> World {
    let dir = tempfile::tempdir().expect("a temporary directory");
    std::fs::create_dir_all(dir.path().join("pipelines")).expect("pipelines/");
    std::fs::write(dir.path().join("pipelines/etl.yaml"), ETL).expect("a pipeline file");
    std::fs::write(dir.path().join("pipelines/flaky.yaml"), FLAKY).expect("a pipeline file");
    let project = Project::load(dir.path()).expect("a valid project");
    let store = SqliteStore::open(&dir.path().join(".sluice/sluice.db"))
        .await
        .expect("a database");
    let engine = Engine::new(
        Arc::new(store),
        BlobStore::new(dir.path().join(".sluice/blobs")),
        project,
        Arc::new(SystemClock),
        EngineConfig::for_project(dir.path()),
    );
    World {
        _dir: dir,
        engine,
        auth,
    }
}

struct Answer {
    status: StatusCode,
    headers: axum::http::HeaderMap,
    body: String,
}

impl Answer {
    fn location(&self) -> &str {
        self.headers
            .get(header::LOCATION)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
    }

    /// The `sluice_session` value this answer sets, if any.
    fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .find_map(|value| value.strip_prefix("sluice_session="))
            .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
    }

    /// The page's CSRF token (its `csrf-token` meta element).
    fn csrf(&self) -> String {
        let start = self
            .body
            .find("<meta name=\"csrf-token\" content=\"")
            .unwrap_or_else(|| panic!("a csrf-token meta element in {}", self.body))
            + "<meta name=\"csrf-token\" content=\"".len();
        let end = self.body[start..].find('"').expect("the end of the token") + start;
        self.body[start..end].to_owned()
    }
}

impl World {
    async fn call(
        &self,
        method: Method,
        uri: &str,
        cookie: Option<&str>,
        form: Option<&[(&str, &str)]>,
    ) -> Answer {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(cookie) = cookie {
            request = request.header(header::COOKIE, format!("other=1; sluice_session={cookie}"));
        }
        let body = match form {
            Some(fields) => {
                request = request.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
                Body::from(serde_urlencoded::to_string(fields).expect("a form"))
            }
            None => Body::empty(),
        };
        let response = sluice_web::router(self.engine.clone(), self.auth)
            .oneshot(request.body(body).expect("a request"))
            .await
            .expect("the router answers");
        let status = response.status();
        let headers = response.headers().clone();
        let body = axum::body::to_bytes(response.into_body(), 16 * 1024 * 1024)
            .await
            .expect("a body");
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&body).into_owned(),
        }
    }

    async fn get(&self, uri: &str, cookie: Option<&str>) -> Answer {
        self.call(Method::GET, uri, cookie, None).await
    }

    /// Signs in through the form with a new token of `role`; returns the
    /// session cookie.
    async fn sign_in(&self, name: &str, role: Role) -> String {
        let secret = format!("sluice_{name}_0123456789abcdef0123456789abcdef");
        self.engine
            .create_token(name, role, &secret, "test")
            .await
            .expect("a token");
        let form = self.get("/login", None).await;
        assert_eq!(form.status, StatusCode::OK, "{}", form.body);
        let anonymous = form.session_cookie().expect("the form sets a session");
        let csrf = form.csrf();
        let signed_in = self
            .call(
                Method::POST,
                "/login",
                Some(&anonymous),
                Some(&[("csrf_token", &csrf), ("token", &secret)]),
            )
            .await;
        assert_eq!(
            signed_in.status,
            StatusCode::SEE_OTHER,
            "{}",
            signed_in.body
        );
        signed_in.session_cookie().expect("a session cookie")
    }

    /// A finished run of `etl`.
    async fn seed_run(&self) -> String {
        let run_id = self.finished_run("etl").await;
        run_id.to_string()
    }

    /// Drives the run to its end with a built-in agent; its status.
    async fn drive(&self, run_id: &RunId) -> String {
        let mut agent = LocalAgent::register(self.engine.clone(), "server", Scope::Unowned, None)
            .await
            .expect("an agent");
        let run = tokio::time::timeout(
            Duration::from_secs(60),
            drive_run(&self.engine, &mut agent, run_id),
        )
        .await
        .expect("the run ends within 60 s")
        .expect("the run is driven");
        agent.shutdown().await;
        run.status.as_str().to_owned()
    }

    /// A run of `pipeline`, driven to its end.
    async fn finished_run(&self, pipeline: &str) -> RunId {
        let run_id = self
            .engine
            .trigger_run(TriggerRequest {
                pipeline: pipeline.to_owned(),
                variables: Default::default(),
                trigger_variables: Default::default(),
                priority: None,
                invoked_by: InvokedBy {
                    kind: "manual".to_owned(),
                    name: None,
                    actor: Some("test".to_owned()),
                    parent_run_id: None,
                },
                idempotency_key: None,
                owner: None,
            })
            .await
            .expect("a run");
        let status = self.drive(&run_id).await;
        let wanted = if pipeline == "flaky" {
            "failed"
        } else {
            "completed"
        };
        assert_eq!(status, wanted, "run {run_id} of {pipeline}");
        run_id
    }
}

/// Whether the markup has an element with the class `action`.
fn has_action(html: &str) -> bool {
    html.split("class=\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .any(|classes| classes.split_whitespace().any(|class| class == "action"))
}

#[tokio::test]
async fn signing_in_sets_a_strict_http_only_session_cookie() {
    let world = world(true).await;
    let home = world.get("/", None).await;
    assert_eq!(home.status, StatusCode::SEE_OTHER);
    assert_eq!(home.location(), "/login");

    let form = world.get("/login", None).await;
    assert!(
        form.body
            .contains("<form id=\"login-form\" method=\"post\" action=\"/login\">")
    );
    assert!(
        form.body
            .contains("id=\"token\" name=\"token\" type=\"password\"")
    );
    assert!(form.body.contains("<button id=\"sign-in\" type=\"submit\""));

    let secret = "sluice_ops_0123456789abcdef0123456789abcdef";
    world
        .engine
        .create_token("ops", Role::Operator, secret, "test")
        .await
        .expect("a token");
    let anonymous = form.session_cookie().expect("a pre-session");
    let csrf = form.csrf();
    let wrong = world
        .call(
            Method::POST,
            "/login",
            Some(&anonymous),
            Some(&[("csrf_token", &csrf), ("token", "sluice_wrong")]),
        )
        .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(wrong.body.contains("unknown or revoked"), "{}", wrong.body);
    assert!(wrong.session_cookie().is_none());

    let signed_in = world
        .call(
            Method::POST,
            "/login",
            Some(&anonymous),
            Some(&[("csrf_token", &csrf), ("token", secret)]),
        )
        .await;
    assert_eq!(signed_in.status, StatusCode::SEE_OTHER);
    assert_eq!(signed_in.location(), "/");
    let set_cookie = signed_in
        .headers
        .get(header::SET_COOKIE)
        .and_then(|value| value.to_str().ok())
        .expect("a Set-Cookie header");
    assert!(set_cookie.starts_with("sluice_session="), "{set_cookie}");
    assert!(set_cookie.contains("; HttpOnly"), "{set_cookie}");
    assert!(set_cookie.contains("; SameSite=Strict"), "{set_cookie}");
    assert!(set_cookie.contains("; Path=/"), "{set_cookie}");

    let cookie = signed_in.session_cookie().expect("a session");
    let home = world.get("/", Some(&cookie)).await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert!(home.body.contains("<main id=\"content\">"));
    assert!(home.body.contains("id=\"sign-out\""));
    let policy = home
        .headers
        .get(header::CONTENT_SECURITY_POLICY)
        .and_then(|value| value.to_str().ok())
        .expect("a CSP header");
    assert!(policy.starts_with("default-src 'self'"), "{policy}");

    // An anonymous session is no sign-in on a server with auth.
    let refused = world.get("/", Some(&anonymous)).await;
    assert_eq!(refused.status, StatusCode::SEE_OTHER);
    // A tampered cookie is no session either.
    // The signature's last digit, changed to another digit.
    let last = if cookie.ends_with('0') { '1' } else { '0' };
    let forged = format!("{}{last}", &cookie[..cookie.len() - 1]);
    assert_eq!(
        world.get("/", Some(&forged)).await.status,
        StatusCode::SEE_OTHER
    );

    // Signing out clears the cookie.
    let csrf = home.csrf();
    let out = world
        .call(
            Method::POST,
            "/logout",
            Some(&cookie),
            Some(&[("csrf_token", &csrf)]),
        )
        .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    assert_eq!(out.session_cookie().as_deref(), Some(""));

    // Revoking the token ends its sessions.
    world
        .engine
        .revoke_token("ops", "test")
        .await
        .expect("revoked");
    assert_eq!(
        world.get("/", Some(&cookie)).await.status,
        StatusCode::SEE_OTHER
    );
}

#[tokio::test]
async fn a_form_post_without_the_csrf_token_is_refused() {
    let world = world(true).await;
    let cookie = world.sign_in("ops", Role::Operator).await;
    let page = world.get("/pipelines/etl", Some(&cookie)).await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("<form id=\"run-now\""));
    assert!(page.body.contains("name=\"var-region\" value=\"eu\""));

    for form in [vec![], vec![("csrf_token", "00ff")]] {
        let forged = world
            .call(
                Method::POST,
                "/pipelines/etl/run",
                Some(&cookie),
                Some(&form),
            )
            .await;
        assert_eq!(forged.status, StatusCode::FORBIDDEN, "{}", forged.body);
    }
    let runs = world
        .engine
        .list_runs(&sluice_engine::sluice_store::RunQuery {
            limit: 10,
            ..Default::default()
        })
        .await
        .expect("runs");
    assert!(runs.runs.is_empty(), "a refused post starts nothing");

    // The CSRF token of another session does not fit this one.
    let other = world.sign_in("other", Role::Operator).await;
    let other_csrf = world.get("/", Some(&other)).await.csrf();
    let crossed = world
        .call(
            Method::POST,
            "/pipelines/etl/run",
            Some(&cookie),
            Some(&[("csrf_token", &other_csrf)]),
        )
        .await;
    assert_eq!(crossed.status, StatusCode::FORBIDDEN);

    let csrf = page.csrf();
    let started = world
        .call(
            Method::POST,
            "/pipelines/etl/run",
            Some(&cookie),
            Some(&[("csrf_token", &csrf), ("var-region", "us")]),
        )
        .await;
    assert_eq!(started.status, StatusCode::SEE_OTHER, "{}", started.body);
    let run_id = started
        .location()
        .strip_prefix("/runs/")
        .expect("the new run's page")
        .to_owned();
    let run = world
        .engine
        .get_run(&RunId(run_id))
        .await
        .expect("the run exists");
    assert_eq!(run.variables.0["region"].value, "us");
    assert_eq!(run.invoked_by.actor.as_deref(), Some("ops"));
}

#[tokio::test]
async fn a_viewer_sees_no_action_and_an_operator_does() {
    let world = world(true).await;
    let run = world.seed_run().await;
    let viewer = world.sign_in("watcher", Role::Viewer).await;
    let operator = world.sign_in("ops", Role::Operator).await;
    let pages = [
        "/".to_owned(),
        "/pipelines/etl".to_owned(),
        format!("/runs/{run}"),
        format!("/runs/{run}?block=extract"),
        "/queue".to_owned(),
    ];
    for page in &pages {
        let seen = world.get(page, Some(&viewer)).await;
        assert_eq!(seen.status, StatusCode::OK, "{page}: {}", seen.body);
        assert!(!has_action(&seen.body), "a viewer sees an action on {page}");
        let operated = world.get(page, Some(&operator)).await;
        assert_eq!(operated.status, StatusCode::OK, "{page}");
        if page != "/queue" {
            assert!(
                has_action(&operated.body),
                "an operator sees actions on {page}"
            );
        }
    }
    // The server still refuses what the page hides.
    let csrf = world.get("/", Some(&viewer)).await.csrf();
    let refused = world
        .call(
            Method::POST,
            "/pipelines/etl/run",
            Some(&viewer),
            Some(&[("csrf_token", &csrf)]),
        )
        .await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN, "{}", refused.body);
}

#[tokio::test]
async fn every_page_renders_a_seeded_run() {
    let world = world(false).await;
    let run = world.seed_run().await;

    // Without auth a browser gets an anonymous session on its first page.
    let home = world.get("/", None).await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    let cookie = home.session_cookie().expect("an anonymous session");
    assert!(!home.csrf().is_empty());
    assert!(
        home.body
            .contains(&format!("data-run-id=\"{run}\" data-status=\"completed\"")),
        "{}",
        home.body
    );
    for id in [
        "nav-runs",
        "nav-pipelines",
        "nav-queue",
        "nav-artifacts",
        "nav-agents",
        "nav-triggers",
        "tz-toggle",
        "success-rate",
        "avg-duration",
        "runs-per-day",
        "running-now",
        "apply-filters",
        "retry-selected",
        "cancel-selected",
        "confirm-yes",
    ] {
        assert!(home.body.contains(&format!("id=\"{id}\"")), "no #{id}");
    }
    assert!(home.body.contains("<time datetime=\""));
    assert!(home.body.contains(" UTC</time>"));

    let run_page = world.get(&format!("/runs/{run}"), Some(&cookie)).await;
    assert_eq!(run_page.status, StatusCode::OK, "{}", run_page.body);
    for needle in [
        "id=\"run-status\" class=\"status\" data-status=\"completed\"",
        "class=\"node\" data-block=\"extract\" data-status=\"completed\"",
        "class=\"node\" data-block=\"load\" data-status=\"completed\"",
        "class=\"bar status-completed\" data-block=\"extract\"",
        "class=\"attempt\" data-attempt=\"1\"",
        "<tr data-var=\"region\"><td><code>region</code></td><td class=\"value\">eu</td><td>default</td>",
        "<td class=\"value secret\">***</td>",
        "id=\"invoked-by\"",
        "id=\"retry-from\"",
    ] {
        assert!(
            run_page.body.contains(needle),
            "no `{needle}` in the run page"
        );
    }
    assert!(!run_page.body.contains("hunter2"), "a secret leaked");
    assert!(
        !run_page.body.contains("id=\"errors\""),
        "no errors to show"
    );

    let panel = world
        .get(&format!("/runs/{run}/panel?block=extract"), Some(&cookie))
        .await;
    assert_eq!(panel.status, StatusCode::OK, "{}", panel.body);
    for needle in [
        "<section id=\"block-panel\" data-block=\"extract\"",
        "id=\"tries\"",
        "<pre id=\"log\"",
        "id=\"follow\" type=\"checkbox\" checked",
        "id=\"log-search\"",
        "id=\"log-raw\"",
        "<tr data-output=\"rows\"><td><code>rows</code></td><td class=\"value\">2</td>",
        "id=\"data-sample\"",
        "id=\"data-csv\"",
        "<tr data-artifact=\"report.txt\"",
        "class=\"sha256\"><code>2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824</code>",
        "class=\"download\" href=\"/api/artifacts/",
    ] {
        assert!(
            panel.body.contains(needle),
            "no `{needle}` in {}",
            panel.body
        );
    }
    let block_run_id = panel
        .body
        .split("data-block-run-id=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the block run id")
        .to_owned();
    let raw = world
        .get(
            &format!("/block_runs/{block_run_id}/log.txt"),
            Some(&cookie),
        )
        .await;
    assert_eq!(raw.status, StatusCode::OK);
    assert!(raw.body.contains("green\u{1b}[0m line"), "{}", raw.body);

    for page in [
        "/pipelines",
        "/pipelines/etl",
        "/queue",
        "/artifacts",
        "/artifacts?q=report.txt&pipeline=etl",
        "/agents",
        "/triggers",
        "/?status=completed&pipeline=etl&trigger=manual&after=2020-01-01&q=etl",
    ] {
        let answer = world.get(page, Some(&cookie)).await;
        assert_eq!(answer.status, StatusCode::OK, "{page}: {}", answer.body);
        assert!(answer.body.contains("<main id=\"content\">"), "{page}");
    }
    let pipelines = world.get("/pipelines", Some(&cookie)).await;
    assert!(pipelines.body.contains("<tr data-pipeline=\"etl\""));
    assert!(pipelines.body.contains("class=\"sparkline\""));
    let artifacts = world.get("/artifacts", Some(&cookie)).await;
    assert!(artifacts.body.contains("<tr data-artifact=\"report.txt\""));

    // Bad input is a page that says what is wrong, never a crash.
    let bad = world.get("/?status=sideways", Some(&cookie)).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(
        bad.body.contains("`sideways` is not a run status"),
        "{}",
        bad.body
    );
    let missing = world.get("/runs/nope", Some(&cookie)).await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    let no_attempt = world
        .get(&format!("/runs/{run}?attempt=7"), Some(&cookie))
        .await;
    assert_eq!(no_attempt.status, StatusCode::NOT_FOUND);
    assert!(no_attempt.body.contains("has no attempt 7"));

    // The assets are served with their types.
    let script = world.get("/assets/app.js", None).await;
    assert_eq!(script.status, StatusCode::OK);
    assert!(
        script.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("text/javascript")
    );
}

#[tokio::test]
async fn run_pages_are_paged_by_key() {
    let world = world(false).await;
    for _ in 0..(sluice_web::PAGE + 3) {
        world
            .engine
            .trigger_run(TriggerRequest {
                pipeline: "etl".to_owned(),
                variables: Default::default(),
                trigger_variables: Default::default(),
                priority: None,
                invoked_by: InvokedBy {
                    kind: "api".to_owned(),
                    name: None,
                    actor: None,
                    parent_run_id: None,
                },
                idempotency_key: None,
                owner: None,
            })
            .await
            .expect("a run");
    }
    let first = world.get("/", None).await;
    let rows = first.body.matches("<tr data-run-id=").count();
    assert_eq!(rows, sluice_web::PAGE as usize);
    let next = first
        .body
        .split("id=\"next-page\" href=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("a next page link")
        .replace("&amp;", "&");
    let second = world.get(&format!("/{next}"), None).await;
    assert_eq!(second.status, StatusCode::OK, "{}", second.body);
    assert_eq!(second.body.matches("<tr data-run-id=").count(), 3);
    assert!(!second.body.contains("id=\"next-page\""));
}

/// The runs page lists the failed runs that need attention, and filters on
/// them; a retry that completes takes a run off both lists.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_need_attention_until_a_retry_resolves_them() {
    let world = world(false).await;
    let completed = world.seed_run().await;
    let failed = world.finished_run("flaky").await;
    let attention = |html: &str| -> Vec<String> {
        let section = html
            .split("id=\"needs-attention\"")
            .nth(1)
            .and_then(|rest| rest.split("</ul>").next())
            .expect("a needs-attention list")
            .to_owned();
        section
            .split("data-run-id=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_owned)
            .collect()
    };
    let rows = |html: &str| -> Vec<String> {
        html.split("<tr data-run-id=\"")
            .skip(1)
            .filter_map(|rest| rest.split('"').next())
            .map(str::to_owned)
            .collect()
    };

    let home = world.get("/", None).await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert_eq!(attention(&home.body), vec![failed.to_string()]);
    assert!(home.body.contains("id=\"all-unresolved\""));
    let only = world.get("/?unresolved=1", None).await;
    assert_eq!(only.status, StatusCode::OK, "{}", only.body);
    assert_eq!(rows(&only.body), vec![failed.to_string()]);
    assert!(
        only.body
            .contains("name=\"unresolved\" type=\"checkbox\" value=\"1\" checked"),
        "the filter shows it is on"
    );
    assert!(rows(&world.get("/", None).await.body).contains(&completed));

    world
        .engine
        .retry_run(sluice_engine::services::RetryRequest {
            run_id: failed.clone(),
            mode: sluice_engine::services::RetryMode::Incomplete,
            by: "test".to_owned(),
            owner: None,
            latest: false,
        })
        .await
        .expect("a retry");
    assert_eq!(world.drive(&failed).await, "completed");

    let home = world.get("/", None).await;
    assert!(attention(&home.body).is_empty(), "{}", home.body);
    assert!(home.body.contains("No failed run is waiting for a fix."));
    assert!(rows(&world.get("/?unresolved=1", None).await.body).is_empty());
}
