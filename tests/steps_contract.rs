//! The step kinds of the shared contract: `assert`, `logs`,
//! `delete: {select}` and `probe.http` with `body`/`json`/`expectJson`.
//! Loading (strict, located errors) and the cluster session against the
//! API double over real HTTP on loopback.

mod support;

use rayconform::scenario::{
    Action, AssertSpec, FieldMatch, LoadErrors, LogsSince, LogsSpec, ObjectSelector, PodSelector,
    Probe, load_str,
};
use rayconform::targets::cluster::{ClusterSession, SessionSetup};
use rayconform::targets::{Session, StepError};
use serde_json::json;
use std::path::Path;
use std::time::{Duration, SystemTime};
use support::apiserver::ApiDouble;

const NS: &str = "rc-steps";

const SCENARIO: &str = r#"apiVersion: rayconform.dev/v1alpha1
kind: Scenario
metadata:
  name: contract-steps
spec:
  targets: [kind]
  steps:
    - name: controller runs on the labelled node
      assert:
        object: { apiVersion: v1, kind: Pod, namespace: ingress-nginx,
                  labelSelector: "app.kubernetes.io/component=controller" }
        count: 1
        fields:
          - { path: "$.spec.nodeName", equals: "rayconform-worker" }
          - { path: "$.spec.containers[*].ports[*].containerPort", contains: 10001 }
          - { path: "$.metadata.annotations.x", exists: false }
      timeout: 2m
    - logs:
        pods: { namespace: ingress-nginx, labelSelector: "app.kubernetes.io/component=controller" }
        container: controller
        contains: "does not have any active Endpoint for TCP port 9000"
      timeout: 1m
    - logs:
        pods: { name: p }
        regex: "^ready [0-9]+$"
        since: step
    - delete: { select: { apiVersion: v1, kind: Pod, namespace: ingress-nginx,
                          labelSelector: "app.kubernetes.io/component=controller" } }
    - probe:
        http:
          url: http://127.0.0.1:1/apis/v1/namespaces/x/compute_templates
          method: POST
          json: { name: t, cpu: 2, memory: 4 }
          expectJson:
            - { path: "$.cpu", equals: 2 }
            - { path: "$.items[*].name", contains: t }
"#;

fn load(text: &str) -> Result<rayconform::scenario::Scenario, LoadErrors> {
    load_str(Path::new("s.yaml"), text, Path::new("."))
}

fn errors(text: &str) -> Vec<String> {
    match load(text) {
        Ok(_) => panic!("expected errors for:\n{text}"),
        Err(LoadErrors(errs)) => errs.iter().map(|e| e.to_string()).collect(),
    }
}

#[test]
fn the_contract_syntax_loads_into_typed_steps() {
    let s = load(SCENARIO).unwrap_or_else(|e| panic!("{e}"));
    let Action::Assert(a) = &s.steps[0].action else {
        panic!("{:?}", s.steps[0].action)
    };
    assert_eq!(s.steps[0].timeout, Duration::from_secs(120));
    assert_eq!(a.count, Some(1));
    assert_eq!(a.object.kind, "Pod");
    assert_eq!(a.fields[1].contains, Some(json!(10001)));
    assert_eq!(a.fields[2].exists, Some(false));
    let Action::Logs(l) = &s.steps[1].action else {
        panic!()
    };
    assert_eq!(l.container.as_deref(), Some("controller"));
    assert_eq!(l.since, LogsSince::Scenario);
    let Action::Logs(l) = &s.steps[2].action else {
        panic!()
    };
    assert_eq!(l.since, LogsSince::Step);
    assert_eq!(s.steps[2].timeout, Duration::from_secs(60));
    let Action::DeleteSelected(d) = &s.steps[3].action else {
        panic!("{:?}", s.steps[3].action)
    };
    assert_eq!(
        d.label_selector.as_deref(),
        Some("app.kubernetes.io/component=controller")
    );
    assert_eq!(s.steps[3].action.kind(), "delete");
    let Action::Probe(Probe::Http(h)) = &s.steps[4].action else {
        panic!()
    };
    assert_eq!(h.json, Some(json!({"name": "t", "cpu": 2, "memory": 4})));
    assert_eq!(h.expect_json.0.len(), 2);
}

#[test]
fn unknown_fields_in_the_new_steps_are_located() {
    let text = SCENARIO.replace("        count: 1\n", "        count: 1\n        bogus: 1\n");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with("s.yaml:13:9: unknown field `bogus`"),
        "{}",
        errs[0]
    );
    let text = SCENARIO.replace("contains: 10001 }", "contains: 10001, equal: 1 }");
    let errs = errors(&text);
    assert!(
        errs[0].starts_with("s.yaml:15:") && errs[0].contains("unknown field `equal`"),
        "{errs:?}"
    );
    let text = SCENARIO.replace("        since: step\n", "        since: yesterday\n");
    let errs = errors(&text);
    assert!(
        errs[0].starts_with("s.yaml:") && errs[0].contains("yesterday"),
        "{errs:?}"
    );
}

#[test]
fn a_bad_jsonpath_is_reported_at_its_own_line_and_column() {
    let text = SCENARIO.replace("\"$.spec.nodeName\"", "\"$.spec[nodeName\"");
    let errs = errors(&text);
    assert_eq!(errs.len(), 1, "{errs:?}");
    assert!(
        errs[0].starts_with(
            "s.yaml:14:22: spec.steps[0].assert.fields[0]: `$.spec[nodeName` is not a JSONPath"
        ),
        "{}",
        errs[0]
    );
    let text = SCENARIO.replace(
        "{ path: \"$.cpu\", equals: 2 }",
        "{ path: \"cpu\", equals: 2 }",
    );
    let errs = errors(&text);
    assert!(
        errs[0].contains("spec.steps[4].probe.http.expectJson[0]") && errs[0].contains("`cpu`"),
        "{errs:?}"
    );
    let text = SCENARIO.replace("{ path: \"$.cpu\", equals: 2 }", "{ path: \"$.cpu\" }");
    let errs = errors(&text);
    assert!(
        errs[0].contains("expected exactly one of equals, contains, exists; found 0"),
        "{errs:?}"
    );
}

#[test]
fn logs_need_one_matcher_and_delete_select_stands_alone() {
    let text = SCENARIO.replace(
        "        regex: \"^ready [0-9]+$\"\n",
        "        regex: \"(\"\n",
    );
    let errs = errors(&text);
    assert!(
        errs[0].contains("`regex` is not a regular expression"),
        "{errs:?}"
    );
    let text = SCENARIO.replace(
        "        contains: \"does not have any active Endpoint for TCP port 9000\"\n",
        "",
    );
    let errs = errors(&text);
    assert!(
        errs[0].contains("expected exactly one of contains, regex; found 0"),
        "{errs:?}"
    );
    let text = SCENARIO.replace("- delete: { select:", "- delete: { file: x.yaml, select:");
    let errs = errors(&text);
    assert!(errs[0].contains("cannot be combined"), "{errs:?}");
    let text = SCENARIO.replace(
        "          json: { name: t, cpu: 2, memory: 4 }\n",
        "          json: { name: t }\n          body: x\n",
    );
    let errs = errors(&text);
    assert!(
        errs[0].contains("expected at most one of body, json"),
        "{errs:?}"
    );
}

// --- the cluster session against the API double ---

async fn session(double: &ApiDouble, dir: &Path) -> ClusterSession {
    let run = support::run(support::scenario("steps"), NS, dir, None);
    ClusterSession::open(double.client(), &run, SessionSetup::default())
        .await
        .expect("session opens")
}

fn pod(name: &str, group: &str, phase: &str, cpu: &str) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": name, "namespace": NS, "labels": {"ray.io/group": group}},
           "spec": {"containers": [{"name": "ray", "resources": {"limits": {"cpu": cpu}},
                                    "ports": [{"containerPort": 6379}, {"containerPort": 10001}]}]},
           "status": {"phase": phase}})
}

fn pods_of(group: &str) -> ObjectSelector {
    ObjectSelector {
        api_version: "v1".into(),
        kind: "Pod".into(),
        namespace: None,
        name: None,
        label_selector: Some(format!("ray.io/group={group}")),
    }
}

fn assert_spec(count: Option<u32>, fields: Vec<FieldMatch>) -> AssertSpec {
    AssertSpec {
        object: pods_of("small"),
        count,
        fields,
    }
}

fn failed(result: Result<rayconform::targets::Observed, StepError>) -> (String, Vec<String>) {
    match result {
        Err(StepError::Failed { message, evidence }) => (message, evidence),
        other => panic!("expected a failure, got {other:?}"),
    }
}

#[tokio::test]
async fn assert_passes_with_the_observed_values_as_evidence() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(&double, dir.path()).await;
    double.put("pods", pod("w-1", "small", "Running", "1"));
    double.put("pods", pod("w-2", "small", "Running", "1"));
    double.put("pods", pod("w-3", "large", "Running", "4"));
    let spec = assert_spec(
        Some(2),
        vec![
            FieldMatch::equals("$.status.phase", json!("Running")),
            FieldMatch::equals("$.spec.containers[0].resources.limits.cpu", json!("1")),
        ],
    );
    let observed = s.assert(&spec, Duration::from_secs(5)).await.unwrap();
    assert!(observed.summary.starts_with("2 object(s)"), "{observed:?}");
    assert!(
        observed
            .evidence
            .contains(&format!("Pod {NS}/w-2: $.spec.containers[0].resources.limits.cpu: ok observed \"1\" (expected equals \"1\")")),
        "{:?}",
        observed.evidence
    );
    assert_eq!(observed.evidence[0], "count: ok 2 (expected 2)");
}

#[tokio::test]
async fn a_wrong_value_or_count_fails_after_the_timeout_with_the_last_observation() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(&double, dir.path()).await;
    double.put("pods", pod("w-1", "small", "Pending", "1"));
    // A string "1" is not the number 1.
    let spec = assert_spec(
        Some(1),
        vec![FieldMatch::equals(
            "$.spec.containers[0].resources.limits.cpu",
            json!(1),
        )],
    );
    let (message, evidence) = failed(s.assert(&spec, Duration::from_secs(1)).await);
    assert!(message.starts_with("timed out after"), "{message}");
    assert!(
        message.contains("MISMATCH observed \"1\" (expected equals 1)"),
        "{message}"
    );
    assert_eq!(evidence[0], "last observed:");
    let spec = assert_spec(Some(2), vec![]);
    let (message, evidence) = failed(s.assert(&spec, Duration::from_secs(1)).await);
    assert!(message.contains("1 object(s), expected 2"), "{message}");
    assert!(
        evidence.contains(&"count: MISMATCH 1 (expected 2)".to_string()),
        "{evidence:?}"
    );
}

#[tokio::test]
async fn assert_is_eventually_true_and_count_zero_is_absence() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(&double, dir.path()).await;
    double.put("pods", pod("w-1", "small", "Pending", "1"));
    let spec = assert_spec(
        None,
        vec![FieldMatch::equals("$.status.phase", json!("Running"))],
    );
    let flip = async {
        tokio::time::sleep(Duration::from_millis(700)).await;
        double.modify("pods", NS, "w-1", |p| {
            p["status"]["phase"] = json!("Running")
        });
    };
    let (result, ()) = tokio::join!(s.assert(&spec, Duration::from_secs(10)), flip);
    assert!(result.is_ok(), "{result:?}");
    let gone = assert_spec(Some(0), vec![]);
    let (_, evidence) = failed(s.assert(&gone, Duration::from_millis(600)).await);
    assert!(
        evidence.contains(&"count: MISMATCH 1 (expected 0)".to_string()),
        "{evidence:?}"
    );
    double.remove("pods", NS, "w-1");
    s.assert(&gone, Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn delete_select_removes_only_the_selected_objects() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(&double, dir.path()).await;
    double.put("pods", pod("w-1", "small", "Running", "1"));
    double.put("pods", pod("w-2", "small", "Running", "1"));
    double.put("pods", pod("w-3", "large", "Running", "4"));
    let summary = s.delete_selected(&pods_of("small")).await.unwrap();
    assert_eq!(
        summary,
        format!("deleted 2 objects: Pod {NS}/w-1, Pod {NS}/w-2")
    );
    assert!(double.get("pods", NS, "w-1").is_none());
    assert!(double.get("pods", NS, "w-2").is_none());
    assert!(
        double.get("pods", NS, "w-3").is_some(),
        "another group's pod stays"
    );
    let unknown = ObjectSelector {
        api_version: "example.com/v1".into(),
        kind: "Nothing".into(),
        namespace: None,
        name: None,
        label_selector: None,
    };
    assert!(matches!(
        s.delete_selected(&unknown).await,
        Err(StepError::Broken(_))
    ));
}

fn logs_spec(contains: &str, since: LogsSince) -> LogsSpec {
    LogsSpec {
        pods: PodSelector {
            namespace: None,
            name: None,
            label_selector: Some("ray.io/group=small".into()),
        },
        container: Some("controller".into()),
        contains: Some(contains.into()),
        regex: None,
        since,
    }
}

#[tokio::test]
async fn logs_find_the_line_and_show_what_was_read_when_missing() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(&double, dir.path()).await;
    double.put("pods", pod("w-1", "small", "Running", "1"));
    let now = SystemTime::now();
    double.log_line(NS, "w-1", now, "starting");
    double.log_line(
        NS,
        "w-1",
        now,
        "Service \"x/y\" does not have any active Endpoint for TCP port 9000",
    );
    let found = s
        .logs(
            &logs_spec(
                "does not have any active Endpoint for TCP port 9000",
                LogsSince::Scenario,
            ),
            Duration::from_secs(5),
        )
        .await
        .unwrap();
    assert_eq!(
        found.evidence,
        [format!(
            "{NS}/w-1: Service \"x/y\" does not have any active Endpoint for TCP port 9000"
        )]
    );
    let asked = double
        .requests()
        .into_iter()
        .find(|r| r.uri.contains("/pods/w-1/log"))
        .expect("the log endpoint was asked");
    assert!(asked.uri.contains("container=controller"), "{}", asked.uri);
    assert!(asked.uri.contains("sinceTime="), "{}", asked.uri);

    let (message, evidence) = failed(
        s.logs(
            &logs_spec("for TCP port 9001", LogsSince::Scenario),
            Duration::from_secs(2),
        )
        .await,
    );
    assert!(message.starts_with("timed out after"), "{message}");
    assert!(
        message.contains("a line containing \"for TCP port 9001\""),
        "{message}"
    );
    assert_eq!(evidence[0], "last read:");
    assert!(
        evidence[1].starts_with(&format!("{NS}/w-1: 2 line(s), last: starting | Service")),
        "{evidence:?}"
    );
}

#[tokio::test]
async fn since_step_ignores_lines_logged_before_the_step() {
    let double = ApiDouble::start().await;
    let dir = tempfile::tempdir().unwrap();
    let mut s = session(&double, dir.path()).await;
    double.put("pods", pod("w-1", "small", "Running", "1"));
    // Logged after the session opened but seconds before the step.
    let before = SystemTime::now() - Duration::from_secs(5);
    double.log_line(NS, "w-1", before, "old news");
    let (_, evidence) = failed(
        s.logs(
            &logs_spec("old news", LogsSince::Step),
            Duration::from_secs(2),
        )
        .await,
    );
    assert!(evidence[1].ends_with("no lines"), "{evidence:?}");
    let late = async {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        double.log_line(NS, "w-1", SystemTime::now(), "fresh news");
    };
    let news = logs_spec("news", LogsSince::Step);
    let (found, ()) = tokio::join!(s.logs(&news, Duration::from_secs(6)), late);
    assert_eq!(found.unwrap().evidence, [format!("{NS}/w-1: fresh news")]);
}
