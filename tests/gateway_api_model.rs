//! Every fixture's Gateway API objects pass our strict typed model
//! (`rayconform::gateway_api`), and the model says no, at file:line:column,
//! to what the API server would prune or refuse: an unknown field, a kind
//! in a version the v1.6.1 standard channel does not serve, a prefix
//! rewrite on a non-prefix match.

use rayconform::gateway_api::{Problem, check_text};
use std::collections::BTreeSet;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn show(file: &str, problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("{file}:{}:{}: {}", p.line, p.column, p.message))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn every_fixture_passes_the_typed_gateway_api_model() {
    let mut kinds = BTreeSet::new();
    let mut all = Vec::new();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root().join("fixtures"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let shown = path.strip_prefix(root()).unwrap().display().to_string();
        all.push(show(&shown, &check_text(&text)));
        for doc in rayconform::scenario::parse_manifests(&text).unwrap() {
            if rayconform::gateway_api::owns(doc["apiVersion"].as_str().unwrap_or_default()) {
                kinds.insert(doc["kind"].as_str().unwrap().to_string());
            }
        }
    }
    all.retain(|p| !p.is_empty());
    assert!(all.is_empty(), "{}", all.join("\n"));
    // Not vacuous: the fixtures hold every route kind the scenarios use.
    for kind in ["HTTPRoute", "GRPCRoute", "TLSRoute", "TCPRoute"] {
        assert!(kinds.contains(kind), "no fixture holds a {kind}: {kinds:?}");
    }
}

const ROUTE: &str = "\
# leading comment
apiVersion: v1
kind: ConfigMap
metadata: {name: other}
---
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: r
spec:
  parentRefs: [{name: g, sectionName: http}]
  rules:
    - matches:
        - path: {type: PathPrefix, value: /ray}
      filters:
        - type: URLRewrite
          urlRewrite:
            path: {type: ReplacePrefixMatch, replacePrefixMatch: /}
      backendRefs: [{name: s, port: 8265}]
";

#[test]
fn a_good_route_passes_and_other_kinds_are_left_alone() {
    assert_eq!(check_text(ROUTE), Vec::new());
}

#[test]
fn an_unknown_field_is_located_in_its_document() {
    let text = ROUTE.replace(
        "replacePrefixMatch: /}",
        "replacePrefixMatch: /, prefix: x}",
    );
    let problems = check_text(&text);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].line, 18, "{problems:?}");
    assert!(problems[0].column > 1, "{problems:?}");
    assert!(problems[0].message.contains("prefix"), "{problems:?}");
}

#[test]
fn a_version_the_standard_channel_does_not_serve_is_named() {
    let text = ROUTE.replace("kind: HTTPRoute", "kind: TLSRoute").replace(
        "gateway.networking.k8s.io/v1\n",
        "gateway.networking.k8s.io/v1alpha2\n",
    );
    let problems = check_text(&text);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].line, 6);
    assert!(
        problems[0]
            .message
            .contains("v1alpha2 TLSRoute is not a kind"),
        "{problems:?}"
    );
}

#[test]
fn a_prefix_rewrite_needs_a_prefix_match() {
    let text = ROUTE.replace("type: PathPrefix", "type: Exact");
    let problems = check_text(&text);
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert!(
        problems[0].message.contains("ReplacePrefixMatch needs"),
        "{problems:?}"
    );
}
