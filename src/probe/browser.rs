//! `browser`: the page loaded by a real, headless Chromium over the
//! DevTools protocol. It loads the URL, waits for the network to go idle
//! (within the step's time), then asserts what a person would see: no
//! failed script, stylesheet, XHR or fetch; no uncaught exception or
//! console error; the app rendered (or the named selector / text
//! appeared); the named APIs called by the page itself and answered 2xx.
//! A PNG screenshot is written either way, and named in the evidence.
//!
//! Chromium is started per probe with a fresh profile and always stopped
//! (`browser_process`). Where there is no Chromium, the probe does not
//! run: [`run`] says why ([`ChromiumError::Missing`]) and the step is
//! skipped, never passed.

use super::browser_log::PageLog;
pub use super::browser_process::ChromiumError;
use super::browser_process::{Chromium, find_chromium};
use super::spec::BrowserProbe;
use super::timeline::{Timeline, ms};
use crate::verdict::{Stage, Verdict};
use chromiumoxide::cdp::browser_protocol::network::{
    EventLoadingFailed, EventLoadingFinished, EventRequestWillBeSent, EventResponseReceived,
};
use chromiumoxide::cdp::browser_protocol::page::CaptureScreenshotFormat;
use chromiumoxide::cdp::js_protocol::runtime::{
    ConsoleApiCalledType, EvaluateParams, EventConsoleApiCalled, EventExceptionThrown,
};
use chromiumoxide::page::ScreenshotParams;
use chromiumoxide::{Browser, Page};
use futures::StreamExt;
use futures::stream::BoxStream;
use serde::Deserialize;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;
use url::Url;

/// The evidence line that names a screenshot file; reports find
/// screenshots by it ([`screenshots_in`]).
pub const SCREENSHOT_LINE: &str = "screenshot: ";

/// The screenshot's file name in the step's artifacts folder.
pub const SCREENSHOT_FILE: &str = "screenshot.png";

/// The browser window (and screenshot) size.
const WINDOW: (u32, u32) = (1280, 900);

/// How long the network must stay quiet to count as idle.
const IDLE_AFTER: Duration = Duration::from_millis(500);

/// After this much quiet, a page that has not rendered is taken as it is.
const SETTLED_AFTER: Duration = Duration::from_secs(2);

/// The screenshot files named in a step's evidence.
pub fn screenshots_in(evidence: &[String]) -> Vec<PathBuf> {
    evidence
        .iter()
        .filter_map(|line| line.strip_prefix(SCREENSHOT_LINE))
        .map(PathBuf::from)
        .collect()
}

/// Runs a `browser` probe; the screenshot goes into `artifacts` (a folder,
/// created if needed) when given. `Err` only when there is no Chromium.
pub async fn run(
    probe: &BrowserProbe,
    timeout: Duration,
    artifacts: Option<&Path>,
) -> Result<Verdict, ChromiumError> {
    let executable = find_chromium()?;
    Ok(check(probe, &executable, timeout, artifacts).await)
}

/// The probe with a given Chromium (the CLI's entry point).
pub async fn check(
    probe: &BrowserProbe,
    executable: &Path,
    timeout: Duration,
    artifacts: Option<&Path>,
) -> Verdict {
    let deadline = Instant::now() + timeout;
    // Time kept back for the screenshot and stopping Chromium.
    let reserve = (timeout / 4).min(Duration::from_secs(5));
    let mut timeline = Timeline::new();
    let expected = expectation(probe);
    timeline.note(format!("starting {}", executable.display()));
    let chromium =
        match tokio::time::timeout_at(deadline - reserve, Chromium::launch(executable, WINDOW))
            .await
        {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return not_started(e.to_string(), &expected, timeline),
            Err(_) => {
                let why = format!("Chromium did not start within {}", ms(timeline.elapsed()));
                return not_started(why, &expected, timeline);
            }
        };
    timeline.note(format!(
        "Chromium pid {} (own process group), profile {}, DevTools {}",
        chromium.pid(),
        chromium.profile_dir().display(),
        chromium.devtools_url
    ));
    let verdict = drive(
        probe,
        &chromium,
        deadline,
        reserve,
        artifacts,
        &mut timeline,
    )
    .await;
    let verdict = match verdict {
        Ok(v) => v,
        Err(why) => {
            let why = format!("{why}; Chromium stderr: {}", chromium.stderr_tail());
            not_started(why, &expected, timeline.clone())
        }
    };
    chromium.stop().await;
    verdict
}

/// Connects to Chromium, loads the page, observes and judges it. `Err`
/// when the browser itself could not be driven.
async fn drive(
    probe: &BrowserProbe,
    chromium: &Chromium,
    deadline: Instant,
    reserve: Duration,
    artifacts: Option<&Path>,
    timeline: &mut Timeline,
) -> Result<Verdict, String> {
    let (mut browser, mut handler) = Browser::connect(chromium.devtools_url.clone())
        .await
        .map_err(|e| format!("cannot connect to Chromium's DevTools: {e}"))?;
    // The handler carries every DevTools message; it ends with the browser.
    // Messages it cannot decode (a newer Chromium) are not fatal.
    let driver = tokio::spawn(async move { while handler.next().await.is_some() {} });
    let result = observe(probe, &browser, deadline, reserve, artifacts, timeline).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), browser.close()).await;
    driver.abort();
    result
}

async fn observe(
    probe: &BrowserProbe,
    browser: &Browser,
    deadline: Instant,
    reserve: Duration,
    artifacts: Option<&Path>,
    timeline: &mut Timeline,
) -> Result<Verdict, String> {
    let page = browser
        .new_page("about:blank")
        .await
        .map_err(|e| format!("cannot open a tab: {e}"))?;
    let log = Arc::new(Mutex::new(PageLog::default()));
    let recorder = tokio::spawn(record(listen(&page).await?, log.clone()));
    let load_until = deadline - reserve;

    timeline.note(format!("navigate to {}", probe.url));
    match tokio::time::timeout_at(load_until, page.goto(probe.url.as_str())).await {
        Ok(Ok(_)) => timeline.note("load event fired"),
        Ok(Err(e)) => timeline.note(format!("navigation: {e}")),
        Err(_) => timeline.note("navigation did not finish within the step's time"),
    }
    let render_check = render_expression(probe);
    let mut state = wait_until_settled(&page, &log, &render_check, load_until, timeline).await;
    if state.is_none() {
        state = render_state(&page, &render_check).await.ok();
    }
    let screenshot = take_screenshot(&page, artifacts, timeline).await;
    recorder.abort();
    let log = log.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(judge(probe, &log, state.as_ref(), screenshot, timeline))
}

/// Waits until the network has been idle for [`IDLE_AFTER`] and the page
/// rendered, or it has been idle for [`SETTLED_AFTER`], or `until`.
async fn wait_until_settled(
    page: &Page,
    log: &Arc<Mutex<PageLog>>,
    render_check: &str,
    until: Instant,
    timeline: &mut Timeline,
) -> Option<RenderState> {
    let mut idle_since: Option<Instant> = None;
    let mut last = None;
    while Instant::now() < until {
        let in_flight = log.lock().unwrap_or_else(|e| e.into_inner()).in_flight();
        let now = Instant::now();
        let idle_for = match (in_flight, idle_since) {
            (0, Some(t)) => now - t,
            (0, None) => {
                idle_since = Some(now);
                Duration::ZERO
            }
            _ => {
                idle_since = None;
                Duration::ZERO
            }
        };
        if idle_for >= IDLE_AFTER {
            let state = render_state(page, render_check).await.ok();
            let rendered = state.as_ref().is_some_and(RenderState::rendered);
            if rendered || idle_for >= SETTLED_AFTER {
                timeline.note(format!(
                    "network idle for {}{}",
                    ms(idle_for),
                    if rendered { "; page rendered" } else { "" }
                ));
                return state;
            }
            last = state;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let in_flight = log.lock().unwrap_or_else(|e| e.into_inner()).in_flight();
    timeline.note(format!(
        "network not idle within the step's time ({in_flight} request(s) in flight)"
    ));
    last
}

/// One DevTools event the probe cares about.
enum PageEvent {
    Sent(Arc<EventRequestWillBeSent>),
    Answered(Arc<EventResponseReceived>),
    Finished(Arc<EventLoadingFinished>),
    Failed(Arc<EventLoadingFailed>),
    Exception(Arc<EventExceptionThrown>),
    Console(Arc<EventConsoleApiCalled>),
}

/// Subscribes to the page's network, exception and console events.
async fn listen(page: &Page) -> Result<BoxStream<'static, PageEvent>, String> {
    let e = |err: chromiumoxide::error::CdpError| format!("cannot listen to the page: {err}");
    let streams: Vec<BoxStream<'static, PageEvent>> = vec![
        page.event_listener::<EventRequestWillBeSent>()
            .await
            .map_err(e)?
            .map(PageEvent::Sent)
            .boxed(),
        page.event_listener::<EventResponseReceived>()
            .await
            .map_err(e)?
            .map(PageEvent::Answered)
            .boxed(),
        page.event_listener::<EventLoadingFinished>()
            .await
            .map_err(e)?
            .map(PageEvent::Finished)
            .boxed(),
        page.event_listener::<EventLoadingFailed>()
            .await
            .map_err(e)?
            .map(PageEvent::Failed)
            .boxed(),
        page.event_listener::<EventExceptionThrown>()
            .await
            .map_err(e)?
            .map(PageEvent::Exception)
            .boxed(),
        page.event_listener::<EventConsoleApiCalled>()
            .await
            .map_err(e)?
            .map(PageEvent::Console)
            .boxed(),
    ];
    Ok(futures::stream::select_all(streams).boxed())
}

/// Writes every event into the log as it arrives.
async fn record(mut events: BoxStream<'static, PageEvent>, log: Arc<Mutex<PageLog>>) {
    while let Some(event) = events.next().await {
        let mut log = log.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            PageEvent::Sent(e) => {
                let kind = e.r#type.as_ref().map_or("Other", |t| t.as_ref());
                log.sent(
                    e.request_id.inner(),
                    *e.timestamp.inner(),
                    &e.request.url,
                    kind,
                );
            }
            PageEvent::Answered(e) => {
                log.answered(e.request_id.inner(), e.response.status, e.r#type.as_ref())
            }
            PageEvent::Finished(e) => log.finished(e.request_id.inner()),
            PageEvent::Failed(e) => log.failed(
                e.request_id.inner(),
                &e.error_text,
                e.canceled.unwrap_or(false),
            ),
            PageEvent::Exception(e) => {
                let d = &e.exception_details;
                let what = d
                    .exception
                    .as_ref()
                    .and_then(|o| o.description.clone())
                    .unwrap_or_else(|| d.text.clone());
                let at = d.url.as_deref().unwrap_or("");
                let first = what.lines().next().unwrap_or_default();
                log.exceptions.push(format!(
                    "{first} at {at}:{}:{}",
                    d.line_number + 1,
                    d.column_number + 1
                ));
            }
            PageEvent::Console(e) if e.r#type == ConsoleApiCalledType::Error => {
                let text: Vec<String> = e
                    .args
                    .iter()
                    .map(|a| {
                        a.value
                            .as_ref()
                            .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_string))
                            .or_else(|| a.description.clone())
                            .unwrap_or_default()
                    })
                    .collect();
                log.console_errors.push(text.join(" "));
            }
            PageEvent::Console(_) => {}
        }
    }
}

/// What the rendered page looks like, measured in the page.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RenderState {
    /// What was checked: the selector, `#root` or `body`.
    root: String,
    /// It exists.
    found: bool,
    /// Its child elements.
    children: u64,
    /// Characters of visible text in it.
    visible_text: u64,
    /// Whether the scenario's text appears (None: none asked for).
    text_found: Option<bool>,
    /// Whether a selector was named (then children do not matter).
    by_selector: bool,
    /// The start of the page's visible text.
    sample: String,
    /// The document's base URL (for page-relative APIs).
    base: String,
    /// `document.title`.
    title: String,
}

impl RenderState {
    fn rendered(&self) -> bool {
        self.found
            && self.visible_text > 0
            && (self.by_selector || self.children > 0)
            && self.text_found != Some(false)
    }

    fn describe(&self) -> String {
        let text = match self.text_found {
            Some(true) => "; the expected text appears",
            Some(false) => "; the expected text does NOT appear",
            None => "",
        };
        if !self.found {
            return format!("{} not found in the page{text}", self.root);
        }
        format!(
            "{} has {} child element(s) and {} characters of visible text{text}; title {:?}; text starts {:?}",
            self.root, self.children, self.visible_text, self.title, self.sample
        )
    }
}

/// The JavaScript that measures [`RenderState`].
fn render_expression(probe: &BrowserProbe) -> String {
    let json = |v: &Option<String>| serde_json::to_string(v).unwrap_or_else(|_| "null".into());
    format!(
        r#"(() => {{
  const selector = {selector};
  const text = {text};
  const root = selector ? document.querySelector(selector)
    : (document.querySelector('#root') || document.body);
  const name = selector || (document.querySelector('#root') ? '#root' : 'body');
  const bodyText = document.body ? (document.body.innerText || '') : '';
  return {{
    root: name,
    found: !!root,
    children: root ? root.children.length : 0,
    visibleText: root ? (root.innerText || '').trim().length : 0,
    textFound: text === null ? null : bodyText.includes(text),
    bySelector: selector !== null,
    sample: bodyText.trim().replace(/\s+/g, ' ').slice(0, 160),
    base: document.baseURI,
    title: document.title,
  }};
}})()"#,
        selector = json(&probe.selector),
        text = json(&probe.text),
    )
}

async fn render_state(page: &Page, expression: &str) -> Result<RenderState, String> {
    let params = EvaluateParams::builder()
        .expression(expression)
        .return_by_value(true)
        .build()
        .map_err(|e| e.to_string())?;
    page.evaluate(params)
        .await
        .map_err(|e| e.to_string())?
        .into_value::<RenderState>()
        .map_err(|e| e.to_string())
}

/// A PNG of the viewport into `artifacts/screenshot.png`; its path, or
/// `None` (with the reason in the timeline).
async fn take_screenshot(
    page: &Page,
    artifacts: Option<&Path>,
    timeline: &mut Timeline,
) -> Option<PathBuf> {
    let dir = artifacts?;
    let params = ScreenshotParams::builder()
        .format(CaptureScreenshotFormat::Png)
        .build();
    let png = match tokio::time::timeout(Duration::from_secs(5), page.screenshot(params)).await {
        Ok(Ok(png)) => png,
        Ok(Err(e)) => {
            timeline.note(format!("no screenshot: {e}"));
            return None;
        }
        Err(_) => {
            timeline.note("no screenshot: Chromium did not take it within 5 s");
            return None;
        }
    };
    let path = dir.join(SCREENSHOT_FILE);
    match std::fs::create_dir_all(dir).and_then(|()| std::fs::write(&path, &png)) {
        Ok(()) => Some(path),
        Err(e) => {
            timeline.note(format!(
                "no screenshot: cannot write {}: {e}",
                path.display()
            ));
            None
        }
    }
}

fn expectation(probe: &BrowserProbe) -> String {
    let mut what = String::from(
        "in Chromium: no failed script, stylesheet, XHR or fetch; no uncaught exception or console error; ",
    );
    match (&probe.selector, &probe.text) {
        (Some(s), Some(t)) => what.push_str(&format!("{s} rendered and {t:?} shown")),
        (Some(s), None) => what.push_str(&format!("{s} rendered with visible text")),
        (None, Some(t)) => what.push_str(&format!("the app rendered and {t:?} shown")),
        (None, None) => what.push_str("the app's root rendered children and visible text"),
    }
    if !probe.apis.is_empty() {
        what.push_str(&format!(
            "; the page itself called {} (2xx)",
            probe.apis.join(", ")
        ));
    }
    what
}

/// The verdict from what the page did and shows.
fn judge(
    probe: &BrowserProbe,
    log: &PageLog,
    state: Option<&RenderState>,
    screenshot: Option<PathBuf>,
    timeline: &mut Timeline,
) -> Verdict {
    let base = state
        .and_then(|s| Url::parse(&s.base).ok())
        .or_else(|| Url::parse(&probe.url).ok());
    let resolve = |path: &String| base.as_ref().and_then(|b| b.join(path).ok());
    let allowed: Vec<Url> = probe.allow_failed.iter().filter_map(resolve).collect();
    let failed = log.failed_requests(&allowed);
    for r in log.requests() {
        let mark = if failed.contains(&r) {
            " FAILED"
        } else if r.failed() {
            " (failure allowed)"
        } else {
            ""
        };
        timeline.note(format!("request {}{mark}", r.describe()));
    }
    for e in &log.exceptions {
        timeline.note(format!("uncaught exception: {e}"));
    }
    for e in &log.console_errors {
        timeline.note(format!("console error: {e}"));
    }
    let mut problems: Vec<(Stage, String)> = Vec::new();
    if !failed.is_empty() {
        let list: Vec<String> = failed.iter().map(|r| r.describe()).collect();
        problems.push((
            Stage::Asset,
            format!("{} failed request(s): {}", failed.len(), list.join(", ")),
        ));
    }
    if !log.exceptions.is_empty() {
        problems.push((
            Stage::Render,
            format!("uncaught exception(s): {}", log.exceptions.join("; ")),
        ));
    }
    if !log.console_errors.is_empty() {
        problems.push((
            Stage::Render,
            format!("console error(s): {}", log.console_errors.join("; ")),
        ));
    }
    let rendered = match state {
        Some(s) => {
            timeline.note(format!("rendered: {}", s.describe()));
            if !s.rendered() {
                problems.push((Stage::Render, format!("not rendered: {}", s.describe())));
            }
            s.describe()
        }
        None => {
            problems.push((Stage::Render, "the page could not be inspected".into()));
            "not inspected".into()
        }
    };
    for api in &probe.apis {
        match resolve(api).map(|u| log.api_called(&u)) {
            Some(Ok(how)) => timeline.note(format!("api {api:?} called by the page: {how}")),
            Some(Err(why)) => problems.push((Stage::Asset, format!("api {api:?}: {why}"))),
            None => problems.push((Stage::Asset, format!("api {api:?} does not resolve"))),
        }
    }
    let actual = format!(
        "{} request(s), {} failed; {} exception(s), {} console error(s); {rendered}",
        log.requests().len(),
        failed.len(),
        log.exceptions.len(),
        log.console_errors.len()
    );
    let mut evidence = timeline.clone().into_lines();
    if let Some(path) = &screenshot {
        evidence.push(format!("{SCREENSHOT_LINE}{}", path.display()));
    }
    let expected = expectation(probe);
    match problems.first() {
        None => Verdict::pass(
            format!(
                "rendered in Chromium, {} request(s) all loaded, in {}",
                log.requests().len(),
                ms(timeline.elapsed())
            ),
            expected,
            actual,
        ),
        Some((stage, _)) => {
            let all: Vec<&str> = problems.iter().map(|(_, p)| p.as_str()).collect();
            Verdict::fail(*stage, all.join("; "), expected, actual)
        }
    }
    .with_evidence(evidence)
}

/// Chromium could not be started or driven: a failed verdict (never a pass).
fn not_started(why: String, expected: &str, timeline: Timeline) -> Verdict {
    Verdict::fail(Stage::Render, why.clone(), expected, why).with_evidence(timeline.into_lines())
}
