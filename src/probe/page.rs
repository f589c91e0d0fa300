//! `page`: a page loaded the way a browser loads it. Every script,
//! stylesheet, icon and image URL is resolved against the document's base
//! URL (the final URL after redirects, or `<base href>`) with the URL
//! standard's rules, then fetched; so are the page-relative API paths the
//! scenario names. This is what shows the dashboard's trailing-slash bug:
//! at `/ray` the asset `./static/x.js` resolves to `/static/x.js`.

use super::failure::Failure;
use super::grpc_ready::setup_failure;
use super::http_client::{error_chain, prepare, request_failure};
use super::spec::PageProbe;
use super::timeline::{Timeline, ms};
use crate::tls::{CertificateSet, ClientTls};
use crate::verdict::{Stage, Verdict};
use scraper::{Html, Selector};
use std::time::Duration;
use url::Url;

/// What kind of sub-resource a URL is (browsers treat them differently).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AssetKind {
    /// `<script src>`.
    Script,
    /// `<link rel=stylesheet href>`.
    Stylesheet,
    /// `<link rel=icon href>`.
    Icon,
    /// `<img src>`.
    Image,
    /// A page-relative API path from the scenario.
    Api,
}

impl AssetKind {
    fn name(self) -> &'static str {
        match self {
            AssetKind::Script => "script",
            AssetKind::Stylesheet => "stylesheet",
            AssetKind::Icon => "icon",
            AssetKind::Image => "image",
            AssetKind::Api => "api",
        }
    }
}

/// One sub-resource: the reference as written and where it resolves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Asset {
    /// Script, stylesheet, ...
    pub kind: AssetKind,
    /// The attribute value (or API path) as written.
    pub reference: String,
    /// The resolved absolute URL.
    pub url: Url,
}

/// The document's base URL: `<base href>` resolved against the page's
/// final URL, else the final URL itself.
pub fn base_url(document: &Html, final_url: &Url) -> Url {
    let selector = Selector::parse("base[href]").expect("static selector");
    document
        .select(&selector)
        .next()
        .and_then(|base| base.value().attr("href"))
        .and_then(|href| final_url.join(href.trim()).ok())
        .unwrap_or_else(|| final_url.clone())
}

/// Every asset the page references, resolved against `base`, without
/// duplicates, in document order. References that do not resolve are
/// returned separately.
pub fn page_assets(document: &Html, base: &Url) -> (Vec<Asset>, Vec<String>) {
    let wanted = [
        ("script[src]", "src", AssetKind::Script),
        ("link[rel~=stylesheet][href]", "href", AssetKind::Stylesheet),
        ("link[rel~=icon][href]", "href", AssetKind::Icon),
        ("img[src]", "src", AssetKind::Image),
    ];
    let mut assets: Vec<Asset> = Vec::new();
    let mut unresolvable = Vec::new();
    for (css, attr, kind) in wanted {
        let selector = Selector::parse(css).expect("static selector");
        for element in document.select(&selector) {
            let Some(reference) = element.value().attr(attr) else {
                continue;
            };
            let reference = reference.trim();
            if reference.is_empty() || reference.starts_with("data:") {
                continue;
            }
            match base.join(reference) {
                Ok(url) if !assets.iter().any(|a| a.url == url) => assets.push(Asset {
                    kind,
                    reference: reference.to_string(),
                    url,
                }),
                Ok(_) => {}
                Err(e) => unresolvable.push(format!("{} {reference:?}: {e}", kind.name())),
            }
        }
    }
    (assets, unresolvable)
}

/// Runs a `page` probe from a scenario.
pub async fn run(probe: &PageProbe, certs: Option<&CertificateSet>, timeout: Duration) -> Verdict {
    match probe.tls.as_ref().map(|t| t.client_tls(certs)).transpose() {
        Ok(tls) => check(&probe.url, &probe.apis, tls.as_ref(), timeout).await,
        Err(e) => setup_failure(&e.to_string()),
    }
}

/// The probe with credentials resolved (the CLI's entry point).
pub async fn check(
    url: &str,
    apis: &[String],
    tls: Option<&ClientTls>,
    timeout: Duration,
) -> Verdict {
    let unverified = tls.is_some_and(ClientTls::skips_verification);
    load(url, apis, tls, timeout)
        .await
        .server_unverified_if(unverified)
}

async fn load(url: &str, apis: &[String], tls: Option<&ClientTls>, timeout: Duration) -> Verdict {
    let mut timeline = Timeline::new();
    let expected = "the page and every asset and API it references load (2xx)".to_string();
    let deadline = tokio::time::Instant::now() + timeout;
    let prepared = match prepare(url, tls, true, timeout).await {
        Ok(p) => p,
        Err(f) => return fail(f, &expected, timeline),
    };
    let client = prepared.client;
    timeline.note(format!(
        "GET {} (redirects followed, like a browser)",
        prepared.url
    ));
    let response = match client.get(prepared.url.clone()).send().await {
        Ok(r) => r,
        Err(e) => return fail(request_failure(&e, timeline.elapsed()), &expected, timeline),
    };
    let status = response.status();
    let final_url = response.url().clone();
    timeline.note(format!(
        "page answered {} at final URL {final_url}",
        status.as_u16()
    ));
    if !status.is_success() {
        let message = format!("page {final_url} answered {}", status.as_u16());
        return Verdict::fail(Stage::HttpStatus, message.clone(), expected, message)
            .with_evidence(timeline.into_lines());
    }
    let html = match response.text().await {
        Ok(t) => t,
        Err(e) => return fail(request_failure(&e, timeline.elapsed()), &expected, timeline),
    };
    let document = Html::parse_document(&html);
    let base = base_url(&document, &final_url);
    if base != final_url {
        timeline.note(format!("<base href> sets the base URL to {base}"));
    }
    let (mut assets, unresolvable) = page_assets(&document, &base);
    timeline.note(format!("page references {} assets", assets.len()));
    for api in apis {
        match base.join(api) {
            Ok(url) => assets.push(Asset {
                kind: AssetKind::Api,
                reference: api.clone(),
                url,
            }),
            Err(e) => timeline.note(format!("api {api:?} does not resolve: {e}")),
        }
    }

    let mut missing: Vec<String> = unresolvable;
    for asset in &assets {
        let fetch = client.get(asset.url.clone()).send();
        let outcome = match tokio::time::timeout_at(deadline, fetch).await {
            Err(_) => Err(format!("timed out after {}", ms(timeline.elapsed()))),
            Ok(Err(e)) => Err(error_chain(&e)),
            Ok(Ok(r)) => {
                let content_type = r
                    .headers()
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("")
                    .to_string();
                let code = r.status();
                if !code.is_success() {
                    Err(format!("{}", code.as_u16()))
                } else if html_instead_of_code(asset.kind, &content_type) {
                    Err(format!(
                        "{} with Content-Type {content_type} (a browser will not run it as a {})",
                        code.as_u16(),
                        asset.kind.name()
                    ))
                } else {
                    Ok(format!("{} {content_type}", code.as_u16()))
                }
            }
        };
        let line = format!(
            "{} {:?} -> {}",
            asset.kind.name(),
            asset.reference,
            asset.url
        );
        match outcome {
            Ok(how) => timeline.note(format!("{line}: {how}")),
            Err(why) => {
                timeline.note(format!("{line}: FAILED {why}"));
                missing.push(format!("{} ({}: {why})", asset.url, asset.kind.name()));
            }
        }
    }
    let loaded = assets.len().saturating_sub(missing.len());
    let actual = format!(
        "page {} at {final_url}; {loaded}/{} sub-resources loaded",
        status.as_u16(),
        assets.len()
    );
    if missing.is_empty() {
        Verdict::pass(
            format!(
                "page and {} sub-resources loaded in {}",
                assets.len(),
                ms(timeline.elapsed())
            ),
            expected,
            actual,
        )
    } else {
        Verdict::fail(
            Stage::Asset,
            format!(
                "{} of {} did not load: {}",
                missing.len(),
                assets.len(),
                missing.join(", ")
            ),
            expected,
            actual,
        )
    }
    .with_evidence(timeline.into_lines())
}

/// A script or stylesheet answered as HTML (a catch-all route serving the
/// index page) does not load in a browser.
fn html_instead_of_code(kind: AssetKind, content_type: &str) -> bool {
    matches!(kind, AssetKind::Script | AssetKind::Stylesheet)
        && content_type.starts_with("text/html")
}

fn fail(f: Failure, expected: &str, timeline: Timeline) -> Verdict {
    Verdict::fail(f.stage, f.message.clone(), expected, f.to_string())
        .with_evidence(timeline.into_lines())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assets_resolve_like_a_browser() {
        let html = r#"<html><head>
            <link rel="shortcut icon" href="./favicon.ico">
            <link rel="stylesheet" href="./static/css/main.css">
            <script defer src="./static/js/main.js"></script>
            <script src="./static/js/main.js"></script>
            </head><body><img src="logo.png"><img src="data:image/png;base64,AA"></body></html>"#;
        let doc = Html::parse_document(html);
        let at_slash = Url::parse("http://h:1/ray/").unwrap();
        let (assets, bad) = page_assets(&doc, &base_url(&doc, &at_slash));
        assert!(bad.is_empty());
        let urls: Vec<&str> = assets.iter().map(|a| a.url.as_str()).collect();
        assert_eq!(
            urls,
            [
                "http://h:1/ray/static/js/main.js",
                "http://h:1/ray/static/css/main.css",
                "http://h:1/ray/favicon.ico",
                "http://h:1/ray/logo.png"
            ]
        );
        let no_slash = Url::parse("http://h:1/ray").unwrap();
        let (assets, _) = page_assets(&doc, &base_url(&doc, &no_slash));
        assert_eq!(assets[0].url.as_str(), "http://h:1/static/js/main.js");
    }

    #[test]
    fn base_href_wins() {
        let doc =
            Html::parse_document(r#"<head><base href="/app/"><script src="x.js"></script></head>"#);
        let page = Url::parse("http://h/other/page").unwrap();
        let (assets, _) = page_assets(&doc, &base_url(&doc, &page));
        assert_eq!(assets[0].url.as_str(), "http://h/app/x.js");
    }
}
