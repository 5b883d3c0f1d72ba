//! The HTML report as a person sees it: rendered from a run with a failing scenario, opened in
//! headless Chromium at 1280×800 over the DevTools protocol (`tests/cdp`), and checked for what
//! is shown: the failing scenario first, its first gap visible without scrolling, no console
//! error, no request other than the file itself. The screenshot is kept as
//! `<target>/rocky-e2e/report.png` (a CI artifact; `docs/report.png` is a copy).
//!
//! Needs Debian's `chromium` (`apt-get install -y chromium`; `.ci/run` installs it) or
//! `$CHROMIUM`. Without one it fails under `CI`, and says it skipped otherwise.

use crate::report_support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use report_support::cdp::{Browser, PageLog, base64_decode, find_chromium};
use report_support::sample;

const WIDTH: u32 = 1280;
const HEIGHT: u32 = 800;
/// The whole check: start, three pages loaded, evaluated and shot, close (≈2 s here).
const DEADLINE: Duration = Duration::from_secs(60);

/// Where artifacts go: `<target>/rocky-e2e/`.
fn out_dir() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is inside the target directory")
        .join("rocky-e2e");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn chromium_or_skip() -> Option<PathBuf> {
    match find_chromium() {
        Some(c) => Some(c),
        None if std::env::var_os("CI").is_some() => panic!(
            "no Chromium on the PATH (and $CHROMIUM unset): the report's browser check needs it. \
             Install it with `apt-get install -y chromium` (.ci/run does)."
        ),
        None => {
            eprintln!(
                "skipped: no Chromium on the PATH; `apt-get install -y chromium` to run this check"
            );
            None
        }
    }
}

/// What the page shows, measured in the page after load.
const MEASURE: &str = r#"(() => {
  const cards = [...document.querySelectorAll('main .scenario')];
  const first = cards[0] || null;
  const pick = (sel) => first ? first.querySelector(sel) : null;
  const gap = pick('.first-gap'), headline = pick('.gap-headline');
  const box = (el) => { if (!el) return null; const r = el.getBoundingClientRect();
    return { top: r.top, bottom: r.bottom, left: r.left, right: r.right }; };
  // Visible means in the viewport and not covered: the element at its centre is it or inside it.
  const seen = (el) => { if (!el) return false; const r = el.getBoundingClientRect();
    const x = Math.min(r.left + 20, innerWidth - 1), y = (r.top + r.bottom) / 2;
    const hit = document.elementFromPoint(x, y);
    return r.top >= 0 && r.bottom <= innerHeight && r.width > 0 && !!hit && (hit === el || el.contains(hit)); };
  return {
    verdicts: cards.map(c => c.dataset.verdict),
    first_title: first ? first.querySelector('.title').textContent : null,
    first_open: first ? first.open : null,
    gap_text: gap ? gap.textContent : null,
    snapdiff_text: pick('.snapdiff') ? pick('.snapdiff').textContent : null,
    snapdiff_seen: seen(pick('.snapdiff tr.changed')),
    headline_text: headline ? headline.textContent : null,
    gap: box(gap), gap_seen: seen(gap), headline_seen: seen(headline),
    viewport: [innerWidth, innerHeight], scroll_y: scrollY,
    resources: performance.getEntriesByType('resource').map(e => e.name),
    scripts: document.scripts.length,
  };
})()"#;

struct Opened {
    log: PageLog,
    measured: Value,
    png: Vec<u8>,
}

/// Opens `file` in a fresh page, waits for its load event, measures it and takes a screenshot.
fn open(browser: &mut Browser, file: &Path) -> Result<Opened, String> {
    let session = browser.new_page()?;
    let s = Some(session.as_str());
    for domain in [
        "Page.enable",
        "Runtime.enable",
        "Log.enable",
        "Network.enable",
    ] {
        browser.call(s, domain, json!({}))?;
    }
    browser.call(
        s,
        "Emulation.setDeviceMetricsOverride",
        json!({ "width": WIDTH, "height": HEIGHT, "deviceScaleFactor": 1, "mobile": false }),
    )?;
    let url = format!("file://{}", file.display());
    let nav = browser.call(s, "Page.navigate", json!({ "url": url }))?;
    if let Some(e) = nav.get("errorText").and_then(Value::as_str) {
        return Err(format!("navigating to {url}: {e}"));
    }
    browser.wait_event(&session, "Page.loadEventFired")?;
    let measured = browser.call(
        s,
        "Runtime.evaluate",
        json!({ "expression": MEASURE, "returnByValue": true }),
    )?;
    if let Some(e) = measured.get("exceptionDetails") {
        return Err(format!("the measuring script failed: {e}"));
    }
    let shot = browser.call(s, "Page.captureScreenshot", json!({ "format": "png" }))?;
    let png = base64_decode(shot["data"].as_str().ok_or("no screenshot data")?)?;
    // Everything the page did up to now (its load, our evaluation, the screenshot).
    let log = PageLog::of(&browser.events, &session, &url);
    Ok(Opened {
        log,
        measured: measured["result"]["value"].clone(),
        png,
    })
}

/// Renders `report` to `html_path` and opens it in a fresh page of `browser`.
fn render_and_open(
    browser: &mut Browser,
    html_path: &Path,
    report: &rocky_e2e::report::model::RunReport,
) -> Opened {
    std::fs::write(html_path, rocky_e2e::report::html::render(report)).unwrap();
    open(browser, html_path).unwrap_or_else(|e| panic!("{e}\n{}", browser.log_tail()))
}

/// One check of a page, in the shared browser.
type Check = fn(&mut Browser);

/// The checks, each on a fresh page of one headless Chromium (a launch costs more CPU than
/// all three pages together, on the required check's two cores). Every check runs even when
/// an earlier one fails; the test fails naming each that did.
#[test]
fn the_report_in_headless_chromium() {
    let Some(chromium) = chromium_or_skip() else {
        return;
    };
    let started = Instant::now();
    let mut browser = Browser::launch(&chromium, WIDTH, HEIGHT, started + DEADLINE)
        .unwrap_or_else(|e| panic!("{e}"));
    let checks: [(&str, Check); 3] = [
        ("the report reads well", the_report_reads_well),
        (
            "a failing snapshot shows its chain diff",
            a_failing_snapshot_shows_its_chain_diff,
        ),
        (
            "the checks catch a request and a console error",
            the_checks_catch_a_request_and_a_console_error,
        ),
    ];
    let mut failed = Vec::new();
    for (name, check) in checks {
        let run = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&mut browser)));
        if let Err(panic) = run {
            let why = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failed.push(format!("{name}: {why}"));
        }
    }
    browser.close();
    eprintln!(
        "three pages checked in one Chromium in {:.1?}",
        started.elapsed()
    );
    assert!(
        failed.is_empty(),
        "{} of {} browser checks failed:\n{}",
        failed.len(),
        checks.len(),
        failed.join("\n")
    );
}

/// The failing scenario first, its first gap above the fold, no console error, no request.
fn the_report_reads_well(browser: &mut Browser) {
    let started = Instant::now();
    let dir = out_dir();
    let opened = render_and_open(
        browser,
        &dir.join("report-check.html"),
        &sample::failing_run(),
    );

    let png_path = dir.join("report.png");
    std::fs::write(&png_path, &opened.png).unwrap();
    assert!(
        opened.png.starts_with(b"\x89PNG\r\n\x1a\n"),
        "the screenshot is a PNG"
    );
    let m = &opened.measured;
    eprintln!(
        "report opened in {:.1?}; screenshot {} ({} bytes); measured {m}",
        started.elapsed(),
        png_path.display(),
        opened.png.len()
    );

    assert!(
        opened.log.errors.is_empty(),
        "console errors: {:#?}",
        opened.log.errors
    );
    assert!(
        opened.log.requests.is_empty(),
        "the page requested: {:#?}",
        opened.log.requests
    );
    assert_eq!(m["resources"], json!([]), "resource timing entries");
    assert_eq!(m["scripts"], json!(0), "the report has no script");
    assert_eq!(m["viewport"], json!([WIDTH, HEIGHT]));
    assert_eq!(
        m["verdicts"],
        json!(["failed", "passed", "passed", "passed", "skipped"]),
        "failures first"
    );
    assert_eq!(
        m["first_title"],
        json!("failure_drill › the VAULT bearer drifts")
    );
    assert_eq!(m["first_open"], json!(true));
    assert_eq!(m["scroll_y"], json!(0));
    assert!(
        m["headline_text"]
            .as_str()
            .unwrap_or_default()
            .contains("ralph.run.started never fired (act 3 submit run)"),
        "{m}"
    );
    assert!(
        m["gap_text"]
            .as_str()
            .unwrap_or_default()
            .contains("ralph.run.started")
            && m["gap_text"]
                .as_str()
                .unwrap_or_default()
                .contains("← first gap"),
        "{m}"
    );
    assert_eq!(
        m["headline_seen"],
        json!(true),
        "gap headline above the fold: {m}"
    );
    assert_eq!(
        m["gap_seen"],
        json!(true),
        "first gap row above the fold: {m}"
    );
}

/// A failing snapshot's card shows the accepted and the new chain side by side, aligned by
/// act, with the changed row above the fold.
fn a_failing_snapshot_shows_its_chain_diff(browser: &mut Browser) {
    let opened = render_and_open(
        browser,
        &out_dir().join("report-snapshot-check.html"),
        &sample::snapshot_run(),
    );
    let m = &opened.measured;
    assert!(opened.log.errors.is_empty(), "{:#?}", opened.log.errors);
    assert_eq!(
        m["first_title"],
        json!("play › provision, run four prompts, tear down")
    );
    let diff = m["snapdiff_text"].as_str().unwrap_or_default();
    for shown in [
        "play__provision-run-four-prompts-tear-down",
        "the chain differs from the accepted one",
        "✎ changed",
        "attempts",
        "ralph.node.succeeded · test · node-2",
    ] {
        assert!(
            diff.contains(shown),
            "the diff does not show {shown:?}: {m}"
        );
    }
    assert_eq!(
        m["snapdiff_seen"],
        json!(true),
        "the changed row above the fold: {m}"
    );
}

/// The instruments catch what they are there to catch: a page that fetches and logs an error
/// is reported as such (with every host name unresolvable, nothing leaves the machine).
fn the_checks_catch_a_request_and_a_console_error(browser: &mut Browser) {
    let page = out_dir().join("report-control.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><title>control</title><img src=\"http://report.invalid/pixel.png\">\
         <script>console.error('control error'); undefinedFunction();</script>",
    )
    .unwrap();
    let opened = open(browser, &page).unwrap_or_else(|e| panic!("{e}\n{}", browser.log_tail()));
    assert!(
        opened
            .log
            .requests
            .iter()
            .any(|u| u.starts_with("http://report.invalid/")),
        "{:?}",
        opened.log
    );
    assert!(
        opened
            .log
            .errors
            .iter()
            .any(|e| e.contains("control error")),
        "{:?}",
        opened.log
    );
    assert!(
        opened
            .log
            .errors
            .iter()
            .any(|e| e.contains("undefinedFunction")),
        "{:?}",
        opened.log
    );
    assert_eq!(opened.measured["verdicts"], json!([]));
}
