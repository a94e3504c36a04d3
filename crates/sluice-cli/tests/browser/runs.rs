//! Scenarios of the runs: signing in, the runs page and its filters, a run
//! page following a block live, the log viewer, and retry from a block.

use std::collections::BTreeSet;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::harness::{TIMEOUT, http, no_console_errors};
use crate::webdriver::{Session, wait};
use crate::{World, wait_for_path};

/// Anonymous visitors are sent to `/login`; a token signs in and the
/// session cookie is HttpOnly and SameSite=Strict.
pub fn sign_in(world: &World) -> Result<()> {
    let session = &world.session;
    let anonymous = http().get(world.server.url("/queue")).send()?;
    ensure!(
        anonymous.status().is_redirection(),
        "an anonymous GET /queue answered {} instead of a redirect to /login",
        anonymous.status()
    );
    let location = anonymous
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    ensure!(
        location.contains("/login"),
        "an anonymous GET /queue redirects to {location:?}, not /login"
    );

    session.goto(&world.server.url("/"))?;
    wait_for_path(session, "the redirect to /login", |path| {
        path.starts_with("/login")
    })?;
    session.wait_for("form#login-form", TIMEOUT)?;
    world.screenshots.save(session, "login")?;
    sign_in_with(world, &world.operator)?;
    let cookies = session.cookies()?;
    let cookie = cookies
        .iter()
        .find(|cookie| cookie["name"] == "sluice_session")
        .context("no sluice_session cookie after signing in")?;
    ensure!(
        cookie["httpOnly"] == true,
        "the session cookie is not HttpOnly: {cookie}"
    );
    ensure!(
        cookie["sameSite"] == "Strict",
        "the session cookie is not SameSite=Strict: {cookie}"
    );
    no_console_errors(session, "/")
}

/// Fills the login form with `token` and waits for the runs page.
pub fn sign_in_with(world: &World, token: &str) -> Result<()> {
    let session = &world.session;
    session.fill("input#token[type=password]", token)?;
    session.click_on("button#sign-in", TIMEOUT)?;
    wait_for_path(session, "the runs page after signing in", |path| {
        path == "/" || path.starts_with("/?")
    })?;
    session.wait_for("table#runs", TIMEOUT)?;
    Ok(())
}

/// `(run id, status)` of every row of `table#runs`.
fn run_rows(world: &World) -> Result<Vec<(String, String)>> {
    Ok(world
        .collect(
            "table#runs tr[data-run-id]",
            "[e.dataset.runId, e.dataset.status]",
        )?
        .into_iter()
        .map(|row| {
            (
                row[0].as_str().unwrap_or_default().to_owned(),
                row[1].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect())
}

/// Submits `form#filters` and waits for the new page to show `query`.
fn apply_filters(world: &World, query: &str) -> Result<Vec<(String, String)>> {
    world.session.click_on("button#apply-filters", TIMEOUT)?;
    wait_for_path(&world.session, &format!("a URL with {query}"), |path| {
        path.contains(query)
    })?;
    world.session.wait_for("table#runs", TIMEOUT)?;
    run_rows(world)
}

/// Chooses `value` in `select[name=NAME]` of the filter form.
fn choose(session: &Session, name: &str, value: &str) -> Result<()> {
    session.click_on(
        &format!("form#filters select[name={name}] option[value=\"{value}\"]"),
        TIMEOUT,
    )
}

/// The runs page lists the seeded runs with their statuses, its stats and
/// chart, filters by status and by pipeline, toggles the time zone, and a
/// batch retry asks first and does nothing when declined.
pub fn runs_page_filters(world: &World) -> Result<()> {
    let session = &world.session;
    world.visit("/")?;
    let rows = run_rows(world)?;
    let listed: BTreeSet<&str> = rows.iter().map(|(id, _)| id.as_str()).collect();
    for id in world.hello_runs.iter().chain([&world.etl_run]) {
        ensure!(
            listed.contains(id.as_str()),
            "run {id} is not listed: {rows:?}"
        );
    }
    for css in [
        "#success-rate",
        "#avg-duration",
        "svg#runs-per-day",
        "#running-now",
        "form#filters select[name=status]",
        "form#filters input[name=pipeline]",
        "form#filters input[name=tag]",
        "form#filters select[name=trigger]",
        "form#filters input[name=after]",
        "form#filters input[name=before]",
        "form#filters input[name=q]",
    ] {
        ensure!(session.find(css)?.is_some(), "the runs page has no {css}");
    }
    let id = &world.etl_run;
    let row = format!("table#runs tr[data-run-id=\"{id}\"]");
    ensure!(
        session.find(&format!("{row} input.select-run"))?.is_some(),
        "the row of {id} has no input.select-run"
    );
    ensure!(
        session
            .find(&format!("{row} a[href=\"/runs/{id}\"]"))?
            .is_some(),
        "the row of {id} has no link to /runs/{id}"
    );
    time_zone_toggle(world)?;
    world.screenshots.save(session, "runs")?;

    // A batch retry says what it will do; declining does nothing.
    for id in &world.hello_runs {
        session.click_on(
            &format!("table#runs tr[data-run-id=\"{id}\"] input.select-run"),
            TIMEOUT,
        )?;
    }
    session.click_on("button#retry-selected.action", TIMEOUT)?;
    session.wait_for("dialog#confirm[open]", TIMEOUT)?;
    let text = session.text(&session.wait_for("#confirm-text", TIMEOUT)?)?;
    ensure!(
        text.to_lowercase().contains("retry") && text.contains('2'),
        "the confirmation of retrying 2 runs says {text:?}"
    );
    session.click_on("button#confirm-no", TIMEOUT)?;
    wait("the confirmation to close", TIMEOUT, || {
        Ok(session.find("dialog#confirm[open]")?.is_none())
    })?;
    for id in &world.hello_runs {
        let attempts = world.api().run(id)?["attempts"]
            .as_array()
            .map_or(0, Vec::len);
        ensure!(attempts == 1, "declining still retried {id}");
    }

    // By status.
    choose(session, "status", "failed")?;
    let failed = apply_filters(world, "status=failed")?;
    ensure!(
        failed.iter().all(|(_, status)| status == "failed"),
        "status=failed shows {failed:?}"
    );
    ensure!(
        failed.iter().any(|(id, _)| id == &world.etl_run),
        "status=failed does not show the failed run {}: {failed:?}",
        world.etl_run
    );
    choose(session, "status", "completed")?;
    let completed = apply_filters(world, "status=completed")?;
    ensure!(
        completed.iter().all(|(_, status)| status == "completed"),
        "status=completed shows {completed:?}"
    );
    let shown: BTreeSet<&str> = completed.iter().map(|(id, _)| id.as_str()).collect();
    ensure!(
        world
            .hello_runs
            .iter()
            .all(|id| shown.contains(id.as_str()))
            && !shown.contains(world.etl_run.as_str()),
        "status=completed shows {completed:?}"
    );

    // By pipeline, any status.
    session.execute(
        "document.querySelector('form#filters select[name=status]').selectedIndex = 0;",
        vec![],
    )?;
    session.fill("form#filters input[name=pipeline]", "hello")?;
    let hello = apply_filters(world, "pipeline=hello")?;
    let shown: BTreeSet<String> = hello.into_iter().map(|(id, _)| id).collect();
    let wanted: BTreeSet<String> = world.hello_runs.iter().cloned().collect();
    ensure!(
        shown == wanted,
        "pipeline=hello shows {shown:?}, not {wanted:?}"
    );
    no_console_errors(session, "/ (filtered)")
}

/// `button#tz-toggle` switches a `<time>` between UTC and the browser's
/// local zone (Asia/Kolkata here), and back.
fn time_zone_toggle(world: &World) -> Result<()> {
    let session = &world.session;
    let time = session
        .find("time[datetime]")?
        .context("the runs page has no <time datetime> element")?;
    let before = session.text(&time)?;
    session.click_on("button#tz-toggle", TIMEOUT)?;
    let mut after = String::new();
    wait("the time zone toggle to change the times", TIMEOUT, || {
        after = session.text(&time)?;
        Ok(after != before)
    })?;
    ensure!(
        before.contains("UTC") != after.contains("UTC"),
        "one of {before:?} and {after:?} should say UTC and the other the local zone"
    );
    // Back to where it was, so the screenshots are in the same zone.
    session.click_on("button#tz-toggle", TIMEOUT)?;
    wait("the time zone toggle to switch back", TIMEOUT, || {
        Ok(session.text(&time)? == before)
    })
}

/// Sets a marker on `window` that only a reload would clear.
fn mark_page(session: &Session) -> Result<()> {
    session.execute("window.sluiceTestMarker = 'no reload';", vec![])?;
    Ok(())
}

fn page_kept(session: &Session) -> Result<()> {
    let marker = session.execute("return window.sluiceTestMarker || null;", vec![])?;
    ensure!(
        marker == "no reload",
        "the page was reloaded instead of updated live"
    );
    Ok(())
}

fn node(block: &str) -> String {
    format!("svg#dag g.node[data-block=\"{block}\"]")
}

/// A block that waits for a file shows `running` on the graph, then
/// `completed` once the file exists, without a reload.
pub fn block_status_live(world: &World) -> Result<()> {
    let session = &world.session;
    let id = world
        .api()
        .trigger("gate", serde_json::json!({"gate": "status"}))?;
    world.visit(&format!("/runs/{id}"))?;
    session.wait_for(&format!("{}[data-status=running]", node("wait")), TIMEOUT)?;
    mark_page(session)?;
    world.open_gate("status")?;
    session.wait_for(&format!("{}[data-status=completed]", node("wait")), TIMEOUT)?;
    session.wait_for("#run-status[data-status=completed]", TIMEOUT)?;
    session.wait_for(
        &format!("{}[data-status=completed]", node("after")),
        TIMEOUT,
    )?;
    // The rest of the page follows: the attempt's status in the switcher
    // and the run's finish time (its third time, after created and
    // started).
    session.wait_for(
        "#attempt-switcher a.attempt span.status[data-status=completed]",
        TIMEOUT,
    )?;
    session.wait_for("#run p.summary time:nth-of-type(3)", TIMEOUT)?;
    page_kept(session)?;
    no_console_errors(session, &format!("/runs/{id}"))
}

fn log_lines(world: &World) -> Result<Vec<String>> {
    world.strings("section#block-panel pre#log span.log-line", "e.textContent")
}

fn wait_for_line(world: &World, line: &str) -> Result<()> {
    let mut seen = Vec::new();
    wait(&format!("the log line {line:?}"), TIMEOUT, || {
        seen = log_lines(world)?;
        Ok(seen.iter().any(|text| text.contains(line)))
    })
    .with_context(|| format!("the log shows {seen:?}"))
}

/// The log viewer of a running block shows a line printed after the page
/// loaded, renders ANSI colours as classes, and offers follow, search and
/// the raw log.
pub fn log_viewer_live(world: &World) -> Result<()> {
    let session = &world.session;
    let id = world
        .api()
        .trigger("gate", serde_json::json!({"gate": "log"}))?;
    world.visit(&format!("/runs/{id}?block=wait"))?;
    session.wait_for("section#block-panel[data-block=wait]", TIMEOUT)?;
    wait_for_line(world, "first line")?;
    ensure!(
        !log_lines(world)?
            .iter()
            .any(|line| line.contains("second line")),
        "the second line is shown before the block printed it"
    );
    mark_page(session)?;
    world.open_gate("log")?;
    wait_for_line(world, "second line")?;
    // Once the block has ended, its panel shows the finished try without a
    // reload, and the log again in full.
    session.wait_for(
        "section#block-panel table#tries tr[data-status=completed]",
        TIMEOUT,
    )?;
    wait_for_line(world, "second line")?;
    page_kept(session)?;

    let red = session.execute(
        "const line = Array.from(document.querySelectorAll('pre#log span.log-line'))
             .find(l => l.textContent.includes('red alert'));
         if (!line) return null;
         return {text: line.textContent,
                 coloured: line.querySelector('span[class]') !== null
                     || line.classList.length > 1};",
        vec![],
    )?;
    let Value::Object(red) = red else {
        bail!("no log line with the red text");
    };
    let text = red["text"].as_str().unwrap_or_default();
    ensure!(
        !text.contains('\u{1b}') && !text.contains("[31m"),
        "the log shows a raw ANSI escape: {text:?}"
    );
    ensure!(
        red["coloured"] == true,
        "the red line has no colour class: {text:?}"
    );
    let follow = session.wait_for("input#follow[type=checkbox]", TIMEOUT)?;
    ensure!(
        session.property(&follow, "checked")? == true,
        "follow mode is not on by default"
    );
    for css in [
        "input#log-search",
        "a#log-raw",
        "table#tries",
        "table#outputs",
    ] {
        ensure!(session.find(css)?.is_some(), "the block panel has no {css}");
    }
    world.api().wait_for_run_status(&id, "completed")?;
    session.wait_for("#run-status[data-status=completed]", TIMEOUT)?;
    world.screenshots.save(session, "run")?;
    no_console_errors(session, &format!("/runs/{id}?block=wait"))
}

/// Clicks a DAG node: a WebDriver click, or a DOM click event when the
/// node's shape is not hit at its centre.
fn click_node(session: &Session, block: &str) -> Result<()> {
    let element = session.wait_for(&node(block), TIMEOUT)?;
    if session.click(&element).is_err() {
        session.execute(
            "arguments[0].dispatchEvent(new MouseEvent('click', {bubbles: true}));",
            vec![Session::element_argument(&element)],
        )?;
    }
    Ok(())
}

/// On the failed run's page: secrets are masked, errors are shown, and
/// retry from the failed block (picked on the graph, confirmed) adds
/// attempt 2 that reuses the block before it.
pub fn retry_from_block(world: &World) -> Result<()> {
    let session = &world.session;
    let id = &world.etl_run;
    world.visit(&format!("/runs/{id}"))?;
    session.wait_for("#run-status[data-status=failed]", TIMEOUT)?;
    ensure!(
        session.find("#errors")?.is_some(),
        "the failed run shows no #errors"
    );
    let secret = session
        .find("table#variables tr[data-var=token]")?
        .context("no variable row for the secret `token`")?;
    let secret = session.text(&secret)?;
    ensure!(
        secret.contains("***") && !secret.contains("hush-token-4711"),
        "the secret variable shows {secret:?}"
    );
    let region = session
        .find("table#variables tr[data-var=region]")?
        .context("no variable row for `region`")?;
    ensure!(
        session.text(&region)?.contains("emea"),
        "the region variable row does not show its value"
    );
    for block in ["extract", "broken", "load"] {
        ensure!(
            session.find(&node(block))?.is_some(),
            "the graph has no node for {block}"
        );
    }
    ensure!(
        session
            .find("svg#gantt rect.bar[data-block=extract]")?
            .is_some(),
        "the timeline has no bar for extract"
    );

    click_node(session, "broken")?;
    session.wait_for(&format!("{}.selected", node("broken")), TIMEOUT)?;
    let retry = session.wait_for("button#retry-from.action", TIMEOUT)?;
    wait("#retry-from to be enabled", TIMEOUT, || {
        session.is_enabled(&retry)
    })?;
    session.click(&retry)?;
    session.wait_for("dialog#confirm[open]", TIMEOUT)?;
    let text = session.text(&session.wait_for("#confirm-text", TIMEOUT)?)?;
    ensure!(
        text.contains("broken"),
        "the confirmation does not name the block it retries from: {text:?}"
    );
    session.click_on("button#confirm-yes", TIMEOUT)?;

    let mut details = Value::Null;
    wait("attempt 2", TIMEOUT, || {
        details = world.api().run(id)?;
        Ok(details["attempts"].as_array().map_or(0, Vec::len) == 2)
    })?;
    let second = &details["attempts"][1];
    ensure!(
        second["mode"] == "from_block" && second["from_block"] == "broken",
        "attempt 2 is not a retry from broken: {second:#}"
    );
    world.api().wait_for_run_status(id, "completed")?;
    let details = world.api().run(id)?;
    let extract = details["attempts"][1]["block_runs"]
        .as_array()
        .and_then(|runs| runs.iter().find(|run| run["block"] == "extract"))
        .context("attempt 2 has no extract")?;
    ensure!(
        extract["reused_from_attempt"] == 1,
        "attempt 2 ran extract again: {extract:#}"
    );
    // The page shows the new attempt (live or on reload).
    wait_attempt_switcher(world, id)?;
    no_console_errors(session, &format!("/runs/{id}"))
}

fn wait_attempt_switcher(world: &World, id: &str) -> Result<()> {
    let css = "#attempt-switcher [data-attempt=\"2\"], #attempt-switcher option[value=\"2\"]";
    if world.session.find(css)?.is_some() {
        return Ok(());
    }
    world.visit(&format!("/runs/{id}"))?;
    world
        .session
        .wait_for(css, Duration::from_secs(10))
        .map(drop)
        .context("the attempt switcher does not offer attempt 2")
}
