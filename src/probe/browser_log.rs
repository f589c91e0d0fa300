//! What a page did in the browser, as the DevTools events told it: every
//! request with its kind and how it ended, uncaught exceptions and
//! console errors. The `browser` probe's assertions are questions to it.

use std::collections::BTreeMap;
use url::Url;

/// The kinds of request whose failure breaks a page: the code it runs,
/// its styles and the data it asks for (and the document itself).
const MUST_LOAD: &[&str] = &["Document", "Script", "Stylesheet", "XHR", "Fetch"];

/// One request the page made (the last hop, after redirects).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageRequest {
    /// The URL requested.
    pub url: String,
    /// The DevTools resource type: `Document`, `Script`, `XHR`, ...
    pub kind: String,
    /// The HTTP status, once a response arrived.
    pub status: Option<i64>,
    /// The network error, when it failed without a response.
    pub error: Option<String>,
    /// The request ended (loaded or failed).
    pub done: bool,
}

impl PageRequest {
    /// Whether it ended badly: status >= 400 or a network error.
    pub fn failed(&self) -> bool {
        self.status.is_some_and(|s| s >= 400) || self.error.is_some()
    }

    /// `script http://h/static/js/main.js: 404` or `...: net::ERR_...`.
    pub fn describe(&self) -> String {
        let how = match (&self.error, self.status) {
            (Some(e), _) => e.clone(),
            (None, Some(s)) => s.to_string(),
            (None, None) => "no answer yet".to_string(),
        };
        format!("{} {}: {how}", self.kind.to_lowercase(), self.url)
    }
}

/// Everything the page did, in the order it happened.
#[derive(Debug, Clone, Default)]
pub struct PageLog {
    requests: Vec<PageRequest>,
    by_id: BTreeMap<String, usize>,
    /// Uncaught exceptions, one line each.
    pub exceptions: Vec<String>,
    /// `console.error` calls, one line each.
    pub console_errors: Vec<String>,
}

impl PageLog {
    /// A request was sent (or redirected: the same id, a new URL).
    pub fn sent(&mut self, id: &str, url: &str, kind: &str) {
        let request = PageRequest {
            url: url.to_string(),
            kind: kind.to_string(),
            status: None,
            error: None,
            done: false,
        };
        match self.by_id.get(id) {
            Some(&i) => self.requests[i] = request,
            None => {
                self.by_id.insert(id.to_string(), self.requests.len());
                self.requests.push(request);
            }
        }
    }

    /// Its response arrived.
    pub fn answered(&mut self, id: &str, status: i64, kind: &str) {
        if let Some(&i) = self.by_id.get(id) {
            self.requests[i].status = Some(status);
            self.requests[i].kind = kind.to_string();
        }
    }

    /// It finished loading.
    pub fn finished(&mut self, id: &str) {
        if let Some(&i) = self.by_id.get(id) {
            self.requests[i].done = true;
        }
    }

    /// It failed: a network error, or cancelled (not a failure of the
    /// server: a page that navigates away cancels what it no longer needs).
    pub fn failed(&mut self, id: &str, error: &str, cancelled: bool) {
        if let Some(&i) = self.by_id.get(id) {
            let request = &mut self.requests[i];
            request.done = true;
            if !cancelled {
                request.error = Some(error.to_string());
            }
        }
    }

    /// Every request, in the order sent.
    pub fn requests(&self) -> &[PageRequest] {
        &self.requests
    }

    /// Requests still loading.
    pub fn in_flight(&self) -> usize {
        self.requests.iter().filter(|r| !r.done).count()
    }

    /// The failed documents, scripts, stylesheets, XHRs and fetches,
    /// except those at an `allowed` URL (path compared, query ignored).
    pub fn failed_requests(&self, allowed: &[Url]) -> Vec<&PageRequest> {
        self.requests
            .iter()
            .filter(|r| r.failed() && MUST_LOAD.contains(&r.kind.as_str()))
            .filter(|r| !allowed.iter().any(|a| same_path(&r.url, a)))
            .collect()
    }

    /// Whether the page itself requested `api` (its path, any query) and
    /// got a 2xx: `Ok` with what answered, `Err` with what happened.
    pub fn api_called(&self, api: &Url) -> Result<String, String> {
        let calls: Vec<&PageRequest> = self
            .requests
            .iter()
            .filter(|r| same_path(&r.url, api))
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
        log.sent("1", "http://h/ray", "Document");
        log.answered("1", 200, "Document");
        log.finished("1");
        log.sent("2", "http://h/static/js/main.js", "Script");
        log.answered("2", 404, "Script");
        log.finished("2");
        log.sent("3", "http://h/logo.png", "Image");
        log.answered("3", 404, "Image");
        log.sent("4", "http://h/api/version", "XHR");
        log.failed("4", "net::ERR_CONNECTION_REFUSED", false);
        log.sent("5", "http://h/api/gone", "Fetch");
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
        log.sent("1", "http://h/ray/api/cluster_status?format=1", "XHR");
        log.answered("1", 200, "XHR");
        log.sent("2", "http://h/api/version", "XHR");
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
        log.sent("1", "http://h/ray", "Document");
        log.sent("1", "http://h/ray/", "Document");
        log.answered("1", 200, "Document");
        assert_eq!(log.requests().len(), 1);
        assert_eq!(log.requests()[0].url, "http://h/ray/");
    }
}
