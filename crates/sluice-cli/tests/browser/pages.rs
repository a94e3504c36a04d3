//! Scenarios of the other pages: the queue's drag to reorder, artifact
//! downloads, every page's shape and screenshot, and what a viewer sees
//! and may do.

use anyhow::{Context, Result, ensure};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::harness::{TIMEOUT, csrf_token, http, no_console_errors, session_cookie};
use crate::runs::sign_in_with;
use crate::webdriver::{Session, wait};
use crate::{World, wait_for_path};

/// The block run ids of `ol#queue`, top to bottom.
fn queue_items(world: &World) -> Result<Vec<String>> {
    world.strings("ol#queue li[data-block-run-id]", "e.dataset.blockRunId")
}

fn wait_for_queue(world: &World, what: &str, wanted: &[String]) -> Result<()> {
    let mut api = Vec::new();
    wait(what, TIMEOUT, || {
        api = world.api().queue_order()?;
        Ok(api == wanted)
    })
    .with_context(|| format!("GET /api/queue has {api:?}, not {wanted:?}"))
}

/// Native HTML5 drag and drop, as a person's drag fires it: WebDriver's
/// pointer actions do not start HTML5 drags in Chromium, so the events are
/// dispatched with one shared `DataTransfer`, dropping on the upper edge of
/// the target (before it).
const DRAG: &str = "
const [source, target] = arguments;
const data = new DataTransfer();
const at = (element, dy) => {
  const box = element.getBoundingClientRect();
  return {bubbles: true, cancelable: true, composed: true, dataTransfer: data,
          clientX: box.left + box.width / 2, clientY: box.top + dy};
};
source.dispatchEvent(new DragEvent('dragstart', at(source, 5)));
target.dispatchEvent(new DragEvent('dragenter', at(target, 2)));
target.dispatchEvent(new DragEvent('dragover', at(target, 2)));
target.dispatchEvent(new DragEvent('drop', at(target, 2)));
source.dispatchEvent(new DragEvent('dragend', at(target, 2)));
";

/// Three tries wait for labels no agent offers; dragging the last onto
/// the first moves it to the front of the claim order, which survives a
/// reload, and the keyboard's move-down moves it back one place.
pub fn queue_drag(world: &World) -> Result<()> {
    let session = &world.session;
    let api = world.api();
    for _ in 0..3 {
        api.trigger("gpu", json!({}))?;
    }
    let mut order = Vec::new();
    wait("three queued block runs", TIMEOUT, || {
        order = api.queue_order()?;
        Ok(order.len() == 3)
    })?;
    world.visit("/queue")?;
    let mut shown = Vec::new();
    wait("the queue page to list the queue", TIMEOUT, || {
        shown = queue_items(world)?;
        Ok(shown == order)
    })
    .with_context(|| format!("the page shows {shown:?}, the API {order:?}"))?;
    for id in &order {
        let item = format!("ol#queue li[data-block-run-id=\"{id}\"]");
        let element = session.find(&item)?.context("the item vanished")?;
        ensure!(
            session.attribute(&element, "draggable")?.as_deref() == Some("true"),
            "{item} is not draggable"
        );
        let reason = session
            .find(&format!("{item} .reason"))?
            .with_context(|| format!("{item} has no .reason"))?;
        ensure!(
            session.text(&reason)?.contains("gpu"),
            "the wait reason of {id} does not name the missing label"
        );
        for part in ["input.select-queued", "button.move-up", "button.move-down"] {
            ensure!(
                session.find(&format!("{item} {part}"))?.is_some(),
                "{item} has no {part}"
            );
        }
    }
    world.screenshots.save(session, "queue")?;

    let item = |id: &str| format!("ol#queue li[data-block-run-id=\"{id}\"]");
    let source = session.wait_for(&item(&order[2]), TIMEOUT)?;
    let target = session.wait_for(&item(&order[0]), TIMEOUT)?;
    session.execute(
        DRAG,
        vec![
            Session::element_argument(&source),
            Session::element_argument(&target),
        ],
    )?;
    let dragged = vec![order[2].clone(), order[0].clone(), order[1].clone()];
    wait_for_queue(world, "the drop to reorder the queue", &dragged)?;
    session.refresh()?;
    session.wait_for("ol#queue", TIMEOUT)?;
    ensure!(
        queue_items(world)? == dragged,
        "after a reload the page shows {:?}, not {dragged:?}",
        queue_items(world)?
    );

    session.click_on(&format!("{} button.move-down", item(&dragged[0])), TIMEOUT)?;
    let moved = vec![dragged[1].clone(), dragged[0].clone(), dragged[2].clone()];
    wait_for_queue(world, "move-down to reorder the queue", &moved)?;
    let mut shown = Vec::new();
    wait("the page to show the new order", TIMEOUT, || {
        shown = queue_items(world)?;
        Ok(shown == moved)
    })
    .with_context(|| format!("the page shows {shown:?}, not {moved:?}"))?;
    no_console_errors(session, "/queue")
}

fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// The SHA-256 a cell shows, in full: its text, or its `title` when the
/// text is shortened.
fn shown_sha(session: &Session, css: &str) -> Result<String> {
    let cell = session.find(css)?.with_context(|| format!("no {css}"))?;
    let text = session.text(&cell)?.trim().to_owned();
    if text.len() == 64 {
        return Ok(text);
    }
    let title = session.attribute(&cell, "title")?.unwrap_or_default();
    ensure!(
        title.len() == 64 && title.starts_with(text.trim_end_matches('…')),
        "{css} shows {text:?} (title {title:?}), not a SHA-256"
    );
    Ok(title)
}

/// An artifact on the artifacts page downloads, with the session cookie,
/// as bytes whose SHA-256 is the one shown; the block panel shows the same;
/// the search filters.
pub fn artifact_download(world: &World) -> Result<()> {
    let session = &world.session;
    world.visit("/artifacts")?;
    let row = "table#artifacts tr[data-artifact=\"summary.txt\"]";
    session.wait_for(row, TIMEOUT)?;
    world.screenshots.save(session, "artifacts")?;
    let shown = shown_sha(session, &format!("{row} td.sha256"))?;
    let link = session
        .find(&format!("{row} a.download"))?
        .context("the artifact has no a.download")?;
    let href = session
        .property(&link, "href")?
        .as_str()
        .context("the download link has no href")?
        .to_owned();
    let response = http()
        .get(&href)
        .header("cookie", session_cookie(session)?)
        .send()
        .with_context(|| format!("GET {href}"))?;
    ensure!(
        response.status().is_success(),
        "GET {href}: {}",
        response.status()
    );
    let disposition = response
        .headers()
        .get("content-disposition")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    ensure!(
        disposition.contains("summary.txt"),
        "the download's Content-Disposition is {disposition:?}"
    );
    let bytes = response.bytes()?;
    ensure!(
        &bytes[..] == b"summary of emea\n",
        "the download is {bytes:?}"
    );
    ensure!(
        sha256_hex(&bytes) == shown,
        "the page shows SHA-256 {shown}, the bytes have {}",
        sha256_hex(&bytes)
    );
    let size = session
        .find(&format!("{row} td.size"))?
        .context("the artifact has no td.size")?;
    let length = bytes.len().to_string();
    ensure!(
        session.attribute(&size, "data-bytes")?.as_deref() == Some(length.as_str())
            || session.text(&size)?.contains(&length),
        "the size cell does not show {length} bytes"
    );

    // The search.
    session.fill("form#artifact-filters input[name=q]", "summary.txt")?;
    submit(session, "form#artifact-filters")?;
    wait_for_path(session, "the search for summary.txt", |path| {
        path.contains("q=summary.txt")
    })?;
    session.wait_for(row, TIMEOUT)?;
    session.fill("form#artifact-filters input[name=q]", "no-such-artifact")?;
    submit(session, "form#artifact-filters")?;
    wait_for_path(session, "the search for no-such-artifact", |path| {
        path.contains("q=no-such-artifact")
    })?;
    session.wait_for("table#artifacts", TIMEOUT)?;
    ensure!(
        session
            .find_all("table#artifacts tr[data-artifact]")?
            .is_empty(),
        "a search for no-such-artifact still lists artifacts"
    );

    // The block panel of the run that made it.
    world.visit(&format!("/runs/{}?block=extract&attempt=1", world.etl_run))?;
    let panel_row = "section#block-panel table#block-artifacts tr[data-artifact=\"summary.txt\"]";
    session.wait_for(panel_row, TIMEOUT)?;
    let in_panel = shown_sha(session, &format!("{panel_row} td.sha256"))?;
    ensure!(
        in_panel == shown,
        "the block panel shows {in_panel}, the artifacts page {shown}"
    );
    ensure!(
        session
            .find("section#block-panel table#data-sample")?
            .is_some()
            && session.find("section#block-panel a#data-csv")?.is_some(),
        "the block panel has no data sample with a CSV link"
    );
    no_console_errors(session, "the block panel of extract")
}

fn submit(session: &Session, form: &str) -> Result<()> {
    session.execute(
        "document.querySelector(arguments[0]).requestSubmit();",
        vec![Value::from(form)],
    )?;
    Ok(())
}

/// The pages every role can read, with the element each must show.
fn pages(world: &World) -> Vec<(String, &'static str)> {
    let run = &world.etl_run;
    vec![
        ("/".to_owned(), "table#runs"),
        ("/pipelines".to_owned(), "table#pipelines"),
        ("/pipelines/etl".to_owned(), "svg#dag"),
        (format!("/runs/{run}"), "svg#dag"),
        (format!("/runs/{run}?block=extract"), "section#block-panel"),
        ("/queue".to_owned(), "ol#queue"),
        ("/artifacts".to_owned(), "table#artifacts"),
        ("/agents".to_owned(), "table#agents"),
        ("/triggers".to_owned(), "table#triggers"),
    ]
}

const NAVIGATION: [&str; 6] = [
    "a#nav-runs",
    "a#nav-pipelines",
    "a#nav-queue",
    "a#nav-artifacts",
    "a#nav-agents",
    "a#nav-triggers",
];

/// Every page has the navigation, the time zone toggle and a CSRF token;
/// the pipelines, pipeline, agents and triggers pages show their tables
/// (screenshots of each), and "Run now" starts a run.
pub fn every_page(world: &World) -> Result<()> {
    let session = &world.session;
    for (path, main) in pages(world) {
        world.visit(&path)?;
        session
            .wait_for(main, TIMEOUT)
            .with_context(|| format!("on {path}"))?;
        for css in NAVIGATION.iter().chain(&["button#tz-toggle"]) {
            ensure!(session.find(css)?.is_some(), "{path} has no {css}");
        }
        csrf_token(session).with_context(|| format!("on {path}"))?;
        let zoneless = world.strings("time", "e.getAttribute('datetime') ? '' : e.outerHTML")?;
        ensure!(
            zoneless.iter().all(String::is_empty),
            "{path} has <time> elements without datetime: {zoneless:?}"
        );
    }

    world.visit("/pipelines")?;
    for pipeline in ["etl", "hello", "gate", "gpu", "nightly"] {
        session.wait_for(
            &format!("table#pipelines tr[data-pipeline={pipeline}]"),
            TIMEOUT,
        )?;
    }
    ensure!(
        session.find("table#pipelines svg.sparkline")?.is_some(),
        "the pipelines page has no sparkline"
    );
    world.screenshots.save(session, "pipelines")?;

    world.visit("/pipelines/etl")?;
    for css in ["svg#dag", "table#triggers", "table#runs", "form#run-now"] {
        session.wait_for(css, TIMEOUT)?;
    }
    let region = session
        .find("form#run-now input[name=var-region]")?
        .context("the run-now form has no input for the variable region")?;
    ensure!(
        session.property(&region, "value")? == "emea",
        "the region input is not prefilled with its default"
    );
    world.screenshots.save(session, "pipeline")?;

    world.visit("/agents")?;
    session.wait_for("table#agents", TIMEOUT)?;
    world.screenshots.save(session, "agents")?;

    world.visit("/triggers")?;
    session.wait_for(
        "table#triggers tr[data-trigger=\"nightly/nightly\"]",
        TIMEOUT,
    )?;
    session.wait_for("table#backfills", TIMEOUT)?;
    world.screenshots.save(session, "triggers")?;

    // Run now.
    world.visit("/pipelines/hello")?;
    session.click_on("button#run-now-submit.action", TIMEOUT)?;
    let path = wait_for_path(session, "the new run's page", |path| {
        path.starts_with("/runs/")
    })?;
    let id = path
        .trim_start_matches("/runs/")
        .split(['?', '#'])
        .next()
        .unwrap_or_default()
        .to_owned();
    world.api().wait_for_run_status(&id, "completed")?;
    ensure!(
        world.api().run(&id)?["pipeline_run"]["pipeline"] == "hello",
        "run now started {id}, which is not a run of hello"
    );
    no_console_errors(session, &path)
}

/// POSTs to the run API with the session cookie, and a CSRF token if given.
fn cookie_post(world: &World, path: &str, cookie: &str, csrf: Option<&str>) -> Result<u16> {
    let mut request = http()
        .post(world.server.url(path))
        .header("cookie", cookie)
        .json(&json!({}));
    if let Some(csrf) = csrf {
        request = request.header("x-csrf-token", csrf);
    }
    Ok(request.send()?.status().as_u16())
}

/// A POST with the session cookie but without the CSRF token is refused;
/// after signing in as a viewer no page shows an action, and the server
/// refuses the viewer's actions even with the token.
pub fn viewer_and_csrf(world: &World) -> Result<()> {
    let session = &world.session;
    let finished = &world.hello_runs[0];
    let cancel = format!("/api/pipeline_runs/{finished}/cancel");
    world.visit(&format!("/runs/{finished}"))?;
    let cookie = session_cookie(session)?;
    let csrf = csrf_token(session)?;
    let forged = cookie_post(world, &cancel, &cookie, None)?;
    ensure!(
        forged == 403,
        "a POST with the session cookie and no CSRF token got {forged}, not 403"
    );
    let wrong = cookie_post(world, &cancel, &cookie, Some("not-the-token"))?;
    ensure!(
        wrong == 403,
        "a POST with a wrong CSRF token got {wrong}, not 403"
    );
    let genuine = cookie_post(world, &cancel, &cookie, Some(&csrf))?;
    ensure!(
        genuine != 403 && genuine != 401,
        "an operator's POST with the CSRF token was refused ({genuine})"
    );
    let logout = http()
        .post(world.server.url("/logout"))
        .header("cookie", &cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("")
        .send()?
        .status()
        .as_u16();
    ensure!(
        logout == 403,
        "a sign-out form POST without csrf_token got {logout}, not 403"
    );
    ensure!(
        session.find(".action")?.is_some(),
        "an operator sees no action on a run page"
    );

    session.click_on("button#sign-out", TIMEOUT)?;
    wait_for_path(session, "the login page after signing out", |path| {
        path.starts_with("/login")
    })?;
    session.wait_for("form#login-form", TIMEOUT)?;
    sign_in_with(world, &world.viewer)?;
    for (path, main) in pages(world) {
        world.visit(&path)?;
        session
            .wait_for(main, TIMEOUT)
            .with_context(|| format!("on {path}"))?;
        let actions = world.strings(".action", "e.id || e.className")?;
        ensure!(
            actions.is_empty(),
            "a viewer sees actions on {path}: {actions:?}"
        );
    }
    let cookie = session_cookie(session)?;
    let csrf = csrf_token(session)?;
    let refused = cookie_post(world, &cancel, &cookie, Some(&csrf))?;
    ensure!(
        refused == 403,
        "a viewer's cancel with the CSRF token got {refused}, not 403"
    );
    no_console_errors(session, "the viewer's pages")
}
