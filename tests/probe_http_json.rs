//! `probe.http` with a request body (`json` / `body`) and `expectJson`
//! matchers, against a JSON API on loopback that echoes what it received.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use rayconform::probe::http_expect::FieldMatch;
use rayconform::probe::spec::{ExpectJson, HttpProbe};
use rayconform::verdict::Stage;
use serde_json::{Value, json};
use std::convert::Infallible;
use std::time::Duration;
use tokio::net::TcpListener;

/// POST echoes `{"body": <request JSON or text>, "contentType": ...}`;
/// any other request answers 404 with a gRPC-gateway style error.
async fn echo_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                break;
            };
            tokio::spawn(async move {
                let service =
                    hyper::service::service_fn(|req: Request<hyper::body::Incoming>| async move {
                        let post = req.method() == hyper::Method::POST;
                        let content_type = req
                            .headers()
                            .get("content-type")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_string();
                        let bytes = req.into_body().collect().await.unwrap().to_bytes();
                        let text = String::from_utf8_lossy(&bytes).to_string();
                        let (status, answer) = if post {
                            let body = serde_json::from_str::<Value>(&text).unwrap_or(json!(text));
                            (200, json!({"body": body, "contentType": content_type}))
                        } else {
                            (404, json!({"code": 5, "message": "Not Found"}))
                        };
                        Ok::<_, Infallible>(
                            Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(answer.to_string())))
                                .unwrap(),
                        )
                    });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    url
}

fn probe(url: String) -> HttpProbe {
    HttpProbe {
        url,
        method: None,
        headers: Default::default(),
        follow_redirects: false,
        expect_status: None,
        expect_location: None,
        expect_content_type: None,
        body_contains: None,
        expect_json: ExpectJson::default(),
        body: None,
        json: None,
        tls: None,
    }
}

fn m(path: &str, f: impl FnOnce(&mut FieldMatch)) -> FieldMatch {
    let mut m = FieldMatch::equals(path, Value::Null);
    m.equals = None;
    f(&mut m);
    m
}

const T: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_json_body_is_sent_as_application_json_and_matched_back() {
    let base = echo_server().await;
    let mut p = probe(format!("{base}/apis/v1/namespaces/ns/compute_templates"));
    p.method = Some("POST".into());
    p.json = Some(json!({"name": "t", "cpu": 2, "memory": 4, "tags": ["a", "b"]}));
    p.expect_json = ExpectJson(vec![
        m("$.body.cpu", |m| m.equals = Some(json!(2))),
        m("$.body.tags[*]", |m| m.contains = Some(json!("b"))),
        m("$.contentType", |m| {
            m.equals = Some(json!("application/json"))
        }),
        m("$.body.gpu", |m| m.exists = Some(false)),
    ]);
    let v = rayconform::probe::http::check(&p, None, T).await;
    assert!(v.passed, "{v:?}");
    assert!(
        v.evidence.iter().any(|l| l.contains("request body (JSON)")),
        "{:?}",
        v.evidence
    );

    // A wrong value fails at the body stage, showing what was observed.
    p.expect_json = ExpectJson(vec![m("$.body.cpu", |m| m.equals = Some(json!("2")))]);
    let v = rayconform::probe::http::check(&p, None, T).await;
    assert!(!v.passed);
    assert_eq!(v.stage, Some(Stage::Body));
    assert!(
        v.summary
            .contains("$.body.cpu: MISMATCH observed 2 (expected equals \"2\")"),
        "{}",
        v.summary
    );
}

#[tokio::test]
async fn a_text_body_and_an_error_object_on_404() {
    let base = echo_server().await;
    let mut p = probe(format!("{base}/x"));
    p.method = Some("POST".into());
    p.body = Some("plain words".into());
    p.expect_json = ExpectJson(vec![m("$.body", |m| m.equals = Some(json!("plain words")))]);
    let v = rayconform::probe::http::check(&p, None, T).await;
    assert!(v.passed, "{v:?}");

    let mut p = probe(format!("{base}/no/such/path"));
    p.expect_status = Some(404);
    p.expect_json = ExpectJson(vec![
        m("$.code", |m| m.equals = Some(json!(5))),
        m("$.message", |m| m.equals = Some(json!("Not Found"))),
    ]);
    let v = rayconform::probe::http::check(&p, None, T).await;
    assert!(v.passed, "{v:?}");
    p.expect_json = ExpectJson(vec![m("$.code", |m| m.equals = Some(json!(3)))]);
    let v = rayconform::probe::http::check(&p, None, T).await;
    assert!(!v.passed, "{v:?}");
}

#[test]
fn the_map_form_still_reads_and_round_trips() {
    let p: HttpProbe = serde_json::from_value(json!({
        "url": "http://x/", "expectJson": {"ray_version": "2.60.0", "/a/0": 1}
    }))
    .unwrap();
    assert_eq!(p.expect_json.0.len(), 2);
    let again: HttpProbe = serde_json::from_value(serde_json::to_value(&p).unwrap()).unwrap();
    assert_eq!(again, p);
    assert!(
        p.expect_json
            .iter()
            .any(|m| m.path == "$['ray_version']" && m.equals == Some(json!("2.60.0")))
    );
}
