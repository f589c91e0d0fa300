//! What a page did in the browser, as the DevTools events told it: every
//! request with its kind and how it ended, uncaught exceptions and
//! console errors. The `browser` probe's assertions are questions to it.

use std::collections::BTreeMap;
use url::Url;

/// The kinds of request whose failure breaks a page: the code it runs,
/// its styles and the data it asks for (and the document itself).
const MUST_LOAD: &[&str] = &["Document", "Script", "Stylesheet", "XHR", "Fetch"];

/// One request the page made (the last hop, after redirects).
#[derive(Debug, Clone, PartialEq)]
pub struct PageRequest {
    /// The URL requested (`None` while only later events of it arrived).
    pub url: Option<String>,
    /// The DevTools resource type: `Document`, `Script`, `XHR`, ...
    pub kind: String,
    /// The HTTP status, once a response arrived.
    pub status: Option<i64>,
    /// The network error, when it failed without a response.
    pub error: Option<String>,
    /// The browser cancelled it (e.g. a 404 script or stylesheet, or a
    /// page navigating away).
    pub cancelled: bool,
    /// The request ended (loaded, failed or cancelled).
    pub done: bool,
    /// When it was first sent (DevTools monotonic seconds): the order.
    sent_at: Option<f64>,
    /// When its current URL was sent (the last redirect hop).
    hop_at: Option<f64>,
}

impl PageRequest {
    fn new() -> Self {
        PageRequest {
            url: None,
            kind: "Other".to_string(),
            status: None,
            error: None,
            cancelled: false,
            done: false,
            sent_at: None,
            hop_at: None,
        }
    }

    fn url(&self) -> &str {
        self.url.as_deref().unwrap_or_default()
    }

    /// Whether it ended badly: status >= 400 or a network error.
    pub fn failed(&self) -> bool {
        self.status.is_some_and(|s| s >= 400) || self.error.is_some()
    }

    /// `script http://h/static/js/main.js: 404` or `...: net::ERR_...`.
    pub fn describe(&self) -> String {
        let how = match (&self.error, self.status) {
            (Some(e), _) => e.clone(),
            (None, Some(s)) => s.to_string(),
            (None, None) if self.cancelled => "cancelled before any answer".to_string(),
            (None, None) if self.done => "ended without an answer".to_string(),
            (None, None) => "no answer yet (still loading)".to_string(),
        };
        let url = self.url.as_deref().unwrap_or("(URL not seen)");
        format!("{} {url}: {how}", self.kind.to_lowercase())
    }
}

/// Everything the page did. DevTools events arrive on one stream per
/// event type, so a request's answer may be recorded before its sending:
/// every method here gives the same log whatever the order of its calls.
#[derive(Debug, Clone, Default)]
pub struct PageLog {
    by_id: BTreeMap<String, PageRequest>,
    /// Uncaught exceptions, one line each.
    pub exceptions: Vec<String>,
    /// `console.error` calls, one line each.
    pub console_errors: Vec<String>,
}

impl PageLog {
    fn entry(&mut self, id: &str) -> &mut PageRequest {
        self.by_id
            .entry(id.to_string())
            .or_insert_with(PageRequest::new)
    }

    /// A request was sent at `at` (or redirected: the same id, a new URL,
    /// a later time; the latest hop is kept).
    pub fn sent(&mut self, id: &str, at: f64, url: &str, kind: &str) {
        let request = self.entry(id);
        request.sent_at = Some(request.sent_at.map_or(at, |t| t.min(at)));
        if request.hop_at.is_none_or(|t| at >= t) {
            request.hop_at = Some(at);
            request.url = Some(url.to_string());
            if request.status.is_none() {
                request.kind = kind.to_string();
            }
        }
    }

    /// Its response arrived (the final hop's: redirects are not answers).
    pub fn answered(&mut self, id: &str, status: i64, kind: &str) {
        let request = self.entry(id);
        request.status = Some(status);
        request.kind = kind.to_string();
    }

    /// It finished loading.
    pub fn finished(&mut self, id: &str) {
        self.entry(id).done = true;
    }

    /// It failed: a network error, or cancelled (not a failure of the
    /// server: a page that navigates away cancels what it no longer needs).
    pub fn failed(&mut self, id: &str, error: &str, cancelled: bool) {
        let request = self.entry(id);
        request.done = true;
        if cancelled {
            request.cancelled = true;
        } else {
            request.error = Some(error.to_string());
        }
    }

    /// Every request seen being sent, in the order sent.
    pub fn requests(&self) -> Vec<&PageRequest> {
        let mut sent: Vec<&PageRequest> = self.by_id.values().filter(|r| r.url.is_some()).collect();
        sent.sort_by(|a, b| {
            let at = |r: &PageRequest| r.sent_at.unwrap_or_default();
            at(a).total_cmp(&at(b))
        });
        sent
    }

    /// Requests still loading, and events of requests not yet seen sent
    /// (their sending is on its way).
    pub fn in_flight(&self) -> usize {
        self.by_id
            .values()
            .filter(|r| !r.done || r.url.is_none())
            .count()
    }

    /// The failed documents, scripts, stylesheets, XHRs and fetches,
    /// except those at an `allowed` URL (path compared, query ignored).
    pub fn failed_requests(&self, allowed: &[Url]) -> Vec<&PageRequest> {
        self.requests()
            .into_iter()
            .filter(|r| r.failed() && MUST_LOAD.contains(&r.kind.as_str()))
            .filter(|r| !allowed.iter().any(|a| same_path(r.url(), a)))
            .collect()
    }

    /// Whether the page itself requested `api` (its path, any query) and
    /// got a 2xx: `Ok` with what answered, `Err` with what happened.
    pub fn api_called(&self, api: &Url) -> Result<String, String> {
        let calls: Vec<&PageRequest> = self
            .requests()
            .into_iter()
            .filter(|r| same_path(r.url(), api))
            .collect();
        if let Some(ok) = calls
            .iter()
            .find(|r| r.status.is_some_and(|s| (200..300).contains(&s)))
        {
            return Ok(ok.describe());
        }
        match calls.last() {
            Some(r) => Err(r.describe()),
            None => Err(format!("{api}: never requested by the page")),
        }
    }
}

/// Whether `url` is `target` (same origin and path; `target`'s query, if
/// it has one, must match too).
fn same_path(url: &str, target: &Url) -> bool {
    Url::parse(url).is_ok_and(|u| {
        u.origin() == target.origin()
            && u.path() == target.path()
            && (target.query().is_none() || u.query() == target.query())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failures_are_code_styles_and_data_not_images() {
        let mut log = PageLog::default();
        log.sent("1", 1.0, "http://h/ray", "Document");
        log.answered("1", 200, "Document");
        log.finished("1");
        log.sent("2", 2.0, "http://h/static/js/main.js", "Script");
        log.answered("2", 404, "Script");
        log.finished("2");
        log.sent("3", 3.0, "http://h/logo.png", "Image");
        log.answered("3", 404, "Image");
        log.sent("4", 4.0, "http://h/api/version", "XHR");
        log.failed("4", "net::ERR_CONNECTION_REFUSED", false);
        log.sent("5", 5.0, "http://h/api/gone", "Fetch");
        log.failed("5", "net::ERR_ABORTED", true);
        let failed: Vec<String> = log
            .failed_requests(&[])
            .iter()
            .map(|r| r.describe())
            .collect();
        assert_eq!(
            failed,
            [
                "script http://h/static/js/main.js: 404",
                "xhr http://h/api/version: net::ERR_CONNECTION_REFUSED"
            ]
        );
        assert_eq!(log.in_flight(), 1, "the image never finished");
        let allowed = Url::parse("http://h/api/version").unwrap();
        assert_eq!(log.failed_requests(&[allowed]).len(), 1);
    }

    #[test]
    fn an_api_counts_only_when_the_page_called_it_successfully() {
        let mut log = PageLog::default();
        log.sent("1", 6.0, "http://h/ray/api/cluster_status?format=1", "XHR");
        log.answered("1", 200, "XHR");
        log.sent("2", 7.0, "http://h/api/version", "XHR");
        log.answered("2", 404, "XHR");
        let api = |p: &str| Url::parse("http://h/ray/").unwrap().join(p).unwrap();
        assert!(log.api_called(&api("api/cluster_status")).is_ok());
        let no_slash = Url::parse("http://h/ray")
            .unwrap()
            .join("api/version")
            .unwrap();
        assert_eq!(
            log.api_called(&no_slash).unwrap_err(),
            "xhr http://h/api/version: 404"
        );
        assert!(
            log.api_called(&api("api/version"))
                .unwrap_err()
                .contains("never requested")
        );
    }

    #[test]
    fn a_redirect_keeps_one_request_with_its_last_hop() {
        let mut log = PageLog::default();
        log.sent("1", 8.0, "http://h/ray", "Document");
        log.sent("1", 9.0, "http://h/ray/", "Document");
        log.answered("1", 200, "Document");
        assert_eq!(log.requests().len(), 1);
        assert_eq!(log.requests()[0].url.as_deref(), Some("http://h/ray/"));
    }

    #[test]
    fn events_in_any_order_give_the_same_log() {
        // As seen from Chromium: the stylesheet's answer and cancellation
        // were delivered before its sending (one stream per event type).
        let mut log = PageLog::default();
        log.sent("1", 1.0, "http://h/ray", "Document");
        log.answered("1", 200, "Document");
        log.answered("3", 404, "Stylesheet");
        log.failed("3", "net::ERR_ABORTED", true);
        assert_eq!(log.in_flight(), 2, "the document, and the unseen send");
        log.sent("2", 2.0, "http://h/static/js/main.js", "Script");
        log.sent("3", 3.0, "http://h/static/css/main.css", "Stylesheet");
        log.answered("2", 404, "Script");
        log.failed("2", "net::ERR_ABORTED", true);
        log.finished("1");
        // A redirect's hops arriving last-first: the later hop stays.
        log.sent("4", 5.0, "http://h/ray/", "Document");
        log.sent("4", 4.0, "http://h/ray", "Document");
        log.finished("4");
        assert_eq!(log.in_flight(), 0);
        let all: Vec<String> = log.requests().iter().map(|r| r.describe()).collect();
        assert_eq!(
            all,
            [
                "document http://h/ray: 200",
                "script http://h/static/js/main.js: 404",
                "stylesheet http://h/static/css/main.css: 404",
                "document http://h/ray/: ended without an answer",
            ]
        );
        assert_eq!(log.failed_requests(&[]).len(), 2);
    }

    #[test]
    fn a_request_not_answered_says_how_it_ended() {
        let mut log = PageLog::default();
        log.sent("1", 1.0, "http://h/a.js", "Script");
        log.sent("2", 2.0, "http://h/b.js", "Script");
        log.failed("2", "net::ERR_ABORTED", true);
        let all: Vec<String> = log.requests().iter().map(|r| r.describe()).collect();
        assert_eq!(
            all,
            [
                "script http://h/a.js: no answer yet (still loading)",
                "script http://h/b.js: cancelled before any answer",
            ]
        );
    }
}
